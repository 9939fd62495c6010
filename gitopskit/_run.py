"""The single helper for running external programs.

Argument lists, never shell strings (the one exception is the cdk8s app's ``app:`` line, which
cdk8s defines as a shell command: :mod:`gitopskit.cdk8s_app` hands it to ``/bin/sh -c`` through
:func:`run`, so the shell and all it starts are one process group here too). Secrets travel
through stdin or the environment, never argv; errors carry the program's redacted output, never
its argv.

Every program starts in a session (so a process group) of its own, registered with
:mod:`gitopskit.interrupts` from the moment it exists: on a timeout or an interrupt the whole
group (the program and whatever it started) is terminated, then killed after a grace period, and
waited for; so is anything of the group still running when the program itself has exited. A
Ctrl-C at the terminal reaches gitopskit alone, which then ends its programs itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gitopskit import interrupts
from gitopskit.errors import CommandError, ToolNotFoundError
from gitopskit.redact import redact

_OUTPUT_TAIL = 2000
_POLL_SECONDS = 0.25
_LEFTOVER_OUTPUT_SECONDS = 1.0


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
        CommandError: (or ``error``) It failed, timed out or could not start; the message
            carries its redacted stderr, never its argv.
        Interrupted: SIGINT or SIGTERM arrived (see :mod:`gitopskit.interrupts`); the program's
            group was terminated and waited for first.
    """
    environment = dict(os.environ if env is None else env)
    if extra_env:
        environment.update(extra_env)
    program = which(args[0], path=environment.get("PATH"))
    label = what or " ".join(Path(a).name if i == 0 else a for i, a in enumerate(args[:2]))
    data = stdin.encode() if isinstance(stdin, str) else stdin
    with interrupts.deferred():  # started and registered, or neither
        try:
            process = subprocess.Popen(
                [program, *args[1:]],
                env=environment,
                cwd=cwd,
                stdin=subprocess.DEVNULL if data is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as failed:
            raise error(f"cannot run {label}: {failed.strerror}") from None
        interrupts.track_group(process.pid)
    try:
        stdout, stderr, timed_out = _communicate(process, data, timeout)
    except BaseException:
        interrupts.terminate_group(process.pid, reap=process.poll)
        raise
    finally:
        interrupts.untrack_group(process.pid)
    if timed_out:
        raise error(f"{label} timed out after {timeout:g}s")
    code = process.returncode
    if code < 0:
        raise error(f"{label} was killed by signal {-code}")
    if code not in ok_codes:
        output = _decode(stderr) or _decode(stdout)
        raise error(f"{label} failed (exit {code}){_tail(output)}", returncode=code)
    return Result(code, _decode(stdout) if text else "", _decode(stderr), stdout)


def _communicate(
    process: subprocess.Popen[bytes], data: bytes | None, timeout: float | None
) -> tuple[bytes, bytes, bool]:
    """Feed stdin, collect stdout and stderr, wait for the program; end its group.

    Returns:
        stdout, stderr, and whether the timeout expired (the group was then terminated).
    """
    assert process.stdout is not None and process.stderr is not None
    chunks: tuple[list[bytes], list[bytes]] = ([], [])
    readers = [
        _thread(_drain, process.stdout, chunks[0]),
        _thread(_drain, process.stderr, chunks[1]),
    ]
    if data is not None:
        assert process.stdin is not None
        _thread(_feed, process.stdin, data)
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    for reader in readers:
        while reader.is_alive():
            wait = _POLL_SECONDS
            if deadline is not None:
                wait = min(wait, max(deadline - time.monotonic(), 0))
            reader.join(wait)
            if not reader.is_alive():
                break
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                interrupts.terminate_group(process.pid, reap=process.poll)
                break
            if process.poll() is not None:
                # The program has exited; something it started holds its output open.
                interrupts.terminate_group(process.pid)
                break
        if timed_out:
            break
    for reader in readers:
        reader.join(_LEFTOVER_OUTPUT_SECONDS)  # a process that left the group may hold a pipe
    if deadline is None:
        process.wait()
    else:
        try:
            process.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            timed_out = True
    if timed_out or interrupts.group_alive(process.pid):
        interrupts.terminate_group(process.pid, reap=process.poll)
    return b"".join(chunks[0]), b"".join(chunks[1]), timed_out


def _thread(target: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def _drain(stream: IO[bytes], sink: list[bytes]) -> None:
    try:
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            sink.append(chunk)
    except (OSError, ValueError):
        pass
    finally:
        stream.close()


def _feed(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(data)
    except (BrokenPipeError, OSError, ValueError):
        pass  # the program does not read it all: its exit status tells the rest
    finally:
        with contextlib.suppress(OSError):
            stream.close()


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
