"""The FluxInstance gitopskit applies, checked against a schema written from the operator's
documented API (tests/fakes/fluxinstance_v1_schema.yaml, not the operator's CRD), and the
settings that shape it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
import yaml

from gitopskit.config import Settings
from gitopskit.errors import ConfigError
from gitopskit.flux.deploy_keys import GitLabAccess
from gitopskit.flux.instance import APPLIED_ANNOTATION, render, up_to_date
from gitopskit.flux.options import Options, resolve
from tests.conftest import ROOT
from tests.fakes.kube import validate_structural

SCHEMA = yaml.safe_load((ROOT / "tests/fakes/fluxinstance_v1_schema.yaml").read_text())
URL = "ssh://git@gitlab.example.com:2222/platform/k8s-manifests.git"

#: What a structural schema cannot say and the API reference does: a Git sync's ref is a full
#: ref name (refs/heads/main), its URL an ssh:// or http(s):// address.
GIT_SYNC = fastjsonschema.compile({
    "if": {"properties": {"spec": {"properties": {"sync": {
        "properties": {"kind": {"const": "GitRepository"}}, "required": ["kind"]}}}}},
    "then": {"properties": {"spec": {"properties": {"sync": {"properties": {
        "ref": {"pattern": r"^refs/(heads|tags)/\S+$"},
        "url": {"pattern": r"^(ssh|https?)://\S+$"},
    }}}}}},
})  # fmt: skip


def options(**flags: str) -> Options:
    settings = Settings(
        environ={},
        flags={"FLUX_GIT_URL": URL, "MANIFESTS_TARGET_BRANCH": "main", **flags},
    )
    return resolve(settings, values_dir=ROOT / "flux", access=GitLabAccess())


def check(instance: dict[str, Any]) -> list[str]:
    """Every way ``instance`` breaks the documented API (empty: none)."""
    checked = copy.deepcopy(instance)
    errors, unknown = validate_structural(SCHEMA, checked)
    problems = errors + [f"{path}: field not declared in schema" for path in unknown]
    try:
        GIT_SYNC(checked)
    except fastjsonschema.JsonSchemaValueException as error:
        problems.append(error.message)
    return problems


@pytest.mark.parametrize(
    ("flags", "path", "ref"),
    [
        ({}, "./", "refs/heads/main"),
        ({"MANIFESTS_PATH": "/clusters/prod/", "MANIFESTS_TARGET_BRANCH": "release/2026"},
         "./clusters/prod", "refs/heads/release/2026"),
        # Written the way Flux writes it, the path is the same one publish writes to.
        ({"MANIFESTS_PATH": "./clusters/dev"}, "./clusters/dev", "refs/heads/main"),
        ({"MANIFESTS_PATH": "."}, "./", "refs/heads/main"),
    ],
)  # fmt: skip
def test_the_rendered_instance_keeps_to_the_documented_api(
    flags: dict[str, str], path: str, ref: str
) -> None:
    instance = render(options(**flags))
    assert check(instance) == []
    assert instance["apiVersion"] == "fluxcd.controlplane.io/v1"
    assert instance["kind"] == "FluxInstance"
    assert instance["metadata"]["name"] == "flux"
    assert instance["metadata"]["namespace"] == "flux-system"
    spec = instance["spec"]
    assert spec["distribution"] == {"registry": "ghcr.io/fluxcd", "version": "2.9.x"}
    assert spec["components"] == ["source-controller", "kustomize-controller",
                                  "helm-controller", "notification-controller"]  # fmt: skip
    assert spec["cluster"]["type"] == "kubernetes"
    assert spec["sync"] == {"kind": "GitRepository", "url": URL, "ref": ref, "path": path,
                            "pullSecret": "flux-ssh", "interval": "1m"}  # fmt: skip
    assert "identity" not in yaml.safe_dump(instance), "no key material, only the Secret's name"


def test_the_schema_refuses_what_the_operator_refuses() -> None:
    good = render(options())

    def broken(**spec: Any) -> list[str]:
        instance = copy.deepcopy(good)
        for dotted, value in spec.items():
            *parents, last = dotted.split("__")
            target = instance["spec"]
            for key in parents:
                target = target[key]
            if value is None:
                del target[last]
            else:
                target[last] = value
        return check(instance)

    assert any("ref" in p for p in broken(sync__ref="main")), "a Git ref is a full ref name"
    assert any("interval" in p for p in broken(sync__interval="1 minute"))
    assert any("Unsupported value" in p for p in broken(cluster__type="k8s"))
    assert any("Unsupported value" in p for p in broken(components=["source-controler"]))
    assert any("Unsupported value" in p for p in broken(sync__kind="GitRepo"))
    assert any("registry: Required value" in p for p in broken(distribution__registry=None))
    assert any("spec.sync.path: Required value" in p for p in broken(sync__path=None))
    assert any("must be of type boolean" in p for p in broken(wait="yes"))
    assert any("not declared" in p for p in broken(sync__branch="main"))
    assert any("Too long" in p for p in broken(sync__name="x" * 64))


def test_generated_fields_win_and_the_template_is_checked(tmp_path: Path) -> None:
    template = {
        "apiVersion": "fluxcd.controlplane.io/v1",
        "kind": "FluxInstance",
        "metadata": {"name": "flux", "annotations": {"team": "platform"}},
        "spec": {
            "distribution": {"version": "2.0.0", "registry": "mirror.example.com/fluxcd"},
            "cluster": {"size": "medium", "type": "openshift"},
            "sync": {"interval": "10m", "path": "elsewhere"},
        },
    }
    (tmp_path / "flux-instance.yaml").write_text(yaml.safe_dump(template))
    settings = Settings(environ={}, flags={"FLUX_GIT_URL": URL, "MANIFESTS_TARGET_BRANCH": "main",
                                           "FLUX_SYNC_INTERVAL": "5m"})  # fmt: skip
    opts = resolve(settings, values_dir=tmp_path, access=GitLabAccess())
    instance = render(opts)
    spec = instance["spec"]
    assert spec["distribution"] == {"version": "2.9.x", "registry": "mirror.example.com/fluxcd"}
    assert spec["cluster"] == {"size": "medium", "type": "kubernetes"}
    assert spec["sync"]["interval"] == "5m" and spec["sync"]["path"] == "./"
    assert instance["metadata"]["annotations"]["team"] == "platform"
    assert check(instance) == []
    for bad, message in (
        ({**template, "kind": "HelmRelease"}, "kind must be FluxInstance"),
        ({**template, "metadata": {"name": "main"}}, "only a FluxInstance named flux"),
        ("- a list\n", "must hold one mapping"),
    ):
        text = bad if isinstance(bad, str) else yaml.safe_dump(bad)
        (tmp_path / "flux-instance.yaml").write_text(text)
        with pytest.raises(ConfigError, match=message):
            render(opts)
    (tmp_path / "flux-instance.yaml").unlink()
    with pytest.raises(ConfigError, match=r"template .* is missing"):
        render(opts)


def test_up_to_date_only_when_applied_from_the_same_fields_and_still_holding_them() -> None:
    wanted = render(options())
    # What the API server stores: defaults filled in, a status, server metadata.
    stored = copy.deepcopy(wanted)
    validate_structural(SCHEMA, stored)
    stored["metadata"].update(uid="u", resourceVersion="7", generation=1)
    stored["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    assert stored["spec"]["migrateResources"] is True, "defaulted by the server"
    assert up_to_date(stored, wanted)
    assert not up_to_date(None, wanted)
    edited = copy.deepcopy(stored)
    edited["spec"]["sync"]["path"] = "./by-hand"
    assert not up_to_date(edited, wanted), "a hand edit is put right"
    changed = render(options(FLUX_DISTRIBUTION_VERSION="2.x"))
    assert (
        changed["metadata"]["annotations"][APPLIED_ANNOTATION]
        != (wanted["metadata"]["annotations"][APPLIED_ANNOTATION])
    )
    assert not up_to_date(stored, changed)
    removed = copy.deepcopy(stored)
    del removed["metadata"]["annotations"][APPLIED_ANNOTATION]
    assert not up_to_date(removed, wanted), "not applied by gitopskit: applied again"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"FLUX_INSTALLER": "helm"}, "--installer must be one of operator, charts"),
        ({"FLUX_VERSION": "1", "FLUX_INSTALLER": "operator"}, "Flux 1 has its own chart only"),
        ({"FLUX_COMPONENTS": "source-controller,image-updater"}, "image-updater is not a Flux"),
        ({"FLUX_CLUSTER_TYPE": "eks"}, "must be one of kubernetes, openshift, aws"),
        ({"FLUX_SYNC_INTERVAL": "every minute"}, "a duration such as 1m"),
        ({"FLUX_DISTRIBUTION_VERSION": "latest"}, "a Flux version or range"),
        ({"FLUX_OPERATOR_RELEASE": "Flux_Operator"}, "not a valid helm release name"),
        # Flux clamps a path that leaves the repository to its root: it would apply everything.
        ({"MANIFESTS_PATH": "../other-team"}, "not a directory inside the manifests"),
        ({"MANIFESTS_PATH": "clusters/../../x"}, "not a directory inside the manifests"),
    ],
)  # fmt: skip
def test_settings_the_operator_would_refuse_are_refused_first(
    flags: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        options(**flags)


def test_installer_choice() -> None:
    assert options().installer == "operator"
    assert options(FLUX_INSTALLER="charts").installer == "charts"
    assert options(FLUX_VERSION="1").installer == "flux1"
    settings = Settings(environ={}, flags={"FLUX_GIT_URL": URL, "MANIFESTS_TARGET_BRANCH": "m",
                                           "FLUX_INSTALLER": "charts"})  # fmt: skip
    with pytest.raises(ConfigError, match=r"--migrate .* cannot be combined with --installer"):
        resolve(settings, values_dir=ROOT / "flux", access=GitLabAccess(), migrate=True)
    operator = options(FLUX_COMPONENTS=" source-controller , kustomize-controller ").operator
    assert operator.components == ("source-controller", "kustomize-controller")
    assert operator.chart_version == "0.58.1" and operator.distribution_version == "2.9.x"
