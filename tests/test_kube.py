"""gitopskit.kube: the real kubectl against FakeKube."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitopskit.errors import KubeError, ToolNotFoundError
from gitopskit.kube import (
    ClusterUnreachableError,
    Kubectl,
    NoKubeContextError,
    SecretState,
    UnknownKindError,
    duration,
    namespace_manifest,
    secret_manifest,
)
from tests.fakes.kube import FakeKube
from tests.flux_fixtures import *  # noqa: F403
from tests.flux_fixtures import StalledServer, closed_port, write_kubeconfig


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[FakeKube, dict[str, str]]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    with FakeKube() as fake:
        home = tmp_path / "home"
        home.mkdir()
        yield fake, {**os.environ, **fake.env(tmp_path), "HOME": str(home)}


def test_server_side_apply_get_and_absent(kube: tuple[FakeKube, dict[str, str]]) -> None:
    fake, env = kube
    kubectl = Kubectl(env=env)
    assert kubectl.get_secret("flux-ssh", "flux-system") is None
    kubectl.apply(
        [namespace_manifest("flux-system"),
         secret_manifest("flux-ssh", "flux-system", {"identity": "PRIVATE-KEY-TEXT-123"})]
    )  # fmt: skip
    writes = fake.writes()
    assert [w.method for w in writes] == ["PATCH", "PATCH"]
    assert all(w.content_type == "application/apply-patch+yaml" for w in writes)
    assert all(w.query.get("fieldManager") == "gitopskit" for w in writes)
    assert not [r for r in fake.requests if r.method == "POST"]
    secret = fake.get("Secret", "flux-ssh", "flux-system")
    assert secret is not None and "annotations" not in secret["metadata"]
    assert kubectl.get_secret("flux-ssh", "flux-system") == SecretState(
        {"identity": "PRIVATE-KEY-TEXT-123"}, {}
    )
    assert kubectl.current_context() == "fake"
    assert Kubectl("other", env, request_timeout=7).args("get", "ns") == [
        "kubectl", "--context", "other", "--request-timeout=7s", "get", "ns"
    ]  # fmt: skip
    # --request-timeout reaches the server as ?timeout= on all but the version probe.
    assert {r.query.get("timeout") for r in fake.requests if r.path != "/version"} == {"1m0s"}
    kubectl.apply(
        [secret_manifest("flux-ssh", "flux-system", {"identity": "PRIVATE-KEY-TEXT-123"},
                         {"example.org/note": "SHA256:abc"})]
    )  # fmt: skip
    state = kubectl.get_secret("flux-ssh", "flux-system")
    assert state is not None and state.annotations == {"example.org/note": "SHA256:abc"}
    kubectl.remove_annotation("secret", "flux-ssh", "flux-system", "example.org/note")
    kubectl.remove_annotation("secret", "flux-ssh", "flux-system", "example.org/note")
    state = kubectl.get_secret("flux-ssh", "flux-system")
    assert state is not None and state.annotations == {}


def test_failure_is_a_kube_error(kube: tuple[FakeKube, dict[str, str]]) -> None:
    fake, env = kube
    fake.fail_next("PATCH", r"/secrets/", 500)
    with pytest.raises(KubeError) as raised:
        Kubectl(env=env).apply([secret_manifest("s", "default", {"identity": "SECRET-VALUE-42"})])
    assert "SECRET-VALUE-42" not in str(raised.value)


def test_rollout_status_and_restart(kube: tuple[FakeKube, dict[str, str]]) -> None:
    fake, env = kube
    fake.put(namespace_manifest("flux"))
    fake.put({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "flux", "namespace": "flux"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "flux"}},
                 "template": {"metadata": {"labels": {"app": "flux"}},
                              "spec": {"containers": [{"name": "f", "image": "flux"}]}}},
    })  # fmt: skip
    kubectl = Kubectl(env=env)
    assert kubectl.deployments("flux") == ["flux"]
    kubectl.rollout_restart("flux", "flux")
    kubectl.rollout_status("flux", "flux", timeout=10)
    fake.mark_unready("flux", "flux")
    with pytest.raises(KubeError):
        kubectl.rollout_status("flux", "flux", timeout=1)


def test_kubectl_missing_is_named(tmp_path: Path) -> None:
    with pytest.raises(ToolNotFoundError, match="kubectl"):
        Kubectl(env={"PATH": str(tmp_path)}).get_secret("s", "ns")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    cache = tmp_path / "kubecache"
    cache.mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home), "KUBECACHEDIR": str(cache), **extra}


def test_no_kube_context_is_one_line_with_the_hint(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    env = _env(tmp_path, KUBECONFIG=str(tmp_path / "missing-kubeconfig"))
    with pytest.raises(NoKubeContextError) as raised:
        Kubectl(env=env).get_secret("flux-ssh", "flux-system")
    error = raised.value
    assert error.message.count("\n") == 0
    assert "no kube context" in error.message
    assert error.hint is not None and "--context" in error.hint and "KUBECONFIG" in error.hint
    assert "localhost:8080" not in str(error) and "memcache" not in str(error)


def test_unknown_context_names_the_known_ones(kube: tuple[FakeKube, dict[str, str]]) -> None:
    fake, env = kube
    with pytest.raises(NoKubeContextError) as raised:
        Kubectl("nope", env).get_secret("flux-ssh", "flux-system")
    assert "'nope'" in raised.value.message
    assert raised.value.hint is not None and "fake" in raised.value.hint
    # Only this kubectl's dispatcher's version probe reached the server: no read, no write.
    assert {r.path for r in fake.requests} <= {"/version"}


def test_refused_api_server_is_named(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    server = f"http://127.0.0.1:{closed_port()}"
    env = _env(tmp_path, KUBECONFIG=str(write_kubeconfig(tmp_path / "kc", server)))
    with pytest.raises(ClusterUnreachableError) as raised:
        Kubectl(env=env, request_timeout=2).get_secret("flux-ssh", "flux-system")
    message = raised.value.message
    assert server in message and "connection refused" in message and "remote" in message
    assert "memcache" not in str(raised.value)


def test_stalled_api_server_is_bounded(tmp_path: Path, stalled: StalledServer) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    server = f"http://127.0.0.1:{stalled.port}"
    env = _env(tmp_path, KUBECONFIG=str(write_kubeconfig(tmp_path / "kc", server)))
    kubectl = Kubectl(env=env, request_timeout=0.5)
    assert "--request-timeout=0.5s" in kubectl.args("get", "ns")
    started = time.monotonic()
    with pytest.raises(ClusterUnreachableError) as raised:
        kubectl.get_secret("flux-ssh", "flux-system")
    assert time.monotonic() - started < 15
    message = raised.value.message
    assert server in message and "did not answer" in message
    assert "kubectl get secret flux-system/flux-ssh" in message
    assert len(stalled.accepted) >= 1


def test_durations_are_go_durations() -> None:
    assert [duration(s) for s in (60, 0.5, 1e6, 2.25)] == ["60s", "0.5s", "1000000s", "2.25s"]


def test_objects_names_annotate_and_delete(kube: tuple[FakeKube, dict[str, str]]) -> None:
    fake, env = kube
    kubectl = Kubectl(env=env)
    with pytest.raises(UnknownKindError, match="doesn't have a resource type"):
        kubectl.get_objects("default", ["gitrepositories.source.toolkit.fluxcd.io/x"])
    for name, labels in (("a", {"owner": "helm", "name": "r"}), ("b", {"owner": "helm"}),
                         ("c", {"owner": "helm", "name": "r"})):  # fmt: skip
        fake.put(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "default", "labels": labels},
            }
        )
    assert kubectl.names("configmaps", "default", selector="owner=helm,name=r") == ["a", "c"]
    found = kubectl.get_objects("default", ["configmap/a", "configmap/missing", "configmap/c"])
    assert [o["metadata"]["name"] for o in found] == ["a", "c"]
    [one] = kubectl.get_objects("default", ["configmap/b"])
    assert one["metadata"]["name"] == "b"
    assert kubectl.get_objects("default", ["configmap/missing"]) == []
    kubectl.annotate("configmap", "a", "default", "reconcile.fluxcd.io/requestedAt", "t1")
    kubectl.annotate("configmap", "a", "default", "reconcile.fluxcd.io/requestedAt", "t2")
    annotated = fake.get("ConfigMap", "a", "default") or {}
    assert annotated["metadata"]["annotations"] == {"reconcile.fluxcd.io/requestedAt": "t2"}
    kubectl.delete("configmap", ["a", "gone"], "default")
    kubectl.delete("configmap", [], "default")
    assert fake.get("ConfigMap", "a", "default") is None
    assert fake.get("ConfigMap", "c", "default") is not None
