"""Offline, strict validation against the Kubernetes JSON schemas.

The schemas are those ``kubernetes-validate`` ships (strict variant: an unknown field is an
error). Validating thousands of objects is only cheap when each kind's schema is compiled once:
``fastjsonschema`` turns a schema into Python code, which is cached on disk (and so byte-compiled
by Python) per schema version and kind. Kinds with no schema (CRDs) are reported, not passed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import marshal
import os
import re
import tempfile
import types
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastjsonschema

from gitopskit.errors import ConfigError
from gitopskit.manifests import Document, describe

_DEFS_REF = '"/api/_definitions.json#/$defs/'
CheckFunction = Callable[[Any], Any]


def default_kubernetes_version() -> str:
    """The Kubernetes minor of the installed cdk8s-plus (``cdk8s-plus-34`` → ``1.34``)."""
    minors = []
    for dist in importlib.metadata.distributions():
        match = re.fullmatch(r"cdk8s[-_]plus[-_](\d+)", dist.metadata["Name"] or "", re.I)
        if match:
            minors.append(int(match.group(1)))
    if minors:
        return f"1.{max(minors)}"
    return _minor(_available_versions()[-1])


def _schema_root() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the package kubernetes-validate is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


def _minor(version: str) -> str:
    return ".".join(version.lstrip("v").split(".")[:2])


def _minor_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in _minor(version).split("."))


def _available_versions() -> list[str]:
    found = {
        m.group(1)
        for d in _schema_root().iterdir()
        if (m := re.fullmatch(r"v(\d+\.\d+)\.\d+-local-strict", d.name))
    }
    return sorted(found, key=_minor_key)


@dataclass(frozen=True)
class Problem:
    """An object that does not match its schema.

    Attributes:
        file: Where the object is.
        line: The line its document starts on.
        obj: ``apiVersion kind namespace/name``.
        path: JSON path of the bad field, e.g. ``spec.template.spec.containers[0].portz``.
        message: What is wrong with it.
    """

    file: str
    line: int
    obj: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.obj}: {self.path or '(object)'}: {self.message}"


@dataclass
class Report:
    """What validation found."""

    schema_version: str
    validated: int = 0
    problems: list[Problem] = field(default_factory=list)
    not_validated: Counter[str] = field(default_factory=Counter)


class SchemaValidator:
    """Validates objects against the strict schema of one Kubernetes version.

    Args:
        kubernetes_version: ``1.34`` or ``v1.34.2``; the newest shipped schema not newer than
            it is used. Default: the cdk8s-plus version.
        cache_dir: Where compiled validators are kept (default: the user's cache directory).

    Raises:
        ConfigError: The version is newer than every shipped schema, or malformed.
    """

    def __init__(self, kubernetes_version: str | None = None, cache_dir: Path | None = None):
        wanted = _minor(kubernetes_version or default_kubernetes_version())
        if not re.fullmatch(r"\d+\.\d+", wanted):
            raise ConfigError(f"KUBERNETES_VERSION {kubernetes_version!r} is not like 1.34")
        available = _available_versions()
        usable = [v for v in available if _minor_key(v) <= _minor_key(wanted)]
        if not usable or _minor_key(wanted) > _minor_key(available[-1]):
            raise ConfigError(
                f"no Kubernetes {wanted} schema is installed "
                f"(kubernetes-validate has {available[0]} to {available[-1]})",
                hint="set KUBERNETES_VERSION to one of those, or upgrade kubernetes-validate",
            )
        self.schema_version = usable[-1]
        self._dir = _schema_root() / f"v{self.schema_version}.0-local-strict"
        self._cache_dir = (cache_dir or _user_cache_dir()) / self._cache_key()
        self._definitions: dict[str, Any] | None = None
        self._by_kind: dict[tuple[str, str], str] | None = None
        self._checks: dict[tuple[str, str], CheckFunction | None] = {}

    def _cache_key(self) -> str:
        versions = (
            importlib.metadata.version("kubernetes-validate"),
            fastjsonschema.VERSION,
            self.schema_version,
            importlib.util.MAGIC_NUMBER.hex(),
        )
        return "-".join(versions)

    def _index(self) -> dict[tuple[str, str], str]:
        if self._by_kind is None:
            text = (self._dir / "_definitions.json").read_text()
            self._definitions = json.loads(text.replace(_DEFS_REF, '"#/$defs/'))
            self._by_kind = {}
            for name, schema in self._definitions["$defs"].items():
                for gvk in schema.get("x-kubernetes-group-version-kind", ()):
                    group, version = gvk["group"], gvk["version"]
                    api_version = f"{group}/{version}" if group else version
                    self._by_kind.setdefault((api_version, gvk["kind"]), name)
        return self._by_kind

    def check_function(self, api_version: str, kind: str) -> CheckFunction | None:
        """The compiled check for one kind, or None when no schema knows it (CRDs)."""
        key = (api_version, kind)
        if key in self._checks:
            return self._checks[key]
        check = self._load_cached(api_version, kind)
        if check is None:
            definition = self._index().get(key)
            if definition is not None:
                check = self._compile(api_version, kind, definition)
        self._checks[key] = check
        return check

    def _cache_path(self, api_version: str, kind: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", f"{api_version}_{kind}").lower()
        return self._cache_dir / f"check_{slug}.marshal"

    def _load_cached(self, api_version: str, kind: str) -> CheckFunction | None:
        # The compiled code object itself is cached (marshal), not the source: byte-compiling
        # a megabyte of generated Python costs more than validating thousands of objects,
        # and PYTHONDONTWRITEBYTECODE would stop Python from caching it for us.
        try:
            code = marshal.loads(self._cache_path(api_version, kind).read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return None
        return _function_from(code)

    def _compile(self, api_version: str, kind: str, definition: str) -> CheckFunction:
        assert self._definitions is not None
        schema = {"$ref": f"#/$defs/{definition}", "$defs": self._definitions["$defs"]}
        source = fastjsonschema.compile_to_code(schema, use_formats=False, use_default=False)
        code = compile(source, f"<schema {api_version} {kind}>", "exec")
        path = self._cache_path(api_version, kind)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written whole, then renamed: a concurrent run never reads a half-written file.
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as out:
                out.write(marshal.dumps(code))
            os.replace(out.name, path)
        except OSError:
            pass  # no writable cache: compile again next run
        return _function_from(code)

    def problem(self, obj: dict[str, Any]) -> tuple[str, str] | None:
        """The first schema violation of one object as (path, message), None when valid.

        Raises:
            KeyError: No schema knows the object's kind (see :meth:`check_function`).
        """
        check = self.check_function(obj["apiVersion"], obj["kind"])
        if check is None:
            raise KeyError(obj["kind"])
        try:
            check(obj)
        except fastjsonschema.JsonSchemaValueException as error:
            return _explain(error)
        return None

    def validate(self, documents: Iterable[Document]) -> Report:
        """Validate every object of ``documents``; non-objects are left to the caller."""
        report = Report(self.schema_version)
        for document in documents:
            obj = document.data
            check = self.check_function(obj["apiVersion"], obj["kind"])
            if check is None:
                report.not_validated[f"{obj['kind']} ({obj['apiVersion']})"] += 1
                continue
            report.validated += 1
            try:
                check(obj)
            except fastjsonschema.JsonSchemaValueException as error:
                path, message = _explain(error)
                report.problems.append(
                    Problem(document.file, document.line, describe(obj), path, message)
                )
        return report


def _json_path(parts: Iterable[str]) -> str:
    out = ""
    for part in parts:
        if part.isdigit():
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _explain(error: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    parts = list(error.path or [])[1:]  # the first element is fastjsonschema's "data"
    definition = error.definition if isinstance(error.definition, dict) else {}
    if error.rule == "additionalProperties" and isinstance(error.value, dict):
        known = set(definition.get("properties", {}))
        unknown = sorted(k for k in error.value if k not in known)
        if unknown:
            return _json_path([*parts, str(unknown[0])]), "unknown field" + (
                f" (also {', '.join(unknown[1:])})" if len(unknown) > 1 else ""
            )
    message = str(error.message)
    prefix = "data" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts)
    message = message.removeprefix(prefix).strip() or message
    return _json_path(parts), message


def _function_from(code: types.CodeType) -> CheckFunction:
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    check: CheckFunction = namespace["validate"]
    return check


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitopskit" / "schemas"
