"""The state every mixin of ``FakeKube`` shares, finding the resources it serves, and
reading objects (``get``, ``list_objects``)."""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable

from tests.fakes.kube._crds import _crd_resource, _established
from tests.fakes.kube._model import _CRD, RESOURCES, Key, Obj, Resource, _Event


class _State:
    """The state the mixins share, declared for them; ``FakeKube.__init__`` sets it.

    Each concern (discovery, storage, list and watch, object requests, controllers) is a
    mixin on this class, and ``FakeKube`` composes them.
    """

    objects: dict[Key, Obj]
    url: str
    auto_ready: bool
    crd_establish_delay: float
    controller_errors: list[str]
    _lock: threading.RLock
    _cond: threading.Condition
    _rv: int
    _events: list[_Event]
    _event_rvs: list[int]
    _stopping: threading.Event
    _timers: list[threading.Timer]
    _controllers: list[Callable[[str, Obj], None]]
    _changes: queue.Queue[tuple[str, Obj] | None]
    _unhandled: int

    def resources(self, *, served_only: bool = True) -> list[Resource]:
        """The built-in resources and those of the CRDs (established ones when ``served_only``)."""
        with self._lock:
            crd_key = (_CRD.group_version, _CRD.plural)
            crds = [o for k, o in self.objects.items() if k[:2] == crd_key]
        defined = [
            r
            for crd in sorted(crds, key=lambda o: o["metadata"]["name"])
            if (not served_only or _established(crd)) and (r := _crd_resource(crd)) is not None
        ]
        return [*RESOURCES, *defined]

    def resource_for(self, kind: str) -> Resource:
        """The resource ``kind`` names (Kind, plural, singular or short name; any CRD's too)."""
        k = kind.lower()
        for r in self.resources(served_only=False):
            names = {r.kind.lower(), r.plural, r.singular, *r.short_names}
            if r.group:
                names |= {f"{r.plural}.{r.group}", f"{r.kind.lower()}.{r.group}"}
            if k in names:
                return r
        raise KeyError(f"unknown kind {kind!r}")

    def _served(self, base: str, plural: str) -> Resource | None:
        return next(
            (r for r in self.resources() if (r.base_path, r.plural) == (base, plural)), None
        )

    def _key(self, res: Resource, name: str, namespace: str | None) -> Key:
        ns = (namespace or "default") if res.namespaced else None
        return (res.group_version, res.plural, ns, name)

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        res = self.resource_for(kind)
        with self._lock:
            obj = self.objects.get(self._key(res, name, namespace))
            return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, kind: str, namespace: str | None = None) -> list[Obj]:
        res = self.resource_for(kind)
        with self._lock:
            items = sorted(self.objects.items(), key=lambda kv: str(kv[0]))
            return [
                copy.deepcopy(o)
                for (gv, plural, ns, _), o in items
                if gv == res.group_version
                and plural == res.plural
                and (namespace is None or ns == namespace)
            ]
