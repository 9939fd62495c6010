"""The single helper for running external programs.

Argument lists, never shell strings. Secrets travel through stdin or the environment, never
argv. ``sh`` logs every command's argv at INFO and puts argv and output in its exception text,
so its logger is kept at WARNING and its errors are rebuilt, redacted, as ours.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import sh

from gitopskit.errors import CommandError, ToolNotFoundError
from gitopskit.redact import redact

logging.getLogger("sh").setLevel(logging.WARNING)

_OUTPUT_TAIL = 2000


@dataclass(frozen=True)
class Result:
    """What a finished program left."""

    returncode: int
    stdout: str
    stderr: str
    raw_stdout: bytes = b""


def which(program: str, path: str | None = None) -> str:
    """The full path of ``program``.

    Raises:
        ToolNotFoundError: It is not installed or not on PATH.
    """
    found = shutil.which(program, path=path)
    if found is None:
        raise ToolNotFoundError(
            f"{program} is not installed or not on PATH", hint=f"install {program} and retry"
        )
    return found


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    stdin: str | bytes | None = None,
    cwd: str | Path | None = None,
    ok_codes: Sequence[int] = (0,),
    timeout: float | None = None,
    error: type[CommandError] = CommandError,
    what: str | None = None,
    text: bool = True,
) -> Result:
    """Run a program to completion and capture its output.

    Args:
        args: Program and arguments; the program is looked up on ``env``'s PATH.
        env: The whole environment (default: this process's).
        extra_env: Added on top of ``env``.
        stdin: Fed to the program's standard input (the place for secrets).
        cwd: Working directory.
        ok_codes: Exit statuses that count as success.
        timeout: Seconds before the program is killed.
        error: The :class:`CommandError` subclass raised on failure.
        what: Names the action in error messages (default: the program and subcommand).
        text: Decode stdout into :attr:`Result.stdout`; with False only
            :attr:`Result.raw_stdout` holds it (binary output, large blobs).

    Returns:
        The exit status and the decoded output.

    Raises:
        ToolNotFoundError: The program is not installed.
        CommandError: (or ``error``) It failed or timed out; the message carries its redacted
            stderr, never its argv.
    """
    environment = dict(os.environ if env is None else env)
    if extra_env:
        environment.update(extra_env)
    program = which(args[0], path=environment.get("PATH"))
    label = what or " ".join(Path(a).name if i == 0 else a for i, a in enumerate(args[:2]))
    try:
        command = sh.Command(program)
        finished = command(
            *args[1:],
            _env=environment,
            _in=stdin,
            _cwd=str(cwd) if cwd is not None else None,
            _ok_code=list(ok_codes),
            _timeout=timeout,
            _tty_out=False,
            _return_cmd=True,
            _decode_errors="replace",
        )
    except sh.TimeoutException:
        raise error(f"{label} timed out after {timeout:g}s") from None
    except sh.SignalException as killed:
        raise error(f"{label} was killed by signal {-killed.exit_code}") from None
    except sh.ErrorReturnCode as failed:
        output = _decode(failed.stderr) or _decode(failed.stdout)
        raise error(
            f"{label} failed (exit {failed.exit_code}){_tail(output)}",
            returncode=failed.exit_code,
        ) from None
    raw = finished.stdout if isinstance(finished.stdout, bytes) else b""
    stdout = _decode(finished.stdout) if text else ""
    return Result(finished.exit_code or 0, stdout, _decode(finished.stderr), raw)


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def _tail(output: str) -> str:
    text = redact(output.strip())
    if not text:
        return ""
    if len(text) > _OUTPUT_TAIL:
        text = "…" + text[-_OUTPUT_TAIL:]
    return ":\n" + text
