"""Issue 10 §4, §9, §10: publish under races, in the local mode, and over a broken owned file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitopskit.errors import ConfigError, GitError
from gitopskit.tree import INDEX_FILE
from tests.fakes.gitlab import FakeGitLab, RecordedRequest
from tests.hostile.conftest import (
    BRANCH,
    PROJECT,
    REPO,
    Captured,
    bare_repository,
    configmap,
    do_publish,
    git,
    gitlab_env,
    invoke,
    write_dist,
)

LOCAL = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent"}


def _upload_pack_adverts(request: RecordedRequest) -> bool:
    return request.method == "GET" and request.query.get("service") == ["git-upload-pack"]


def test_a_target_branch_moved_between_two_reads_is_published_on_what_was_fetched(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    """publish listed main, then fetched it by name after it moved: "not a tree object"."""
    project = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    seen: list[RecordedRequest] = []

    def move_main_before_the_fetch(request: RecordedRequest) -> None:
        if _upload_pack_adverts(request):
            seen.append(request)
            if len(seen) == 2:  # the fetch's first request, after ls-remote's
                project.commit_files("main", {"NEWS.md": "moved\n"})

    gitlab.on_request.append(move_main_before_the_fetch)
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    run = do_publish(gitlab_env(gitlab), dist, captured)
    assert run.result.pushed
    parent = project.git("rev-parse", f"{BRANCH}^").strip()
    assert parent == project.branch_sha("main")
    assert "NEWS.md" in project.list_files(BRANCH)


def test_a_publish_branch_that_keeps_moving_fails_truthfully(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    """The counter printed "again (4)" after the last of three attempts, and "pushed" was
    printed when nothing was pushed."""
    project = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    moves = 0

    def move_the_branch_before_each_push(request: RecordedRequest) -> None:
        nonlocal moves
        if request.method == "GET" and request.query.get("service") == ["git-receive-pack"]:
            moves += 1
            project.commit_files(BRANCH, {f"someone-{moves}.txt": "x\n"})

    gitlab.on_request.append(move_the_branch_before_each_push)
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    with pytest.raises(GitError, match="kept moving") as caught:
        do_publish(gitlab_env(gitlab), dist, captured)
    output = str(captured)
    assert "attempt 2 of 3" in output and "attempt 3 of 3" in output
    assert "attempt 4" not in output and "(4)" not in output
    assert not any(line.startswith("push ") for line in output.splitlines())
    assert "nothing was left half made" in caught.value.message
    assert project.merge_requests == []


# --- the local mode ---------------------------------------------------------------------------


@pytest.fixture
def local_repo(tmp_path: Path) -> Path:
    return bare_repository(tmp_path / "remote", {"README.md": "manifests\n"})


def _chart_project(project_dir: Path) -> Path:
    """Make the project a git repository with one commit and a git identity."""
    git("init", "--quiet", "-b", "main", project_dir)
    git("-C", project_dir, "config", "user.name", "Ada Lovelace")
    git("-C", project_dir, "config", "user.email", "ada@example.com")
    (project_dir / ".gitignore").write_text("dist/\n")
    git("-C", project_dir, "add", ".")
    git("-C", project_dir, "commit", "--quiet", "-m", "Charts")
    return project_dir


def test_the_local_tour_publish_review_merge_diff_again(
    project_dir: Path, local_repo: Path, captured: Captured
) -> None:
    _chart_project(project_dir)
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    env = {"MANIFESTS_GIT_URL": str(local_repo)}
    published = invoke(project_dir, "publish", "--no-synth", captured=captured, env=env)
    assert published.returncode == 0, published.stderr
    assert published.stdout == "gitopskit/local\n"
    assert "git diff origin/main...origin/gitopskit/local" in published.stderr
    assert "invoke publish --merge" in published.stderr
    log = git("-C", local_repo, "log", "-1", "--format=%an <%ae>%n%B", "gitopskit/local")
    assert log.startswith("Ada Lovelace <ada@example.com>\nCharts\n")  # the user, not a bot
    head = git("-C", project_dir, "rev-parse", "HEAD").strip()
    assert f"Source-Commit: {head}\n" in log
    merged = invoke(project_dir, "publish", "--no-synth", "--merge", captured=captured, env=env)
    assert merged.returncode == 0, merged.stderr
    assert "main fast-forwarded" in merged.stderr
    assert git("-C", local_repo, "branch", "--list").split() == ["main"]
    again = invoke(project_dir, "diff", "--no-synth", "--exit-code", captured=captured, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "no changes" in again.stdout


def test_uncommitted_chart_changes_mark_the_source_commit_dirty(
    project_dir: Path, local_repo: Path, captured: Captured
) -> None:
    _chart_project(project_dir)
    (project_dir / "new_chart.py").write_text("# a chart not committed yet\n")
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    done = invoke(
        project_dir, "publish", "--no-synth", captured=captured, MANIFESTS_GIT_URL=str(local_repo)
    )
    assert done.returncode == 0, done.stderr
    head = git("-C", project_dir, "rev-parse", "HEAD").strip()
    log = git("-C", local_repo, "log", "-1", "--format=%B", "gitopskit/local")
    assert f"Source-Commit: {head}-dirty\n" in log


def test_merge_does_not_move_a_target_branch_someone_else_moved(
    tmp_path: Path, local_repo: Path, captured: Captured
) -> None:
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    env = {**LOCAL, "MANIFESTS_GIT_URL": str(local_repo)}
    do_publish(env, dist, captured)
    branch_head = git("-C", local_repo, "rev-parse", "gitopskit/local").strip()
    # Someone pushes to main after the branch was built.
    work = tmp_path / "other"
    git("clone", "--quiet", "-b", "main", local_repo, work)
    (work / "NEWS.md").write_text("news\n")
    git("-C", work, "add", ".")
    git("-C", work, "commit", "--quiet", "-m", "news")
    git("-C", work, "push", "--quiet", "origin", "main")
    main_before = git("-C", local_repo, "rev-parse", "main").strip()
    run = do_publish(env, dist, captured, merge=True)
    # The branch was rebuilt on the new main, then main fast-forwarded to it: news kept.
    assert run.result.merged
    assert git("-C", local_repo, "rev-parse", "main^").strip() == main_before
    assert "NEWS.md" in git("-C", local_repo, "ls-tree", "--name-only", "main").split()
    assert branch_head != git("-C", local_repo, "rev-parse", "main").strip()


@pytest.mark.parametrize(
    "options",
    [{"labels": ["gitops"]}, {"draft": True}, {"auto_merge": True}, {"assignee": "ada"}],
)
def test_merge_request_options_without_gitlab_are_an_error(
    tmp_path: Path, local_repo: Path, captured: Captured, options: dict[str, object]
) -> None:
    """They were silently ignored."""
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    with pytest.raises(ConfigError, match="no GitLab project is configured"):
        do_publish({**LOCAL, "MANIFESTS_GIT_URL": str(local_repo)}, dist, captured, **options)
    assert git("-C", local_repo, "branch", "--list").split() == ["main"]


def test_merge_with_gitlab_is_an_error(gitlab: FakeGitLab, tmp_path: Path,
                                       captured: Captured) -> None:  # fmt: skip
    gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    with pytest.raises(ConfigError, match="--merge is for the local mode"):
        do_publish(gitlab_env(gitlab), dist, captured, merge=True)


def test_publishing_into_an_empty_repository_creates_the_target_on_merge(
    tmp_path: Path, captured: Captured
) -> None:
    bare = tmp_path / "empty.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    env = {**LOCAL, "MANIFESTS_GIT_URL": str(bare)}
    run = do_publish(env, dist, captured, merge=True)
    assert run.result.merged and run.result.target_branch == "main"
    files = git("-C", bare, "ls-tree", "--name-only", "main").split()
    assert files == [INDEX_FILE, "web.k8s.yaml"]


# --- a broken owned file ----------------------------------------------------------------------


def test_a_broken_owned_file_is_replaced_with_a_note(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    """publish refused to run because a file it owns had a YAML syntax error, although it was
    about to replace that file."""
    project = gitlab.add_project(
        PROJECT,
        initial_files={
            INDEX_FILE: "web.k8s.yaml\n",
            "web.k8s.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [broken\n",
            "team-b.yaml": "not: [valid\n",  # not owned: never even read
        },
    )
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    run = do_publish(gitlab_env(gitlab), dist, captured)
    assert run.result.pushed
    assert "main/web.k8s.yaml:4:1: YAML syntax error" in run.output
    assert "publish replaces it" in run.output
    (mr,) = project.merge_requests
    assert "`web.k8s.yaml` on `main` is not valid YAML" in mr["description"]
    assert project.read_file(BRANCH, "team-b.yaml") == b"not: [valid\n"


# --- stopped after the push -------------------------------------------------------------------


def _merge_request_lookup(request: RecordedRequest) -> bool:
    return request.method == "GET" and request.path.endswith("/merge_requests")


def test_an_interrupt_after_the_push_says_what_was_done(
    gitlab: FakeGitLab, project_dir: Path, tmp_path: Path, captured: Captured
) -> None:
    project = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, **gitlab_env(gitlab), "PYTHONPATH": str(REPO), "TMPDIR": str(tmp),
           "NO_COLOR": "1"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "publish", "--no-synth"],
        cwd=project_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def stop_when_the_merge_request_is_looked_up(request: RecordedRequest) -> None:
        if _merge_request_lookup(request):
            process.send_signal(signal.SIGTERM)
            time.sleep(1)  # the answer comes after the signal

    gitlab.on_request.append(stop_when_the_merge_request_is_looked_up)
    stdout, stderr = process.communicate(timeout=60)
    captured.texts += [stdout, stderr]
    assert process.returncode == 143, stderr
    assert "interrupted" in stderr
    assert "merge request not updated; run publish again to finish" in stderr
    assert project.branch_sha(BRANCH) is not None and project.merge_requests == []
    assert list(tmp.iterdir()) == []
    gitlab.on_request.clear()
    done = invoke(project_dir, "publish", "--no-synth", captured=captured, env=gitlab_env(gitlab))
    assert done.returncode == 0, done.stderr
    assert len(project.merge_requests) == 1


def test_a_gitlab_failure_after_the_push_says_what_was_done(
    gitlab: FakeGitLab, project_dir: Path, captured: Captured
) -> None:
    gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    gitlab.fail_next("POST", r"/merge_requests$", 403)
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    done = invoke(project_dir, "publish", "--no-synth", captured=captured, env=gitlab_env(gitlab))
    assert done.returncode == 1
    assert "403" in done.stderr
    assert "done so far: gitopskit/shop-app pushed at" in done.stderr


def test_a_relative_path_names_the_repository_from_where_invoke_runs(
    project_dir: Path, tmp_path: Path, captured: Captured
) -> None:
    """git runs in a temporary repository: "../manifests.git" did not appear to be one."""
    bare_repository(tmp_path, {"README.md": "hi\n"})  # tmp_path/manifests.git, beside project/
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    relative = {"MANIFESTS_GIT_URL": "../manifests.git"}
    published = invoke(project_dir, "publish", "--no-synth", captured=captured, env=relative)
    assert published.returncode == 0, published.stderr
    diffed = invoke(project_dir, "diff", "--no-synth", "--against", "../manifests.git",
                    "--ref", "gitopskit/local", "--exit-code", captured=captured)  # fmt: skip
    assert diffed.returncode == 0, diffed.stdout + diffed.stderr
