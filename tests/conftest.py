"""Fixtures shared by every test: a Node for jsii, a private schema cache, a copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from gitopskit.node import find_node
from tests import warm_invoke
from tests.doc_examples import Tour, shared_tour

# Property tests run beside real programs on a shared machine: no per-example deadline (a slow
# moment is not a failure; tests that guard against stalling bound it themselves).
hypothesis_settings.register_profile("gitopskit", deadline=None, print_blob=True)
hypothesis_settings.load_profile("gitopskit")

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("tasks.py", "cdk8s.yaml", "charts")
#: invoke.yaml without the example's environments: a project as it is before it declares any.
SINGLE_ENVIRONMENT = "gitopskit:\n  outdir: dist\n"


def write_invoke_yaml(root: Path, *, environments: bool = False) -> None:
    """The project's invoke.yaml in ``root``: this repository's (dev and prod environments), or
    by default one that declares no environment."""
    target = root / "invoke.yaml"
    if environments:
        shutil.copy2(ROOT / "invoke.yaml", target)
    else:
        target.write_text(SINGLE_ENVIRONMENT)

#: The run's own temporary directory: every temporary file of the tests and of the programs they
#: start (gitopskit, git, Node, sshd) goes there, through ``TMPDIR``. At the end of the run it must
#: hold nothing but pytest's own directories: anything else is a leftover, and fails the run.
_RUN_TMPDIR = pytest.StashKey[Path]()
LEFTOVERS_EXIT = 3


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("GITOPSKIT_TESTS_TMPDIR"):
        return  # an xdist worker, or a pytest run by a test: the run that made it checks it
    run_tmp = Path(tempfile.mkdtemp(prefix="gitopskit-tests-"))
    os.environ["GITOPSKIT_TESTS_TMPDIR"] = os.environ["TMPDIR"] = str(run_tmp)
    tempfile.tempdir = None  # read TMPDIR again
    config.stash[_RUN_TMPDIR] = run_tmp


def _expected(name: str) -> bool:
    """pytest's own directories, and those of a jsii kernel still running in this process (the
    chart tests import cdk8s when run without workers): jsii removes those when it exits."""
    if name.startswith("pytest-of-"):
        return True
    return "jsii" in sys.modules and name.startswith(("jsii-kernel-", "tmp"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run_tmp = session.config.stash.get(_RUN_TMPDIR, None)
    if run_tmp is None:
        return
    leftovers = sorted(p.name for p in run_tmp.iterdir() if not _expected(p.name))
    if leftovers:
        sys.stderr.write(f"\nleft behind in TMPDIR ({run_tmp}): {', '.join(leftovers)}\n")
        session.exitstatus = LEFTOVERS_EXIT
    elif exitstatus == 0:
        shutil.rmtree(run_tmp, ignore_errors=True)


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
    """A copy of this repository's cdk8s project (tasks, settings, charts) to run tasks in, with
    no environment declared."""
    target = tmp_path / "project"
    target.mkdir()
    write_invoke_yaml(target)
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
    """Run ``invoke ARGS`` in ``project`` as a user would, with this checkout's gitopskit (not
    the one pip installed, which may be another worktree's), capturing stdout and stderr."""
    environment = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return warm_invoke.invoke(list(args), cwd=project, env=environment, stdin=stdin, timeout=300)


#: Environment variables a test run of ``invoke`` must not inherit from the developer's shell.
FOREIGN_PREFIXES = ("MANIFESTS_", "GITOPSKIT_", "GITLAB_", "CI_", "INVOKE_")


def task_project(root: Path) -> Path:
    """``root`` made a project that runs the tasks: tasks.py, invoke.yaml (no environment),
    cdk8s.yaml, an empty dist/ (no charts: tests of diff and publish use ``--no-synth``)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("tasks.py", "cdk8s.yaml"):
        shutil.copy2(ROOT / name, root / name)
    write_invoke_yaml(root)
    (root / "dist").mkdir(exist_ok=True)
    return root


def invoke_clean(
    project: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    preexec_fn: Callable[[], None] | None = None,
    **variables: str,
) -> subprocess.CompletedProcess[str]:
    """``invoke ARGS`` in ``project`` with this checkout's gitopskit, none of the caller's
    gitopskit, GitLab or CI variables, no colour, and ``env`` and ``variables`` on top."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(FOREIGN_PREFIXES) and k not in ("COMMENT_TOKEN", "LAB_CORE_TOKEN")
    }
    environ.update(PYTHONPATH=str(ROOT), NO_COLOR="1", **(env or {}), **variables)
    return warm_invoke.invoke(
        list(args), cwd=project, env=environ, timeout=timeout, preexec_fn=preexec_fn
    )


@pytest.fixture(scope="session")
def local_tour(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Tour:
    """The README's local tour, run as written once per test session (shared by the workers):
    its output and its end state, which the documentation's offline examples start from."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent
    return shared_tour(root)
