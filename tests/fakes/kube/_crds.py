"""CustomResourceDefinitions: the manifest helper, the resource a CRD defines, and its
structural schema (defaults, validation, unknown fields) enforced on writes."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from tests.fakes.kube._model import Obj, Resource


def crd_manifest(
    group: str,
    version: str,
    kind: str,
    plural: str,
    *,
    short_names: tuple[str, ...] = (),
    namespaced: bool = True,
    schema: Obj | None = None,
    annotations: dict[str, str] | None = None,
    printer_columns: list[tuple[str, str]] | None = None,
) -> Obj:
    """A minimal ``apiextensions.k8s.io/v1`` CustomResourceDefinition with a status subresource.

    ``schema`` is its ``openAPIV3Schema`` (default: anything goes). A structural schema is
    enforced on writes, as an API server does (see :func:`validate_structural`)."""
    names: Obj = {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                  "singular": kind.lower()}  # fmt: skip
    if short_names:
        names["shortNames"] = list(short_names)
    open_schema: Obj = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    metadata: Obj = {"name": f"{plural}.{group}"}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": group,
            "names": names,
            "scope": "Namespaced" if namespaced else "Cluster",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": copy.deepcopy(schema or open_schema)},
                    "additionalPrinterColumns": [
                        {"name": n, "type": "string", "jsonPath": j}
                        for n, j in printer_columns or []
                    ],
                }
            ],
        },
    }  # fmt: skip


def _crd_resource(crd: Obj) -> Resource | None:
    """The resource a CRD defines (its storage version), or None when it is malformed."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    if not versions or not names.get("plural") or not names.get("kind"):
        return None
    version = next((v for v in versions if v.get("storage")), versions[0])
    return Resource(
        group=str(spec.get("group") or ""),
        version=str(version["name"]),
        plural=str(names["plural"]),
        singular=str(names.get("singular") or names["kind"].lower()),
        kind=str(names["kind"]),
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        status_subresource="status" in (version.get("subresources") or {}),
        printer_columns=tuple(
            (str(c["name"]), str(c["jsonPath"]))
            for c in version.get("additionalPrinterColumns") or []
            if c.get("name") and c.get("jsonPath") and c["name"] != "Age"
        ),
    )


def _established(crd: Obj) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _crd_schema(crd: Obj, version: str) -> Obj | None:
    """The structural schema of ``version`` of a CRD; None when it takes anything."""
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if entry.get("name") == version:
            schema = (entry.get("schema") or {}).get("openAPIV3Schema")
            if not schema or schema.get("x-kubernetes-preserve-unknown-fields"):
                return None
            return dict(schema)
    return None


_JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}
_TYPE_NAMES: dict[type, str] = {dict: "object", list: "array", str: "string"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return _TYPE_NAMES.get(type(value), "unknown")


def _type_ok(wanted: str, value: Any) -> bool:
    if wanted == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if wanted == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = _JSON_TYPES.get(wanted)
    return expected is None or isinstance(value, expected)


def validate_structural(schema: Obj, value: Any, path: str = "") -> tuple[list[str], list[str]]:
    """Check ``value`` against an OpenAPI v3 structural schema as an API server does, filling
    in defaults in place (before validation, as the server defaults first).

    Returns:
        The field errors (``spec.cluster.type: Unsupported value: ...``) and the paths of
        fields the schema does not declare (``.spec.foo``).
    """
    errors: list[str] = []
    unknown: list[str] = []
    _walk(schema, value, path, errors, unknown)
    return errors, unknown


def _walk(schema: Obj, value: Any, path: str, errors: list[str], unknown: list[str]) -> None:
    shown = path or "<root>"
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok("integer", value)):
            errors.append(f"{shown}: Invalid value: {json.dumps(value)}: must be an integer or "
                          "a string")  # fmt: skip
        return
    wanted = schema.get("type")
    if wanted and not _type_ok(wanted, value):
        got = _json_type(value)
        errors.append(f'{shown}: Invalid value: "{got}": {shown} in body must be of type '
                      f'{wanted}: "{got}"')  # fmt: skip
        return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(v) for v in schema["enum"])
        errors.append(f"{shown}: Unsupported value: {json.dumps(value)}: supported values: "
                      f"{allowed}")  # fmt: skip
    if isinstance(value, str):
        pattern = schema.get("pattern")
        if pattern is not None and not re.search(pattern, value):
            errors.append(f"{shown}: Invalid value: {json.dumps(value)}: {shown} in body "
                          f"should match '{pattern}'")  # fmt: skip
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{shown}: Invalid value: {json.dumps(value)}: {shown} in body should "
                          f"be at least {schema['minLength']} chars long")  # fmt: skip
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{shown}: Too long: may not be more than {schema['maxLength']} bytes")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{shown}: Invalid value: {len(value)}: {shown} in body should have at "
                          f"least {schema['minItems']} items")  # fmt: skip
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                _walk(items, item, f"{path}[{index}]", errors, unknown)
    if isinstance(value, dict):
        _walk_object(schema, value, path, errors, unknown)


def _walk_object(schema: Obj, value: Obj, path: str, errors: list[str], unknown: list[str]) -> None:
    if path == "metadata":
        return  # ObjectMeta is the server's own, not the CRD's
    properties: Obj = schema.get("properties") or {}
    for name, sub in properties.items():
        if name not in value and "default" in sub:
            value[name] = copy.deepcopy(sub["default"])
    for name in schema.get("required") or []:
        if name not in value:
            errors.append(f"{path + '.' if path else ''}{name}: Required value")
    extra = schema.get("additionalProperties")
    open_ended = schema.get("x-kubernetes-preserve-unknown-fields") or (
        not properties and extra is None
    )
    for name, item in value.items():
        where = f"{path}.{name}" if path else name
        if name in properties:
            _walk(properties[name], item, where, errors, unknown)
        elif isinstance(extra, dict):
            _walk(extra, item, where, errors, unknown)
        elif not open_ended:
            unknown.append("." + where)


def _drop(obj: Any, path: str) -> None:
    """Remove the field at ``path`` (``.spec.a[0].b``) from ``obj``."""
    steps = [int(i) if i else k for k, i in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path)]
    for step in steps[:-1]:
        obj = obj[step]
    del obj[steps[-1]]
