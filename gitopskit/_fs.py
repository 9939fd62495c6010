"""Replacing a directory in one step, so readers see the old tree or the new, never a mix.

Every temporary directory made here is registered with :mod:`gitopskit.interrupts`, so that an
interrupt at any moment leaves none behind.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitopskit import interrupts

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with Linux's renameat2(RENAME_EXCHANGE); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


@contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A fresh, empty directory beside ``target`` (same file system, so the swap is a rename),
    removed on exit with whatever it then holds (the old tree, after :func:`replace_dir`).
    Parents of ``target`` made for it are removed again when ``target`` was not put in place.

    Raises:
        OSError: It cannot be made (``target``'s parent cannot be created or written).
    """
    made = [parent for parent in target.parents if not parent.exists()]  # nearest first
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        prefix = f".{target.name}.gitopskit-"
        with interrupts.temporary_directory(prefix, dir=target.parent) as path:
            yield path
    finally:
        if not target.exists():  # nothing was put in place: leave no empty parents either
            for parent in made:
                try:
                    parent.rmdir()
                except OSError:
                    break


def replace_dir(staged: Path, target: Path) -> None:
    """Make ``staged`` the new ``target`` in one step and remove the old tree.

    Raises:
        OSError: ``target`` exists and is not a directory, or the rename failed.
    """
    umask = os.umask(0)
    os.umask(umask)
    staged.chmod(0o777 & ~umask)  # mkdtemp makes 0700; the output is an ordinary directory
    if not target.exists() and not target.is_symlink():
        os.rename(staged, target)
        return
    if not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(target))
    if _exchange(staged, target):
        shutil.rmtree(staged)
        return
    # No atomic exchange here: two renames, the old tree kept until the new one is in place,
    # and no interrupt between them.
    prefix = f".{target.name}.old-"
    with (
        interrupts.temporary_directory(prefix, dir=target.parent) as old,
        interrupts.deferred(),
    ):
        os.rename(target, old / "tree")
        try:
            os.rename(staged, target)
        except OSError:
            os.rename(old / "tree", target)
            raise
