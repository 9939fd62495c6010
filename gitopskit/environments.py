"""Environments: one chart set, many clusters, each with its own path in the manifests repository.

Declared in ``invoke.yaml``::

    gitopskit:
      environments:
        dev:
          path: clusters/dev        # default clusters/<name>, inside MANIFESTS_PATH
          values: {replicas: 1}     # free-form, handed to the charts as JSON
          auto_merge: true          # optional: publish --env dev sets auto-merge
          context: kind-dev         # optional: the kube context flux-bootstrap --env dev uses
        prod:
          values: {replicas: 3}

An :class:`Environment` flows from here down through synth (one app run each, with
``GITOPSKIT_ENV`` and ``GITOPSKIT_ENV_VALUES``), diff (one result each) and publish (one path and
one ownership index each). Without environments the project has one unnamed environment, which
behaves exactly as a project always did: output in the output directory itself, manifests at
``MANIFESTS_PATH``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitopskit.errors import ConfigError
from gitopskit.tree import join, path_problem

KEYS = ("path", "values", "auto_merge", "context")
#: An environment's name becomes a directory, a path and part of a branch name.
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ENV_VARIABLE = "GITOPSKIT_ENV"
VALUES_VARIABLE = "GITOPSKIT_ENV_VALUES"


@dataclass(frozen=True)
class Environment:
    """One cluster's share of the manifests.

    Attributes:
        name: Its name; None for the one unnamed environment of a project without environments.
        path: Its directory in the manifests repository, relative to ``MANIFESTS_PATH`` ('' for
            the unnamed one).
        values: Free-form values handed to the charts.
        auto_merge: ``publish --env NAME`` sets its merge request to merge automatically.
        context: The kube context ``flux-bootstrap --env NAME`` uses.
    """

    name: str | None = None
    path: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    auto_merge: bool = False
    context: str | None = None

    @property
    def label(self) -> str:
        """How messages name it: ``dev``; '' for the unnamed one."""
        return self.name or ""

    def outdir(self, base: Path) -> Path:
        """Its output directory: ``base/<name>``, or ``base`` itself for the unnamed one."""
        return base / self.name if self.name else base

    def repository_path(self, manifests_path: str) -> str:
        """Its directory in the manifests repository: ``MANIFESTS_PATH/<path>``."""
        return join(manifests_path.strip("/"), self.path) if self.path else manifests_path

    def app_environment(self) -> dict[str, str]:
        """What the app gets to know which environment it renders (nothing when unnamed)."""
        if self.name is None:
            return {}
        return {ENV_VARIABLE: self.name, VALUES_VARIABLE: json.dumps(dict(self.values))}


UNNAMED = Environment()


@dataclass(frozen=True)
class Slot:
    """One environment's synthesized output and its directory in the manifests repository:
    what diff compares and publish writes.

    Attributes:
        environment: The environment.
        outdir: Its synthesized output (``<outdir>/<name>``).
        path: Its directory in the manifests repository (``MANIFESTS_PATH/<path>``).
    """

    environment: Environment
    outdir: Path
    path: str

    @classmethod
    def of(cls, environment: Environment, outdir: Path, manifests_path: str) -> Slot:
        """``environment``'s slot, under the output directory ``outdir`` and ``MANIFESTS_PATH``."""
        path = environment.repository_path(manifests_path)
        return cls(environment, environment.outdir(outdir), path)


def parse(section: Any) -> list[Environment]:
    """The environments declared under ``gitopskit.environments`` (None or absent: none).

    Raises:
        ConfigError: Not a mapping of names to mappings, a name that cannot be a directory and a
            branch suffix, an unknown key (naming the valid ones), a path outside
            ``MANIFESTS_PATH`` or inside another environment's, values that are not JSON.
    """
    if section is None:
        return []
    if not isinstance(section, Mapping) or not section:
        raise ConfigError(
            "invoke.yaml: gitopskit.environments must map environment names to their settings",
            hint="e.g. environments: {dev: {values: {replicas: 1}}, prod: {}}",
        )
    found = [_parse_one(str(name), spec) for name, spec in section.items()]
    _check_paths(found)
    return found


def _parse_one(name: str, spec: Any) -> Environment:
    where = f"invoke.yaml: gitopskit.environments.{name}"
    if not _NAME.match(name):
        raise ConfigError(
            f"{where}: the name must be lower-case letters, digits and dashes (it names a "
            "directory and a branch)"
        )
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a mapping of {', '.join(KEYS)}")
    unknown = sorted(str(k) for k in spec if k not in KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {', '.join(unknown)}", hint=f"valid keys: {', '.join(KEYS)}"
        )
    path = str(spec.get("path") or f"clusters/{name}").strip().strip("/")
    problem = path_problem(path)
    if problem is not None:
        raise ConfigError(f"{where}.path: {path!r} holds {problem}")
    values = spec.get("values") or {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}.values must be a mapping")
    try:
        json.dumps(_plain(values), allow_nan=False)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.values must be plain YAML: it is handed over as JSON") from None
    auto_merge = spec.get("auto_merge", False)
    if not isinstance(auto_merge, bool):
        raise ConfigError(f"{where}.auto_merge must be true or false")
    context = spec.get("context")
    if context is not None and not isinstance(context, str):
        raise ConfigError(f"{where}.context must be a kube context name")
    return Environment(name, path, _plain(values), auto_merge, context)


def _plain(value: Any) -> Any:
    """Plain dicts and lists (invoke hands over its own mapping type)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _check_paths(environments: list[Environment]) -> None:
    for first in environments:
        for second in environments:
            if first is second:
                continue
            if first.path == second.path or second.path.startswith(first.path + "/"):
                raise ConfigError(
                    f"invoke.yaml: environments {first.name} and {second.name} share the path "
                    f"{first.path}: each needs a directory of its own",
                )


def select(environments: list[Environment], names: Iterable[str]) -> list[Environment]:
    """The environments a run covers: those named by ``--env``, else all of them; the one
    unnamed environment when none are declared.

    Raises:
        ConfigError: ``--env`` names one that is not declared, or is given with none declared.
    """
    wanted = list(dict.fromkeys(names))
    if not environments:
        if wanted:
            raise ConfigError(
                f"--env {wanted[0]}: no environments are declared",
                hint="declare them under gitopskit.environments in invoke.yaml",
            )
        return [UNNAMED]
    known = {e.name: e for e in environments}
    missing = [n for n in wanted if n not in known]
    if missing:
        raise ConfigError(
            f"--env {missing[0]}: no such environment",
            hint=f"declared: {', '.join(str(e.name) for e in environments)}",
        )
    return [known[n] for n in wanted] if wanted else list(environments)
