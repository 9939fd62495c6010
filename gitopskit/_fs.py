"""Replacing a directory in one step, so readers see the old tree or the new, never a mix."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path

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


def staging_dir(target: Path) -> Path:
    """A fresh, empty directory beside ``target`` (same file system, so the swap is a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.gitopskit-", dir=target.parent))


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
    # No atomic exchange here: two renames, the old tree kept until the new one is in place.
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, old / "tree")
    try:
        os.rename(staged, target)
    except OSError:
        os.rename(old / "tree", target)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
