"""Requests on objects: get, list, watch, create, update, delete, and patches (server-side
apply, merge and strategic merge), JSON, YAML or protobuf bodies, ``dryRun``."""

from __future__ import annotations

import copy
import secrets as _secrets
from typing import TYPE_CHECKING, Any

import yaml

from tests.fakes.kube._model import Key, Obj, RecordedRequest, Resource, _KubeError, _not_found
from tests.fakes.kube._protobuf import _decode_protobuf
from tests.fakes.kube._storage import _Storage
from tests.fakes.kube._tables import _table, _wants_table
from tests.fakes.kube._watch import _ListWatch

if TYPE_CHECKING:
    from tests.fakes.kube._server import _Handler


def merge_patch(target: Any, patch: Any, *, strategic: bool = False) -> Any:
    """RFC 7386 JSON merge patch; ``strategic`` also merges lists of named dicts by name."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: Obj = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if strategic and k.startswith("$"):
            continue
        if v is None:
            result.pop(k, None)
        elif (
            strategic
            and isinstance(v, list)
            and isinstance(result.get(k), list)
            and all(isinstance(i, dict) and "name" in i for i in v + result[k])
        ):
            merged = {i["name"]: i for i in result[k]}
            for item in v:
                if item.get("$patch") == "delete":
                    merged.pop(item["name"], None)
                else:
                    merged[item["name"]] = merge_patch(
                        merged.get(item["name"]), item, strategic=True
                    )
            result[k] = list(merged.values())
        else:
            result[k] = merge_patch(result.get(k), v, strategic=strategic)
    return result


def _apply_merge(target: Any, applied: Any) -> Any:
    """Server-side apply, approximated: recursive dict merge, lists and scalars replaced."""
    if isinstance(target, dict) and isinstance(applied, dict):
        result = copy.deepcopy(target)
        for k, v in applied.items():
            result[k] = _apply_merge(result.get(k), v)
        return result
    return copy.deepcopy(applied)


def _validation(req: RecordedRequest) -> str:
    """The request's ``fieldValidation`` (the server's default for a request without it: Warn)."""
    return req.query.get("fieldValidation") or "Warn"


class _ObjectsAPI(_Storage, _ListWatch):
    """Requests under a served resource's path, routed by verb."""

    def _resource_request(
        self, h: _Handler, req: RecordedRequest, base: str, segs: list[str]
    ) -> tuple[int, Any] | None:
        ns: str | None = None
        inner = self._served(base, segs[2]) if len(segs) >= 3 else None
        if segs[0] == "namespaces" and inner is not None and inner.namespaced:
            ns, segs = segs[1], segs[2:]
        res = self._served(base, segs[0])
        if res is None or len(segs) > 3:
            raise _KubeError(404, "the server could not find the requested resource")
        name = segs[1] if len(segs) > 1 else None
        sub = segs[2] if len(segs) > 2 else None
        if sub is not None and not (sub == "status" and res.status_subresource):
            raise _KubeError(404, "the server could not find the requested resource")
        if res.namespaced and name is not None and ns is None:
            raise _KubeError(404, "the server could not find the requested resource")
        q, method = req.query, req.method
        if name is None:
            if method in ("GET", "HEAD"):
                if q.get("watch") in ("true", "1"):
                    self._watch(h, res, ns, q)
                    return None
                listed = self._list(res, ns, q)
                if _wants_table(req):
                    return 200, _table(res, listed["items"], listed["metadata"]["resourceVersion"])
                return 200, listed
            if method == "POST":
                return self._create(res, ns, req)
            raise _KubeError(405, f"the server does not allow this method on {res.plural}")
        key = (res.group_version, res.plural, ns, name)
        with self._lock:
            existing = self.objects.get(key)
            if method in ("GET", "HEAD"):
                if existing is None:
                    raise _not_found(res, name)
                if _wants_table(req):
                    return 200, _table(res, [existing], existing["metadata"]["resourceVersion"])
                return 200, copy.deepcopy(existing)
            if method == "DELETE":
                if existing is None:
                    raise _not_found(res, name)
                if q.get("dryRun") == "All":
                    return 200, copy.deepcopy(existing)
                return 200, self._remove(key)
            if method == "PUT":
                return self._update(res, key, existing, req, status_write=sub == "status")
            if method == "PATCH":
                return self._patch(res, key, existing, req, status_write=sub == "status")
        raise _KubeError(405, f"the server does not allow this method on {res.plural}")

    def _decode(self, req: RecordedRequest) -> Obj:
        if req.content_type == "application/vnd.kubernetes.protobuf":
            try:
                return _decode_protobuf(req.body)
            except (ValueError, IndexError, AssertionError, UnicodeDecodeError) as e:
                raise _KubeError(415, f"the fake cannot decode this protobuf body: {e}") from e
        if "protobuf" in req.content_type:
            raise _KubeError(
                415,
                f"the body of the request was in an unknown format - "
                f"accepted media types include: application/json, "
                f"application/yaml (got {req.content_type})",
            )
        try:
            data = req.json()
        except (ValueError, yaml.YAMLError) as e:
            raise _KubeError(400, f"error decoding request body: {e}") from e
        if not isinstance(data, dict):
            raise _KubeError(400, "the request body must be an object")
        return data

    def _check_target(self, res: Resource, obj: Obj, ns: str | None, name: str | None) -> None:
        meta = obj.get("metadata") or {}
        if obj.get("kind") not in (None, res.kind) or obj.get("apiVersion") not in (
            None,
            res.group_version,
        ):
            raise _KubeError(
                400,
                f"the API version in the data ({obj.get('apiVersion')}) "
                f"does not match the expected API version "
                f"({res.group_version})",
            )
        if res.namespaced and meta.get("namespace") not in (None, "", ns):
            raise _KubeError(
                400,
                "the namespace of the provided object does not match the "
                "namespace sent on the request",
            )
        if name is not None and meta.get("name") not in (None, name):
            raise _KubeError(400, "the name of the object does not match the name on the URL")

    def _require_namespace(self, res: Resource, ns: str | None) -> None:
        if res.namespaced and ("v1", "namespaces", None, ns) not in self.objects:
            raise _KubeError(
                404, f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
            )

    def _create(self, res: Resource, ns: str | None, req: RecordedRequest) -> tuple[int, Obj]:
        obj = self._decode(req)
        self._check_target(res, obj, ns, None)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _KubeError(422, f'{res.kind} "" is invalid: metadata.name: Required value')
            meta["name"] = meta["generateName"] + _secrets.token_hex(3)[:5]
        if res.namespaced and ns is None:
            raise _KubeError(404, "the server could not find the requested resource")
        key = (res.group_version, res.plural, ns, meta["name"])
        with self._lock:
            self._require_namespace(res, ns)
            if key in self.objects:
                what = f"{res.plural}.{res.group}" if res.group else res.plural
                raise _KubeError(
                    409,
                    f'{what} "{meta["name"]}" already exists',
                    {"name": meta["name"], "group": res.group, "kind": res.plural},
                    reason="AlreadyExists",
                )
            self._add_managed(obj, req, "Update")
            return 201, self._store(res, key, obj, None, dry_run=req.query.get("dryRun") == "All",
                                    validation=_validation(req))  # fmt: skip

    def _update(
        self,
        res: Resource,
        key: Key,
        existing: Obj | None,
        req: RecordedRequest,
        *,
        status_write: bool,
    ) -> tuple[int, Obj]:
        obj = self._decode(req)
        self._check_target(res, obj, key[2], key[3])
        if existing is None:
            raise _not_found(res, key[3])
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv and rv != existing["metadata"]["resourceVersion"]:
            what = f"{res.plural}.{res.group}" if res.group else res.plural
            raise _KubeError(
                409,
                f'Operation cannot be fulfilled on {what} "{key[3]}": the '
                "object has been modified; please apply your changes to the "
                "latest version and try again",
                {"name": key[3], "group": res.group, "kind": res.plural},
            )
        if status_write:
            new = copy.deepcopy(existing)
            new["status"] = obj.get("status")
            obj = new
        self._add_managed(obj, req, "Update", existing)
        return 200, self._store(
            res,
            key,
            obj,
            existing,
            dry_run=req.query.get("dryRun") == "All",
            status_write=status_write,
            validation=_validation(req),
        )

    def _patch(
        self,
        res: Resource,
        key: Key,
        existing: Obj | None,
        req: RecordedRequest,
        *,
        status_write: bool,
    ) -> tuple[int, Obj]:
        ct = req.content_type
        patch = self._decode(req)
        dry_run = req.query.get("dryRun") == "All"
        if ct == "application/apply-patch+yaml":
            self._check_target(res, patch, key[2], key[3])
            if not req.query.get("fieldManager"):
                raise _KubeError(
                    422,
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                    "Required value: is required for apply patch",
                )
            if existing is None:
                self._require_namespace(res, key[2])
                obj = copy.deepcopy(patch)
                self._add_managed(obj, req, "Apply")
                return 201, self._store(
                    res, key, obj, None, dry_run=dry_run, status_write=status_write,
                    validation=_validation(req),
                )  # fmt: skip
            merged = _apply_merge(existing, patch)
            self._add_managed(merged, req, "Apply", existing)
            return 200, self._store(
                res, key, merged, existing, dry_run=dry_run, status_write=status_write,
                validation=_validation(req),
            )  # fmt: skip
        if ct in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if existing is None:
                raise _not_found(res, key[3])
            merged = merge_patch(
                existing, patch, strategic=ct == "application/strategic-merge-patch+json"
            )
            self._add_managed(merged, req, "Update", existing)
            return 200, self._store(
                res, key, merged, existing, dry_run=dry_run, status_write=status_write,
                validation=_validation(req),
            )  # fmt: skip
        raise _KubeError(415, f"the server does not support patch content type {ct!r}")

    @classmethod
    def _add_managed(
        cls, obj: Obj, req: RecordedRequest, operation: str, existing: Obj | None = None
    ) -> None:
        manager = (
            req.query.get("fieldManager")
            or (req.headers.get("User-Agent", "unknown").split("/")[0])
        )
        cls._managed(obj, manager, operation, existing)
