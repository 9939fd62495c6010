"""flux-bootstrap and flux-rotate-key under faults: a rotation interrupted and resumed, host-key
pins as people use them, unreachable and stalled hosts, a dry run before anything exists, helm
without side effects. Real sshd, real kubectl against FakeKube, recording helm, FakeGitLab."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import gitlab
import pytest

from gitopskit.errors import ConfigError, HelmError, KubeError
from gitopskit.flux import RETIRING_ANNOTATION
from gitopskit.flux.readiness import FluxNotReadyError
from gitopskit.helm import HelmReleaseConflictError
from gitopskit.kube import ClusterUnreachableError
from gitopskit.ssh import HostUnreachableError, fingerprint
from tests.conftest import ROOT, run_invoke
from tests.fakes.helm import read_helm_state
from tests.flux_fixtures import *  # noqa: F403
from tests.flux_fixtures import (
    MAINT_TOKEN,
    FluxWorld,
    StalledServer,
    closed_port,
    write_kubeconfig,
)

REPO = "group/manifests"


def secret_annotations(world: FluxWorld) -> dict[str, str]:
    secret = world.kube.get("Secret", "flux-ssh", "flux-system")
    assert secret is not None
    found: dict[str, str] = secret["metadata"].get("annotations") or {}
    return found


def deploy_key_fingerprints(world: FluxWorld) -> list[str]:
    return [fingerprint(k["key"]) for k in world.project.deploy_keys]


def clones(world: FluxWorld, secret: dict[str, str], name: str) -> bool:
    url = world.project.ssh_url_to_repo
    return world.git(secret["identity"], secret["known_hosts"], "clone", url, name).returncode == 0


def no_private_key_in(text: str, *secrets: dict[str, str]) -> None:
    for secret in secrets:
        for line in secret["identity"].splitlines()[1:-1]:
            assert line not in text


# --- §5 a rotation that fails midway is finished by the next run -----------------------------


def test_rotation_resumes_after_a_failed_restart(world: FluxWorld) -> None:
    world.run(wait=False, FLUX_INSTALLER="charts")  # the rotation's own waits are tested here
    original = world.secret()
    other_cluster = _add_other_clusters_key(world)
    world.kube.fail_next("PATCH", r"/deployments/", 500)  # the rollout restart fails once
    with pytest.raises(KubeError) as raised:
        world.run(rotate=True)
    assert "run `invoke flux-rotate-key` (or flux-bootstrap) again to finish it" in str(
        raised.value.hint
    )
    # The Secret holds the new key and records, by fingerprint only, the key being retired.
    intermediate = world.secret()
    assert intermediate["identity"] != original["identity"]
    assert secret_annotations(world) == {RETIRING_ANNOTATION: fingerprint(original["identity.pub"])}
    assert len(world.project.deploy_keys) == 3

    result = world.run(rotate=True)
    assert not result.key_generated, "the re-run finishes the rotation, no third key"
    assert result.rotation_finished
    final = world.secret()
    assert final == intermediate
    assert secret_annotations(world) == {}
    assert sorted(deploy_key_fingerprints(world)) == sorted(
        [fingerprint(final["identity.pub"]), fingerprint(other_cluster["key"])]
    ), "only the recorded key is deleted; the other cluster's stays"
    assert not clones(world, original, "old") and clones(world, final, "new")

    # Nothing left to do: a further bootstrap writes nothing.
    world.gitlab.requests.clear()
    world.kube.clear_requests()
    world.run(wait=False, FLUX_INSTALLER="charts")
    assert world.gitlab_writes() == []
    assert not [r for r in world.kube.writes() if "/secrets/flux-ssh" in r.path]
    no_private_key_in(world.output(), original, intermediate)


def test_bootstrap_finishes_a_rotation_left_by_a_failed_wait(world: FluxWorld) -> None:
    world.run(wait=False, FLUX_INSTALLER="charts")
    original = world.secret()
    world.kube.auto_ready = False  # the restarted controllers never become ready
    with pytest.raises(KubeError, match="rollout status"):
        world.run(rotate=True, FLUX_WAIT_TIMEOUT="1")
    assert RETIRING_ANNOTATION in secret_annotations(world)
    world.kube.auto_ready = True

    no_wait = world.run(wait=False, FLUX_INSTALLER="charts")
    assert "run again without --no-wait, or flux-rotate-key, to finish it" in world.outputs[-1]
    assert not no_wait.rotation_finished and RETIRING_ANNOTATION in secret_annotations(world)

    result = world.run(FLUX_INSTALLER="charts")
    assert result.rotation_finished
    final = world.secret()
    assert secret_annotations(world) == {}
    assert deploy_key_fingerprints(world) == [fingerprint(final["identity.pub"])]
    assert not clones(world, original, "old")


def test_a_failed_secret_write_withdraws_the_new_deploy_key(world: FluxWorld) -> None:
    world.run(wait=False)
    original = world.secret()
    world.kube.fail_next("PATCH", r"/secrets/flux-ssh", 500)
    with pytest.raises(KubeError):
        world.run(rotate=True)
    assert world.secret() == original and secret_annotations(world) == {}
    assert deploy_key_fingerprints(world) == [fingerprint(original["identity.pub"])]
    assert "deleted the new deploy key" in world.outputs[-1]


def _add_other_clusters_key(world: FluxWorld) -> dict[str, str]:
    """Another cluster's read-only deploy key on the project, added through GitLab's API."""
    path = world.tmp / "other-cluster"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
                   check=True)  # fmt: skip
    public = path.with_name("other-cluster.pub").read_text().strip()
    project = gitlab.Gitlab(world.gitlab.url, private_token=MAINT_TOKEN).projects.get(REPO)
    project.keys.create({"title": "flux other/flux-system", "key": public, "can_push": False})
    return {"key": public}


# --- §6 host keys: pins as people use them; unreachable hosts named --------------------------


def test_one_pinned_fingerprint_writes_that_key_and_names_the_others(world: FluxWorld) -> None:
    ed25519 = world.sshd.host_key_fingerprints()["ssh-ed25519"]
    result = world.run(fingerprints=(ed25519,), require_pinned=True, wait=False)
    assert result.host_pinned
    secret = world.secret()
    assert secret["known_hosts"].splitlines() == [
        f"[127.0.0.1]:{world.sshd.port} {world.sshd.host_public_keys()['ssh-ed25519']}"
    ]
    output = world.outputs[-1]
    assert "left out of known_hosts (no pin)" in output
    assert "ecdsa-sha2-nistp256" in output and "ssh-rsa" in output
    assert clones(world, secret, "clone"), "ssh negotiates the pinned key type"


def test_unreachable_git_host_names_the_cause_and_changes_nothing(world: FluxWorld) -> None:
    url = f"ssh://git@127.0.0.1:{closed_port()}/{REPO}.git"
    with pytest.raises(HostUnreachableError, match="connection refused"):
        world.run(FLUX_GIT_URL=url)
    with pytest.raises(HostUnreachableError, match="name resolution failed"):
        world.run(FLUX_GIT_URL=f"git@nohost.invalid:{REPO}.git")
    assert world.kube.writes() == [] and world.gitlab_writes() == []
    assert {c["argv"][0] for c in world.helm_calls()} == {"list"}, "helm only read"


def test_scp_url_with_a_port_gets_a_warning(world: FluxWorld) -> None:
    port = world.sshd.port
    world.run(dry_run=True, FLUX_GIT_URL=f"git@127.0.0.1:{port}/{REPO}.git")
    assert f"write ssh://git@127.0.0.1:{port}/{REPO}.git" in world.output()


# --- §1 stalled servers: bounded, named, nothing half-made -----------------------------------


def test_a_stalled_git_host_is_bounded(world: FluxWorld, stalled: StalledServer) -> None:
    started = time.monotonic()
    with pytest.raises(HostUnreachableError) as raised:
        world.run(FLUX_GIT_URL=f"ssh://git@127.0.0.1:{stalled.port}/{REPO}.git",
                  NETWORK_TIMEOUT="1")  # fmt: skip
    assert time.monotonic() - started < 10
    assert f"127.0.0.1:{stalled.port}" in raised.value.message
    assert "no SSH greeting within 1s" in raised.value.message
    assert world.kube.writes() == [] and world.gitlab_writes() == []


def test_a_stalled_api_server_is_bounded(
    world: FluxWorld, stalled: StalledServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = f"http://127.0.0.1:{stalled.port}"
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(world.tmp / "stalled", server)))
    started = time.monotonic()
    with pytest.raises(ClusterUnreachableError) as raised:
        world.run(NETWORK_TIMEOUT="0.5")
    assert time.monotonic() - started < 15
    assert server in raised.value.message and "did not answer within 1s" in raised.value.message
    assert world.gitlab_writes() == [] and world.helm_calls() == []


# --- §7 the dry run before anything exists ---------------------------------------------------


def _invoke(project: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """The task as a user runs it, in this test's environment (``os.environ``) plus ``env``,
    importing this checkout's gitopskit."""
    done = run_invoke(project, *args, env={"PYTHONPATH": str(ROOT), **env})
    return done.returncode, done.stdout, done.stderr


def test_dry_run_without_cluster_network_or_token(
    world: FluxWorld, flux_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITLAB_TOKEN")
    kubeconfig = write_kubeconfig(tmp_path / "down", f"http://127.0.0.1:{closed_port()}")
    url = f"ssh://git@127.0.0.1:{closed_port()}/{REPO}.git"
    code, out, err = _invoke(
        flux_project, "flux-bootstrap", "--dry-run", "--git-url", url, "--git-branch", "main",
        KUBECONFIG=str(kubeconfig),
    )  # fmt: skip
    assert code == 0, err
    assert "cluster not reachable: would create Namespace flux-system and apply Secret " \
        "flux-system/flux-ssh" in err  # fmt: skip
    assert "connection refused" in err
    assert "git host not reachable: would scan" in err
    assert "no GitLab token: would add a read-only deploy key 'flux remote/flux-system'" in err
    assert "cluster not reachable: would install or upgrade flux-operator" in err
    assert "helm upgrade --install flux-operator oci://ghcr.io/controlplaneio-fluxcd/charts/" \
        "flux-operator --namespace flux-system --version 0.58.1" in err  # fmt: skip
    assert "crd/fluxinstances.fluxcd.controlplane.io" in err
    assert "cluster not reachable: would apply FluxInstance flux-system/flux" in err
    assert "kind: FluxInstance" in err and f"url: {url}" in err
    assert "cluster not reachable: would wait until GitRepository flux-system/flux-system" in err
    assert "dry run: nothing was changed" in err
    assert "Traceback" not in err + out and "PRIVATE KEY" not in err + out
    assert world.gitlab.requests == [] and world.kube.requests == []


def test_dry_run_with_gitlab_out_of_reach(
    world: FluxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_URL", f"http://127.0.0.1:{closed_port()}")
    url = world.project.ssh_url_to_repo
    result = world.run(dry_run=True, FLUX_GIT_URL=url, MANIFESTS_TARGET_BRANCH="main")
    output = world.output()
    assert "GitLab not reachable: cannot reach GitLab" in output
    assert "the dry run cannot check it" in output
    assert "GitLab not reachable: would add a read-only deploy key 'flux fake/flux-system'" in (
        output
    )
    assert result.unchecked == ["GitLab not reachable"] and result.host_pinned is False
    assert MAINT_TOKEN not in output and world.kube.writes() == []


def test_dry_run_that_cannot_know_the_url_prints_the_plan_and_fails(
    world: FluxWorld, flux_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITLAB_TOKEN")
    code, _, err = _invoke(flux_project, "flux-bootstrap", "--dry-run")
    assert code == 1
    assert "git URL unknown: would scan the git host's SSH keys" in err
    assert "would install or upgrade" in err or "would install flux" in err
    assert "the plan is incomplete: the git URL (pass --git-url); the branch (pass " \
        "--git-branch) could not be known" in err  # fmt: skip
    assert "Traceback" not in err


def test_no_kube_context_is_one_line_with_the_hint(
    world: FluxWorld, flux_project: Path, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-kubeconfig")
    code, _, err = _invoke(flux_project, "flux-bootstrap", KUBECONFIG=missing)
    assert code == 1
    [error] = [line for line in err.splitlines() if line.startswith("error")]
    assert "no kube context configured" in error and missing in error
    assert "--context" in err and "KUBECONFIG" in err
    assert "localhost:8080" not in err and "memcache" not in err and "Traceback" not in err
    code, _, err = _invoke(flux_project, "flux-bootstrap", "--dry-run", KUBECONFIG=missing)
    assert code == 0, err
    assert "no kube context configured" in err and "would create Namespace flux-system" in err
    assert world.kube.writes() == [] and world.gitlab_writes() == []


# --- §8 helm without side effects ------------------------------------------------------------


def test_helm_leaves_the_repositories_alone_and_waits_for_the_crds(world: FluxWorld) -> None:
    mirror = subprocess.run(
        ["helm", "repo", "add", "fluxcd-community", "https://mirror.example.test/charts"],
        env=world.env, capture_output=True, text=True,
    )  # fmt: skip
    assert mirror.returncode == 0, mirror.stderr
    world.kube.crd_establish_delay = 1.5  # flux2-sync's kinds are served 1.5 s after flux2
    world.run(wait=False, FLUX_INSTALLER="charts")
    assert read_helm_state(world.helm_log)["repos"] == {
        "fluxcd-community": "https://mirror.example.test/charts"
    }
    assert [c["argv"][0] for c in world.helm_calls()].count("repo") == 1, "ours only"
    assert world.kube.get("GitRepository", "flux-sync", "flux-system") is not None
    watched = [r for r in world.kube.requests
               if "customresourcedefinitions" in r.path and r.query.get("watch")]  # fmt: skip
    assert watched, "kubectl wait watched the CRDs"


def test_a_release_of_another_chart_is_refused(world: FluxWorld) -> None:
    world.run(FLUX_VERSION="1", FLUX_NAMESPACE="flux-system", wait=False)  # Flux 1's "flux"
    world.gitlab.requests.clear()
    with pytest.raises(HelmReleaseConflictError) as raised:
        world.run(FLUX_VERSION="2", FLUX_INSTALLER="charts")
    assert "flux-system/flux is the chart flux-1.13.3" in raised.value.message
    # The operator would install a second Flux beside Flux 1: refused too, before any write.
    world.kube.clear_requests()
    with pytest.raises(ConfigError) as beside:
        world.run(FLUX_VERSION="2")
    assert "Flux 1 (helm release flux, flux-1.13.3) runs in flux-system" in beside.value.message
    assert "helm uninstall flux" in str(beside.value.hint) and world.kube.writes() == []
    release = read_helm_state(world.helm_log)["releases"]["flux-system/flux"]
    assert release["chart"] == "flux-1.13.3" and release["revision"] == 1
    assert world.kube.get("Deployment", "flux", "flux-system") is not None


def test_a_failed_first_install_is_rolled_back_and_the_rerun_completes(
    world: FluxWorld,
) -> None:
    world.kube.fail_next("PATCH", r"/deployments/helm-controller", 500)
    with pytest.raises(HelmError, match="was uninstalled: nothing is left behind"):
        world.run(FLUX_INSTALLER="charts")
    assert read_helm_state(world.helm_log)["releases"] == {}
    assert world.kube.get("Deployment", "source-controller", "flux-system") is None
    world.run(wait=False, FLUX_INSTALLER="charts")
    assert set(read_helm_state(world.helm_log)["releases"]) == {
        "flux-system/flux", "flux-system/flux-sync"
    }  # fmt: skip


# --- the Flux Operator: a rotation, known_hosts and a migration interrupted, then finished ---


def test_operator_rotation_keeps_the_old_key_until_flux_fetched_with_the_new(
    world: FluxWorld,
) -> None:
    world.run()
    original = world.secret()
    world.flux.source_failure = "failed to checkout and determine revision: unable to list " \
        "remote for 'ssh://x': ssh: handshake failed: ssh: unable to authenticate"  # fmt: skip
    with pytest.raises(FluxNotReadyError) as raised:
        world.run(rotate=True, FLUX_WAIT_TIMEOUT="1")
    assert "GitRepository flux-system/flux-system" in raised.value.message
    assert "unable to authenticate" in raised.value.message
    assert "run `invoke flux-rotate-key` (or flux-bootstrap) again to finish it" in str(
        raised.value.hint
    )
    new = world.secret()
    assert new["identity"] != original["identity"]
    assert secret_annotations(world) == {RETIRING_ANNOTATION: fingerprint(original["identity.pub"])}
    assert len(world.project.deploy_keys) == 2, "the old key stays until Flux used the new one"

    world.flux.source_failure = None
    result = world.run()  # bootstrap finishes the rotation
    assert result.rotation_finished and secret_annotations(world) == {}
    assert deploy_key_fingerprints(world) == [fingerprint(new["identity.pub"])]
    assert world.ready("GitRepository", "flux-system")["status"] == "True"
    no_private_key_in(world.output(), original, new)
