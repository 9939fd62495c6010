"""Offline validation of every object: what the cluster would refuse is an error before merge.

For each object, in this order:

1. Its API, against the table of removed and deprecated APIs (:mod:`gitopskit.apis`) for the
   target Kubernetes version: removed is an error naming the release and the replacement;
   deprecated but served is a warning (and the object is validated too).
2. A built-in kind: the strict schema of the target version that ``kubernetes-validate`` ships
   (an unknown field is an error).
3. A custom resource: the schema from its CustomResourceDefinition or a schema catalog
   (:mod:`gitopskit.crds`); an unknown field is a warning, an error with ``strict``.
4. Neither: a built-in kind or group under a group/version that never existed is an error with a
   suggestion (``app/v1 Deployment: no such API; did you mean apps/v1?``); anything else has no
   schema: a warning, an error with ``strict``.

Each schema is compiled to Python once and cached on disk (:mod:`gitopskit.compiled`), so valid
objects cost little; an object that fails gets every one of its problems listed (up to
:data:`gitopskit.schema_errors.MAX_ISSUES`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import fastjsonschema

from gitopskit import apis
from gitopskit.compiled import CheckFunction, CompiledCache, user_cache_dir
from gitopskit.errors import ConfigError
from gitopskit.manifests import Document, describe
from gitopskit.schema_errors import MAX_ISSUES, Issue, issues, json_path

_DEFS_REF = '"/api/_definitions.json#/$defs/'


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
    """Something wrong with an object: an error, or a warning.

    Attributes:
        file: Where the object is.
        line: The line its document starts on.
        obj: ``apiVersion kind namespace/name``.
        path: JSON path of the field, e.g. ``spec.template.spec.containers[0].portz``; empty
            when it is about the object as a whole.
        message: What is wrong.
    """

    file: str
    line: int
    obj: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}: {self.obj}: {where}{self.message}"


@dataclass
class Report:
    """What validation found.

    Attributes:
        schema_version: The Kubernetes version validated against.
        validated: Objects checked against a schema.
        sources: How many objects each schema source validated (``Kubernetes 1.34``, a CRD
            file, ``Flux 2.9.4``).
        problems: The errors.
        warnings: The warnings.
        not_validated: Objects with no schema, by ``Kind (apiVersion)``.
    """

    schema_version: str
    validated: int = 0
    sources: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    not_validated: Counter[str] = field(default_factory=Counter)

    @property
    def invalid_objects(self) -> int:
        """How many objects have errors."""
        return len({(p.file, p.line) for p in self.problems})

    @property
    def invalid_files(self) -> int:
        """How many files hold objects with errors."""
        return len({p.file for p in self.problems})


@dataclass
class Schema:
    """The schema of one apiVersion/kind, ready to check objects.

    Attributes:
        source: Where it comes from, for messages (``Kubernetes 1.34``, ``crds/app.yaml``).
        check: The compiled check (raises at the first violation).
        document: Builds the JSON schema itself, to list every problem of a failing object.
        custom: A custom resource's schema: an unknown field is a warning unless strict.
    """

    source: str
    check: CheckFunction
    document: Callable[[], dict[str, Any]]
    custom: bool = False


Lookup = Callable[[str, str], Schema | None]
"""Finds the schema of a custom resource by apiVersion and kind."""


class CustomSource(Protocol):
    """Where custom resources' schemas come from (see :mod:`gitopskit.crds`)."""

    def lookup(self, documents: Sequence[Document]) -> Lookup:
        """The lookup for one validation of ``documents`` (their own CRDs come first)."""


class SchemaValidator:
    """Validates objects for one Kubernetes version.

    Args:
        kubernetes_version: ``1.34`` or ``v1.34.2``; the newest shipped schema not newer than
            it is used. Default: the cdk8s-plus version.
        cache_dir: Where compiled validators are kept (default: the user's cache directory).
        strict: Unknown fields of custom resources, and objects with no schema, are errors.
        custom: Finds custom resources' schemas (see :mod:`gitopskit.crds`); settable later
            as :attr:`custom`.

    Raises:
        ConfigError: The version is newer than every shipped schema, or malformed.
    """

    def __init__(
        self,
        kubernetes_version: str | None = None,
        cache_dir: Path | None = None,
        *,
        strict: bool = False,
        custom: CustomSource | None = None,
    ):
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
        self.strict = strict
        self.cache_root = cache_dir or user_cache_dir()
        self._dir = _schema_root() / f"v{self.schema_version}.0-local-strict"
        self._cache = CompiledCache(self.cache_root / self._cache_key())
        self.custom = custom
        self._definitions: dict[str, Any] | None = None
        self._by_kind: dict[tuple[str, str], str] | None = None
        self._schemas: dict[tuple[str, str], Schema | None] = {}

    @property
    def source(self) -> str:
        """How messages name the built-in schemas: ``Kubernetes 1.34``."""
        return f"Kubernetes {self.schema_version}"

    def _cache_key(self) -> str:
        versions = (
            importlib.metadata.version("kubernetes-validate"),
            fastjsonschema.VERSION,
            self.schema_version,
            importlib.util.MAGIC_NUMBER.hex(),
        )
        return "-".join(versions)

    def definitions(self) -> dict[str, Any]:
        """The built-in definitions (``$defs``) of the target version."""
        self._index()
        assert self._definitions is not None
        defs: dict[str, Any] = self._definitions["$defs"]
        return defs

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

    def served(self, api_version: str, kind: str) -> bool:
        """Whether the target version serves ``api_version``/``kind`` (its schema knows it)."""
        return (api_version, kind) in self._index()

    def served_by_kind(self) -> dict[str, list[str]]:
        """The apiVersions the target version serves, by kind."""
        by_kind: dict[str, list[str]] = {}
        for api_version, kind in self._index():
            by_kind.setdefault(kind, []).append(api_version)
        return by_kind

    def check_function(self, api_version: str, kind: str) -> CheckFunction | None:
        """The compiled check for one built-in kind, or None when the target's schema does not
        know it."""
        schema = self.builtin(api_version, kind)
        return schema.check if schema is not None else None

    def builtin(self, api_version: str, kind: str) -> Schema | None:
        """The built-in schema of ``api_version``/``kind`` at the target version, if any."""
        key = (api_version, kind)
        if key in self._schemas:
            return self._schemas[key]
        name = f"{api_version}_{kind}"
        check = self._cache.load(name)
        if check is None:
            definition = self._index().get(key)
            if definition is not None:
                check = self._cache.compile(
                    name, self._builtin_document(definition), f"{api_version} {kind}"
                )
        schema = None
        if check is not None:
            schema = Schema(self.source, check, lambda: self._builtin_document(self._index()[key]))
        self._schemas[key] = schema
        return schema

    def _builtin_document(self, definition: str) -> dict[str, Any]:
        return {"$ref": f"#/$defs/{definition}", "$defs": self.definitions()}

    def schema(
        self, api_version: str, kind: str, custom: Lookup | None = None
    ) -> Schema | None:
        """The schema that validates ``api_version``/``kind``: built-in, else custom."""
        found = self.builtin(api_version, kind)
        if found is None and custom is not None:
            found = custom(api_version, kind)
        return found

    def problem(self, obj: dict[str, Any]) -> tuple[str, str] | None:
        """The first problem of one object as (path, message), None when valid.

        Raises:
            KeyError: No schema knows the object's kind.
        """
        custom = self.custom.lookup([]) if self.custom is not None else None
        schema = self.schema(obj["apiVersion"], obj["kind"], custom)
        if schema is None:
            raise KeyError(obj["kind"])
        found = self._issues(schema, obj)
        return (found[0].path, found[0].message) if found else None

    def validate(self, documents: Iterable[Document]) -> Report:
        """Validate every object of ``documents``; non-objects are left to the caller."""
        report = Report(self.schema_version)
        objects = list(documents)
        custom = self.custom.lookup(objects) if self.custom is not None else None
        for document in objects:
            self._validate_one(document, report, custom)
        return report

    def _validate_one(self, document: Document, report: Report, custom: Lookup | None) -> None:
        obj = document.data
        api_version, kind = obj["apiVersion"], obj["kind"]

        def problem(message: str, path: str = "") -> Problem:
            return Problem(document.file, document.line, describe(obj), path, message)

        verdict = apis.retirement(api_version, kind, self.schema_version, self.served)
        if verdict is not None and verdict.error:
            report.problems.append(problem(verdict.message))
            return
        if verdict is not None:
            report.warnings.append(problem(verdict.message))
        schema = self.schema(api_version, kind, custom)
        if schema is None:
            reason = apis.no_such_api(api_version, kind, self.served_by_kind())
            if reason is not None:
                report.problems.append(problem(reason))
            elif self.strict:
                report.problems.append(problem(f"no schema for {kind} ({api_version})"))
            else:
                report.not_validated[f"{kind} ({api_version})"] += 1
            return
        report.validated += 1
        report.sources[schema.source] += 1
        found = self._issues(schema, obj)
        lenient = schema.custom and not self.strict  # unknown fields are warnings
        warned = [i for i in found if i.unknown_field and lenient]
        failed = [i for i in found if not (i.unknown_field and lenient)]
        for listed, into in ((failed, report.problems), (warned, report.warnings)):
            into.extend(problem(i.message, i.path) for i in listed[:MAX_ISSUES])
            if len(listed) > MAX_ISSUES:
                into.append(problem(f"and {len(listed) - MAX_ISSUES} more"))

    def _issues(self, schema: Schema, obj: dict[str, Any]) -> list[Issue]:
        try:
            schema.check(obj)
        except fastjsonschema.JsonSchemaValueException as error:
            return issues(schema.document(), obj) or [_first(error)]
        return []


def _first(error: fastjsonschema.JsonSchemaValueException) -> Issue:
    """fastjsonschema's one violation, when the complete listing found none (they disagree)."""
    parts = list(error.path or [])[1:]  # the first element is fastjsonschema's "data"
    message = str(error.message)
    prefix = "data" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts)
    return Issue(json_path(parts), message.removeprefix(prefix).strip() or message)
