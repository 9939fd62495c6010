"""The fake's data: resources, recorded requests, watch events, and API errors as Status."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Obj = dict[str, Any]
Key = tuple[str, str, str | None, str]

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status_subresource: bool = False
    #: A CRD's additionalPrinterColumns: (name, JSONPath), for ``kubectl get``.
    printer_columns: tuple[tuple[str, str], ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def base_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",)),
    Resource("", "v1", "secrets", "secret", "Secret", True),
    Resource("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
    Resource("", "v1", "services", "service", "Service", True, ("svc",)),
    Resource("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",)),
    Resource("apps", "v1", "deployments", "deployment", "Deployment", True, ("deploy",), True),
    Resource(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
        True,
    ),
)
_CRD = RESOURCES[-1]


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0  # the response code the fake answered

    def json(self) -> Any:
        """The body parsed as JSON, or YAML when it is not JSON; None when empty."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return yaml.safe_load(self.body)


@dataclass
class _Event:
    rv: int
    type: str
    key: Key
    obj: Obj


@dataclass
class _FailRule:
    method: str
    path_regex: re.Pattern[str]
    status: int
    times: int


class _KubeError(Exception):
    def __init__(
        self, code: int, message: str, details: Obj | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.reason = reason


def _status(code: int, message: str, details: Obj | None = None, reason: str | None = None) -> Obj:
    st: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown" if code < 500 else "InternalError"),
        "code": code,
    }
    if details is not None:
        st["details"] = details
    return st


def _not_found(res: Resource, name: str) -> _KubeError:
    what = f"{res.plural}.{res.group}" if res.group else res.plural
    return _KubeError(
        404, f'{what} "{name}" not found', {"name": name, "group": res.group, "kind": res.plural}
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
