"""Storage: server defaults, generations, status subresources, CRD status and schema
checks, managed fields, resource versions and the events every change emits."""

from __future__ import annotations

import base64
import copy
import threading
import uuid

from tests.fakes.kube._base import _State
from tests.fakes.kube._crds import _crd_resource, _crd_schema, _drop, validate_structural
from tests.fakes.kube._model import _CRD, RESOURCES, Key, Obj, Resource, _Event, _KubeError, _now


class _Storage(_State):
    """Storing, removing and defaulting objects; every write ends in ``_store``."""

    def _commit(self, key: Key, obj: Obj, event_type: str) -> Obj:
        self._rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        if event_type == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        self._events.append(_Event(self._rv, event_type, key, copy.deepcopy(obj)))
        self._event_rvs.append(self._rv)
        if self._controllers:
            self._unhandled += 1
            self._changes.put((event_type, copy.deepcopy(obj)))
        self._cond.notify_all()
        return copy.deepcopy(obj)

    def _remove(self, key: Key) -> Obj:
        obj = copy.deepcopy(self.objects[key])
        if key[1] == "namespaces":
            for k in [k for k in self.objects if k[2] == key[3]]:
                self._commit(k, copy.deepcopy(self.objects[k]), "DELETED")
        if key[:2] == (_CRD.group_version, _CRD.plural):
            defined = _crd_resource(obj)
            for k in [k for k in self.objects if defined and k[:2] ==
                      (defined.group_version, defined.plural)]:  # fmt: skip
                self._commit(k, copy.deepcopy(self.objects[k]), "DELETED")
        return self._commit(key, obj, "DELETED")

    def _crd_status(self, obj: Obj) -> Obj:
        """A new CRD's status: names accepted; established now, or after the delay."""
        now = _now()
        established = "True" if self.crd_establish_delay <= 0 else "False"
        spec = obj.get("spec") or {}
        stored = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
        return {
            "acceptedNames": copy.deepcopy(spec.get("names") or {}),
            "storedVersions": stored,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": established, "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
        }  # fmt: skip

    def _establish_later(self, key: Key) -> None:
        def establish() -> None:
            with self._lock:
                crd = self.objects.get(key)
                if crd is None or self._stopping.is_set():
                    return
                crd = copy.deepcopy(crd)
                for condition in crd["status"]["conditions"]:
                    if condition["type"] == "Established":
                        condition.update(status="True", lastTransitionTime=_now())
                self._commit(key, crd, "MODIFIED")

        timer = threading.Timer(self.crd_establish_delay, establish)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    @staticmethod
    def _deployment_status(obj: Obj, *, ready: bool) -> Obj:
        spec = obj.get("spec") or {}
        replicas = spec.get("replicas", 1)
        gen = obj["metadata"].get("generation", 1)
        now = _now()
        if ready:
            return {
                "observedGeneration": gen,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True",
                        "reason": "MinimumReplicasAvailable",
                        "lastUpdateTime": now,
                        "lastTransitionTime": now,
                    },
                    {
                        "type": "Progressing",
                        "status": "True",
                        "reason": "NewReplicaSetAvailable",
                        "lastUpdateTime": now,
                        "lastTransitionTime": now,
                    },
                ],
            }
        return {
            "observedGeneration": gen,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": 0,
            "availableReplicas": 0,
            "unavailableReplicas": replicas,
            "conditions": [
                {
                    "type": "Available",
                    "status": "False",
                    "reason": "MinimumReplicasUnavailable",
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "ReplicaSetUpdated",
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                },
            ],
        }

    def _validate_custom(self, res: Resource, key: Key, obj: Obj, *, strict: bool) -> None:
        """A custom resource against its CRD's structural schema: defaults filled in, unknown
        fields refused (strict) or dropped, invalid values a 422 naming each field."""
        if not res.group or any(r is res for r in RESOURCES):
            return
        crd = self.objects.get((_CRD.group_version, _CRD.plural, None, f"{res.plural}.{res.group}"))
        schema = _crd_schema(crd, res.version) if crd else None
        if schema is None:
            return
        status = obj.pop("status", None)
        errors, unknown = validate_structural(schema, obj)
        if status is not None:
            obj["status"] = status
        if unknown and strict:
            raise _KubeError(400, f".{unknown[0].lstrip('.')}: field not declared in schema",
                             reason="BadRequest")  # fmt: skip
        for path in unknown:
            _drop(obj, path)
        if errors:
            listed = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
            raise _KubeError(
                422,
                f'{res.kind}.{res.group} "{key[3]}" is invalid: {listed}',
                {"name": key[3], "group": res.group, "kind": res.kind,
                 "causes": [dict(zip(("field", "message"), e.split(": ", 1), strict=False))
                            for e in errors]},
            )  # fmt: skip

    def _store(
        self,
        res: Resource,
        key: Key,
        obj: Obj,
        existing: Obj | None,
        *,
        dry_run: bool = False,
        status_write: bool = False,
        validation: str | None = None,
    ) -> Obj:
        """Apply server defaults to ``obj`` and store it (create when ``existing`` is None).

        ``validation`` is the request's ``fieldValidation`` (``Strict``: an unknown field is an
        error; otherwise it is dropped); None (objects seeded by a test) skips the CRD's schema.
        """
        if validation is not None and not status_write:
            self._validate_custom(res, key, obj, strict=validation == "Strict")
        obj["apiVersion"] = res.group_version
        obj["kind"] = res.kind
        meta = obj.setdefault("metadata", {})
        meta["name"] = key[3]
        if res.namespaced:
            meta["namespace"] = key[2]
        else:
            meta.pop("namespace", None)
        if existing is not None:
            old_meta = existing["metadata"]
            for f in ("uid", "creationTimestamp"):
                meta[f] = old_meta[f]
            meta["generation"] = old_meta.get("generation", 1)
            if res.status_subresource and not status_write:
                if "status" in existing:
                    obj["status"] = copy.deepcopy(existing["status"])
                else:
                    obj.pop("status", None)
        else:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
            if res.status_subresource and not status_write:
                obj.pop("status", None)
        for f in ("resourceVersion", "selfLink", "deletionTimestamp"):
            meta.pop(f, None)
        if not meta.get("labels"):
            meta.pop("labels", None)
        if not meta.get("annotations"):
            meta.pop("annotations", None)
        if res.kind == "Secret":
            string_data = obj.pop("stringData", None) or {}
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            if not data:
                obj.pop("data", None)
            obj.setdefault("type", "Opaque")
        elif res.kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = key[3]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        elif res.kind == "Deployment":
            obj.setdefault("spec", {}).setdefault("replicas", 1)

        def content(o: Obj) -> Obj:
            return {k: v for k, v in o.items() if k not in ("metadata", "status")}

        if existing is not None and content(existing) != content(obj):
            meta["generation"] = meta["generation"] + 1
        if res.kind == "Deployment" and not status_write:
            if self.auto_ready:
                obj["status"] = self._deployment_status(obj, ready=True)
            elif existing is None or meta["generation"] != existing["metadata"].get("generation"):
                obj["status"] = self._deployment_status(obj, ready=False)
        new_crd = res is _CRD and existing is None and not status_write
        if new_crd:
            obj["status"] = self._crd_status(obj)

        if existing is not None:
            old = copy.deepcopy(existing)
            old["metadata"].pop("resourceVersion", None)
            for m in (old["metadata"], meta):
                for mf in m.get("managedFields") or []:
                    mf.pop("time", None)
            if old == obj:
                return copy.deepcopy(existing)  # no-op write: no new resourceVersion, no event
        for mf in meta.get("managedFields") or []:
            mf.setdefault("time", _now())
        if dry_run:
            out = copy.deepcopy(obj)
            out["metadata"]["resourceVersion"] = (
                (existing or {}).get("metadata", {}).get("resourceVersion", "0")
            )
            return out
        stored = self._commit(key, obj, "ADDED" if existing is None else "MODIFIED")
        if new_crd and self.crd_establish_delay > 0:
            self._establish_later(key)
        return stored

    @staticmethod
    def _managed(obj: Obj, manager: str, operation: str, existing: Obj | None = None) -> None:
        meta = obj.setdefault("metadata", {})
        fields = [
            mf
            for mf in ((existing or {}).get("metadata", {}).get("managedFields") or [])
            if not (mf.get("manager") == manager and mf.get("operation") == operation)
        ]
        fields.append(
            {
                "manager": manager,
                "operation": operation,
                "apiVersion": obj.get("apiVersion", ""),
                "fieldsType": "FieldsV1",
                "fieldsV1": {},
            }
        )
        meta["managedFields"] = fields
