"""Issue 9 §3: a symbolic link in a manifests tree is never read and never followed.

The secret behind each link is a file outside the manifests repository; no output of any
task may ever show it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopskit.errors import ManifestError
from gitopskit.tree import INDEX_FILE
from tests.fakes.gitlab import FakeGitLab
from tests.hostile.conftest import (
    PROJECT,
    Captured,
    bare_repository,
    do_publish,
    gitlab_env,
    invoke,
    write_dist,
)

PASSWORD = "hunter2-outside-the-repository"
OURS = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: shop}\ndata: {a: '1'}\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file and a directory outside any manifests tree, holding a password."""
    secret = tmp_path / "outside" / "password.yaml"
    secret.parent.mkdir()
    secret.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leaked, namespace: shop}\n"
        f"data: {{password: {PASSWORD}}}\n"
    )
    return secret


@pytest.mark.parametrize("listed", [False, True])
def test_diff_against_a_git_url_never_follows_a_committed_link(
    project_dir: Path, tmp_path: Path, outside: Path, captured: Captured, listed: bool
) -> None:
    files = {"web.k8s.yaml": OURS}
    if listed:
        files[INDEX_FILE] = "web.k8s.yaml\nleak.yaml\napps/x.yaml\n"
    bare = bare_repository(
        tmp_path / "remote", files, links={"leak.yaml": str(outside), "apps": str(outside.parent)}
    )
    write_dist(project_dir / "dist", {"web.k8s.yaml": OURS})
    done = invoke(
        project_dir, "diff", "--no-synth", "--against", bare.as_uri(), captured=captured
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert "leaked" not in done.stdout
    assert "leak.yaml" in done.stderr and "symbolic link" in done.stderr


def test_diff_against_a_directory_never_follows_a_link(
    project_dir: Path, tmp_path: Path, outside: Path, captured: Captured
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "web.k8s.yaml").write_text(OURS)
    (manifests / "leak.yaml").symlink_to(outside)
    (manifests / "apps").symlink_to(outside.parent, target_is_directory=True)
    (manifests / INDEX_FILE).write_text("web.k8s.yaml\nleak.yaml\napps/password.yaml\n")
    write_dist(project_dir / "dist", {"web.k8s.yaml": OURS})
    for fmt in ("text", "markdown", "json"):
        done = invoke(
            project_dir, "diff", "--no-synth", "--format", fmt, "--against", str(manifests),
            captured=captured,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert PASSWORD not in done.stdout + done.stderr


def test_a_manifests_path_that_is_a_link_is_refused(
    project_dir: Path, tmp_path: Path, outside: Path, captured: Captured
) -> None:
    manifests = tmp_path / "manifests"
    (manifests / "clusters").mkdir(parents=True)
    (manifests / "clusters" / "prod").symlink_to(outside.parent, target_is_directory=True)
    write_dist(project_dir / "dist", {"web.k8s.yaml": OURS})
    done = invoke(
        project_dir, "diff", "--no-synth", "--against", str(manifests),
        "--manifests-path", "clusters/prod", captured=captured,
    )  # fmt: skip
    assert done.returncode == 2
    assert "prod is a symbolic link" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_publish_never_reads_a_committed_link_and_removes_an_owned_one_as_a_link(
    gitlab: FakeGitLab, tmp_path: Path, outside: Path, captured: Captured
) -> None:
    project = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    project.commit_files(
        "main",
        {INDEX_FILE: "old.yaml\nleak.yaml\n", "old.yaml": OURS.replace("web", "old")},
        links={"leak.yaml": str(outside), "team-link.yaml": str(outside)},
    )
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": OURS})
    dry = do_publish(gitlab_env(gitlab), dist, captured, dry_run=True)
    assert PASSWORD not in dry.output and "leaked" not in dry.output
    run = do_publish(gitlab_env(gitlab), dist, captured)
    (mr,) = project.merge_requests
    assert PASSWORD not in mr["description"] and "leaked" not in mr["description"]
    files = project.list_files(run.result.branch)
    assert "leak.yaml" not in files  # owned: removed, as a link
    assert "team-link.yaml" in files  # not owned: left alone
    assert outside.read_text().count(PASSWORD) == 1  # the target is untouched
    assert PASSWORD not in str(captured)


def test_publish_refuses_an_output_holding_a_link(
    gitlab: FakeGitLab, tmp_path: Path, outside: Path, captured: Captured
) -> None:
    project = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": OURS})
    (dist / "password.k8s.yaml").symlink_to(outside)
    with pytest.raises(ManifestError, match=r"symbolic links: password\.k8s\.yaml"):
        do_publish(gitlab_env(gitlab), dist, captured)
    assert project.branches() == ["main"]
