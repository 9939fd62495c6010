"""The one helper for external programs: argv never logged, errors redacted."""

from __future__ import annotations

import logging

import pytest

from gitopskit._run import run
from gitopskit.errors import CommandError, GitError, ToolNotFoundError
from gitopskit.redact import add_secret


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
