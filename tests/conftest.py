"""Fixtures shared by every test: a Node for jsii, a private schema cache, a copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitopskit.node import find_node

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("tasks.py", "invoke.yaml", "cdk8s.yaml", "charts")

# In-process cdk8s (the chart tests) starts jsii at import: point it at the packaged Node first,
# as the synth task does for the app, so that no end-of-life banner is ever printed.
os.environ.setdefault("JSII_NODE", str(find_node()))


@pytest.fixture(scope="session", autouse=True)
def _schema_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compiled schemas go to a cache of the test session's own, shared by its tests."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of this repository's cdk8s project (tasks, settings, charts) to run tasks in."""
    target = tmp_path / "project"
    target.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def run_invoke(
    project: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``invoke ARGS`` in ``project`` as a user would, capturing stdout and stderr."""
    environment = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=project,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
