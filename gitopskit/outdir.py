"""Which output directory synth may replace: only one it owns.

Synth replaces its output directory whole, so the directory must be synth's: missing, empty, or
holding nothing but what an earlier synth wrote there, as listed in the marker file
:data:`MARKER` that every synth writes beside the manifests. ``dist/`` directories of earlier
versions (no marker) are adopted only when they hold nothing but ``*.k8s.yaml`` files. Anything
else (the project, an ancestor of it, a git checkout or anything inside a ``.git`` directory,
chart sources, a file, a symlink, a directory with a file synth did not write) is refused
before anything is touched.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from gitopskit.errors import OutdirError

MARKER = ".gitopskit-outdir"
_MARKER_NOTE = "written by gitopskit synth, which replaces this directory; what it wrote here"


def _entries(directory: Path) -> list[str]:
    """Every entry under ``directory`` as a relative POSIX path, symlinks not followed."""
    found: list[str] = []
    pending = [("", directory)]
    while pending:
        prefix, path = pending.pop()
        with os.scandir(path) as scan:
            for entry in scan:
                name = prefix + entry.name
                found.append(name)
                if entry.is_dir(follow_symlinks=False):
                    pending.append((name + "/", Path(entry.path)))
    return sorted(found)


def write_marker(directory: Path) -> None:
    """Record in ``directory`` every entry it holds now, as synth's own.

    The list is JSON, so that any file name (a newline, U+2028, bytes that are not UTF-8) reads
    back exactly as it was written.
    """
    entries = [e for e in _entries(directory) if e != MARKER]
    text = json.dumps({"note": _MARKER_NOTE, "entries": entries}, indent=1)
    (directory / MARKER).write_text(text + "\n", encoding="ascii", errors="surrogateescape")


def read_marker(directory: Path) -> set[str] | None:
    """The entries the marker in ``directory`` lists; None when there is no valid marker (none,
    a symlink, not a regular file, not gitopskit's JSON)."""
    path = directory / MARKER
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        return None
    return set(entries)


_SHOWN_STRAYS = 4
_PROJECT_FILES = {
    ".git": ".git (a git repository)",
    "cdk8s.yaml": "cdk8s.yaml",
    "tasks.py": "tasks.py",
}


def claim(outdir: Path, project_dir: Path, *, shown: str | None = None) -> str | None:
    """Check that synth may replace ``outdir``; touch nothing.

    Args:
        outdir: The output directory, absolute.
        project_dir: The project's directory (where ``tasks.py`` and ``cdk8s.yaml`` are).
        shown: How messages name ``outdir`` (default: its path).

    Returns:
        A note when an earlier version's ``dist/`` is adopted, else None.

    Raises:
        OutdirError: ``outdir`` is not synth's, naming what is in the way; or it cannot be made.
    """
    name = shown or str(outdir)
    if not _check_place(outdir, project_dir, name, "replace"):
        return None
    return _check_contents(outdir, name)


def claim_parent(outdir: Path, project_dir: Path, *, shown: str | None = None) -> None:
    """Check that synth may write environments into ``outdir/<name>``; touch nothing.

    ``outdir`` itself is never replaced then, but it must be synth's place all the same: not
    the project or an ancestor of it, not a symbolic link, and holding nothing but
    environments' output directories (each with synth's marker) and what an earlier synth
    without environments left there (``*.k8s.yaml`` files and the marker).

    Raises:
        OutdirError: ``outdir`` is not synth's, naming what is in the way.
    """
    name = shown or str(outdir)
    verb = "write environments into"
    if not _check_place(outdir, project_dir, name, verb):
        return
    strays = []
    for entry in sorted(os.listdir(outdir)):
        path = outdir / entry
        if path.is_symlink():
            strays.append(entry)
        elif path.is_dir():
            if read_marker(path) is None and os.listdir(path):
                strays.append(entry + "/")
        elif not (entry == MARKER or entry.endswith(".k8s.yaml")):
            strays.append(entry)
    if strays:
        raise _refusal(name, _describe(strays, marked=True), verb=verb)


def _check_place(outdir: Path, project_dir: Path, name: str, verb: str) -> bool:
    """What :func:`claim` and :func:`claim_parent` both ask of ``outdir``'s place, before its
    contents: not inside a ``.git`` directory (its links resolved: git's own files are never
    synth's, even an empty ``.git/refs/tags``), creatable when missing, else a directory that
    is no symbolic link, not the project and no ancestor of it.

    Returns:
        Whether ``outdir`` exists (its contents are then the caller's to check).

    Raises:
        OutdirError: ``outdir`` is not synth's place, naming why (``verb``: what synth was
            about to do); or it cannot be made.
    """
    if ".git" in Path(os.path.realpath(outdir)).parts:
        raise _refusal(name, "it is inside a .git directory", verb=verb)
    try:
        info = outdir.lstat()
    except FileNotFoundError:
        _check_creatable(outdir, name)
        return False
    except OSError as error:
        raise OutdirError(f"cannot create {name}: {error.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise _refusal(name, "it is a symbolic link, and synth never follows one", verb=verb)
    if not stat.S_ISDIR(info.st_mode):
        raise OutdirError(f"the output directory {name} is not a directory")
    real = Path(os.path.realpath(outdir))
    project = project_dir.resolve()
    if real == project:
        raise _refusal(name, f"it is the project directory ({project})", verb=verb)
    if project.is_relative_to(real):
        raise _refusal(name, f"it contains the project directory ({project})", verb=verb)
    return True


def _check_creatable(outdir: Path, name: str) -> None:
    """A missing ``outdir`` must be creatable: its nearest existing ancestor is a directory.
    (What only trying can tell, such as a read-only file system, is found when it is made.)"""
    for parent in outdir.parents:
        try:
            parent.lstat()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise OutdirError(f"cannot create {name}: {error.strerror}") from None
        if not parent.is_dir():
            raise OutdirError(f"cannot create {name}: {parent} is not a directory")
        return


def _check_contents(outdir: Path, name: str) -> str | None:
    try:
        top = sorted(os.listdir(outdir))
    except OSError as error:
        raise OutdirError(f"cannot read the output directory {name}: {error.strerror}") from None
    if not top:
        return None
    listed = read_marker(outdir)
    if listed is not None:
        strays = _strays(outdir, listed | {MARKER})
        if not strays:
            return None
        raise _refusal(name, _describe(strays, marked=True))
    if MARKER in top:
        raise _refusal(name, f"its {MARKER} is not one synth wrote")
    strays = [n for n in top if not (n.endswith(".k8s.yaml") and _is_file(outdir / n))]
    if strays:
        raise _refusal(name, _describe(strays, marked=False))
    return f"adopting {name}/ of an earlier gitopskit: it holds only *.k8s.yaml files"


def _is_file(path: Path) -> bool:
    """A regular file itself, not a symlink to one."""
    return stat.S_ISREG(path.lstat().st_mode)


def _strays(outdir: Path, listed: set[str]) -> list[str]:
    """Entries that are not in ``listed``, a few at most (the first found stop the walk)."""
    found: list[str] = []
    pending = [("", outdir)]
    while pending and len(found) < _SHOWN_STRAYS + 1:
        prefix, path = pending.pop(0)
        with os.scandir(path) as scan:
            for entry in sorted(scan, key=lambda e: e.name):
                relative = prefix + entry.name
                is_dir = entry.is_dir(follow_symlinks=False)
                if relative not in listed:
                    found.append(relative + ("/" if is_dir else ""))
                elif is_dir:
                    pending.append((relative + "/", Path(entry.path)))
    return found


def _describe(strays: list[str], *, marked: bool) -> str:
    special = [_PROJECT_FILES[s] for s in strays if s in _PROJECT_FILES]
    python = [s for s in strays if s.endswith(".py")]
    if special:
        return "it holds " + ", ".join(special)
    if python:
        return "it holds Python files (" + _names(python) + ")"
    what = "files synth did not write" if marked else "files other than *.k8s.yaml"
    return f"it holds {what}: {_names(strays)}"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_STRAYS])
    return shown + (", …" if len(names) > _SHOWN_STRAYS else "")


def _refusal(name: str, reason: str, *, verb: str = "replace") -> OutdirError:
    return OutdirError(
        f"refusing to {verb} {name}: {reason}",
        hint="synth replaces only a directory it owns (missing, empty, or written by synth); "
        "choose another --outdir (GITOPSKIT_OUTDIR), or move what is there out of the way",
    )
