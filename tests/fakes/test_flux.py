"""The fake Flux controllers (operator, source-controller, kustomize-controller) on FakeKube,
with the recording helm installing the operator and a real sshd serving the repository."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.conftest import Kubectl, ServerState, SSHKey
from tests.fakes.flux import FakeFlux
from tests.fakes.kube import FakeKube
from tests.fakes.sshd import GitSSHServer
from tests.fakes.test_helm import OPERATOR_CHART, Helm

NS = "flux-system"


def instance(url: str, **spec: object) -> str:
    body: dict[str, object] = {
        "distribution": {"version": "2.9.x", "registry": "ghcr.io/fluxcd"},
        "sync": {"kind": "GitRepository", "url": url, "ref": "refs/heads/main", "path": "./",
                 "pullSecret": "flux-ssh"},
        **spec,
    }  # fmt: skip
    return json.dumps({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxInstance",
                       "metadata": {"name": "flux", "namespace": NS}, "spec": body})  # fmt: skip


def ready(obj: dict[str, object] | None) -> dict[str, str]:
    assert obj is not None
    status = obj.get("status") or {}
    assert isinstance(status, dict)
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})


def secret(key: SSHKey, known_hosts: str) -> dict[str, object]:
    data = {"identity": key.private.read_text(), "known_hosts": known_hosts}
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    meta = {"name": "flux-ssh", "namespace": NS}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": encoded}


@pytest.fixture
def installed(kube: FakeKube, kubectl: Kubectl, tmp_path: Path) -> tuple[FakeFlux, Helm]:
    """The operator installed by helm in flux-system; the controllers running."""
    flux = FakeFlux(kube)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    helm = Helm(tmp_path, kube_url=kube.url)
    done = helm("upgrade", "--install", "flux-operator", OPERATOR_CHART, "--version", "0.58.1",
                "-n", NS)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return flux, helm


def test_a_flux_instance_installs_flux_and_syncs_over_ssh(
    kube: FakeKube,
    kubectl: Kubectl,
    installed: tuple[FakeFlux, Helm],
    git_ssh_server: GitSSHServer,
    ssh_state: ServerState,
    known_hosts: Path,
    make_key: Callable[[str], SSHKey],
) -> None:
    key = make_key("flux")
    ssh_state.keys.append((key.public, False))
    kube.put(secret(key, known_hosts.read_text()))
    url = git_ssh_server.git_url("group/manifests")
    applied = kubectl("apply", "--server-side", "-f", "-", input=instance(url))
    assert applied.returncode == 0, applied.stderr
    kube.settle()
    assert kube.controller_errors == []
    for name in ("source-controller", "kustomize-controller", "helm-controller",
                 "notification-controller"):  # fmt: skip
        assert kube.get("Deployment", name, NS) is not None
    repo = kube.get("GitRepository", NS, NS) or {}
    assert repo["spec"]["ref"] == {"name": "refs/heads/main"}
    assert repo["spec"]["secretRef"] == {"name": "flux-ssh"}
    assert repo["spec"]["interval"] == "1m"
    assert ready(repo)["status"] == "True", ready(repo)
    revision = repo["status"]["artifact"]["revision"]
    assert revision.startswith("refs/heads/main@sha1:") and len(revision) == 61
    ks = kube.get("Kustomization", NS, NS) or {}
    assert ks["spec"]["sourceRef"] == {"kind": "GitRepository", "name": NS}
    assert ks["spec"]["prune"] is True and ks["spec"]["path"] == "./"
    assert (ready(ks)["status"], ks["status"]["lastAppliedRevision"]) == ("True", revision)
    fi = kube.get("FluxInstance", "flux", NS) or {}
    assert ready(fi)["status"] == "True"
    assert fi["status"]["lastAppliedRevision"].startswith("v2.9.4@sha256:")

    waited = kubectl("wait", "--for=condition=Ready", "--timeout=5s", "fluxinstance/flux",
                     "-n", NS)  # fmt: skip
    assert waited.returncode == 0, waited.stderr

    # A version the operator does not bundle is a failed reconciliation, named.
    kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=instance(url, distribution={"version": "3.x", "registry": "ghcr.io/fluxcd"}),
    )
    kube.settle()
    failed = ready(kube.get("FluxInstance", "flux", NS))
    assert failed["status"] == "False" and "3.x" in failed["message"]


def test_the_source_fails_with_flux_messages_and_reconciles_on_request(
    kube: FakeKube,
    kubectl: Kubectl,
    installed: tuple[FakeFlux, Helm],
    git_ssh_server: GitSSHServer,
    ssh_state: ServerState,
    known_hosts: Path,
    make_key: Callable[[str], SSHKey],
) -> None:
    flux, _ = installed
    key = make_key("flux")  # not a deploy key (yet)
    kube.put(secret(key, known_hosts.read_text()))
    url = git_ssh_server.git_url("group/manifests")
    kubectl("apply", "--server-side", "-f", "-", input=instance(url))
    kube.settle()
    refused = ready(kube.get("GitRepository", NS, NS))
    assert refused["status"] == "False" and refused["reason"] == "GitOperationFailed"
    assert refused["message"] == (
        f"failed to checkout and determine revision: unable to list remote for '{url}': ssh: "
        "handshake failed: ssh: unable to authenticate, attempted methods [none publickey], "
        "no supported methods remain"
    )
    assert ready(kube.get("Kustomization", NS, NS))["status"] == "False"
    assert ready(kube.get("FluxInstance", "flux", NS))["status"] == "Unknown", "still waiting"

    # The deploy key is added; nothing happens until a reconcile is requested.
    ssh_state.keys.append((key.public, False))
    annotate = kubectl("annotate", "--overwrite", "gitrepository", NS, "-n", NS,
                       "reconcile.fluxcd.io/requestedAt=2026-09-01T10:00:00Z")  # fmt: skip
    assert annotate.returncode == 0, annotate.stderr
    kube.settle()
    repo = kube.get("GitRepository", NS, NS) or {}
    assert repo["status"]["lastHandledReconcileAt"] == "2026-09-01T10:00:00Z"
    assert ready(repo)["status"] == "True"
    assert ready(kube.get("Kustomization", NS, NS))["status"] == "True"
    assert ready(kube.get("FluxInstance", "flux", NS))["status"] == "True"

    # A host key that is not the server's, and a failure a test imposes.
    impostor = make_key("impostor").public.split()[:2]
    kube.put(secret(key, f"[127.0.0.1]:{git_ssh_server.port} {' '.join(impostor)}\n"))
    kubectl("annotate", "--overwrite", "gitrepository", NS, "-n", NS,
            "reconcile.fluxcd.io/requestedAt=2026-09-01T10:01:00Z")  # fmt: skip
    kube.settle()
    assert ready(kube.get("GitRepository", NS, NS))["message"].endswith(
        "ssh: handshake failed: knownhosts: key mismatch"
    )
    flux.source_failure = "imposed by the test"
    kubectl("annotate", "--overwrite", "gitrepository", NS, "-n", NS,
            "reconcile.fluxcd.io/requestedAt=2026-09-01T10:02:00Z")  # fmt: skip
    kube.settle()
    assert ready(kube.get("GitRepository", NS, NS))["message"] == "imposed by the test"
    assert kube.controller_errors == []
