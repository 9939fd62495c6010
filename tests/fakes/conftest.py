"""Fixtures for the fakes' own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.kube import FakeKube

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        yield fake


@pytest.fixture
def kube_env(kube: FakeKube, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {**os.environ, **kube.env(tmp_path), "HOME": str(home)}


@pytest.fixture
def kubectl(kube_env: dict[str, str]) -> Kubectl:
    """Run the real kubectl against the fake: ``kubectl("get", "ns", input=None)``."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed")

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *args],
            env=kube_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run
