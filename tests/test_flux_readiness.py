"""Waiting for Flux's objects: what Ready means, which failure is quoted, and its remedy; with
the real kubectl against FakeKube."""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitopskit.flux.readiness import (
    FluxNotReadyError,
    instance_target,
    kustomization_target,
    remedy,
    source_target,
    state_of,
    wait_ready,
)
from gitopskit.kube import Kubectl
from gitopskit.ui import Progress
from tests.fakes.kube import FakeKube, crd_manifest

KEY_MISMATCH = (
    "failed to checkout and determine revision: unable to list remote for "
    "'ssh://git@gitlab.example.com/x.git': ssh: handshake failed: knownhosts: key mismatch"
)


def obj(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x", "generation": generation}, "status": status}


def ready(status: str = "True", message: str = "", **more: Any) -> dict[str, Any]:
    return {"type": "Ready", "status": status, "message": message, **more}


def test_what_ready_means() -> None:
    assert state_of(None) == state_of(None) and state_of(None).message == "not created yet"
    assert state_of(obj()).message == "not reconciled yet"
    assert state_of(obj(conditions=[ready(observedGeneration=1)])).ready
    stale = state_of(obj(2, conditions=[ready(observedGeneration=1, message="old")]))
    assert not stale.ready and stale.message == "generation 2 not reconciled yet (last: old)"
    assert not state_of(obj(2, observedGeneration=1, conditions=[ready()])).ready
    failing = state_of(obj(conditions=[ready("False", KEY_MISMATCH)]))
    assert not failing.ready and failing.message == KEY_MISMATCH
    stalled = obj(
        conditions=[
            ready("False", "x"),
            {"type": "Stalled", "status": "True", "message": "no Flux matching 3.x"},
        ]
    )
    assert state_of(stalled).message == "no Flux matching 3.x"
    asked = obj(conditions=[ready()], lastHandledReconcileAt="t1")
    assert state_of(asked, "t1").ready
    assert state_of(asked, "t2").message == "the reconcile requested at t2 not handled yet"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (KEY_MISMATCH, "--host-key-fingerprint"),
        ("ssh: handshake failed: knownhosts: key is unknown", "--host-key-fingerprint"),
        ("ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey]",
         "`invoke flux-rotate-key`"),
        ("failed to get secret 'flux-system/flux-ssh': secrets \"flux-ssh\" not found",
         "run `invoke flux-bootstrap` again"),
    ],
)  # fmt: skip
def test_known_failures_name_their_remedy(message: str, expected: str) -> None:
    hint = remedy(message, secret="flux-system/flux-ssh", public_key_fingerprint="SHA256:k")
    assert hint is not None and expected in hint
    assert remedy("Health check in progress", secret="s") is None


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeKube, Kubectl]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    with FakeKube() as kube:
        home = tmp_path / "home"
        home.mkdir()
        env = {**os.environ, **kube.env(tmp_path), "HOME": str(home)}
        kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}})
        yield kube, Kubectl(env=env, request_timeout=10)


def test_the_most_specific_failure_is_quoted_with_its_remedy(
    cluster: tuple[FakeKube, Kubectl],
) -> None:
    kube, kubectl = cluster
    targets = [source_target("flux-system"), kustomization_target("flux-system")]
    stream = io.StringIO()
    # Flux's kinds not even served yet: waiting, then not ready, named.
    with pytest.raises(FluxNotReadyError, match="GitRepository flux-system/flux-system: not "
                       "created yet"):  # fmt: skip
        wait_ready(kubectl, "flux-system", targets, timeout=0.3, ui=Progress(stream))
    for group, kind, plural in (("source.toolkit.fluxcd.io", "GitRepository", "gitrepositories"),
                                ("kustomize.toolkit.fluxcd.io", "Kustomization",
                                 "kustomizations")):  # fmt: skip
        kube.put(crd_manifest(group, "v1", kind, plural))
        kube.put(
            {
                "apiVersion": f"{group}/v1",
                "kind": kind,
                "metadata": {"name": "flux-system", "namespace": "flux-system"},
                "spec": {},
            }
        )
    kube.set_condition(
        "Kustomization",
        "flux-system",
        "flux-system",
        status="False",
        reason="ArtifactFailed",
        message="Source artifact not found",
    )
    kube.set_condition("GitRepository", "flux-system", "flux-system", status="False",
                       reason="GitOperationFailed", message=KEY_MISMATCH)  # fmt: skip
    started = time.monotonic()
    with pytest.raises(FluxNotReadyError) as raised:
        wait_ready(kubectl, "flux-system", targets, timeout=1, ui=Progress(stream),
                   secret="flux-system/flux-ssh")  # fmt: skip
    assert time.monotonic() - started < 8
    assert raised.value.message == (
        f"Flux is not ready after 1s: GitRepository flux-system/flux-system: {KEY_MISMATCH}"
    )
    assert "--host-key-fingerprint" in str(raised.value.hint)
    assert "once fixed, `invoke flux-bootstrap`" in str(raised.value.hint)
    assert f"waiting for GitRepository flux-system/flux-system: {KEY_MISMATCH}" in (
        stream.getvalue()
    )

    # Ready while waiting: returns the objects.
    def fix() -> None:
        time.sleep(0.5)
        for kind in ("GitRepository", "Kustomization"):
            kube.set_condition(kind, "flux-system", "flux-system", message="ok")

    fixer = threading.Thread(target=fix)
    fixer.start()
    found = wait_ready(kubectl, "flux-system", targets, timeout=20, ui=Progress(stream))
    fixer.join()
    assert set(found) == {"GitRepository", "Kustomization"}


def test_a_failing_instance_is_quoted_over_a_sync_not_made_yet(
    cluster: tuple[FakeKube, Kubectl],
) -> None:
    """The operator cannot install Flux (a version that does not exist, a registry out of
    reach): no GitRepository is ever made, and the FluxInstance's condition says why."""
    kube, kubectl = cluster
    kube.put(crd_manifest("fluxcd.controlplane.io", "v1", "FluxInstance", "fluxinstances"))
    kube.put({"apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxInstance",
              "metadata": {"name": "flux", "namespace": "flux-system"}, "spec": {}})  # fmt: skip
    failed = "Reconciliation failed: no Flux distribution matching 2.99.x"
    kube.set_condition("FluxInstance", "flux", "flux-system", status="False",
                       reason="ReconciliationFailed", message=failed)  # fmt: skip
    targets = [source_target("flux-system"), kustomization_target("flux-system"),
               instance_target()]  # fmt: skip
    with pytest.raises(FluxNotReadyError) as raised:
        wait_ready(kubectl, "flux-system", targets, timeout=0.3, ui=Progress(io.StringIO()))
    assert raised.value.message == (
        f"Flux is not ready after 0.3s: FluxInstance flux-system/flux: {failed}"
    )
