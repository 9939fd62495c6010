"""``invoke diff --comment`` against the GitLab fake: one note per merge request, edited later."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitopskit import comment, gitlab_api
from gitopskit.comment import MARKER, CommentResult, comment_diff, merge_request_from_env
from gitopskit.config import Settings
from gitopskit.diff import DiffResult, ResourceChange, Target
from gitopskit.tree import Identity
from gitopskit.ui import Progress
from tests.conftest import invoke_clean, task_project
from tests.fakes.gitlab import DEVELOPER, FakeGitLab, FakeProject

TOKEN = "glpat-comment-secret-0123456789"
READ_ONLY = "glpat-read-only-secret-98765"
MANIFESTS = "glpat-manifests-secret-24680"
JOB_TOKEN = "job-token-value-abcdef"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop}}
spec: {{replicas: {replicas}}}
"""


@pytest.fixture
def gitlab(tmp_path: Path) -> Iterator[FakeGitLab]:
    with FakeGitLab(tmp_path / "gitlab") as fake:
        fake.add_user("project_7_bot", TOKEN, access_level=DEVELOPER, scopes=("api",))
        fake.add_user("reader", READ_ONLY, access_level=DEVELOPER, scopes=("read_repository",))
        fake.add_user("manifests_bot", MANIFESTS, access_level=DEVELOPER)
        fake.add_user("someone", "glpat-someone-else-13579", access_level=DEVELOPER)
        fake.add_job_token(JOB_TOKEN)
        yield fake


@pytest.fixture
def app(gitlab: FakeGitLab) -> FakeProject:
    """The chart project, with merge request !1 from ``feature``."""
    project = gitlab.add_project("shop/app", initial_files={"README.md": "app\n"})
    project.commit_files("feature", {"charts.py": "# change\n"})
    gitlab.add_user("opener", "glpat-opener-0000000000", access_level=DEVELOPER)
    import gitlab as python_gitlab

    client = python_gitlab.Gitlab(gitlab.url, private_token="glpat-opener-0000000000")
    client.projects.get(project.id).mergerequests.create(
        {"source_branch": "feature", "target_branch": "main", "title": "Scale web"}
    )
    return project


def ci_env(gitlab: FakeGitLab, project: FakeProject, **extra: str) -> dict[str, str]:
    return {
        "CI_SERVER_URL": gitlab.url,
        "CI_PROJECT_ID": str(project.id),
        "CI_PROJECT_URL": project.web_url,
        "CI_MERGE_REQUEST_IID": "1",
        "CI_COMMIT_SHORT_SHA": "abc12345",
        "CI_PIPELINE_ID": "42",
        "CI_PIPELINE_URL": f"{project.web_url}/-/pipelines/42",
        "CI_JOB_TOKEN": JOB_TOKEN,
        **extra,
    }


TARGET = Target("ops/k8s-manifests", "main")


def change(replicas: int) -> DiffResult:
    diff = f"@@ Deployment shop/web @@\n-  replicas: 1\n+  replicas: {replicas}\n"
    resource = ResourceChange(
        "changed",
        Identity(namespace="shop", kind="Deployment", name="web", group="apps"),
        "apps/v1",
        "web.yaml",
        None,
        diff,
        lines_added=1,
        lines_removed=1,
    )
    summary = {"removed": 0, "changed": 1, "added": 0, "moved": 0, "unchanged": 3}
    return DiffResult(summary, [resource], target=TARGET)


def no_change() -> DiffResult:
    summary = {"removed": 0, "changed": 0, "added": 0, "moved": 0, "unchanged": 4}
    return DiffResult(summary, [], target=TARGET)


def run(result: DiffResult, environ: dict[str, str]) -> tuple[CommentResult, str]:
    stream = io.StringIO()
    outcome = comment_diff(Settings(environ=environ), result, Progress(stream, colour=False))
    return outcome, stream.getvalue()


def marked(project: FakeProject) -> list[dict[str, Any]]:
    return [n for n in project.notes.get(1, []) if MARKER in str(n["body"])]


def test_first_pipeline_posts_then_later_ones_edit_the_same_note(
    gitlab: FakeGitLab, app: FakeProject
) -> None:
    env = ci_env(gitlab, app, COMMENT_TOKEN=TOKEN)
    first, log = run(change(2), env)
    assert first.status == "created", log
    assert f"{app.web_url}/-/merge_requests/1#note_{first.note_id}" in log
    notes = marked(app)
    assert len(notes) == 1 and "replicas: 2" in str(notes[0]["body"])
    body = str(notes[0]["body"])
    assert body.startswith(f"{MARKER}\n### Manifest diff\n\n0 to delete, 1 to change, 0 to add, ")
    assert "Target: `ops/k8s-manifests`, branch `main`" in body
    assert "<summary>change Deployment shop/web (+1 \u22121)</summary>" in body
    assert "commit abc12345" in body

    second, log = run(change(3), {**env, "CI_COMMIT_SHORT_SHA": "def67890"})
    assert second.status == "updated" and second.note_id == first.note_id, log
    notes = marked(app)
    assert len(notes) == 1 and "replicas: 3" in str(notes[0]["body"])

    third, _ = run(change(3), {**env, "CI_COMMIT_SHORT_SHA": "def67890"})
    assert third.status == "unchanged" and len(marked(app)) == 1
    writes = [r for r in gitlab.requests if r.is_write]
    assert [r.method for r in writes] == ["POST", "POST", "PUT"]  # the MR, the note, one edit
    assert all(r.header("JOB-TOKEN") is None for r in gitlab.requests)


def test_an_empty_diff_edits_the_note_to_no_changes(gitlab: FakeGitLab, app: FakeProject) -> None:
    env = ci_env(gitlab, app, COMMENT_TOKEN=TOKEN)
    run(change(2), env)
    outcome, _ = run(no_change(), env)
    assert outcome.status == "updated"
    (note,) = marked(app)
    assert "No changes." in str(note["body"]) and "replicas" not in str(note["body"])


def test_no_note_and_no_changes_posts_one_no_changes_note(
    gitlab: FakeGitLab, app: FakeProject
) -> None:
    env = ci_env(gitlab, app, COMMENT_TOKEN=TOKEN)
    assert run(no_change(), env)[0].status == "created"
    assert run(no_change(), env)[0].status == "unchanged"
    (note,) = marked(app)
    assert "No changes." in str(note["body"])


def test_finds_its_note_past_the_first_page_and_leaves_others_notes_alone(
    gitlab: FakeGitLab, app: FakeProject
) -> None:
    env = ci_env(gitlab, app, COMMENT_TOKEN=TOKEN)
    first, _ = run(change(2), env)
    import gitlab as python_gitlab

    other = python_gitlab.Gitlab(gitlab.url, private_token="glpat-someone-else-13579")
    mr = other.projects.get(app.id).mergerequests.get(1)
    mr.notes.create({"body": f"quoting the bot: {MARKER}"})  # a marker someone else wrote
    template = app.notes[1][-1]
    for n in range(120):  # straight into the fake's state: 120 API calls take seconds
        note_id = gitlab._next_id("note")
        app.notes[1].append({**template, "id": note_id, "body": f"review comment {n}"})
    second, log = run(change(5), env)
    assert second.status == "updated" and second.note_id == first.note_id, log
    assert len([n for n in marked(app) if n["author"]["username"] == "project_7_bot"]) == 1
    pages = [r for r in gitlab.requests if r.method == "GET" and r.path.endswith("/notes")]
    assert len(pages) >= 3  # two pages on the second run


def test_falls_back_to_manifests_token(gitlab: FakeGitLab, app: FakeProject) -> None:
    outcome, log = run(change(2), ci_env(gitlab, app, MANIFESTS_TOKEN=MANIFESTS))
    assert outcome.status == "created" and "with MANIFESTS_TOKEN" in log
    assert marked(app)[0]["author"]["username"] == "manifests_bot"


def test_a_read_only_token_is_a_warning_naming_token_and_scope(
    gitlab: FakeGitLab, app: FakeProject
) -> None:
    outcome, log = run(change(2), ci_env(gitlab, app, COMMENT_TOKEN=READ_ONLY))
    assert outcome.status == "failed"
    assert log.startswith("warning") and "(403)" in log
    assert "COMMENT_TOKEN needs the api scope" in log and READ_ONLY not in log
    assert marked(app) == []


def test_a_rejected_token_is_a_warning(gitlab: FakeGitLab, app: FakeProject) -> None:
    outcome, log = run(change(2), ci_env(gitlab, app, COMMENT_TOKEN="glpat-revoked-1234567"))
    assert outcome.status == "failed" and "(401)" in log and "COMMENT_TOKEN" in log
    assert "glpat-revoked-1234567" not in log


def test_server_errors_after_retries_are_a_warning(gitlab: FakeGitLab, app: FakeProject) -> None:
    failures = gitlab_api.MAX_RETRIES + 1  # the first try and every retry
    body = {"message": "500 Internal Error"}
    gitlab.fail_next("POST", r"/notes$", 500, times=failures, body=body)
    outcome, log = run(change(2), ci_env(gitlab, app, COMMENT_TOKEN=TOKEN))
    assert outcome.status == "failed" and "(500)" in log and "next pipeline" in log


def test_unreachable_gitlab_is_a_warning(app: FakeProject) -> None:
    env = {"CI_SERVER_URL": "http://127.0.0.1:9", "CI_PROJECT_ID": "1"}
    env |= {"CI_MERGE_REQUEST_IID": "1", "COMMENT_TOKEN": TOKEN}
    outcome, log = run(change(2), env)
    assert outcome.status == "failed" and "cannot reach GitLab" in log and TOKEN not in log


def test_no_token_skips_and_never_uses_the_job_token(gitlab: FakeGitLab, app: FakeProject) -> None:
    outcome, log = run(change(2), ci_env(gitlab, app))
    assert outcome.status == "skipped" and "skipped" in log and "COMMENT_TOKEN" in log
    assert [r for r in gitlab.requests if "/notes" in r.path] == []


def test_outside_a_merge_request_pipeline_there_is_nothing_to_comment_on() -> None:
    outcome, log = run(change(2), {"COMMENT_TOKEN": TOKEN, "CI_SERVER_URL": "http://x"})
    assert outcome.status == "skipped" and "not a merge-request pipeline" in log


def test_merge_request_from_env_prefers_the_merge_request_project() -> None:
    env = {"CI_MERGE_REQUEST_IID": "9", "CI_PROJECT_ID": "5", "CI_MERGE_REQUEST_PROJECT_ID": "3"}
    env["CI_MERGE_REQUEST_PROJECT_URL"] = "https://gitlab.example.com/g/p"
    mr = merge_request_from_env(env)
    assert mr == comment.MergeRequest("3", 9, "https://gitlab.example.com/g/p/-/merge_requests/9")
    assert merge_request_from_env({"CI_PROJECT_ID": "5"}) is None


# --- through the task, as CI runs it ----------------------------------------------------------


@pytest.fixture
def chart_project(tmp_path: Path) -> Path:
    """A project with tasks.py and dist/ (replicas 2), and a manifests tree with replicas 1."""
    root = task_project(tmp_path / "project")
    (root / "dist" / "web.k8s.yaml").write_text(DEPLOYMENT.format(replicas=2))
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "web.k8s.yaml").write_text(DEPLOYMENT.format(replicas=1))
    return root


def invoke_diff(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return invoke_clean(project, "diff", "--no-synth", "--against", "../manifests", *args, env=env)


def test_invoke_diff_comment_posts_then_edits(
    gitlab: FakeGitLab, app: FakeProject, chart_project: Path
) -> None:
    env = ci_env(gitlab, app, COMMENT_TOKEN=TOKEN)
    first = invoke_diff(chart_project, env, "--comment")
    assert first.returncode == 0, first.stderr
    assert "+  replicas: 2" in first.stdout  # the diff is in the job log
    assert "posted the diff note" in first.stderr
    (note,) = marked(app)
    assert "Target: `../manifests`" in str(note["body"])
    assert "0 to delete, 1 to change, 0 to add, 0 moved, 0 unchanged" in str(note["body"])
    shutil.copy(chart_project / "dist" / "web.k8s.yaml", chart_project.parent / "manifests")
    second = invoke_diff(chart_project, env, "--comment", "--exit-code")
    assert second.returncode == 0, second.stderr
    assert "updated the diff note" in second.stderr
    (note,) = marked(app)
    assert "No changes." in str(note["body"])
    for output in (first.stdout, first.stderr, second.stdout, second.stderr):
        assert TOKEN not in output and JOB_TOKEN not in output


def test_invoke_diff_comment_refused_keeps_the_diff_exit_status(
    gitlab: FakeGitLab, app: FakeProject, chart_project: Path
) -> None:
    env = ci_env(gitlab, app, COMMENT_TOKEN=READ_ONLY)
    refused = invoke_diff(chart_project, env, "--comment")
    assert refused.returncode == 0, refused.stderr
    assert "warning" in refused.stderr and "COMMENT_TOKEN needs the api scope" in refused.stderr
    flagged = invoke_diff(chart_project, env, "--comment", "--exit-code")
    assert flagged.returncode == 1  # what the diff gives, not the comment
    for output in (refused.stdout, refused.stderr, flagged.stdout, flagged.stderr):
        assert READ_ONLY not in output
    assert marked(app) == []


def test_invoke_diff_comment_without_token_says_skipped(
    gitlab: FakeGitLab, app: FakeProject, chart_project: Path
) -> None:
    result = invoke_diff(chart_project, ci_env(gitlab, app), "--comment", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("### Manifest diff")
    assert "was skipped" in result.stderr and JOB_TOKEN not in result.stderr
    outside = invoke_diff(chart_project, {"COMMENT_TOKEN": TOKEN}, "--comment")
    assert outside.returncode == 0 and "nothing to comment on" in outside.stderr
