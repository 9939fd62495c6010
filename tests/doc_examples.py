"""The documentation's shell examples, and the sandbox they run in.

A shell block fenced as ``sh offline`` in README.md or docs/*.md needs neither GitLab nor a
cluster. It starts where the README's local tour ends: in the project, the virtual environment
active, ``MANIFESTS_GIT_URL`` the absolute path of ``../manifests.git``, whose ``main`` holds what
the charts make. :func:`build_tour` runs the tour, as written, in a fresh copy of the project;
:func:`copy_tour` copies its end state for one example, which :func:`run_example` runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.invoke_calls import shell_blocks

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: What a copy of the project holds: what a user's checkout needs to run the tasks.
PROJECT = ("tasks.py", "invoke.yaml", "cdk8s.yaml", "charts", "flux")
#: Variables of the caller's shell an example must not see.
FOREIGN_PREFIXES = ("MANIFESTS_", "GITOPSKIT_", "GITLAB_", "CI_", "KUBE", "GIT_", "INVOKE_")
FOREIGN_NAMES = ("COMMENT_TOKEN", "LAB_CORE_TOKEN")
#: The fence of a runnable example: ```sh offline
_FENCE = re.compile(
    r"^(?P<fence>```+|~~~+)[ \t]*(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
OFFLINE = "sh offline"


@dataclass(frozen=True)
class Example:
    """One runnable example: where it is, and its text."""

    file: Path
    line: int
    script: str

    @property
    def name(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def markdown_files() -> list[Path]:
    """README.md, flux/README.md and every page of docs/."""
    return [README, ROOT / "flux" / "README.md", *sorted(DOCS.glob("*.md"))]


def offline_examples() -> list[Example]:
    """Every ``sh offline`` block of the documentation, in order."""
    found = []
    for path in markdown_files():
        text = path.read_text()
        for match in _FENCE.finditer(text):
            if match.group("info").strip() == OFFLINE:
                line = text.count("\n", 0, match.start("body")) + 1
                found.append(Example(path, line, match.group("body")))
    return found


def tour_script() -> str:
    """The shell block of the README's local tour, as written."""
    text = README.read_text()
    section = text[text.index("## A local tour") :]
    section = section[: section.index("\n## ", 1)]
    return shell_blocks(section)


def environment(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without gitopskit's, GitLab's, git's or kubectl's variables,
    with ``home`` as HOME (no kubeconfig there) and no colour."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(FOREIGN_PREFIXES) and k not in FOREIGN_NAMES
    }
    environ.update(HOME=str(home), NO_COLOR="1", **extra)
    return environ


@dataclass(frozen=True)
class Tour:
    """The end state of the local tour: ``root/checkout``, ``root/manifests.git``,
    ``root/home``, and what the tour printed."""

    root: Path
    returncode: int
    stdout: str
    stderr: str


def build_tour(root: Path) -> Tour:
    """Run the README's tour as written in ``root/checkout``, a fresh copy of the project whose
    virtual environment is this one."""
    checkout = root / "checkout"
    checkout.mkdir(parents=True)
    for name in PROJECT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, checkout / name)
    (checkout / ".venv").symlink_to(Path(sys.prefix))
    (root / "home").mkdir()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", tour_script()],
        cwd=checkout,
        env=environment(root / "home", GITOPSKIT_NETWORK_TIMEOUT="10"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    return Tour(root, done.returncode, done.stdout, done.stderr)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def shared_tour(root: Path) -> Tour:
    """The tour's end state in ``root/local-tour``, built once for every test worker that
    shares ``root``."""
    base = root / "local-tour"
    record = root / "local-tour.json"
    with _locked(root / "local-tour.lock"):
        if not record.exists():
            if base.exists():
                shutil.rmtree(base)
            tour = build_tour(base)
            fields = {"returncode": tour.returncode, "stdout": tour.stdout, "stderr": tour.stderr}
            record.write_text(json.dumps(fields))
    return Tour(base, **json.loads(record.read_text()))


def copy_tour(tour: Tour, target: Path) -> Path:
    """A copy of the tour's end state in ``target``; the copy's checkout."""
    for name in ("checkout", "manifests.git", "home"):
        shutil.copytree(tour.root / name, target / name, symlinks=True)
    return target / "checkout"


def run_example(example: Example, checkout: Path) -> subprocess.CompletedProcess[str]:
    """Run one example in ``checkout`` (a copy of the tour's end state), as a reader would
    paste it there: the virtual environment active, ``MANIFESTS_GIT_URL`` set."""
    script = ". .venv/bin/activate\n" + example.script
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=checkout,
        env=environment(
            checkout.parent / "home",
            MANIFESTS_GIT_URL=str(checkout.parent / "manifests.git"),
            GITOPSKIT_NETWORK_TIMEOUT="5",
        ),
        capture_output=True,
        text=True,
        timeout=180,
    )
