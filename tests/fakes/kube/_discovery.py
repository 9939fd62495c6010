"""Discovery and OpenAPI: ``/version``, ``/api``, ``/apis``, the resource lists, and the
``/openapi/v3`` documents declaring ``fieldValidation``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.kube._base import _State
from tests.fakes.kube._model import Obj, Resource, _KubeError

if TYPE_CHECKING:
    from tests.fakes.kube._server import _Handler


_ALL_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class _Discovery(_State):
    """``/version``, ``/api``, ``/apis`` and ``/openapi/v3``, from the served resources."""

    def _static(self, path: str, h: _Handler) -> Any:
        if path == "/version":
            return {
                "major": "1",
                "minor": "32",
                "gitVersion": "v1.32.0",
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2024-12-11T00:00:00Z",
                "goVersion": "go1.23.3",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.split("//")[1]}
                ],
            }
        if path == "/apis":
            groups = []
            for gv in dict.fromkeys(r.group_version for r in self.resources() if r.group):
                group, version = gv.split("/")
                entry = {"groupVersion": gv, "version": version}
                groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if path == "/openapi/v3":
            return {
                "paths": {
                    base.lstrip("/"): {"serverRelativeURL": f"/openapi/v3{base}?hash=FAKE"}
                    for base in dict.fromkeys(r.base_path for r in self.resources())
                }
            }
        if path.startswith("/openapi/v3/"):
            base = path[len("/openapi/v3") :]
            doc = self._openapi_doc(self.resources(), base)
            if doc is not None:
                return doc
        raise _KubeError(404, "the server could not find the requested resource")

    @staticmethod
    def _resource_list(served: list[Resource], base: str) -> Obj:
        resources = []
        gv = ""
        for r in served:
            if r.base_path != base:
                continue
            gv = r.group_version
            entry: Obj = {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": _ALL_VERBS,
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            resources.append(entry)
            if r.status_subresource:
                resources.append(
                    {
                        "name": f"{r.plural}/status",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }

    @staticmethod
    def _openapi_doc(served: list[Resource], base: str) -> Obj | None:
        paths: Obj = {}
        found = False
        for r in served:
            if r.base_path != base:
                continue
            found = True
            gvk = {"group": r.group, "version": r.version, "kind": r.kind}
            item = (
                f"{base}/namespaces/{{namespace}}/{r.plural}/{{name}}"
                if r.namespaced
                else f"{base}/{r.plural}/{{name}}"
            )
            params = [
                {"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                for n in ("dryRun", "fieldManager", "fieldValidation", "force")
            ]
            op = {
                "operationId": f"patch{r.kind}",
                "parameters": params,
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"description": "OK"}, "201": {"description": "Created"}},
            }
            paths[item] = {"patch": op}
        if not found:
            return None
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": {}},
        }
