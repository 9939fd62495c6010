"""Helpers for hostile and fault-injection tests: byte-exact tree snapshots, live processes,
and a tiny cdk8s-free app that writes into ``CDK8S_OUTDIR`` as a cdk8s app does."""

from __future__ import annotations

import os
import stat
from pathlib import Path

CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"

# Writes one ConfigMap per name in argv (default: app) into CDK8S_OUTDIR, as cdk8s's App does.
FAST_APP = """\
import os, pathlib, sys
out = pathlib.Path(os.environ["CDK8S_OUTDIR"])
for name in sys.argv[1:] or ["app"]:
    (out / f"{name}.k8s.yaml").write_text(
        f"apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: {name}\\n"
    )
"""


def write_fast_app(project: Path) -> str:
    """Put :data:`FAST_APP` in ``project`` and return the ``--app`` command that runs it."""
    (project / "fast_app.py").write_text(FAST_APP)
    return "python fast_app.py"


Entry = tuple[str, int, bytes]


def snapshot(root: Path) -> dict[str, Entry]:
    """Every entry under ``root`` (``root`` itself as ``.``), symlinks never followed: its type,
    permission bits, and its bytes (a file) or target (a symlink)."""
    found: dict[str, Entry] = {}

    def record(path: Path, name: str) -> None:
        info = path.lstat()
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            found[name] = ("link", mode, os.readlink(path).encode())
        elif stat.S_ISDIR(info.st_mode):
            found[name] = ("dir", mode, b"")
            for child in sorted(os.listdir(path)):
                record(path / child, child if name == "." else f"{name}/{child}")
        elif stat.S_ISREG(info.st_mode):
            found[name] = ("file", mode, path.read_bytes())
        else:
            found[name] = ("other", mode, b"")

    record(root, ".")
    return found


def alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a zombie, dead but not yet reaped, is not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return fields[0] not in ("Z", "X")


def bare_repository(parent: Path, files: dict[str, str] | None = None) -> Path:
    """A bare repository ``parent/manifests.git`` with one commit on main holding ``files``
    (default: a README)."""
    import subprocess

    work = parent / "manifests-work"
    work.mkdir()
    for name, text in (files or {"README.md": "manifests\n"}).items():
        (work / name).write_text(text)
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    bare = parent / "manifests.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare
