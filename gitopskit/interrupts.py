"""Interrupts leave nothing behind: temporary paths and child processes, cleaned up on a signal.

One registry per process holds what a run would leave behind if it stopped now: temporary
directories (:func:`temporary_directory`, :func:`tracked`) and the process groups of the
programs it runs (:func:`track_group`; :func:`gitopskit._run.run` starts every program in a
session of its own and registers it). A task's boundary (:func:`gitopskit.cli.boundary`)
installs :func:`handling` for SIGINT and SIGTERM; on either, the handler signals every tracked
group at once and raises :class:`Interrupted` in the main thread, so that the stack unwinds
(each program is terminated and waited for by the code that started it, then the ``finally``
blocks remove their directories), and the boundary sweeps up whatever is still registered
(:func:`cleanup`) before it exits with 130 (SIGINT) or 143 (SIGTERM) and one line
``interrupted``.

A step that changes something outside (a push) says what it has done with :func:`done_so_far`
(``"branch pushed; merge request not updated; run publish again to finish"``): the boundary
prints it under ``interrupted``, or under the error when the run fails later.

Signals arriving inside :func:`deferred` (starting a program and registering it, a rename
pair) are acted on when the block ends, so nothing is ever started but not registered.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

GRACE_SECONDS = 2.0
"""How long a terminated program has to exit before it is killed."""

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_paths: dict[Path, None] = {}  # insertion-ordered set
_groups: dict[int, None] = {}
_state: dict[str, Any] = {"deferring": 0, "pending": None, "cleaning": False, "done": None}

_counting = threading.Lock()

Handler = Callable[[int, FrameType | None], Any] | int | None


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while a task ran.

    A :class:`KeyboardInterrupt`, so that code which already cleans up on Ctrl-C does so on
    SIGTERM too, and ``except Exception`` never swallows it.

    Args:
        signum: The signal.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """128 + the signal number: 130 for SIGINT, 143 for SIGTERM, as a shell reports it."""
        return 128 + self.signum


# --- what to clean up --------------------------------------------------------------------------


@contextmanager
def tracked(path: Path) -> Iterator[Path]:
    """Register ``path`` (made by the caller) for removal on an interrupt; remove it on exit."""
    _paths[path] = None
    try:
        yield path
    finally:
        _remove(path)
        _paths.pop(path, None)


@contextmanager
def temporary_directory(prefix: str, *, dir: Path | None = None) -> Iterator[Path]:
    """A new private directory (0700), registered from the moment it exists, removed on exit.

    Args:
        prefix: Start of its name (``gitopskit-publish-``).
        dir: Where to make it (default: the system's temporary directory, ``TMPDIR``).
    """
    with deferred():
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
        _paths[path] = None
    with tracked(path):
        yield path


def track_group(pgid: int) -> None:
    """Register the process group ``pgid`` for termination on an interrupt."""
    _groups[pgid] = None


def untrack_group(pgid: int) -> None:
    """Forget the process group ``pgid``: it has ended."""
    _groups.pop(pgid, None)


def done_so_far(message: str | None) -> None:
    """Say what this run has changed so far, for the user to read if it stops now.

    Args:
        message: E.g. ``"branch pushed; merge request not updated; run publish again to
            finish"``; None when there is nothing to say (again).
    """
    _state["done"] = message


def so_far() -> str | None:
    """The last :func:`done_so_far` message of this run, if any."""
    done: str | None = _state["done"]
    return done


# --- ending processes ----------------------------------------------------------------------


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running.

    A zombie (exited, not yet reaped by its parent) does not count: an orphan's parent is init,
    which in a container may never reap it. Where ``/proc`` can tell, it is asked.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def terminate_group(
    pgid: int, *, reap: Callable[[], object] | None = None, grace: float = GRACE_SECONDS
) -> None:
    """SIGTERM to every process of group ``pgid``; SIGKILL to what is left after ``grace``.

    Args:
        pgid: The group (the pid of the program that leads it).
        reap: Waits for the leader without blocking (``Popen.poll``), so that it does not
            linger as a zombie and the group is seen to be gone.
        grace: Seconds the group has to exit after SIGTERM.
    """
    if not _signal_group(pgid, signal.SIGTERM):
        if reap is not None:
            reap()
        return
    deadline = time.monotonic() + grace
    delay = 0.001
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not group_alive(pgid):
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    _signal_group(pgid, signal.SIGKILL)
    if reap is not None:
        reap()


def _signal_group(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def cleanup(*, interrupted: bool = False) -> None:
    """Terminate every registered process group, then remove every registered path.

    Groups first: a program still running could re-create a directory just removed.

    Args:
        interrupted: After an interrupt: further SIGINT and SIGTERM are ignored until the
            handlers are put back (the cleanup is bounded; a second Ctrl-C must not cut it).
    """
    if interrupted:
        _state["cleaning"] = True
    for pgid in list(_groups):
        terminate_group(pgid)
        _groups.pop(pgid, None)
    for path in list(_paths):
        _remove(path)
        _paths.pop(path, None)


# --- signals -------------------------------------------------------------------------------


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state["cleaning"]:
        return  # the boundary is cleaning up after an interrupt: that is bounded, let it end
    if _state["deferring"]:
        _state["pending"] = signum
        return
    _interrupt(signum)


def _interrupt(signum: int) -> None:
    for pgid in list(_groups):  # start the programs' shutdown now, in parallel with ours
        _signal_group(pgid, signal.SIGTERM)
    raise Interrupted(signum)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block; one that arrived is acted on when it ends.

    Blocks may run in several threads at once (synth runs environments side by side): the count
    of open blocks is kept under a lock. The signal handler itself only reads it.
    """
    with _counting:
        _state["deferring"] += 1
    try:
        yield
    finally:
        with _counting:
            _state["deferring"] -= 1
    pending = _state["pending"]
    if pending is not None and not _state["deferring"] and not _state["cleaning"]:
        _state["pending"] = None
        _interrupt(pending)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def handling() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` for the block, then put back the
    handlers that were there. A signal that arrives while they are put back is sent again to
    the restored handler. Outside the main thread (where Python cannot set handlers) nothing
    changes."""
    if not _in_main_thread():
        yield
        return
    _state.update(deferring=0, pending=None, cleaning=False, done=None)
    previous: dict[int, Handler] = {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        _state["deferring"] += 1
        for number, handler in previous.items():
            signal.signal(number, handler)
        pending = _state["pending"]
        _state.update(deferring=0, pending=None, cleaning=False)
        if pending is not None:
            signal.raise_signal(pending)


def _quiet_exit(signum: int, frame: FrameType | None) -> None:
    cleanup(interrupted=True)
    sys.stdout.flush()
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    raise SystemExit(128 + signum)


def install_quiet_exit() -> None:
    """Until a task's boundary takes over (invoke importing and parsing, between tasks, after
    the last): SIGINT or SIGTERM ends the process with 130 / 143 and one line ``interrupted``,
    never a traceback. ``tasks.py`` calls it first thing.

    Only in invoke's command-line program (``invoke.main`` is loaded): a process that imports
    ``tasks.py`` for another reason (a test run, an editor) keeps its own handlers.
    """
    if _in_main_thread() and "invoke.main" in sys.modules:
        for signum in SIGNALS:
            signal.signal(signum, _quiet_exit)
