"""The warm ``invoke`` the tests use answers as a new interpreter does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import warm_invoke
from tests.conftest import ROOT

TASKS = '''
import os, sys, time
from invoke import task

@task
def show(c):
    """Print where and with what it runs."""
    print(os.getcwd(), os.environ.get("PROBE"), sys.stdin.read(), sep="|")
    print("to stderr", file=sys.stderr)

@task
def fail(c, code=3):
    """Exit with ``code``."""
    sys.exit(int(code))

@task
def hang(c):
    """Sleep for a minute."""
    time.sleep(60)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text(TASKS)
    return tmp_path


def both(project: Path, *args: str, stdin: str = "") -> list[tuple[int, str, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROBE": "probed"}
    warm = warm_invoke.run(list(args), cwd=project, env=env, stdin=stdin)
    assert warm is not None
    cold = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=project, env=env,
                          input=stdin, capture_output=True, text=True, timeout=60)  # fmt: skip
    return [(d.returncode, d.stdout, d.stderr) for d in (warm, cold)]


@pytest.mark.parametrize(
    "args",
    [("show",), ("fail",), ("fail", "--code", "0"), ("--list",), ("nope",), ("show", "--bad")],
)
def test_the_same_as_a_new_interpreter(project: Path, args: tuple[str, ...]) -> None:
    warm, cold = both(project, *args, stdin="given")
    assert warm == cold


def test_a_run_past_its_timeout_is_killed(project: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with pytest.raises(subprocess.TimeoutExpired):
        warm_invoke.run(["hang"], cwd=project, env=env, timeout=1)
    after = warm_invoke.run(["fail", "--code", "4"], cwd=project, env=env)
    assert after is not None and after.returncode == 4
