"""``python -m invoke ARGS`` for the tests, forked from an interpreter that has started already.

Most tests run a task as a user does: ``python -m invoke ARGS`` in a project, with an environment
and working directory of their own. A new interpreter spends about 0.25 s of CPU starting Python
and importing invoke and gitopskit before the task begins, and some 200 runs made that a quarter
of the suite's CPU time. So each test worker starts one helper interpreter (the *zygote*) that
imports them once and then, for each run, forks: the child takes the run's working directory,
environment, arguments and standard streams, and runs invoke's own ``program`` exactly as
``python -m invoke`` does. The zygote runs no threads, so forking it is safe.

What a fork cannot be, a test gets a real interpreter for (:func:`can_warm`): a run with a
``preexec_fn`` (signals, process groups), another ``PYTHONPATH``, or a call made while another
run of the same worker is under way.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

_ZYGOTE = r"""
import atexit, json, os, signal, socket, sys, tempfile, traceback
import invoke.main  # noqa: F401  (invoke, its parser and loader)
import gitopskit.cli, gitopskit.diff, gitopskit.publish, gitopskit.synth  # noqa: F401
import gitopskit.flux, gitopskit.against, gitopskit.render, gitopskit.review  # noqa: F401
import gitopskit.flux.operator, gitopskit.flux.charts, gitopskit.flux.migrate  # noqa: F401

channel = socket.socket(fileno=int(sys.argv[1]))
signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def child(request, fds):
    os.dup2(fds[0], 0)
    os.dup2(fds[1], 1)
    os.dup2(fds[2], 2)
    for fd in fds:
        os.close(fd)
    channel.close()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None
    sys.path[0] = request["cwd"]  # what ``python -m`` puts first
    sys.argv = ["invoke", *request["args"]]
    code = 0
    try:
        invoke.main.program.run(sys.argv)
    except SystemExit as stop:
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


while True:
    try:
        message, fds, _, _ = socket.recv_fds(channel, 1 << 20, 3)
    except OSError:
        break
    if not message:
        break
    request = json.loads(message)
    pid = os.fork()
    if pid == 0:
        child(request, fds)
    for fd in fds:
        os.close(fd)
    channel.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    channel.sendall(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
"""

ROOT = Path(__file__).resolve().parent.parent


class _Zygote:
    """The worker's one helper interpreter, started on first use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: socket.socket | None = None
        self.buffer = b""

    def start(self) -> socket.socket:
        if self.channel is not None and self.process is not None and self.process.poll() is None:
            return self.channel
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.channel = ours
        self.buffer = b""
        return ours

    def stop(self) -> None:
        """End the zygote (it exits when its channel closes) and forget it."""
        if self.channel is not None:
            self.channel.close()
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.channel = self.process = None

    def _reply(self, channel: socket.socket, timeout: float | None) -> dict[str, int]:
        channel.settimeout(timeout)
        while b"\n" not in self.buffer:
            chunk = channel.recv(4096)
            if not chunk:
                raise ConnectionError("the zygote is gone")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        reply: dict[str, int] = json.loads(line)
        return reply

    def run(
        self,
        args: list[str],
        cwd: Path,
        env: Mapping[str, str],
        stdin: str | None,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        channel = self.start()
        with (
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
            tempfile.TemporaryFile() as given,
        ):
            given.write((stdin or "").encode())
            given.flush()
            given.seek(0)
            request = json.dumps({"args": args, "cwd": str(cwd), "env": dict(env)}).encode()
            socket.send_fds(channel, [request], [given.fileno(), out.fileno(), err.fileno()])
            pid = self._reply(channel, 30)["pid"]
            try:
                status = self._reply(channel, timeout)["status"]
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                self._reply(channel, 30)
                raise subprocess.TimeoutExpired(["invoke", *args], timeout) from None
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
        return subprocess.CompletedProcess(["invoke", *args], status, stdout, stderr)


_zygote = _Zygote()


def can_warm(env: Mapping[str, str], preexec_fn: object) -> bool:
    """Whether a run can be forked from the zygote (see the module's docstring);
    ``GITOPSKIT_TESTS_NEW_INTERPRETERS=1`` in the test run's environment: never."""
    if os.environ.get("GITOPSKIT_TESTS_NEW_INTERPRETERS") == "1":
        return False
    return preexec_fn is None and env.get("PYTHONPATH") == str(ROOT)


def invoke(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: str | None = None,
    timeout: float = 120,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m invoke ARGS``: forked from the zygote where it can be (:func:`can_warm`),
    else in a new interpreter."""
    if can_warm(env, preexec_fn):
        done = run(args, cwd=cwd, env=env, stdin=stdin, timeout=timeout)
        if done is not None:
            return done
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=cwd,
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def run(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str] | None:
    """``python -m invoke ARGS`` forked from the zygote, or None when another run of this
    worker holds it (the caller then starts a real interpreter)."""
    if not _zygote.lock.acquire(blocking=False):
        return None
    try:
        return _zygote.run(args, Path(cwd), env, stdin, timeout)
    except BaseException:
        _zygote.stop()  # its answers may be out of step now: the next run starts another
        raise
    finally:
        _zygote.lock.release()

