"""Generic git operations, against real repositories made in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopskit import diff, git
from gitopskit._run import run
from gitopskit.errors import ConfigError, GitError
from gitopskit.git import SourceKind
from tests.hostile.conftest import GIT_IDENTITY

CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{v: '{value}'}}\n"


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare repository: main holds v=1 in k8s/c.yaml, branch prod holds v=2."""
    root = tmp_path_factory.mktemp("git")
    work = root / "work"
    work.mkdir()

    def sh(*args: str, cwd: Path = work) -> None:
        run(["git", *args], cwd=cwd, extra_env=GIT_IDENTITY, error=GitError)

    sh("init", "--quiet", "--initial-branch=main")
    (work / "k8s").mkdir()
    (work / "k8s" / "c.yaml").write_text(CONFIG_MAP.format(value=1))
    sh("add", ".")
    sh("commit", "--quiet", "-m", "one")
    sh("checkout", "--quiet", "-b", "prod")
    (work / "k8s" / "c.yaml").write_text(CONFIG_MAP.format(value=2))
    sh("commit", "--quiet", "-am", "two")
    sh("checkout", "--quiet", "main")
    sh("clone", "--quiet", "--bare", str(work), str(root / "repo.git"), cwd=root)
    return root / "repo.git"


def test_classify(tmp_path: Path, bare: Path) -> None:
    assert git.classify("https://gitlab.example.com/g/r.git") is SourceKind.GIT
    assert git.classify("ssh://git@host:2222/g/r.git") is SourceKind.GIT
    assert git.classify("git@gitlab.example.com:g/r.git") is SourceKind.GIT
    assert git.classify(str(bare)) is SourceKind.GIT
    assert git.classify(str(tmp_path)) is SourceKind.DIRECTORY
    with pytest.raises(ConfigError, match="neither a directory nor a git URL"):
        git.classify(str(tmp_path / "missing"))


def test_display_url_drops_credentials() -> None:
    shown = git.display_url("https://oauth2:glpat-secret123@gitlab.example.com:8443/g/r.git")
    assert shown == "https://gitlab.example.com:8443/g/r.git"


@pytest.mark.parametrize("form", ["file", "path"])
def test_shallow_fetch_of_a_branch_reads_without_a_checkout(
    tmp_path: Path, bare: Path, form: str
) -> None:
    url = bare.as_uri() if form == "file" else str(bare)
    with git.temporary_repo(url, git.git_environment()) as repo:
        refs = repo.remote_refs()
        assert set(refs.heads) == {"main", "prod"} and refs.head == "main"
        sha = repo.fetch("prod")["prod"]
        assert sha == refs.heads["prod"]
        assert run(["git", "rev-list", "--count", sha], cwd=repo.path).stdout.strip() == "1"
        entries = repo.entries(sha, "k8s")
        assert list(entries) == ["c.yaml"] and entries["c.yaml"][0] == "file"
        (content,) = repo.read_blobs([entries["c.yaml"][1]])
        assert content == CONFIG_MAP.format(value=2).encode()
        assert not (repo.path / "k8s").exists()  # nothing is ever checked out
        where = repo.path
    assert not where.exists()


def test_missing_branch_is_a_git_error_listing_the_branches(bare: Path) -> None:
    with git.temporary_repo(bare.as_uri(), git.git_environment()) as repo:
        refs = repo.remote_refs()
    with pytest.raises(GitError, match=r"has no branch nope \(branches: main, prod\)"):
        git.resolve_branch(refs, "nope")


def test_diff_against_a_git_url_and_branch(tmp_path: Path, bare: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "c.yaml").write_text(CONFIG_MAP.format(value=2))
    same = diff.diff_against(dist, bare.as_uri(), ref="prod", subdir="k8s")
    assert not same.has_changes and same.summary["unchanged"] == 1
    other = diff.diff_against(dist, str(bare), ref="main", subdir="k8s")
    assert [r.change for r in other.resources] == ["changed"]
