"""List and watch: label and field selectors, list answers, and chunked watch streams."""

from __future__ import annotations

import bisect
import copy
import json
import re
import select
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tests.fakes.kube._base import _State
from tests.fakes.kube._model import Key, Obj, Resource, _KubeError

if TYPE_CHECKING:
    from tests.fakes.kube._server import _Handler


def _parse_label_selector(sel: str) -> list[tuple[str, str, list[str]]]:
    reqs: list[tuple[str, str, list[str]]] = []
    for part in re.findall(r"(?:[^,(]|\([^)]*\))+", sel):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", part)
        if m:
            reqs.append((m[1], m[2], [v.strip() for v in m[3].split(",") if v.strip()]))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append((k.strip(), "notin", [v.strip()]))
        elif "=" in part:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            reqs.append((k.strip(), "in", [v.strip()]))
        elif part.startswith("!"):
            reqs.append((part[1:].strip(), "!", []))
        else:
            reqs.append((part, "exists", []))
    return reqs


def _labels_match(labels: dict[str, str], reqs: list[tuple[str, str, list[str]]]) -> bool:
    for key, op, values in reqs:
        if op == "in" and labels.get(key) not in values:
            return False
        if op == "notin" and key in labels and labels[key] in values:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!" and key in labels:
            return False
    return True


def _parse_field_selector(sel: str) -> list[tuple[str, bool, str]]:
    reqs: list[tuple[str, bool, str]] = []
    for part in sel.split(","):
        if not part.strip():
            continue
        if "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append((k.strip(), False, v.strip()))
        else:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            reqs.append((k.strip(), True, v.strip()))
    return reqs


def _fields_match(obj: Obj, reqs: list[tuple[str, bool, str]]) -> bool:
    for path, equal, value in reqs:
        cur: Any = obj
        for p in path.split("."):
            cur = cur.get(p) if isinstance(cur, dict) else None
        actual = "" if cur is None else str(cur)
        if (actual == value) != equal:
            return False
    return True


def _peer_closed(conn: socket.socket) -> bool:
    """True when the client has closed its side (a finished kubectl leaves its watch)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class _ListWatch(_State):
    """Lists and watches of one resource, filtered by namespace and selectors."""

    def _matcher(self, res: Resource, ns: str | None, q: dict[str, str]) -> Any:
        labels = _parse_label_selector(q.get("labelSelector", ""))
        fields = _parse_field_selector(q.get("fieldSelector", ""))

        def match(key: Key, obj: Obj) -> bool:
            return (
                key[0] == res.group_version
                and key[1] == res.plural
                and (ns is None or key[2] == ns)
                and _labels_match(obj["metadata"].get("labels") or {}, labels)
                and _fields_match(obj, fields)
            )

        return match

    def _list(self, res: Resource, ns: str | None, q: dict[str, str]) -> Obj:
        match = self._matcher(res, ns, q)
        with self._lock:
            items = [
                copy.deepcopy(o)
                for k, o in sorted(self.objects.items(), key=lambda kv: str(kv[0]))
                if match(k, o)
            ]
            rv = str(self._rv)
        return {
            "kind": f"{res.kind}List",
            "apiVersion": res.group_version,
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    def _watch(self, h: _Handler, res: Resource, ns: str | None, q: dict[str, str]) -> None:
        match = self._matcher(res, ns, q)
        timeout = float(q.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        rv = q.get("resourceVersion", "")
        with self._lock:
            pending: list[Obj] = []
            if rv in ("", "0"):
                pending = [
                    {"type": "ADDED", "object": copy.deepcopy(o)}
                    for k, o in sorted(self.objects.items(), key=lambda kv: str(kv[0]))
                    if match(k, o)
                ]
                pos = self._rv
            else:
                try:
                    pos = int(rv)
                except ValueError:
                    raise _KubeError(400, f"invalid resourceVersion {rv!r}") from None
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            h.send_header("Cache-Control", "no-cache, private")
            h.end_headers()
            h.wfile.flush()
            for ev in self._watch_events(match, pos, pending, deadline, h.connection):
                line = json.dumps(ev).encode() + b"\n"
                h.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                h.wfile.flush()
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except OSError:
            h.close_connection = True

    def _watch_events(
        self, match: Any, pos: int, pending: list[Obj], deadline: float, conn: socket.socket
    ) -> Iterator[Obj]:
        yield from pending
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or _peer_closed(conn):
                return
            with self._cond:
                idx = bisect.bisect_right(self._event_rvs, pos)
                new = self._events[idx:]
                if not new:
                    self._cond.wait(min(remaining, 0.5))
                    continue
                pos = new[-1].rv
                out = [
                    {"type": e.type, "object": copy.deepcopy(e.obj)}
                    for e in new
                    if match(e.key, e.obj)
                ]
            yield from out
