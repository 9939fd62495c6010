"""gitopskit.helm: charts by URL, ownership, rollback of a failed first install, bounds; against
the recording helm (talking to FakeKube where the cluster matters)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gitopskit.errors import ConfigError, HelmError, ToolNotFoundError
from gitopskit.helm import Chart, Helm, HelmReleaseConflictError
from tests.fakes.helm import install_fake_helm, read_helm_log, read_helm_state
from tests.fakes.kube import FakeKube

CHART = Chart("https://charts.fluxcd.io", "flux", "1.13.3")
FLUX2 = Chart("https://fluxcd-community.github.io/helm-charts", "flux2", "2.18.3")
HOSTS = "[h]:2222 ssh-ed25519 AAAA,with,commas\n"


@pytest.fixture
def helm_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    log = tmp_path / "helm.log"
    install_fake_helm(tmp_path / "bin", log)
    return {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}, log


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeKube, dict[str, str], Path]]:
    """The recording helm installing into FakeKube; namespace ``flux`` exists."""
    with FakeKube() as kube:
        kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux"}})
        log = tmp_path / "helm.log"
        install_fake_helm(tmp_path / "bin", log, kube_url=kube.url)
        env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
        yield kube, env, log


def _base(tmp_path: Path) -> Path:
    base = tmp_path / "base.yaml"
    base.write_text("git:\n  pollInterval: 5m\n")
    return base


def test_upgrade_install_by_url_never_touches_the_repositories(
    helm_env: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, log = helm_env
    mirror = subprocess.run(["helm", "repo", "add", "fluxcd", "https://mirror.example.test"],
                            env=env, capture_output=True, text=True)  # fmt: skip
    assert mirror.returncode == 0, mirror.stderr
    base = _base(tmp_path)
    helm = Helm("ctx", env, network_timeout=30)
    installed = helm.upgrade_install(
        "flux", CHART, "flux", base, {"ssh": {"known_hosts": HOSTS}}, wait_timeout=300
    )
    assert installed is True
    calls = read_helm_log(log)
    assert [c["argv"][0] for c in calls] == ["repo", "list", "upgrade"]
    upgrade = calls[-1]
    argv = upgrade["argv"]
    assert argv[:4] == ["upgrade", "--install", "flux", "flux"]
    assert argv[argv.index("--repo") + 1] == "https://charts.fluxcd.io"
    assert argv[argv.index("--version") + 1] == "1.13.3"
    assert argv[argv.index("--namespace") + 1] == "flux"
    assert argv[argv.index("--kube-context") + 1] == "ctx"
    assert argv[argv.index("--timeout") + 1] == "300s", "the larger of the wait and network"
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "-f"]
    assert files[0] == str(base)
    generated = upgrade["values"][files[1]]
    assert generated is not None, "the generated values file was read"
    assert yaml.safe_load(generated) == {"ssh": {"known_hosts": HOSTS}}
    assert upgrade["modes"][files[1]] == [0o600, 0o700], "a private values file"
    assert not Path(files[1]).exists(), "the generated values file is removed"
    assert not any("AAAA" in a for a in argv) and "--set" not in argv
    assert read_helm_state(log)["repos"] == {"fluxcd": "https://mirror.example.test"}
    assert helm.upgrade_install("flux", CHART, "flux", base, {}) is False, "an upgrade now"


def test_oci_chart_is_a_reference() -> None:
    operator = Chart("oci://ghcr.io/controlplaneio-fluxcd/charts", "flux-operator", "0.58.1")
    args = Helm(network_timeout=10).upgrade_args(
        "flux-operator", operator, "flux-system", Path("b.yaml"), "v.yaml", timeout=10
    )
    assert args[4] == "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator"
    assert "--repo" not in args


def test_a_release_of_another_chart_is_refused(
    cluster: tuple[FakeKube, dict[str, str], Path], tmp_path: Path
) -> None:
    _, env, log = cluster
    theirs = subprocess.run(
        ["helm", "upgrade", "--install", "flux", "podinfo", "--repo", "https://example.test",
         "--version", "6.0.0", "--namespace", "flux"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    with pytest.raises(HelmReleaseConflictError) as raised:
        Helm(env=env).upgrade_install("flux", CHART, "flux", _base(tmp_path), {})
    assert "podinfo-6.0.0" in raised.value.message and "refusing" in raised.value.message
    assert "helm uninstall flux --namespace flux" in str(raised.value.hint)
    assert [c["argv"][0] for c in read_helm_log(log)] == ["upgrade", "list"]
    assert read_helm_state(log)["releases"]["flux/flux"]["chart"] == "podinfo-6.0.0"


def test_a_failed_first_install_is_uninstalled(
    cluster: tuple[FakeKube, dict[str, str], Path], tmp_path: Path
) -> None:
    kube, env, log = cluster
    kube.fail_next("PATCH", r"/deployments/helm-controller", 500)
    with pytest.raises(HelmError) as raised:
        Helm(env=env).upgrade_install("flux", FLUX2, "flux", _base(tmp_path), {})
    assert "INSTALLATION FAILED" in raised.value.message
    assert "was uninstalled: nothing is left behind" in raised.value.message
    assert read_helm_state(log)["releases"] == {}
    assert kube.get("Deployment", "source-controller", "flux") is None
    assert kube.get("crd", "gitrepositories.source.toolkit.fluxcd.io") is None
    # The re-run installs it.
    assert Helm(env=env).upgrade_install("flux", FLUX2, "flux", _base(tmp_path), {}) is True


def test_a_failed_upgrade_is_left_alone(
    cluster: tuple[FakeKube, dict[str, str], Path], tmp_path: Path
) -> None:
    kube, env, log = cluster
    Helm(env=env).upgrade_install("flux", FLUX2, "flux", _base(tmp_path), {})
    kube.fail_next("PATCH", r"/deployments/", 500)
    with pytest.raises(HelmError, match="UPGRADE FAILED"):
        Helm(env=env).upgrade_install("flux", FLUX2, "flux", _base(tmp_path), {})
    assert "uninstall" not in [c["argv"][0] for c in read_helm_log(log)]
    assert kube.get("Deployment", "source-controller", "flux") is not None


def test_a_failed_rollback_gives_the_one_command(
    cluster: tuple[FakeKube, dict[str, str], Path], tmp_path: Path
) -> None:
    kube, env, _ = cluster
    kube.fail_next("PATCH", r"/deployments/", 500)
    helm = Helm("ctx", {**env, "FAKE_HELM_FAIL": "uninstall"})
    with pytest.raises(HelmError) as raised:
        helm.upgrade_install("flux", FLUX2, "flux", _base(tmp_path), {})
    assert "could not be uninstalled" in raised.value.message
    assert raised.value.hint == (
        "clean it up with: helm uninstall flux --kube-context ctx --namespace flux --timeout 60s"
    )


def test_a_stalled_helm_is_bounded_and_named(
    cluster: tuple[FakeKube, dict[str, str], Path], tmp_path: Path
) -> None:
    kube, env, log = cluster
    helm = Helm(env={**env, "FAKE_HELM_STALL": "upgrade"}, network_timeout=0.5,
                server=kube.url)  # fmt: skip
    started = time.monotonic()
    with pytest.raises(HelmError) as raised:
        helm.upgrade_install("flux", FLUX2, "flux", _base(tmp_path), {}, wait_timeout=0.5)
    assert time.monotonic() - started < 8
    message = raised.value.message
    assert "helm upgrade --install flux did not finish within" in message
    assert FLUX2.repo_url in message and kube.url in message
    assert read_helm_state(log)["releases"] == {}


def test_bad_release_name_and_missing_helm(
    helm_env: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, _ = helm_env
    with pytest.raises(ConfigError, match="not a valid helm release name"):
        Helm(env=env).find("Flux_System", "flux")
    with pytest.raises(ToolNotFoundError, match="helm"):
        Helm(env={"PATH": str(tmp_path)}).upgrade_install("flux", CHART, "flux", tmp_path, {})


def test_releases_values_and_an_unchanged_release(
    cluster: tuple[FakeKube, dict[str, str], Path], tmp_path: Path
) -> None:
    kube, env, _ = cluster
    helm = Helm(env=env)
    assert helm.releases("flux") == []
    base = tmp_path / "base.yaml"
    base.write_text("crds:\n  annotations:\n    helm.sh/resource-policy: keep\nkeep: {a: 1}\n")
    computed = {"keep": {"b": 2}, "extra": [1, 2]}
    helm.upgrade_install("flux", FLUX2, "flux", base, computed)
    [release] = helm.releases("flux")
    assert (release.name, release.chart, release.status) == ("flux", "flux2-2.18.3", "deployed")
    assert helm.values("flux", "flux") == {
        "crds": {"annotations": {"helm.sh/resource-policy": "keep"}},
        "keep": {"a": 1, "b": 2},
        "extra": [1, 2],
    }, "the files merged as helm merges them"
    assert helm.is_current(release, FLUX2, base, computed)
    assert not helm.is_current(release, FLUX2, base, {"keep": {"b": 3}})
    newer = Chart(FLUX2.repo_url, "flux2", "2.19.0")
    assert not helm.is_current(release, newer, base, computed)
    kube.fail_next("PATCH", r"/deployments/", 500)
    with pytest.raises(HelmError):
        helm.upgrade_install("flux", FLUX2, "flux", base, {"keep": {"b": 3}})
    [failed] = helm.releases("flux")
    assert failed.status == "failed"
    assert not helm.is_current(failed, FLUX2, base, {"keep": {"b": 3}}), "a failed one is redone"
