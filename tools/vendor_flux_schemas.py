"""Vendor the schemas of Flux's custom resources into gitopskit/schemas/flux/ (data, not code).

Flux (its controllers and their CRDs) is Apache-2.0. For each controller at the release that a
Flux version pins (fluxcd/flux2's ``manifests/crds/kustomization.yaml``), this reads the
CustomResourceDefinitions under ``config/crd/bases/`` from a git checkout of the controller and
writes, for every served version of every kind, its ``openAPIV3Schema`` as JSON in the schema
catalog layout ``{group}/{kind lowercased}_{version}.json``, with the ``description`` texts
removed (they are documentation, a third of the bytes, and validation never reads them). Nothing
else is changed. ``provenance.json`` records where each file came from.

    python tools/vendor_flux_schemas.py FLUX_VERSION CONTROLLER=GIT_DIR@REF [...]

e.g. ``2.9.4 source-controller=/src/source-controller/.git@v1.9.4 ...``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "gitopskit" / "schemas" / "flux"
BASES = "config/crd/bases/"


def git(git_dir: str, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True
    ).stdout


def strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: strip_descriptions(v)
            for k, v in node.items()
            if not (k == "description" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def main(flux_version: str, sources: list[str]) -> None:
    provenance: dict[str, Any] = {"flux": flux_version, "files": {}}
    for source in sources:
        controller, _, location = source.partition("=")
        git_dir, _, ref = location.rpartition("@")
        commit = git(git_dir, "rev-parse", f"{ref}^{{commit}}").strip()
        names = git(git_dir, "ls-tree", "--name-only", commit, BASES).split()
        for name in names:
            crd = yaml.safe_load(git(git_dir, "show", f"{commit}:{name}"))
            spec = crd["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                schema = strip_descriptions(version["schema"]["openAPIV3Schema"])
                out = TARGET / group / f"{kind.lower()}_{version['name']}.json"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n")
                provenance["files"][out.relative_to(TARGET).as_posix()] = {
                    "repository": f"github.com/fluxcd/{controller}",
                    "ref": ref,
                    "commit": commit,
                    "path": name,
                }
    provenance["files"] = dict(sorted(provenance["files"].items()))
    (TARGET / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
