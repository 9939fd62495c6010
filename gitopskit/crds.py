"""Schemas of custom resources: from CRD manifests, from schema catalogs, and Flux's own.

Where a custom resource's schema is looked for, first found wins:

1. CustomResourceDefinitions in the synth output itself (:meth:`CustomSchemas.lookup`).
2. CRD manifests of the project: the setting ``crds`` names files or folders (default: the
   project's ``crds/``).
3. Schema catalogs on disk: the setting ``schemas`` names directories in the layout that
   kubeconform, the datree CRDs-catalog and Flux's schema catalog share,
   ``{group}/{kind lowercased}_{version}.json``.
4. The schemas of Flux's own kinds that ship with gitopskit (``gitopskit/schemas/flux``, Flux
   2.9.4, the version gitopskit installs; see the NOTICE there).

A CRD's ``openAPIV3Schema`` is OpenAPI, not JSON Schema, with Kubernetes' extensions; it becomes
a JSON schema (draft 7) here (:func:`to_json_schema`): ``nullable``, OpenAPI's boolean
``exclusiveMinimum``/``exclusiveMaximum``, ``x-kubernetes-int-or-string`` (an integer or a
string), ``x-kubernetes-preserve-unknown-fields`` (fields not in the schema are kept: allowed),
``x-kubernetes-embedded-resource`` (an object with ``apiVersion``, ``kind`` and ``metadata``).
A CRD's schema never says ``additionalProperties: false``: the API server prunes (drops) fields
it does not know. Such a field is almost always a mistake, so the converted schema forbids them,
and the validator reports them as warnings (errors when strict), as ``kubectl apply
--validate=strict`` would refuse them. ``metadata`` is checked as Kubernetes' ObjectMeta.
Catalog schemas are JSON schemas already (their generators add ``additionalProperties: false``
themselves): they are read as they are, with the same extensions honoured.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitopskit.compiled import CompiledCache, code_key, schema_digest
from gitopskit.errors import ConfigError, ManifestError
from gitopskit.manifests import MANIFEST_SUFFIXES, Document, load_file
from gitopskit.validate import Schema, SchemaValidator

CRD_API_VERSIONS = ("apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1")
SHIPPED = Path(__file__).resolve().parent / "schemas" / "flux"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

_KEPT = (
    "type",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "required",
    "const",
)
_JUNCTORS = ("allOf", "anyOf", "oneOf")


def shipped_flux_version() -> str:
    """The Flux version whose schemas ship with gitopskit."""
    data = json.loads((SHIPPED / "provenance.json").read_text())
    return str(data["flux"])


def is_crd(data: Any) -> bool:
    """Whether a document is a CustomResourceDefinition."""
    return (
        isinstance(data, dict)
        and data.get("kind") == "CustomResourceDefinition"
        and data.get("apiVersion") in CRD_API_VERSIONS
    )


def crd_schemas(crd: dict[str, Any]) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    """``((apiVersion, kind), openAPIV3Schema)`` for every served version of a CRD (v1, or the
    v1beta1 of older manifests). A version without a schema accepts anything."""
    spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    assert isinstance(names, dict)
    group, kind = spec.get("group"), names.get("kind")
    if not isinstance(group, str) or not isinstance(kind, str):
        return
    common = (spec.get("validation") or {}).get("openAPIV3Schema")  # v1beta1
    versions = spec.get("versions") or ([{"name": spec["version"]}] if spec.get("version") else [])
    for version in versions:
        if not isinstance(version, dict) or version.get("served", True) is False:
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or common
        if not isinstance(schema, dict):
            schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        yield (f"{group}/{version.get('name')}", kind), schema


def to_json_schema(
    node: dict[str, Any], *, forbid_unknown: bool, object_meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A custom resource's OpenAPI schema as a JSON schema (draft 7).

    Args:
        node: The root ``openAPIV3Schema`` (or a catalog's schema).
        forbid_unknown: Add ``additionalProperties: false`` to every object that neither
            declares ``additionalProperties`` nor preserves unknown fields (a CRD's schema).
        object_meta: The JSON schema ``metadata`` is checked against (ObjectMeta, with its
            ``$defs``); None leaves ``metadata`` as the schema says.
    """
    root = _convert(node, forbid_unknown, structural=True)
    properties = root.setdefault("properties", {})
    for field in ("apiVersion", "kind"):
        properties.setdefault(field, {"type": "string"})
    if object_meta is not None:
        properties["metadata"] = {"$ref": f"#/$defs/{OBJECT_META}"}
        root["$defs"] = object_meta["$defs"]
    else:
        properties.setdefault("metadata", {"type": "object"})
    return root


def _convert(node: Any, forbid_unknown: bool, *, structural: bool) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    out: dict[str, Any] = {k: copy.deepcopy(node[k]) for k in _KEPT if k in node}
    for bound in ("Minimum", "Maximum"):
        exclusive = node.get(f"exclusive{bound}")
        if exclusive is True and bound.lower() in node:  # OpenAPI 3.0's boolean form
            out[f"exclusive{bound}"] = out.pop(bound.lower())
        elif isinstance(exclusive, int | float) and not isinstance(exclusive, bool):
            out[f"exclusive{bound}"] = exclusive
    if node.get("x-kubernetes-int-or-string") is True:
        out["type"] = ["integer", "string"]
    if node.get("nullable") is True:
        types = out.get("type")
        if isinstance(types, str):
            out["type"] = [types, "null"]
        elif isinstance(types, list) and "null" not in types:
            out["type"] = [*types, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    properties = node.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {
            str(k): _convert(v, forbid_unknown, structural=structural)
            for k, v in properties.items()
        }
    patterns = node.get("patternProperties")
    if isinstance(patterns, dict):
        out["patternProperties"] = {
            str(k): _convert(v, forbid_unknown, structural=structural) for k, v in patterns.items()
        }
    items = node.get("items")
    if isinstance(items, dict):
        out["items"] = _convert(items, forbid_unknown, structural=structural)
    elif isinstance(items, list):
        out["items"] = [_convert(i, forbid_unknown, structural=structural) for i in items]
    extra = node.get("additionalProperties")
    if isinstance(extra, bool):
        out["additionalProperties"] = extra
    elif isinstance(extra, dict):
        out["additionalProperties"] = _convert(extra, forbid_unknown, structural=structural)
    for junctor in _JUNCTORS:
        if isinstance(node.get(junctor), list):
            out[junctor] = [_convert(s, forbid_unknown, structural=False) for s in node[junctor]]
    if isinstance(node.get("not"), dict):
        out["not"] = _convert(node["not"], forbid_unknown, structural=False)
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if node.get("x-kubernetes-embedded-resource") is True:
        embedded = out.setdefault("properties", {})
        embedded.setdefault("apiVersion", {"type": "string"})
        embedded.setdefault("kind", {"type": "string"})
        embedded.setdefault("metadata", {"type": "object"})
        out["required"] = sorted({*out.get("required", []), "apiVersion", "kind"})
    if preserve and out.get("additionalProperties") is False:
        del out["additionalProperties"]
    elif not preserve and forbid_unknown and structural and _is_object(out):
        out.setdefault("additionalProperties", False)
    return out


def _is_object(schema: dict[str, Any]) -> bool:
    types = schema.get("type")
    return types == "object" or (isinstance(types, list) and "object" in types)


@dataclass(frozen=True)
class Found:
    """A custom resource's schema as found, before it is compiled.

    Attributes:
        source: Where it was found, for messages.
        schema: The OpenAPI (CRD) or JSON (catalog) schema.
        crd: It is a CRD's schema (unknown fields are forbidden by conversion).
    """

    source: str
    schema: dict[str, Any]
    crd: bool


class CustomSchemas:
    """Finds, converts and compiles custom resources' schemas, first found wins.

    Args:
        crd_paths: CRD manifests: files, or folders searched for ``*.yaml``/``*.yml``/``*.json``.
        catalogs: Schema-catalog directories.
        cache: Where compiled checks are kept.
        object_meta: Builds the ObjectMeta JSON schema (with ``$defs``) of the target version.
        shown: How messages name a path (relative to the project, say).
        shipped: Use the schemas of Flux's kinds that ship with gitopskit.

    Raises:
        ConfigError: A named path does not exist.
    """

    def __init__(
        self,
        crd_paths: Iterable[Path],
        catalogs: Iterable[Path],
        cache: CompiledCache,
        object_meta: Callable[[], dict[str, Any]],
        *,
        shown: Callable[[Path], str] = str,
        shipped: bool = True,
    ) -> None:
        self._crd_paths = list(crd_paths)
        self._catalogs = list(catalogs)
        self._cache = cache
        self._object_meta = object_meta
        self._meta: dict[str, Any] | None = None
        self._shown = shown
        self._shipped = shipped
        self._from_files: dict[tuple[str, str], Found] | None = None
        self._compiled: dict[tuple[str, str, str], Schema] = {}
        for path in [*self._crd_paths, *self._catalogs]:
            if not path.exists():
                raise ConfigError(f"{shown(path)} does not exist (named by setting crds/schemas)")

    def lookup(self, documents: Sequence[Document]) -> Callable[[str, str], Schema | None]:
        """Finds schemas for one validation run: the CRDs among ``documents`` first."""
        overlay = output_crds(documents)
        return lambda api_version, kind: self.find(api_version, kind, overlay)

    def find(
        self, api_version: str, kind: str, overlay: dict[tuple[str, str], Found] | None = None
    ) -> Schema | None:
        """The compiled schema of ``api_version``/``kind``, if any source has one.

        Args:
            api_version: The object's apiVersion.
            kind: Its kind.
            overlay: Schemas found first (the CRDs of the synth output).
        """
        key = (api_version, kind)
        found = (overlay or {}).get(key) or self._files().get(key) or self._catalog(*key)
        if found is None:
            return None
        label = f"{found.source} {api_version} {kind}"
        if (found.source, *key) not in self._compiled:
            self._compiled[(found.source, *key)] = self._compile(found, label)
        return self._compiled[(found.source, *key)]

    def _compile(self, found: Found, label: str) -> Schema:
        schema = to_json_schema(
            found.schema, forbid_unknown=found.crd, object_meta=self._metadata_schema()
        )
        check = self._cache.get(schema_digest(schema), lambda: schema, label)
        return Schema(found.source, check, lambda: schema, custom=True)

    def _metadata_schema(self) -> dict[str, Any]:
        if self._meta is None:
            self._meta = self._object_meta()
        return self._meta

    def _files(self) -> dict[tuple[str, str], Found]:
        if self._from_files is None:
            self._from_files = {}
            for path in self._crd_paths:
                for file in _manifests(path):
                    shown = self._shown(file)
                    for document in _load(file, shown):
                        for key, schema in crd_schemas(document.data):
                            self._from_files.setdefault(key, Found(shown, schema, True))
        return self._from_files

    def _catalog(self, api_version: str, kind: str) -> Found | None:
        group, _, version = api_version.rpartition("/")
        if not group:
            return None
        name = f"{kind.lower()}_{version}.json"
        places = [(d, False, self._shown(d)) for d in self._catalogs]
        if self._shipped:
            places.append((SHIPPED, True, f"Flux {shipped_flux_version()}"))
        for directory, raw_crd, source in places:
            path = directory / group / name
            if path.is_file():
                try:
                    schema = json.loads(path.read_bytes())
                except (OSError, ValueError) as error:
                    raise ConfigError(f"{self._shown(path)}: not a JSON schema: {error}") from None
                if not isinstance(schema, dict):
                    raise ConfigError(f"{self._shown(path)}: not a JSON schema")
                return Found(source, schema, raw_crd)
        return None


def output_crds(documents: Iterable[Document]) -> dict[tuple[str, str], Found]:
    """The custom resources' schemas that CRDs among ``documents`` define."""
    found: dict[tuple[str, str], Found] = {}
    for document in documents:
        if is_crd(document.data):
            for key, schema in crd_schemas(document.data):
                found.setdefault(key, Found(f"CRD in {document.file}", schema, True))
    return found


def _manifests(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    suffixes = (*MANIFEST_SUFFIXES, ".json")
    return sorted(p for p in path.rglob("*") if p.suffix in suffixes and p.is_file())


def _load(file: Path, shown: str) -> list[Document]:
    try:
        return load_file(file, shown)
    except ManifestError as error:
        raise ConfigError(f"CRD manifests: {error.message}") from None


def relative_to(base: Path) -> Callable[[Path], str]:
    """Shows paths relative to ``base`` when inside it."""

    def shown(path: Path) -> str:
        try:
            return os.path.relpath(path, base) if path.is_relative_to(base) else str(path)
        except ValueError:
            return str(path)

    return shown


def object_meta_schema(definitions: dict[str, Any]) -> dict[str, Any]:
    """ObjectMeta's JSON schema as ``{"$defs": …}``: its definition and those it refers to."""
    wanted, pending = {}, [OBJECT_META]
    while pending:
        name = pending.pop()
        if name in wanted or name not in definitions:
            continue
        wanted[name] = definitions[name]
        text = json.dumps(definitions[name])
        pending.extend(part.split('"')[0] for part in text.split('"#/$defs/')[1:])
    return {"$defs": wanted}


def make_validator(
    kubernetes_version: str | None = None,
    *,
    strict: bool = False,
    crd_paths: Iterable[Path] = (),
    catalogs: Iterable[Path] = (),
    cache_dir: Path | None = None,
    shown: Callable[[Path], str] = str,
    shipped: bool = True,
) -> SchemaValidator:
    """A validator for built-in kinds and custom resources.

    Args:
        kubernetes_version: The target version (default: cdk8s-plus's).
        strict: Unknown fields of custom resources and kinds with no schema are errors.
        crd_paths: CRD manifests (files or folders).
        catalogs: Schema-catalog directories.
        cache_dir: Where compiled checks are kept (default: the user's cache directory).
        shown: How messages name a path.
        shipped: Use the schemas of Flux's kinds that ship with gitopskit.

    Raises:
        ConfigError: A bad version, or a named path that does not exist.
    """
    validator = SchemaValidator(kubernetes_version, cache_dir, strict=strict)
    validator.custom = CustomSchemas(
        crd_paths,
        catalogs,
        CompiledCache(validator.cache_root / f"custom-{code_key()}"),
        lambda: object_meta_schema(validator.definitions()),
        shown=shown,
        shipped=shipped,
    )
    return validator
