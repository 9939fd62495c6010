"""Controllers: callbacks run on a watch thread of their own, and the in-process writes
they make (server-side apply, status subresource, conditions)."""

from __future__ import annotations

import copy
import time
import traceback
from collections.abc import Callable
from typing import Any

from tests.fakes.kube._model import Obj, _now
from tests.fakes.kube._objects import _apply_merge
from tests.fakes.kube._storage import _Storage


class _Controllers(_Storage):
    """``add_controller``, ``settle``, and what a controller writes with."""

    def add_controller(self, callback: Callable[[str, Obj], None]) -> None:
        """Run ``callback(event_type, obj)`` for every change stored from now on (``ADDED``,
        ``MODIFIED``, ``DELETED``), as a controller's watch sees it: after the write has been
        answered, one change at a time, on one thread shared by all controllers. A callback
        writes through :meth:`apply`, :meth:`set_status` and :meth:`set_condition`; what it
        raises is kept in :attr:`controller_errors`."""
        with self._lock:
            self._controllers.append(callback)

    def _run_controllers(self) -> None:
        while True:
            change = self._changes.get()
            if change is None:
                return
            try:
                for callback in list(self._controllers):
                    if self._stopping.is_set():
                        break
                    try:
                        callback(*change)
                    except Exception:
                        self.controller_errors.append(traceback.format_exc())
            finally:
                with self._cond:
                    self._unhandled -= 1
                    self._cond.notify_all()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the controllers have handled every change, theirs included.

        Raises:
            TimeoutError: They are still busy after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._unhandled > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"controllers still busy after {timeout:g}s")
                self._cond.wait(remaining)

    def apply(self, obj: Obj, *, manager: str) -> Obj:
        """Server-side apply ``obj`` as field manager ``manager`` (what a controller does):
        created when missing, merged when present; a no-op when nothing changes."""
        res = self.resource_for(obj["kind"])
        meta = obj.get("metadata") or {}
        key = self._key(res, meta["name"], meta.get("namespace"))
        with self._lock:
            existing = self.objects.get(key)
            merged = copy.deepcopy(obj) if existing is None else _apply_merge(existing, obj)
            self._managed(merged, manager, "Apply", existing)
            return self._store(res, key, merged, existing, validation="Strict")

    def set_status(self, kind: str, name: str, namespace: str | None, status: Obj) -> Obj:
        """Replace an object's status, as a write to its status subresource."""
        res = self.resource_for(kind)
        with self._lock:
            key = self._key(res, name, namespace)
            existing = self.objects.get(key)
            if existing is None:
                raise KeyError(f"no {kind} {namespace}/{name}")
            obj = copy.deepcopy(existing)
            obj["status"] = copy.deepcopy(status)
            return self._store(res, key, obj, existing, status_write=True)

    def set_condition(
        self,
        kind: str,
        name: str,
        namespace: str | None,
        *,
        type: str = "Ready",
        status: str = "True",
        reason: str = "Succeeded",
        message: str = "",
        **fields: Any,
    ) -> Obj:
        """Set one condition (observed at the object's current generation) and, optionally,
        other status fields; the other conditions stay. What a test uses to make an object
        Ready, or not ready with a message."""
        current = self.get(kind, name, namespace)
        if current is None:
            raise KeyError(f"no {kind} {namespace}/{name}")
        generation = current["metadata"].get("generation", 1)
        new_status = copy.deepcopy(current.get("status") or {})
        conditions = [c for c in new_status.get("conditions") or [] if c.get("type") != type]
        previous = next((c for c in new_status.get("conditions") or [] if c.get("type") == type),
                        None)  # fmt: skip
        since = (previous or {}).get("lastTransitionTime") if (
            previous and previous.get("status") == status) else _now()  # fmt: skip
        conditions.insert(0, {"type": type, "status": status, "reason": reason,
                              "message": message, "observedGeneration": generation,
                              "lastTransitionTime": since})  # fmt: skip
        new_status["conditions"] = conditions
        new_status.update(copy.deepcopy(fields))
        return self.set_status(kind, name, namespace, new_status)
