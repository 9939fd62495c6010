"""flux-bootstrap and flux-rotate-key end to end: real sshd, real kubectl against FakeKube,
recording helm, FakeGitLab for deploy keys."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
import yaml

from gitopskit.errors import (
    ConfigError,
    GitLabPermissionError,
    HostKeyError,
    KubeError,
    ToolNotFoundError,
)
from tests.conftest import run_invoke
from tests.fakes.helm import HelmCall, read_helm_state
from tests.flux_fixtures import *  # noqa: F403
from tests.flux_fixtures import DEV_TOKEN, MAINT_TOKEN, FluxWorld

REPO = "group/manifests"
FLUX2_REPO = "https://fluxcd-community.github.io/helm-charts"


def upgrades(world: FluxWorld) -> list[HelmCall]:
    return [c for c in world.helm_calls() if c["argv"][:1] == ["upgrade"]]


def generated_values(call: HelmCall) -> dict[str, object]:
    *_, generated = call["values"].values()
    assert generated is not None, "the generated values file was read"
    loaded: dict[str, object] = yaml.safe_load(generated)
    return loaded


def test_charts_bootstrap_clone_rerun_and_rotate(world: FluxWorld) -> None:
    """--installer charts: the fluxcd-community charts, as before the operator."""
    url = world.project.ssh_url_to_repo
    result = world.run(FLUX_INSTALLER="charts")

    secret = world.secret()
    assert set(secret) == {"identity", "identity.pub", "known_hosts"}
    assert result.key_generated and result.deploy_key_created
    assert f"[127.0.0.1]:{world.sshd.port} ecdsa-sha2-nistp256 " in secret["known_hosts"]
    assert "#" not in secret["known_hosts"]
    [deploy_key] = world.project.deploy_keys
    assert deploy_key["can_push"] is False
    assert deploy_key["title"] == "flux fake/flux-system"
    assert deploy_key["key"] == secret["identity.pub"].strip()
    assert result.deploy_key_id == deploy_key["id"]

    # Server-side apply only; the key never lands in an annotation.
    patches = [r for r in world.kube.writes() if "/secrets/flux-ssh" in r.path]
    assert patches and all(r.content_type == "application/apply-patch+yaml" for r in patches)
    assert all(r.query.get("fieldManager") == "gitopskit" for r in patches)
    assert (
        "annotations" not in (world.kube.get("Secret", "flux-ssh", "flux-system") or {})["metadata"]
    )

    # helm: pinned charts, base values then generated values; nothing secret in argv.
    calls = world.helm_calls()
    assert not [c for c in calls if c["argv"][0] == "repo"], "never helm repo add"
    ups = upgrades(world)
    assert [c["argv"][2:4] for c in ups] == [["flux", "flux2"], ["flux-sync", "flux2-sync"]]
    assert all(c["argv"][c["argv"].index("--repo") + 1] == FLUX2_REPO for c in ups)
    assert "2.18.3" in ups[0]["argv"] and "1.14.5" in ups[1]["argv"]
    sync = generated_values(ups[1])
    assert sync["gitRepository"] == {
        "spec": {"url": url, "secretRef": {"name": "flux-ssh"}, "ref": {"branch": "main"}}
    }
    assert sync["kustomization"] == {"spec": {"path": "./", "prune": True}}
    assert sync["secret"] == {"create": False}
    for call in calls:
        argv = " ".join(call["argv"])
        assert secret["identity"].splitlines()[1] not in argv
        assert "known_hosts" not in argv and "ssh-ed25519" not in argv
        assert "--set" not in argv
    repo = world.kube.get("GitRepository", "flux-sync", "flux-system")
    assert repo is not None and repo["spec"]["secretRef"] == {"name": "flux-ssh"}

    # The key and known_hosts out of the cluster clone over SSH with strict host key checking.
    clone = world.git(secret["identity"], secret["known_hosts"], "clone", url, "clone")
    assert clone.returncode == 0, clone.stderr + world.sshd.log_text()
    assert (world.tmp / "clone" / "README.md").is_file()
    (world.tmp / "clone" / "new").write_text("x\n")
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess_ok = world.git(
        secret["identity"], secret["known_hosts"], "-C", "clone", "add", "new"
    )
    assert subprocess_ok.returncode == 0
    world.git(
        secret["identity"], secret["known_hosts"], "-C", "clone", *ident, "commit", "-qm", "x"
    )
    push = world.git(secret["identity"], secret["known_hosts"], "-C", "clone", "push")
    assert push.returncode != 0
    assert "does not have write access" in push.stderr

    # A second run changes nothing: same key, no new deploy key, no write to GitLab or Secret.
    world.gitlab.requests.clear()
    world.kube.clear_requests()
    again = world.run(FLUX_INSTALLER="charts")
    assert not again.key_generated and not again.deploy_key_created
    assert again.key_fingerprint == result.key_fingerprint
    assert world.secret() == secret
    assert len(world.project.deploy_keys) == 1
    assert world.gitlab_writes() == []
    assert not [r for r in world.kube.writes() if "/secrets/flux-ssh" in r.path]

    assert upgrades(world) == ups, "the releases are up to date: no helm upgrade"

    # Rotation: new key works, old key refused, old deploy key deleted.
    rotated = world.run(rotate=True)
    new = world.secret()
    assert new["identity"] != secret["identity"]
    assert new["known_hosts"] == secret["known_hosts"]
    assert rotated.old_deploy_key_id == deploy_key["id"]
    assert [k["key"] for k in world.project.deploy_keys] == [new["identity.pub"].strip()]
    old_clone = world.git(secret["identity"], secret["known_hosts"], "clone", url, "old")
    assert old_clone.returncode != 0
    new_clone = world.git(new["identity"], new["known_hosts"], "clone", url, "new")
    assert new_clone.returncode == 0, new_clone.stderr
    restarts = [r for r in world.kube.writes() if "/deployments/" in r.path]
    assert restarts, "rotation restarts the Flux deployments"

    output = world.output()
    for private in (secret["identity"], new["identity"]):
        for line in private.splitlines()[1:-1]:
            assert line not in output
    assert MAINT_TOKEN not in output
    assert "flux-sync (flux2-sync 1.14.5)" in output

    # The CRDs carry the keep policy: uninstalling the controllers' release keeps them, and with
    # them the GitRepository and Kustomization.
    crd = world.kube.get("crd", "gitrepositories.source.toolkit.fluxcd.io") or {}
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    gone = subprocess.run(["helm", "uninstall", "flux", "-n", "flux-system"], env=world.env,
                          capture_output=True, text=True)  # fmt: skip
    assert gone.returncode == 0, gone.stderr
    assert world.kube.get("GitRepository", "flux-sync", "flux-system") is not None
    assert world.kube.get("Kustomization", "flux-sync", "flux-system") is not None


def test_pinned_mismatch_stops_before_any_write(world: FluxWorld) -> None:
    wrong = "SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8"
    with pytest.raises(HostKeyError) as raised:
        world.run(fingerprints=(wrong,))
    message = str(raised.value)
    assert "scanned" in message and "expected" in message and wrong in message
    for fp in world.sshd.host_key_fingerprints().values():
        assert fp in message
    assert world.kube.writes() == []
    assert world.gitlab_writes() == []
    assert upgrades(world) == [], "helm only read the releases"


def test_pinned_fingerprints_accepted_and_required(world: FluxWorld) -> None:
    pins = tuple(world.sshd.host_key_fingerprints().values())
    result = world.run(fingerprints=pins, dry_run=True, require_pinned=True)
    assert result.host_pinned
    with pytest.raises(HostKeyError, match="no pinned host key"):
        world.run(require_pinned=True)


def test_charts_dry_run_writes_nothing(world: FluxWorld) -> None:
    result = world.run(dry_run=True, FLUX_INSTALLER="charts")
    assert world.kube.writes() == []
    assert world.gitlab_writes() == []
    assert {c["argv"][0] for c in world.helm_calls()} == {"list"}, "helm only reads"
    assert world.kube.get("Secret", "flux-ssh", "flux-system") is None
    output = world.output()
    assert (
        "kubectl --request-timeout=60s apply --server-side --field-manager=gitopskit -f -"
        in output
    )
    assert "identity=***" in output
    assert f"helm upgrade --install flux-sync flux2-sync --repo {FLUX2_REPO}" in output
    assert "kubectl --request-timeout=60s wait --for condition=established --timeout=20s " \
        "crd/gitrepositories.source.toolkit.fluxcd.io" in output  # fmt: skip
    assert "secretRef:" in output and "prune: true" in output
    assert "nothing was changed" in output
    assert result.key_fingerprint in output


def test_kubectl_failing_midway_stops_before_helm_and_rerun_completes(world: FluxWorld) -> None:
    world.kube.fail_next("PATCH", r"/secrets/flux-ssh", 500)
    with pytest.raises(KubeError):
        world.run()
    assert upgrades(world) == []
    assert world.gitlab_writes() == []
    world.kube.fail_next("PATCH", r"/fluxinstances/flux", 500)  # then the FluxInstance fails
    with pytest.raises(KubeError):
        world.run()
    assert world.kube.get("FluxInstance", "flux", "flux-system") is None
    world.run()
    assert set(world.secret()) == {"identity", "identity.pub", "known_hosts"}
    assert len(upgrades(world)) == 1
    assert world.kube.get("FluxInstance", "flux", "flux-system") is not None
    assert len(world.project.deploy_keys) == 1


def test_flux1_values_and_secret(world: FluxWorld) -> None:
    world.run(FLUX_VERSION="1", MANIFESTS_PATH="clusters/prod")
    secret = world.secret(namespace="flux")
    assert set(secret) == {"identity"}
    [up] = upgrades(world)
    argv = up["argv"]
    assert argv[2:4] == ["flux", "flux"] and "1.13.3" in argv
    assert argv[argv.index("--repo") + 1] == "https://charts.fluxcd.io"
    assert not [c for c in world.helm_calls() if c["argv"][0] == "repo"]
    values = generated_values(up)
    git = values["git"]
    assert isinstance(git, dict)
    assert git["readonly"] is True and git["branch"] == "main"
    assert git["path"] == "clusters/prod" and git["secretName"] == "flux-ssh"
    assert git["url"] == world.project.ssh_url_to_repo
    assert values["sync"] == {"state": "secret"}
    ssh = values["ssh"]
    assert (
        isinstance(ssh, dict)
        and f"[127.0.0.1]:{world.sshd.port} ssh-ed25519" in (ssh["known_hosts"])
    )
    blobs = [line.split()[2] for line in ssh["known_hosts"].splitlines()]
    assert not any(blob in a for blob in blobs for a in argv)
    base_values = next(iter(up["values"].values()))
    assert base_values is not None, "the base values file was read"
    base = yaml.safe_load(base_values)
    assert base["syncGarbageCollection"]["enabled"] is True
    # Flux 1 keeps only `identity`: the re-run derives the public key and adds nothing.
    world.gitlab.requests.clear()
    again = world.run(FLUX_VERSION="1", MANIFESTS_PATH="clusters/prod")
    assert not again.key_generated and world.gitlab_writes() == []


def test_gitlab_403_names_maintainer(world: FluxWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", DEV_TOKEN)
    with pytest.raises(GitLabPermissionError) as raised:
        world.run()
    assert "Maintainer" in str(raised.value) and "GITLAB_TOKEN" in str(raised.value)
    assert upgrades(world) == []


def test_manifests_token_is_the_fallback(world: FluxWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITLAB_TOKEN")
    monkeypatch.setenv("MANIFESTS_TOKEN", MAINT_TOKEN)
    result = world.run(dry_run=True)
    assert result.plan


def test_without_gitlab_prints_public_key(
    world: FluxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITLAB_URL")
    result = world.run(FLUX_GIT_URL=world.project.ssh_url_to_repo, MANIFESTS_TARGET_BRANCH="main",
                       wait=False)  # fmt: skip
    output = world.output()
    assert result.public_key in output
    assert "Settings → Repository → Deploy keys" in output
    assert world.gitlab.requests == []
    with pytest.raises(ConfigError, match="needs GitLab"):
        world.run(rotate=True, FLUX_GIT_URL=world.project.ssh_url_to_repo,
                  MANIFESTS_TARGET_BRANCH="main")  # fmt: skip


def test_missing_tools_are_named(world: FluxWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # kubectl, but no helm
    with pytest.raises(ToolNotFoundError, match="helm"):
        world.run()
    monkeypatch.setenv("PATH", str(world.tmp / "bin"))  # helm, but no kubectl
    with pytest.raises(ToolNotFoundError, match="kubectl"):
        world.run()
    assert world.kube.writes() == [] and world.gitlab_writes() == []


def test_malformed_git_url(world: FluxWorld) -> None:
    with pytest.raises(ConfigError, match="not an SSH git URL"):
        world.run(FLUX_GIT_URL="https://gitlab.example.com/group/repo.git")
    assert world.gitlab.requests == [] and world.kube.requests == []


def test_tasks_exit_codes_and_no_leaks(world: FluxWorld, flux_project: os.PathLike[str]) -> None:
    """The tasks as a user runs them; no output ever holds the private key or the token."""
    env = dict(world.env)
    env["PYTHONPATH"] = os.pathsep.join([str(os.path.dirname(os.path.dirname(__file__)))])
    outputs: list[str] = []

    def invoke(*args: str, **extra: str) -> int:
        done = run_invoke(flux_project, *args, env={**env, **extra})  # type: ignore[arg-type]
        outputs.append(done.stdout + done.stderr)
        return done.returncode

    assert invoke("flux-bootstrap", "--dry-run") == 0, outputs[-1]
    assert "would" in outputs[-1] and world.kube.writes() == []
    assert invoke("flux-bootstrap") == 0, outputs[-1]
    first = world.secret()
    assert invoke("flux-bootstrap", "--no-wait") == 0, outputs[-1]
    assert invoke("flux-rotate-key") == 0, outputs[-1]
    second = world.secret()
    assert invoke("flux-bootstrap", "--git-url", "not a url") == 1
    assert "not an SSH git URL" in outputs[-1]
    assert invoke("flux-rotate-key", GITLAB_TOKEN=DEV_TOKEN) == 1
    assert "Maintainer" in outputs[-1]
    assert invoke("flux-bootstrap", "--host-key-fingerprint", "SHA256:nope") == 1
    assert "matches none of the pinned fingerprints" in outputs[-1]
    everything = "\n".join(outputs)
    for private in (first["identity"], second["identity"]):
        assert private not in everything
        for line in private.splitlines()[1:-1]:
            assert line not in everything
    assert MAINT_TOKEN not in everything and DEV_TOKEN not in everything
    assert "Traceback" not in everything
    assert sys.executable  # the tasks ran with this interpreter


def test_readme_migration_from_flux1_to_flux2(world: FluxWorld) -> None:
    """The operator's guide: uninstall Flux 1 first, then bootstrap Flux 2, then check it."""
    world.run(FLUX_VERSION="1")
    assert world.kube.get("Deployment", "flux", "flux") is not None
    uninstall = subprocess.run(
        ["helm", "uninstall", "flux", "-n", "flux"], env=world.env, capture_output=True, text=True
    )
    assert uninstall.returncode == 0, uninstall.stderr
    assert world.kube.get("Deployment", "flux", "flux") is None
    world.run(FLUX_VERSION="2")
    check = subprocess.run(
        ["kubectl", "-n", "flux-system", "get", "gitrepositories,kustomizations"],
        env=world.env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    assert "flux-system" in check.stdout and "True" in check.stdout


# --- the Flux Operator (the default installer) ---------------------------------------------

OPERATOR_CHART = "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator"


def test_operator_bootstrap_rerun_and_rotate(world: FluxWorld) -> None:
    url = world.project.ssh_url_to_repo
    result = world.run()

    secret = world.secret()
    assert set(secret) == {"identity", "identity.pub", "known_hosts"}
    [deploy_key] = world.project.deploy_keys
    # helm: the operator's chart by OCI reference, pinned; no repository touched.
    [up] = upgrades(world)
    argv = up["argv"]
    assert argv[2:4] == ["flux-operator", OPERATOR_CHART]
    assert argv[argv.index("--version") + 1] == "0.58.1" and "--repo" not in argv
    assert argv[argv.index("--namespace") + 1] == "flux-system"
    assert not [c for c in world.helm_calls() if c["argv"][0] == "repo"]
    assert next(iter(up["values"])).endswith("flux/flux-operator-values.yaml")
    # The FluxInstance: server-side applied by gitopskit, the generated fields on the template.
    applied = [r for r in world.kube.writes() if "/fluxinstances/" in r.path]
    assert [(r.method, r.content_type, r.query.get("fieldManager")) for r in applied] == [
        ("PATCH", "application/apply-patch+yaml", "gitopskit")
    ]
    instance = world.kube.get("FluxInstance", "flux", "flux-system")
    assert instance is not None
    spec = instance["spec"]
    assert spec["distribution"] == {"version": "2.9.x", "registry": "ghcr.io/fluxcd"}
    assert spec["components"] == ["source-controller", "kustomize-controller",
                                  "helm-controller", "notification-controller"]  # fmt: skip
    assert spec["cluster"]["type"] == "kubernetes" and spec["cluster"]["networkPolicy"] is True
    assert spec["sync"] == {"kind": "GitRepository", "url": url, "ref": "refs/heads/main",
                            "path": "./", "pullSecret": "flux-ssh", "interval": "1m"}  # fmt: skip
    assert instance["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "gitopskit"}
    # Ready: the operator's GitRepository fetched over SSH with the Secret's key.
    assert world.ready("GitRepository", "flux-system")["status"] == "True"
    assert world.ready("Kustomization", "flux-system")["status"] == "True"
    assert result.flux_version == "v2.9.4"
    assert result.revision.startswith("refs/heads/main@sha1:")
    assert f"applied revision {result.revision}" in world.outputs[-1]
    assert "Flux v2.9.4 is Ready" in world.outputs[-1]
    assert not [r for r in world.kube.writes() if b"restartedAt" in r.body], "no restarts"

    # A second run writes nothing anywhere.
    world.gitlab.requests.clear()
    world.kube.clear_requests()
    calls = len(world.helm_calls())
    again = world.run()
    assert world.kube.writes() == [] and world.gitlab_writes() == []
    assert [c["argv"][0] for c in world.helm_calls()[calls:]] == ["list", "list", "get"]
    assert again.revision == result.revision and not again.key_generated
    assert "FluxInstance flux-system/flux is up to date" in world.outputs[-1]

    # The rotation's plan writes nothing; then the GitRepository is asked to fetch again, and
    # does so with the new key.
    world.run(rotate=True, dry_run=True)
    assert world.kube.writes() == [] and world.gitlab_writes() == []
    assert "annotate gitrepositories.source.toolkit.fluxcd.io flux-system " \
        "'reconcile.fluxcd.io/requestedAt=<now>' --overwrite" in world.outputs[-1]  # fmt: skip
    fetched = world.flux.reconciled.count(("GitRepository", "flux-system/flux-system"))
    rotated = world.run(rotate=True)
    new = world.secret()
    assert new["identity"] != secret["identity"] and new["known_hosts"] == secret["known_hosts"]
    repo = world.kube.get("GitRepository", "flux-system", "flux-system") or {}
    requested = repo["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    assert repo["status"]["lastHandledReconcileAt"] == requested
    assert world.flux.reconciled.count(("GitRepository", "flux-system/flux-system")) > fetched
    assert world.ready("GitRepository", "flux-system")["status"] == "True"
    assert rotated.old_deploy_key_id == deploy_key["id"]
    assert [k["key"] for k in world.project.deploy_keys] == [new["identity.pub"].strip()]
    assert not [r for r in world.kube.writes() if b"restartedAt" in r.body], "no restarts"
    annotations = (world.kube.get("Secret", "flux-ssh", "flux-system") or {})["metadata"]
    assert "annotations" not in annotations, "the rotation is finished"
    output = world.output()
    for private in (secret["identity"], new["identity"]):
        for line in private.splitlines()[1:-1]:
            assert line not in output
    assert MAINT_TOKEN not in output


def test_operator_dry_run_prints_the_helm_command_and_the_instance(world: FluxWorld) -> None:
    result = world.run(dry_run=True, MANIFESTS_PATH="clusters/prod")
    assert world.kube.writes() == [] and world.gitlab_writes() == []
    assert {c["argv"][0] for c in world.helm_calls()} == {"list"}, "helm only reads"
    output = world.output()
    assert (
        f"helm upgrade --install flux-operator {OPERATOR_CHART} --namespace flux-system "
        "--version 0.58.1 --timeout 60s -f "
    ) in output
    assert "FluxInstance flux-system/flux it would apply:" in output
    shown = output[output.index("FluxInstance flux-system/flux it would apply:"):]
    instance = yaml.safe_load("\n".join(
        line[2:] for line in shown.splitlines()[1:] if line.startswith("  ")))  # fmt: skip
    assert instance["kind"] == "FluxInstance" and instance["metadata"]["name"] == "flux"
    assert instance["spec"]["sync"]["path"] == "./clusters/prod"
    assert instance["spec"]["sync"]["url"] == world.project.ssh_url_to_repo
    assert "wait until GitRepository flux-system/flux-system, Kustomization flux-system/" \
        "flux-system, FluxInstance flux-system/flux are Ready" in output  # fmt: skip
    assert "PRIVATE KEY" not in output and "identity=***" in output
    assert result.key_fingerprint in output and "nothing was changed" in output


def test_a_git_repository_that_never_becomes_ready(
    world: FluxWorld, flux_project: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without GitLab the key is added by hand; until it is, the fetch is refused: exit 1 with
    the GitRepository's message and the remedy; the re-run after adding it finishes. A stale
    known_hosts is put right by a re-run too."""
    monkeypatch.delenv("GITLAB_URL")
    url = world.project.ssh_url_to_repo
    env = {**world.env, "GITLAB_URL": "", "GITOPSKIT_FLUX_WAIT_TIMEOUT": "2",
           "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))}  # fmt: skip
    done = run_invoke(flux_project, "flux-bootstrap", "--git-url", url,  # type: ignore[arg-type]
                      "--git-branch", "main", env=env)  # fmt: skip
    assert done.returncode == 1, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert "Flux is not ready after 2s: GitRepository flux-system/flux-system:" in error
    assert "unable to authenticate, attempted methods [none publickey]" in error
    assert "deploy key of the manifests project" in done.stderr
    assert "invoke flux-rotate-key" in done.stderr
    assert "Traceback" not in done.stderr and "PRIVATE KEY" not in done.stderr
    # The key, added by hand as the first run said; the re-run changes nothing else and is ready.
    public = world.secret()["identity.pub"].strip()
    assert public in done.stderr
    world.project.deploy_keys.append({"id": 99, "title": "by hand", "key": public,
                                      "can_push": False})  # fmt: skip
    world.kube.clear_requests()
    result = world.run(FLUX_GIT_URL=url, MANIFESTS_TARGET_BRANCH="main")
    assert result.revision.startswith("refs/heads/main@sha1:")
    assert [r.path for r in world.kube.writes()] == [
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/flux-system"
    ], "only the request to fetch again"  # fmt: skip

    # The Secret's known_hosts stops matching the host (as after a host key change): Flux says
    # "knownhosts: key mismatch"; a re-run scans again, rewrites it, asks for a fetch: Ready.
    good = world.secret()
    impostor = "AAAAC3NzaC1lZDI1NTE5AAAAIJu1qA9FhZeeKhrW4bLr9WgHrX2x3Qb0cWnRr0m1v2Aa"
    stale = {**good, "known_hosts": f"[127.0.0.1]:{world.sshd.port} ssh-ed25519 {impostor}\n"}
    world.kube.put({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "flux-ssh", "namespace": "flux-system"},
                    "data": {k: base64.b64encode(v.encode()).decode() for k, v in stale.items()}})
    asked = {"reconcile.fluxcd.io/requestedAt": "now"}  # what `flux reconcile source git` does
    world.kube.apply({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                      "metadata": {"name": "flux-system", "namespace": "flux-system",
                                   "annotations": asked}}, manager="flux")  # fmt: skip
    world.kube.settle()
    assert world.ready("GitRepository", "flux-system")["message"].endswith(
        "ssh: handshake failed: knownhosts: key mismatch"
    )
    world.run(FLUX_GIT_URL=url, MANIFESTS_TARGET_BRANCH="main")
    assert world.secret()["known_hosts"] == good["known_hosts"]
    assert "asked GitRepository flux-system/flux-system to fetch again" in world.outputs[-1]
    assert world.ready("GitRepository", "flux-system")["status"] == "True"


def test_migration_from_the_community_charts(world: FluxWorld) -> None:
    """Planned, refused without --migrate, interrupted, finished: every CRD and Flux object
    stays, the operator adopts the sync, helm forgets the releases."""
    world.run(FLUX_INSTALLER="charts")
    world.kube.settle()  # the charts installer waits for the Deployments only
    assert world.ready("GitRepository", "flux-sync")["status"] == "True"
    crds = [c["metadata"]["name"] for c in world.kube.list_objects("crd")]

    # Without --migrate: stop before any write, and explain.
    world.kube.clear_requests()
    world.gitlab.requests.clear()
    calls = len(world.helm_calls())
    with pytest.raises(ConfigError) as raised:
        world.run()
    assert "installed with the community charts" in raised.value.message
    assert "flux (flux2-2.18.3, deployed)" in raised.value.message
    assert "--migrate" in str(raised.value.hint) and "never `helm uninstall`" in str(
        raised.value.hint
    )
    assert [c["argv"][0] for c in world.helm_calls()[calls:]] == ["list"]

    # The plan: the operator, the FluxInstance named after the sync, helm's records deleted.
    world.run(migrate=True, dry_run=True)
    plan = world.outputs[-1]
    assert world.kube.writes() == [] and world.gitlab_writes() == []
    assert "kubectl --request-timeout=60s delete secret sh.helm.release.v1.flux.v1 " \
        "--namespace flux-system  <- helm's record of release flux (flux2-2.18.3)" in plan
    assert "      name: flux-sync\n" in plan and "retired helm release" not in plan

    # Interrupted: a record cannot be deleted. Flux is already the operator's, the releases stay.
    world.kube.fail_next("DELETE", r"/secrets/sh\.helm\.release", 500)
    with pytest.raises(KubeError):
        world.run(migrate=True)
    assert world.ready("FluxInstance", "flux")["status"] == "True"
    assert {"flux-system/flux", "flux-system/flux-sync"} <= set(
        read_helm_state(world.helm_log)["releases"]
    )

    # Run again: finished, writing nothing but the deletion of helm's records.
    world.kube.clear_requests()
    result = world.run(migrate=True)
    assert result.retired_releases == ["flux (flux2-2.18.3)", "flux-sync (flux2-sync-1.14.5)"]
    instance = world.kube.get("FluxInstance", "flux", "flux-system") or {}
    assert instance["spec"]["sync"]["name"] == "flux-sync", "the operator adopts the sync"
    assert world.kube.get("GitRepository", "flux-system", "flux-system") is None
    assert world.ready("GitRepository", "flux-sync")["status"] == "True"
    assert world.ready("Kustomization", "flux-sync")["status"] == "True"
    listed = subprocess.run(["helm", "list", "-n", "flux-system", "--all", "-o", "json"],
                            env=world.env, capture_output=True, text=True, check=True)  # fmt: skip
    assert [r["name"] for r in yaml.safe_load(listed.stdout)] == ["flux-operator"]
    assert set(crds) <= {c["metadata"]["name"] for c in world.kube.list_objects("crd")}
    writes = world.kube.writes()
    assert {r.method for r in writes} == {"DELETE"}, "nothing but helm's records"
    assert all(r.path.rsplit("/", 1)[-1].startswith(("sh.helm.release.v1.flux.v",
                                                     "sh.helm.release.v1.flux-sync.v"))
               for r in writes)  # fmt: skip
    assert world.kube.get("Deployment", "source-controller", "flux-system") is not None
    # From now on bootstrap needs no --migrate and writes nothing.
    world.kube.clear_requests()
    world.run()
    assert world.kube.writes() == []
