"""The FluxInstance gitopskit applies: ``flux/flux-instance.yaml`` plus the generated fields.

The template is reviewed in git like the helm values files; settings and flags generate the
fields that differ per cluster (version, components, cluster type, the sync). A generated field
wins over the template's. The object carries the SHA-256 of what gitopskit applied in the
annotation ``gitopskit/applied-sha256``: a re-run applies again only when what it would apply
changed, or when the cluster's object no longer holds it (edited by hand).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gitopskit.errors import ConfigError
from gitopskit.flux.options import Options

Obj = dict[str, Any]

API_VERSION = "fluxcd.controlplane.io/v1"
KIND = "FluxInstance"
#: The one FluxInstance the operator reconciles, in its own namespace.
NAME = "flux"
TEMPLATE = "flux-instance.yaml"
APPLIED_ANNOTATION = "gitopskit/applied-sha256"
UNKNOWN_URL = "<unknown: pass --git-url>"
UNKNOWN_BRANCH = "<unknown: pass --git-branch>"


def load_template(path: Path) -> Obj:
    """The FluxInstance template.

    Raises:
        ConfigError: Missing, not YAML, or not a FluxInstance named flux.
    """
    if not path.is_file():
        raise ConfigError(
            f"the FluxInstance template {path} is missing",
            hint="run from the project directory; flux/flux-instance.yaml is in git",
        )
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"the FluxInstance template {path} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"the FluxInstance template {path} must hold one mapping")
    for key, wanted in (("apiVersion", API_VERSION), ("kind", KIND)):
        if loaded.get(key, wanted) != wanted:
            raise ConfigError(f"the FluxInstance template {path}: {key} must be {wanted}, not "
                              f"{loaded.get(key)!r}")  # fmt: skip
    name = (loaded.get("metadata") or {}).get("name", NAME)
    if name != NAME:
        raise ConfigError(f"the FluxInstance template {path}: the operator reconciles only a "
                          f"FluxInstance named {NAME}, not {name!r}")  # fmt: skip
    if not isinstance(loaded.get("spec") or {}, dict):
        raise ConfigError(f"the FluxInstance template {path}: spec must be a mapping")
    return loaded


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def generated(options: Options, sync_name: str | None = None) -> Obj:
    """The fields gitopskit computes; ``sync_name`` names the GitRepository and Kustomization
    (default: after the namespace)."""
    operator = options.operator
    sync: Obj = {
        "kind": "GitRepository",
        "url": options.git_url.ssh_url if options.git_url else UNKNOWN_URL,
        "ref": f"refs/heads/{options.git_branch or UNKNOWN_BRANCH}",
        "path": options.sync_path,
        "pullSecret": options.secret_name,
        "interval": operator.sync_interval,
    }
    if sync_name:
        sync["name"] = sync_name
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": NAME,
            "namespace": options.namespace,
            "labels": {"app.kubernetes.io/managed-by": "gitopskit"},
        },
        "spec": {
            "distribution": {"version": operator.distribution_version},
            "components": list(operator.components),
            "cluster": {"type": operator.cluster_type},
            "sync": sync,
        },
    }


def render(options: Options, sync_name: str | None = None) -> Obj:
    """The FluxInstance to apply: template, then generated fields, then the applied hash."""
    template = load_template(options.values_dir / TEMPLATE)
    instance: Obj = _merge(template, generated(options, sync_name))
    annotations = instance["metadata"].setdefault("annotations", {})
    annotations.pop(APPLIED_ANNOTATION, None)
    annotations[APPLIED_ANNOTATION] = digest(instance)
    return instance


def digest(instance: Obj) -> str:
    """SHA-256 of what is applied (the applied-hash annotation itself left out)."""
    shown = copy.deepcopy(instance)
    (shown.get("metadata") or {}).get("annotations", {}).pop(APPLIED_ANNOTATION, None)
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


def contains(existing: Any, wanted: Any) -> bool:
    """Whether every field of ``wanted`` holds the same value in ``existing`` (lists whole)."""
    if isinstance(wanted, Mapping):
        return isinstance(existing, Mapping) and all(
            key in existing and contains(existing[key], value) for key, value in wanted.items()
        )
    return bool(existing == wanted)


def up_to_date(existing: Obj | None, wanted: Obj) -> bool:
    """Whether applying ``wanted`` would change nothing: the cluster's object was applied from
    the same fields and still holds them."""
    if existing is None:
        return False
    meta = existing.get("metadata") or {}
    applied = (meta.get("annotations") or {}).get(APPLIED_ANNOTATION)
    if applied != wanted["metadata"]["annotations"][APPLIED_ANNOTATION]:
        return False
    wanted_meta = {k: wanted["metadata"].get(k) or {} for k in ("labels", "annotations")}
    return contains(meta, wanted_meta) and contains(existing.get("spec"), wanted["spec"])


def sync_name(instance: Obj | None, namespace: str) -> str:
    """The name of the GitRepository and Kustomization a FluxInstance makes."""
    sync = ((instance or {}).get("spec") or {}).get("sync") or {}
    return str(sync.get("name") or namespace)


def to_yaml(instance: Obj) -> str:
    """The FluxInstance as YAML, in the order it was built."""
    return yaml.safe_dump(instance, sort_keys=False, default_flow_style=False, width=10_000)
