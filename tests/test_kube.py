"""gitopskit.kube: the real kubectl against FakeKube."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitopskit.errors import KubeError, ToolNotFoundError
from gitopskit.kube import Kubectl, namespace_manifest, secret_manifest
from tests.fakes.kube import FakeKube


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
    assert kubectl.get_secret("flux-ssh", "flux-system") == {"identity": "PRIVATE-KEY-TEXT-123"}
    assert kubectl.current_context() == "fake"
    assert Kubectl("other", env).args("get", "ns") == ["kubectl", "--context", "other", "get", "ns"]


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
