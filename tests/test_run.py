"""The one helper for external programs: argv never logged, errors redacted."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import pytest

from gitopskit._run import run
from gitopskit.errors import CommandError, GitError, ToolNotFoundError
from gitopskit.redact import add_secret
from tests.trees import alive


def test_output_stdin_and_exit_codes() -> None:
    assert run(["cat"], stdin="hello").stdout == "hello"
    assert run(["sh", "-c", "exit 3"], ok_codes=(0, 3)).returncode == 3


def test_failure_carries_redacted_stderr_not_argv(caplog: pytest.LogCaptureFixture) -> None:
    secret = "glpat-run-test-secret-42"
    add_secret(secret)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GitError) as caught:
        run(["sh", "-c", f"echo 'bad {secret}' >&2; exit 2", "argv-marker"], error=GitError)
    assert caught.value.returncode == 2
    assert secret not in str(caught.value)
    assert "bad ***" in str(caught.value)
    assert "argv-marker" not in str(caught.value)
    assert secret not in caplog.text
    assert "argv-marker" not in caplog.text


def test_missing_program_is_named() -> None:
    with pytest.raises(ToolNotFoundError, match="no-such-tool-here is not installed"):
        run(["no-such-tool-here"])


def test_timeout() -> None:
    with pytest.raises(CommandError, match="timed out"):
        run(["sleep", "5"], timeout=0.2)


def test_a_timeout_ends_the_program_and_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = f"sleep 30 & echo $! > {pid_file}; wait"
    started = time.monotonic()
    with pytest.raises(CommandError, match=r"timed out after 0\.5s"):
        run(["sh", "-c", script], timeout=0.5)
    assert time.monotonic() - started < 5
    assert not alive(int(pid_file.read_text()))


def test_what_a_program_leaves_running_is_ended_with_it(tmp_path: Path) -> None:
    """A background child holding the output pipe must not hang the run, nor outlive it."""
    started = time.monotonic()
    result = run(["sh", "-c", "sleep 30 & echo $!"])
    assert time.monotonic() - started < 5
    assert not alive(int(result.stdout))
    detached = run(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"])
    assert not alive(int(detached.stdout))


def test_every_program_runs_in_a_session_of_its_own() -> None:
    result = run([sys.executable, "-c", "import os; print(os.getsid(0), os.getpid())"])
    sid, pid = result.stdout.split()
    assert sid == pid
    assert int(sid) != os.getsid(0)


def test_large_output_and_input_do_not_deadlock() -> None:
    data = "x" * 5_000_000
    assert run(["cat"], stdin=data).stdout == data
    assert len(run(["sh", "-c", "head -c 3000000 /dev/zero >&2"]).stderr) == 3_000_000
