"""The recording fake helm."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fakes.conftest import Kubectl
from tests.fakes.helm import install_fake_helm, read_helm_log, read_helm_state
from tests.fakes.kube import FakeKube

FLUX2_CONTROLLERS = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
]


class Helm:
    def __init__(self, tmp_path: Path, kube_url: str | None = None) -> None:
        self.log = tmp_path / "helm.log"
        self.bin = install_fake_helm(tmp_path / "bin", self.log, kube_url=kube_url)
        self.env = {
            **os.environ,
            "PATH": f"{self.bin.parent}{os.pathsep}{os.environ['PATH']}",
            "KUBECONFIG": str(tmp_path / "kubeconfig"),
            "HELM_CACHE_HOME": str(tmp_path / "helmcache"),
        }

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["helm", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    return Helm(tmp_path)


def test_version_and_repo_add(helm: Helm) -> None:
    assert helm.bin.read_text().startswith("#!/")
    assert helm("version", "--short").stdout.strip().startswith("v3.16.2+g")
    res = helm("repo", "add", "--force-update", "fluxcd-community", "https://example.test/c")
    assert res.returncode == 0, res.stderr
    assert res.stdout == '"fluxcd-community" has been added to your repositories\n'
    res = helm("repo", "update", "fluxcd-community")
    assert res.returncode == 0, res.stderr
    assert "Update Complete" in res.stdout
    assert read_helm_state(helm.log)["repos"] == {"fluxcd-community": "https://example.test/c"}


def test_argv_values_and_env_recorded(helm: Helm, tmp_path: Path) -> None:
    helm("repo", "add", "fluxcd", "https://charts.example.test")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("git:\n  url: git@host:x/y.git\n")
    b.write_text("ssh:\n  known_hosts: host ssh-ed25519 AAAA, other\n")
    argv = [
        "upgrade", "--install", "flux", "fluxcd/flux", "--namespace", "flux",
        "--version", "1.13.3", "-f", str(a), "--values", str(b), "--create-namespace",
        "--wait", "--timeout", "5m", "--kube-context", "ctx",
    ]  # fmt: skip
    res = helm(*argv, HELM_DEBUG="1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith('Release "flux" does not exist. Installing it now.\n')
    assert "REVISION: 1" in res.stdout
    a.unlink()
    b.unlink()  # the caller deletes values files right after: content was captured
    entry = read_helm_log(helm.log)[-1]
    assert entry["argv"] == argv
    assert entry["values"] == {
        str(a): "git:\n  url: git@host:x/y.git\n",
        str(b): "ssh:\n  known_hosts: host ssh-ed25519 AAAA, other\n",
    }
    assert entry["env"]["HELM_DEBUG"] == "1"
    assert entry["env"]["KUBECONFIG"] == helm.env["KUBECONFIG"]
    assert "PATH" not in entry["env"]


def test_repo_not_found(helm: Helm) -> None:
    res = helm("upgrade", "--install", "flux", "nope/flux2", "-n", "flux-system")
    assert res.returncode == 1
    assert res.stderr == "Error: repo nope not found\n"
    assert read_helm_state(helm.log)["releases"] == {}


def test_revision_increments_status_list_uninstall(helm: Helm) -> None:
    helm("repo", "add", "c", "https://c.example.test")
    first = helm("upgrade", "--install", "r", "c/flux2", "-n", "ns", "--version", "2.18.3")
    assert first.returncode == 0, first.stderr
    second = helm("upgrade", "--install", "r", "c/flux2", "-n", "ns", "--version", "2.18.3")
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith('Release "r" has been upgraded. Happy Helming!\n')
    assert "REVISION: 2" in second.stdout

    status = helm("status", "r", "-n", "ns")
    assert status.returncode == 0
    assert "STATUS: deployed" in status.stdout
    assert "REVISION: 2" in status.stdout
    listed = json.loads(helm("list", "-n", "ns", "-o", "json").stdout)
    assert [(r["name"], r["revision"], r["chart"]) for r in listed] == [("r", "2", "flux2-2.18.3")]
    assert json.loads(helm("list", "-n", "other", "-o", "json").stdout) == []

    assert helm("uninstall", "r", "-n", "ns").stdout == 'release "r" uninstalled\n'
    missing = helm("status", "r", "-n", "ns")
    assert (missing.returncode, missing.stderr) == (1, "Error: release: not found\n")


def test_fake_helm_fail_upgrade(helm: Helm) -> None:
    helm("repo", "add", "c", "https://c.example.test")
    res = helm("upgrade", "--install", "r", "c/flux2", FAKE_HELM_FAIL="upgrade")
    assert res.returncode == 1
    assert res.stderr.startswith("Error: ")
    assert read_helm_state(helm.log)["releases"] == {}
    assert helm("version", "--short", FAKE_HELM_FAIL="upgrade").returncode == 0


def test_flux2_install_creates_deployments(
    kube: FakeKube, kubectl: Kubectl, tmp_path: Path
) -> None:
    helm = Helm(tmp_path, kube_url=kube.url)
    helm("repo", "add", "fluxcd-community", "https://fluxcd-community.example.test")
    no_ns = helm("upgrade", "--install", "flux2", "fluxcd-community/flux2", "-n", "flux-system")
    assert no_ns.returncode == 1
    assert 'namespaces "flux-system" not found' in no_ns.stderr

    res = helm(
        "upgrade", "--install", "flux2", "fluxcd-community/flux2",
        "-n", "flux-system", "--create-namespace", "--wait",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    for name in FLUX2_CONTROLLERS:
        assert kube.get("Deployment", name, "flux-system") is not None
        status = kubectl("rollout", "status", f"deployment/{name}", "-n", "flux-system",
                         "--timeout=5s")  # fmt: skip
        assert status.returncode == 0, status.stderr

    values = tmp_path / "sync.yaml"
    values.write_text(
        "gitRepository:\n  spec:\n    url: ssh://git@host/x/y.git\n"
        "    secretRef: {name: flux-system}\n"
        "kustomization:\n  spec:\n    path: ./clusters/dev\n"
    )
    sync = helm(
        "upgrade", "--install", "flux-system", "fluxcd-community/flux2-sync",
        "-n", "flux-system", "-f", str(values),
    )  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    repo = kube.get("GitRepository", "flux-system", "flux-system")
    assert repo is not None
    assert repo["spec"]["url"] == "ssh://git@host/x/y.git"
    assert repo["spec"]["ref"] == {"branch": "master"}
    ks = kube.get("Kustomization", "flux-system", "flux-system")
    assert ks is not None
    assert ks["spec"]["path"] == "./clusters/dev"
    assert ks["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}

    helm("uninstall", "flux2", "-n", "flux-system")
    assert kube.get("Deployment", "source-controller", "flux-system") is None


def test_flux_v1_install_creates_release_deployment(kube: FakeKube, tmp_path: Path) -> None:
    helm = Helm(tmp_path, kube_url=kube.url)
    helm("repo", "add", "fluxcd", "https://charts.example.test")
    res = helm("upgrade", "--install", "flux", "fluxcd/flux", "-n", "flux", "--create-namespace")
    assert res.returncode == 0, res.stderr
    assert kube.get("Deployment", "flux", "flux") is not None


def test_repo_flag_leaves_the_repositories_alone(helm: Helm) -> None:
    helm("repo", "add", "fluxcd-community", "https://mirror.example.test/charts")
    res = helm("upgrade", "--install", "flux", "flux2", "--repo", "https://charts.example.test",
               "--version", "2.18.3", "-n", "flux-system", "--timeout", "300s")  # fmt: skip
    assert res.returncode == 0, res.stderr
    state = read_helm_state(helm.log)
    assert state["repos"] == {"fluxcd-community": "https://mirror.example.test/charts"}
    release = state["releases"]["flux-system/flux"]
    assert (release["chart"], release["repo"]) == ("flux2-2.18.3", "https://charts.example.test")
    qualified = helm("upgrade", "--install", "x", "fluxcd-community/flux2",
                     "--repo", "https://charts.example.test")  # fmt: skip
    assert qualified.returncode == 1
    assert 'chart "fluxcd-community/flux2" not found in https://charts.example.test' in (
        qualified.stderr
    )
    oci = helm("upgrade", "--install", "op", "oci://ghcr.io/example/charts/flux-operator",
               "--version", "0.58.1", "-n", "flux-system")  # fmt: skip
    assert oci.returncode == 0, oci.stderr


def test_list_filter_and_all(helm: Helm, kube: FakeKube, tmp_path: Path) -> None:
    helm = Helm(tmp_path, kube_url=kube.url)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}})
    for name in ("flux", "flux-sync"):
        assert helm("upgrade", "--install", name, "flux2", "--repo", "https://c.example.test",
                    "-n", "ns").returncode == 0  # fmt: skip
    kube.fail_next("PATCH", r"/deployments/", 500)
    failed = helm("upgrade", "--install", "broken", "flux2", "--repo", "https://c.example.test",
                  "-n", "ns")  # fmt: skip
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: INSTALLATION FAILED: failed to create resource")
    listed = json.loads(helm("list", "-n", "ns", "--filter", "^flux$", "-o", "json").stdout)
    assert [(r["name"], r["status"], r["chart"]) for r in listed] == [
        ("flux", "deployed", "flux2-0.1.0")
    ]
    everything = json.loads(helm("list", "-n", "ns", "--all", "-o", "json").stdout)
    assert {r["name"]: r["status"] for r in everything} == {
        "broken": "failed", "flux": "deployed", "flux-sync": "deployed"
    }  # fmt: skip
    helm("uninstall", "broken", "-n", "ns")
    assert kube.get("Deployment", "source-controller", "ns") is not None, "flux's own objects stay"


def test_a_chart_needing_missing_crds_installs_nothing(kube: FakeKube, tmp_path: Path) -> None:
    helm = Helm(tmp_path, kube_url=kube.url)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}})
    early = helm("upgrade", "--install", "flux-sync", "flux2-sync", "--repo",
                 "https://c.example.test", "-n", "flux-system")  # fmt: skip
    assert early.returncode == 1
    assert 'no matches for kind "GitRepository" in version "source.toolkit.fluxcd.io/v1"' in (
        early.stderr
    )
    assert "ensure CRDs are installed first" in early.stderr
    assert read_helm_state(helm.log)["releases"] == {}
    controllers = helm("upgrade", "--install", "flux", "flux2", "--repo",
                       "https://c.example.test", "-n", "flux-system")  # fmt: skip
    assert controllers.returncode == 0, controllers.stderr
    crd = kube.get("crd", "gitrepositories.source.toolkit.fluxcd.io")
    assert crd is not None and crd["metadata"]["labels"]["app.kubernetes.io/instance"] == "flux"
    sync = helm("upgrade", "--install", "flux-sync", "flux2-sync", "--repo",
                "https://c.example.test", "-n", "flux-system")  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    assert kube.get("GitRepository", "flux-sync", "flux-system") is not None
    helm("uninstall", "flux", "-n", "flux-system")
    assert kube.get("crd", "gitrepositories.source.toolkit.fluxcd.io") is None
    assert not [k for k in kube.objects if k[1] == "gitrepositories"], "gone with their CRD"


def test_fake_helm_stall(helm: Helm) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(["helm", "upgrade", "--install", "r", "flux2", "--repo", "https://c.test"],
                       env={**helm.env, "FAKE_HELM_STALL": "upgrade"}, timeout=1)  # fmt: skip
    assert read_helm_log(helm.log)[-1]["argv"][0] == "upgrade"


# --- releases stored as helm stores them; the CRD keep policy; the Flux Operator's OCI chart ---

OPERATOR_CHART = "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator"


def release_secrets(kube: FakeKube, namespace: str) -> dict[str, dict[str, str]]:
    return {
        s["metadata"]["name"]: s["metadata"]["labels"]
        for s in kube.list_objects("Secret", namespace)
        if s.get("type") == "helm.sh/release.v1"
    }


def test_releases_are_secrets_in_the_release_namespace(
    kube: FakeKube, kubectl: Kubectl, tmp_path: Path
) -> None:
    helm = Helm(tmp_path, kube_url=kube.url)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}})
    for _ in range(2):
        done = helm("upgrade", "--install", "flux", "flux2", "--repo", "https://c.example.test",
                    "--version", "2.18.3", "-n", "flux-system")  # fmt: skip
        assert done.returncode == 0, done.stderr
    secrets = release_secrets(kube, "flux-system")
    assert secrets == {
        "sh.helm.release.v1.flux.v1": {"name": "flux", "owner": "helm", "status": "superseded",
                                       "version": "1"},
        "sh.helm.release.v1.flux.v2": {"name": "flux", "owner": "helm", "status": "deployed",
                                       "version": "2"},
    }  # fmt: skip
    assert read_helm_state(helm.log)["releases"]["flux-system/flux"]["revision"] == 2
    # Deleting helm's records (and nothing else) makes helm forget the release, objects stay.
    forget = kubectl("delete", "secret", "-n", "flux-system", "-l", "owner=helm,name=flux")
    assert forget.returncode == 0, forget.stderr
    assert json.loads(helm("list", "-n", "flux-system", "--all", "-o", "json").stdout) == []
    assert read_helm_state(helm.log)["releases"] == {}
    assert kube.get("crd", "gitrepositories.source.toolkit.fluxcd.io") is not None
    assert kube.get("Deployment", "source-controller", "flux-system") is not None


def test_uninstall_keeps_what_the_resource_policy_keeps(kube: FakeKube, tmp_path: Path) -> None:
    helm = Helm(tmp_path, kube_url=kube.url)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}})
    keep = tmp_path / "keep.yaml"
    keep.write_text("crds:\n  annotations:\n    helm.sh/resource-policy: keep\n")
    for release, chart in (("flux", "flux2"), ("flux-sync", "flux2-sync")):
        done = helm("upgrade", "--install", release, chart, "--repo", "https://c.example.test",
                    "-n", "flux-system", "-f", str(keep))  # fmt: skip
        assert done.returncode == 0, done.stderr
    crd = kube.get("crd", "kustomizations.kustomize.toolkit.fluxcd.io") or {}
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    gone = helm("uninstall", "flux", "-n", "flux-system")
    assert gone.returncode == 0, gone.stderr
    assert "These resources were kept due to the resource policy:" in gone.stdout
    assert "[CustomResourceDefinition] kustomizations.kustomize.toolkit.fluxcd.io" in gone.stdout
    assert kube.get("Deployment", "source-controller", "flux-system") is None
    assert kube.get("Kustomization", "flux-sync", "flux-system") is not None, "kept with its CRD"


def test_the_flux_operator_chart_by_oci_reference(
    kube: FakeKube, kubectl: Kubectl, tmp_path: Path
) -> None:
    helm = Helm(tmp_path, kube_url=kube.url)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}})
    bad = helm("upgrade", "--install", "flux-operator", "oci://ghcr.io", "-n", "flux-system")
    assert bad.returncode == 1 and "invalid OCI reference" in bad.stderr
    done = helm("upgrade", "--install", "flux-operator", OPERATOR_CHART, "--version", "0.58.1",
                "-n", "flux-system")  # fmt: skip
    assert done.returncode == 0, done.stderr
    release = read_helm_state(helm.log)["releases"]["flux-system/flux-operator"]
    assert (release["chart"], release["chart_ref"]) == ("flux-operator-0.58.1", OPERATOR_CHART)
    assert kube.get("Deployment", "flux-operator", "flux-system") is not None
    crd = kube.get("crd", "fluxinstances.fluxcd.controlplane.io") or {}
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    invalid = kubectl("apply", "--server-side", "-f", "-", input=json.dumps({
        "apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxInstance",
        "metadata": {"name": "flux", "namespace": "flux-system"},
        "spec": {"distribution": {"version": "2.9.x"}},
    }))  # fmt: skip
    assert invalid.returncode == 1
    assert "spec.distribution.registry: Required value" in invalid.stderr, "its schema holds"
