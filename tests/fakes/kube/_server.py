"""The HTTP server, FakeKube's lifecycle, client config and test helpers, and dispatch."""

from __future__ import annotations

import contextlib
import copy
import json
import queue
import re
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.fakes.kube._controllers import _Controllers
from tests.fakes.kube._discovery import _Discovery
from tests.fakes.kube._model import (
    Key,
    Obj,
    RecordedRequest,
    _Event,
    _FailRule,
    _KubeError,
    _status,
)
from tests.fakes.kube._objects import _ObjectsAPI


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    fake: FakeKube

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients going away (or stop() cutting connections) is normal here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._track(self.connection, add=False)

    current: RecordedRequest | None = None

    def send_response(self, code: int, message: str | None = None) -> None:
        if self.current is not None:
            self.current.status = code
        super().send_response(code, message)

    def _dispatch(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeKube(_ObjectsAPI, _Discovery, _Controllers):
    """In-memory Kubernetes API server for tests (see the package docstring).

    Requests and writes are handled by mixins, one module per concern: ``_ObjectsAPI``
    (requests on objects, over ``_Storage`` and ``_ListWatch``), ``_Discovery`` and
    ``_Controllers``.
    """

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.requests: list[RecordedRequest] = []
        self.auto_ready: bool = True
        self.crd_establish_delay: float = 0.0
        self._timers: list[threading.Timer] = []
        self.url: str = ""
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._rv = 0
        self._events: list[_Event] = []
        self._event_rvs: list[int] = []
        self._fail_rules: list[_FailRule] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        #: Callbacks run for every stored change, on a thread of their own (see add_controller).
        self._controllers: list[Callable[[str, Obj], None]] = []
        self._changes: queue.Queue[tuple[str, Obj] | None] = queue.Queue()
        self._unhandled = 0
        self._controller_thread: threading.Thread | None = None
        #: Tracebacks of controller callbacks that raised (a test asserts it stays empty).
        self.controller_errors: list[str] = []
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeKube:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-kube"
        )
        self._thread.start()
        self._controller_thread = threading.Thread(target=self._run_controllers,
                                                   name="fake-kube-controllers")  # fmt: skip
        self._controller_thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
            timer.join()
        server.shutdown()
        thread.join()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the handler threads
        self._server = self._thread = None
        if self._controller_thread is not None:
            self._changes.put(None)
            self._controller_thread.join()
            self._controller_thread = None

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # ------------------------------------------------------------------ client config
    def write_kubeconfig(
        self, path: Path, *, context: str = "fake", namespace: str | None = None
    ) -> Path:
        ctx: Obj = {"cluster": "fake", "user": "fake"}
        if namespace:
            ctx["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
            "preferences": {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def env(self, tmp_path: Path) -> dict[str, str]:
        kubeconfig = self.write_kubeconfig(Path(tmp_path) / "kubeconfig")
        cache = Path(tmp_path) / "kubecache"
        cache.mkdir(parents=True, exist_ok=True)
        return {"KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache)}

    # ------------------------------------------------------------------ test helpers
    def put(self, obj: Obj) -> Obj:
        res = self.resource_for(obj["kind"])
        meta = obj.get("metadata") or {}
        key = self._key(res, meta["name"], meta.get("namespace"))
        with self._lock:
            return self._store(res, key, copy.deepcopy(obj), self.objects.get(key))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        res = self.resource_for(kind)
        with self._lock:
            key = self._key(res, name, namespace)
            if key not in self.objects:
                return False
            self._remove(key)
            return True

    def mark_ready(self, name: str, namespace: str | None = None, *, ready: bool = True) -> Obj:
        res = self.resource_for("Deployment")
        with self._lock:
            key = self._key(res, name, namespace)
            if key not in self.objects:
                raise KeyError(f"no deployment {namespace}/{name}")
            obj = copy.deepcopy(self.objects[key])
            obj["status"] = self._deployment_status(obj, ready=ready)
            return self._commit(key, obj, "MODIFIED")

    def mark_unready(self, name: str, namespace: str | None = None) -> Obj:
        return self.mark_ready(name, namespace, ready=False)

    def writes(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def fail_next(self, method: str, path_regex: str, status: int, *, times: int = 1) -> None:
        with self._lock:
            self._fail_rules.append(
                _FailRule(method.upper(), re.compile(path_regex), status, times)
            )

    # ------------------------------------------------------------------ HTTP
    def _handle(self, h: _Handler) -> None:
        url = urlsplit(h.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body = self._read_body(h)
        req = RecordedRequest(
            method=h.command,
            path=path,
            query=query,
            content_type=(h.headers.get("Content-Type") or "").split(";")[0].strip(),
            body=body,
            headers={k: v for k, v in h.headers.items()},
        )
        h.current = req
        with self._lock:
            self.requests.append(req)
            rule = next(
                (
                    r
                    for r in self._fail_rules
                    if r.method in ("*", h.command) and r.path_regex.search(path)
                ),
                None,
            )
            if rule is not None:
                rule.times -= 1
                if rule.times <= 0:
                    self._fail_rules.remove(rule)
        if rule is not None:
            self._send_json(
                h, rule.status, _status(rule.status, f"injected failure ({rule.status})")
            )
            return
        try:
            result = self._route(h, req)
        except _KubeError as e:
            self._send_json(h, e.code, _status(e.code, e.message, e.details, e.reason))
            return
        except Exception as e:  # a bug in the fake: answer like an apiserver would
            self._send_json(h, 500, _status(500, f"fake kube error: {e!r}"))
            return
        if result is not None:
            code, payload = result
            self._send_json(h, code, payload)

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
            return b"".join(chunks)
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    @staticmethod
    def _send_json(h: _Handler, code: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        try:
            h.send_response(code)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.send_header("Cache-Control", "no-cache, private")
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data)
            h.wfile.flush()
        except OSError:
            h.close_connection = True

    def _route(self, h: _Handler, req: RecordedRequest) -> tuple[int, Any] | None:
        path, method = req.path, req.method
        if path in ("/version", "/openapi/v3", "/api", "/apis") or path.startswith("/openapi/"):
            if method not in ("GET", "HEAD"):
                raise _KubeError(405, f"the server does not allow this method on {path}")
            return 200, self._static(path, h)
        if path in ("/healthz", "/readyz", "/livez"):
            return 200, "ok"
        for base in {r.base_path for r in self.resources()}:
            if path == base:
                return 200, self._resource_list(self.resources(), base)
            if path.startswith(base + "/"):
                return self._resource_request(h, req, base, path[len(base) + 1 :].split("/"))
        raise _KubeError(404, "the server could not find the requested resource")
