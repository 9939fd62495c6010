"""Issue 9 §7: the target branch is resolved one way for diff and publish, and an empty tree is
used only when the repository has no commits at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitopskit.errors import GitError
from tests.hostile.conftest import Captured, bare_repository, configmap, do_publish, git, invoke
from tests.hostile.conftest import write_dist as dist_of

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: shop}\n"
LOCAL = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent"}


def test_head_naming_a_missing_branch_still_compares_with_the_only_branch(
    project_dir: Path, tmp_path: Path, captured: Captured
) -> None:
    """``git init --bare`` leaves HEAD on master; a push of main made diff compare with an
    empty tree: "1 to add", exit 0, and a removal hidden."""
    bare = bare_repository(
        tmp_path, {"web.k8s.yaml": MANIFEST, "gone.k8s.yaml": MANIFEST.replace("web", "gone")},
        head="master",
    )  # fmt: skip
    dist_of(project_dir / "dist", {"web.k8s.yaml": MANIFEST})
    done = invoke(
        project_dir, "diff", "--no-synth", "--format", "json", "--against", str(bare),
        captured=captured,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)["summary"]
    assert summary["removed"] == 1 and summary["unchanged"] == 1 and summary["added"] == 0


def test_several_branches_and_no_usable_head_is_an_error_listing_them(
    project_dir: Path, tmp_path: Path, captured: Captured
) -> None:
    bare = bare_repository(tmp_path, {"web.k8s.yaml": MANIFEST}, branch="prod", head="master")
    git("-C", bare, "branch", "staging", "prod")
    dist_of(project_dir / "dist", {"web.k8s.yaml": MANIFEST})
    done = invoke(project_dir, "diff", "--no-synth", "--against", str(bare), captured=captured)
    assert done.returncode == 2
    assert "prod, staging" in done.stderr and "MANIFESTS_TARGET_BRANCH" in done.stderr
    picked = invoke(
        project_dir, "diff", "--no-synth", "--against", str(bare), "--ref", "staging",
        "--exit-code", captured=captured,
    )  # fmt: skip
    assert picked.returncode == 0, picked.stderr
    dist = dist_of(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    with pytest.raises(GitError, match="prod, staging"):
        do_publish({**LOCAL, "MANIFESTS_GIT_URL": str(bare)}, dist, captured)


def test_an_empty_repository_is_said_to_be_empty(
    project_dir: Path, tmp_path: Path, captured: Captured
) -> None:
    bare = tmp_path / "empty.git"
    git("init", "--quiet", "--bare", bare)
    dist_of(project_dir / "dist", {"web.k8s.yaml": MANIFEST})
    done = invoke(project_dir, "diff", "--no-synth", "--against", str(bare), captured=captured)
    assert done.returncode == 0, done.stderr
    assert "no commits yet" in done.stderr and "1 to add" in done.stdout


def test_publish_to_a_repository_whose_head_names_a_missing_branch(
    tmp_path: Path, captured: Captured
) -> None:
    """publish said "no default branch (is it empty?)"."""
    bare = bare_repository(tmp_path, {"README.md": "hi\n"}, head="master")
    dist = dist_of(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    run = do_publish({**LOCAL, "MANIFESTS_GIT_URL": str(bare)}, dist, captured)
    assert run.result.pushed and run.result.target_branch == "main"


def test_diff_and_publish_pick_the_same_branch(tmp_path: Path, project_dir: Path,
                                                captured: Captured) -> None:  # fmt: skip
    bare = bare_repository(tmp_path, {"web.k8s.yaml": MANIFEST}, branch="trunk", head="master")
    dist_of(project_dir / "dist", {"web.k8s.yaml": MANIFEST})
    done = invoke(project_dir, "diff", "--no-synth", "--against", str(bare), captured=captured)
    assert "1 unchanged" in done.stdout, done.stdout + done.stderr
    dist = dist_of(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    run = do_publish({**LOCAL, "MANIFESTS_GIT_URL": str(bare)}, dist, captured)
    assert run.result.target_branch == "trunk"
