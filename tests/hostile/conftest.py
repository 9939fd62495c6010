"""Fixtures for the hostile suite: inputs a newcomer or an attacker gives gitopskit.

Everything here goes through the public doors a user has: ``invoke`` in a subprocess, or the
library call a task makes (:func:`gitopskit.publish.publish`), against real git and the GitLab
fake over real HTTP. Every captured output is kept, so a test can search all of it for a secret.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitopskit.config import Settings
from gitopskit.publish import Options, PublishResult, publish
from gitopskit.ui import Progress
from tests.conftest import invoke_clean, task_project
from tests.fakes.gitlab import DEVELOPER, FakeGitLab, FakeProject

REPO = Path(__file__).resolve().parents[2]
TOKEN = "glpat-hostile-suite-0123456789"
PROJECT = "platform/k8s-manifests"
BRANCH = "gitopskit/shop-app"
CI = {
    "CI_PROJECT_PATH_SLUG": "shop-app",
    "CI_PROJECT_PATH": "shop/app",
    "CI_COMMIT_TITLE": "Change the charts",
    "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
}
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def configmap(name: str, namespace: str = "shop", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def write_dist(outdir: Path, files: dict[str, list[dict[str, Any]] | str]) -> Path:
    """Replace ``outdir`` with these files (objects, or raw text), as synth would write them."""
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    for name, content in files.items():
        path = outdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump_all(content)
        path.write_text(text)
    return outdir


@dataclass
class Captured:
    """Everything the runs of one test printed."""

    texts: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(self.texts)


@pytest.fixture
def captured() -> Iterator[Captured]:
    """All output of the test; the token never appears in any of it."""
    found = Captured()
    yield found
    assert TOKEN not in str(found)


@pytest.fixture
def gitlab(tmp_path: Path) -> Iterator[FakeGitLab]:
    with FakeGitLab(tmp_path / "gitlab") as fake:
        fake.add_user("project_1_bot", TOKEN, access_level=DEVELOPER)
        yield fake


def gitlab_env(gitlab: FakeGitLab, **extra: str) -> dict[str, str]:
    return {
        **CI,
        "GITLAB_URL": gitlab.url,
        "MANIFESTS_PROJECT": PROJECT,
        "MANIFESTS_TOKEN": TOKEN,
        "HOME": "/nonexistent",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        **extra,
    }


@dataclass
class Published:
    """One publish through the library, as the task makes it."""

    result: PublishResult
    output: str


def do_publish(
    env: dict[str, str], outdir: Path, captured: Captured, **options: Any
) -> Published:
    stream = io.StringIO()
    try:
        result = publish(
            outdir.parent,
            Settings({}, env),
            Options(**options),
            outdir=outdir,
            progress=Progress(stream, colour=False),
        )
    finally:
        captured.texts.append(stream.getvalue())
    return Published(result, stream.getvalue())


def merge(project: FakeProject, branch: str = BRANCH) -> None:
    """Merge the publish branch as GitLab would (fast-forward, branch removed)."""
    project.git("update-ref", "refs/heads/main", project.branch_sha(branch) or "")
    project.git("update-ref", "-d", f"refs/heads/{branch}")
    for mr in project.merge_requests:
        if mr["source_branch"] == branch and mr["state"] == "opened":
            mr["state"] = "merged"


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A project to run ``invoke`` in: tasks.py, invoke.yaml, cdk8s.yaml and an empty dist/."""
    return task_project(tmp_path / "project")


def invoke(
    project: Path,
    *args: str,
    captured: Captured | None = None,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    **variables: str,
) -> subprocess.CompletedProcess[str]:
    """``invoke ARGS`` in ``project`` with only the environment given (see
    :func:`tests.conftest.invoke_clean`); the output is kept in ``captured``."""
    done = invoke_clean(project, *args, timeout=timeout, env={**(env or {}), **variables})
    if captured is not None:
        captured.texts += [done.stdout, done.stderr]
    return done


def git(*args: str | Path, cwd: Path | None = None) -> str:
    """Run git (an isolated identity and config), returning stdout; fails the test on error."""
    done = subprocess.run(
        ["git", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **GIT_IDENTITY},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def bare_repository(
    root: Path,
    files: dict[str, str],
    *,
    branch: str = "main",
    head: str | None = None,
    links: dict[str, str] | None = None,
) -> Path:
    """A bare repository with one commit of ``files`` (and symlinks) on ``branch``, made the way
    people make them: ``git init --bare`` (HEAD on ``head``, git's default when None), then a
    push from a clone."""
    bare = root / "manifests.git"
    args = ["init", "--quiet", "--bare"] + (["-b", head] if head else [])
    git(*args, bare)
    work = root / "seed"
    git("init", "--quiet", "-b", branch, work)
    for name, text in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name, target in (links or {}).items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    git("-C", work, "add", "--all")
    git("-C", work, "commit", "--quiet", "--allow-empty", "-m", "seed")
    git("-C", work, "push", "--quiet", str(bare), f"{branch}:refs/heads/{branch}")
    return bare
