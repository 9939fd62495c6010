"""Interrupts leave nothing behind (issue 10, section 2): real invoke processes, real signals.

SIGINT (Ctrl-C) or SIGTERM (a cancelled CI job) is sent to the invoke process alone, at several
moments. Every time: exit status 130 / 143, one line ``interrupted`` on stderr and no
traceback, no temporary directory left, the app and what it started gone (checked by pid), and
nothing re-created afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_invoke
from tests.trees import CONFIG_MAP, alive, bare_repository, snapshot

# Makes a temporary directory (as jsii's kernel does, removed only at a clean exit), starts a
# grandchild, says who they are, then writes into CDK8S_OUTDIR until stopped, re-creating it if
# it disappears (what a chart left running did to a cleaned-up staging dir).
SLOW_APP = """\
import os, pathlib, subprocess, sys, tempfile, time
tempfile.mkdtemp(prefix="jsii-kernel-")
out = pathlib.Path(os.environ["CDK8S_OUTDIR"])
child = subprocess.Popen(["sleep", "60"])
pathlib.Path(os.environ["TEST_PIDS"]).write_text(f"{os.getpid()} {child.pid}\\n")
for i in range(int(os.environ.get("TEST_ROUNDS", "600"))):
    out.mkdir(parents=True, exist_ok=True)
    (out / f"c{i % 3}.k8s.yaml").write_text(
        f"apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: c{i % 3}\\n"
    )
    time.sleep(0.05)
child.terminate()
"""

# git, but slow for the network commands: it records its pid and its sleep's, then sleeps.
SLOW_GIT = """\
#!/bin/sh
case " $* " in
  *" ls-remote "*|*" clone "*)
    echo $$ >> "$TEST_PIDS"
    sleep 60 &
    echo $! >> "$TEST_PIDS"
    wait $!
    ;;
esac
exec {git} "$@"
"""


@pytest.fixture
def slow(project: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The slow app in ``project``, a dist/ of an earlier run, and the environment for invoke:
    a private TMPDIR, and the file where the app writes its pids."""
    (project / "slow_app.py").write_text(SLOW_APP)
    (project / "dist").mkdir()
    (project / "dist" / "old.k8s.yaml").write_text(CONFIG_MAP.format(name="old"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    yield {
        "TEST_PIDS": str(tmp_path / "pids"),
        "TMPDIR": str(tmp),
        "GITOPSKIT_APP": "python slow_app.py",
        "PYTHONPATH": str(ROOT),
    }


def start(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    # This checkout's gitopskit, whichever one the virtual environment has installed.
    environment = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=project,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def interrupted(process: subprocess.Popen[str], signum: int) -> str:
    """Send ``signum`` to invoke alone; check its status and its last words; return stderr."""
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 128 + signum, err
    assert "Traceback" not in err, err
    assert err.splitlines().count("interrupted") == 1, err
    assert err.splitlines()[-1] == "interrupted", err
    assert out == ""
    return err


def assert_nothing_left(project: Path, env: dict[str, str], before: Mapping[str, object]) -> None:
    """No staging or temporary directory, no process of the app, dist/ as it was; and still so
    a moment later, when a leftover app would have re-created something."""
    for pause in (0.3, 0):
        assert [p for p in os.listdir(project) if p.startswith(".dist")] == []
        assert os.listdir(env["TMPDIR"]) == []
        assert [p for p in pids(Path(env["TEST_PIDS"])) if alive(p)] == []
        assert snapshot(project / "dist") == before
        time.sleep(pause)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_while_the_app_runs(
    project: Path, slow: dict[str, str], signum: signal.Signals
) -> None:
    before = snapshot(project / "dist")
    process = start(project, slow, "-m", "invoke", "synth", "--no-validate")
    wait_for(Path(slow["TEST_PIDS"]))
    time.sleep(0.2)  # the app has written into the staging directory
    interrupted(process, signum)
    assert len(pids(Path(slow["TEST_PIDS"]))) == 2
    assert_nothing_left(project, slow, before)


def test_interrupt_ends_the_shell_of_the_app_line_and_all_it_started(
    project: Path, slow: dict[str, str], tmp_path: Path
) -> None:
    """``app:`` runs through ``/bin/sh -c``: the shell, the app it started after ``&&`` and the
    app's own child are one process group, ended together."""
    shell_pid = tmp_path / "shell-pid"
    env = {**slow, "GITOPSKIT_APP": f"echo $$ > {shell_pid} && python slow_app.py; sleep 60"}
    before = snapshot(project / "dist")
    process = start(project, env, "-m", "invoke", "synth", "--no-validate")
    wait_for(Path(slow["TEST_PIDS"]))
    interrupted(process, signal.SIGTERM)
    assert not alive(int(shell_pid.read_text()))
    assert_nothing_left(project, slow, before)


def test_interrupt_as_the_app_starts(project: Path, slow: dict[str, str]) -> None:
    before = snapshot(project / "dist")
    process = start(project, slow, "-m", "invoke", "synth", "--no-validate")
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line.startswith("synth     running"), line
    interrupted(process, signal.SIGTERM)
    assert_nothing_left(project, slow, before)
    assert not Path(slow["TEST_PIDS"]).exists()  # no app was left to start later


def test_interrupt_while_invoke_imports_the_tasks(project: Path, slow: dict[str, str]) -> None:
    """-X importtime reports each import as it ends: the signal comes while tasks.py imports
    gitopskit, long before any task runs."""
    process = start(project, slow, "-X", "importtime", "-m", "invoke", "synth")
    assert process.stderr is not None
    for line in process.stderr:
        if line.rstrip().endswith(" gitopskit.redact"):
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if not line.startswith("import time:")] == [
        "interrupted"
    ]


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.2, 0.3, 0.45])
def test_a_signal_at_any_moment_leaves_an_old_or_a_new_dist(
    project: Path, slow: dict[str, str], delay: float
) -> None:
    """A short app run with validation; the signal comes ``delay`` seconds after the app
    starts: during the app, validation, the swap, the report, or after. dist/ is the old tree
    or the whole new one, and nothing is left."""
    env = {**slow, "TEST_ROUNDS": "3"}
    old = snapshot(project / "dist")
    process = start(project, env, "-m", "invoke", "synth")
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line.startswith("synth     running"), line
    time.sleep(delay)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert "Traceback" not in err
    if err.splitlines()[-1] == "interrupted":
        assert process.returncode == 143, err
    else:
        # It had finished; a signal while Python shuts down (its handlers are reset to the
        # default then) ends the process by the signal itself.
        assert err.splitlines()[-1].startswith("synth     3 objects"), err
        assert process.returncode in (0, -signal.SIGTERM), err
    after = snapshot(project / "dist")
    if after != old:
        assert sorted(os.listdir(project / "dist")) == [
            ".gitopskit-outdir",
            "c0.k8s.yaml",
            "c1.k8s.yaml",
            "c2.k8s.yaml",
        ]
    assert_nothing_left(project, env, after)


def slow_git(tmp_path: Path) -> str:
    """A PATH whose git is :data:`SLOW_GIT`."""
    bin_dir = tmp_path / "slow-bin"
    bin_dir.mkdir()
    script = bin_dir / "git"
    git = shutil.which("git")
    assert git is not None
    script.write_text(SLOW_GIT.format(git=git))
    script.chmod(0o755)
    return os.pathsep.join([str(bin_dir), os.environ["PATH"]])


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    """A bare manifests repository with one commit on main."""
    return bare_repository(tmp_path)


@pytest.mark.parametrize("task", ["publish", "diff"])
def test_interrupt_during_a_slow_git_removes_the_clone(
    project: Path, slow: dict[str, str], manifests: Path, tmp_path: Path, task: str
) -> None:
    done = run_invoke(project, "synth", "--no-validate", env={**slow, "TEST_ROUNDS": "1"})
    assert done.returncode == 0, done.stderr
    Path(slow["TEST_PIDS"]).unlink()
    before = snapshot(project / "dist")
    env = {**slow, "PATH": slow_git(tmp_path), "MANIFESTS_GIT_URL": str(manifests)}
    process = start(project, env, "-m", "invoke", task, "--no-synth")
    wait_for(Path(slow["TEST_PIDS"]))
    assert os.listdir(slow["TMPDIR"]) != []  # the clone's directory exists now
    interrupted(process, signal.SIGTERM)
    assert_nothing_left(project, slow, before)


# A task as publish will write one: a private directory (ssh's), a step done outside
# (done_so_far), then a long program; or a failure after that step.
DEMO_TASKS = """\
from gitopskit import interrupts

interrupts.install_quiet_exit()

from invoke import task

from gitopskit import cli, ssh
from gitopskit._run import run
from gitopskit.errors import GitopskitError


@task
def step(c, fail=False):
    with cli.boundary():
        with ssh.private_directory() as private:
            print(private, flush=True)
            interrupts.done_so_far(
                "branch pushed; merge request not updated; run publish again to finish"
            )
            if fail:
                raise GitopskitError("the merge request could not be updated")
            run(["sleep", "30"])
"""
DONE = "  done so far: branch pushed; merge request not updated; run publish again to finish"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    root = tmp_path / "demo"
    root.mkdir()
    (root / "tasks.py").write_text(DEMO_TASKS)
    return root


def test_what_was_done_is_said_after_interrupted(demo: Path, tmp_path: Path) -> None:
    process = start(demo, {"TMPDIR": str(tmp_path)}, "-m", "invoke", "step")
    assert process.stdout is not None
    private = Path(process.stdout.readline().strip())
    assert private.is_dir()
    time.sleep(0.3)  # sleep 30 is running
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert err.splitlines() == ["interrupted", DONE]
    assert not private.exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith("gitopskit-")] == []


def test_what_was_done_is_said_after_a_failure(demo: Path) -> None:
    done = run_invoke(demo, "step", "--fail")
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["error     the merge request could not be updated", DONE]
