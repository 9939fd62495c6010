"""The diff as one note on the merge request of its pipeline (``invoke diff --comment``).

Reviewers of a chart change see what will change in the cluster before they merge. The note
carries a hidden marker (:data:`MARKER`); later pipelines edit that note instead of adding new
ones, and when the diff becomes empty it is edited to say so. With no note yet and no changes,
a "no changes" note is posted, so reviewers can tell "nothing changes" from "not checked".

The note is posted with ``COMMENT_TOKEN`` (``api`` scope on this project), else
``MANIFESTS_TOKEN``; never with CI_JOB_TOKEN, which cannot write notes. Commenting is a
courtesy: with no token, outside a merge-request pipeline, or when GitLab refuses, a warning
says so and the task goes on (the diff is in the job log anyway). :func:`comment_diff` never
raises a :class:`~gitopskit.errors.GitopskitError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import gitlab

from gitopskit import gitlab_api
from gitopskit.config import Settings
from gitopskit.diff import DiffResult, Results
from gitopskit.errors import (
    GitLabAuthenticationError,
    GitLabNotFoundError,
    GitLabPermissionError,
    GitopskitError,
)
from gitopskit.render import GITLAB_NOTE_LIMIT, render_environments, render_markdown
from gitopskit.ui import Progress

MARKER = "<!-- gitopskit:diff -->"
#: Tokens tried in order, by setting name; CI_JOB_TOKEN is deliberately not among them.
TOKEN_SETTINGS = ("COMMENT_TOKEN", "MANIFESTS_TOKEN")
#: What the posting token needs, named in warnings.
NEEDS = "the api scope and the Reporter role or higher on this project"
_FOOTER_ROOM = 1_000

Status = Literal["created", "updated", "unchanged", "skipped", "failed"]


@dataclass(frozen=True)
class MergeRequest:
    """The merge request of a merge-request pipeline.

    Attributes:
        project_id: The merge request's project (``CI_MERGE_REQUEST_PROJECT_ID``, else
            ``CI_PROJECT_ID``).
        iid: Its number in the project (``CI_MERGE_REQUEST_IID``).
        web_url: Its page, when GitLab gave the project URL.
    """

    project_id: str
    iid: int
    web_url: str | None = None


@dataclass(frozen=True)
class CommentResult:
    """What :func:`comment_diff` did.

    Attributes:
        status: created, updated, unchanged (the note already said this), skipped (no merge
            request or no token) or failed (GitLab refused or could not be reached).
        message: One line for the person reading the job log.
        note_id: The note's id, when there is one.
    """

    status: Status
    message: str
    note_id: int | None = None


def merge_request_from_env(environ: Mapping[str, str]) -> MergeRequest | None:
    """The pipeline's merge request from GitLab CI's predefined variables, or None outside a
    merge-request pipeline."""
    iid = environ.get("CI_MERGE_REQUEST_IID", "").strip()
    project = (
        environ.get("CI_MERGE_REQUEST_PROJECT_ID") or environ.get("CI_PROJECT_ID") or ""
    ).strip()
    if not iid.isdigit() or not project:
        return None
    base = environ.get("CI_MERGE_REQUEST_PROJECT_URL") or environ.get("CI_PROJECT_URL")
    url = f"{base.rstrip('/')}/-/merge_requests/{iid}" if base else None
    return MergeRequest(project, int(iid), url)


def comment_token(settings: Settings) -> tuple[str, str] | None:
    """``(variable name, token)`` to post with: COMMENT_TOKEN, else MANIFESTS_TOKEN (or its
    fallbacks); None when neither is set."""
    for name in TOKEN_SETTINGS:
        token = settings.token(name)
        if token:
            return settings.source(name), token
    return None


def note_body(result: DiffResult | Results, environ: Mapping[str, str]) -> str:
    """The note: the marker, the markdown diff (which names its target; one section per
    environment when given several), and a footer naming the commit and pipeline."""
    facts = ["gitopskit"]
    sha = environ.get("CI_COMMIT_SHORT_SHA") or environ.get("CI_COMMIT_SHA", "")[:8]
    if sha:
        facts.append(f"commit {sha}")
    pipeline_url, pipeline_id = environ.get("CI_PIPELINE_URL"), environ.get("CI_PIPELINE_ID")
    if pipeline_url:
        facts.append(f"[pipeline {('#' + pipeline_id) if pipeline_id else ''}]({pipeline_url})")
    footer = "\n---\n<sub>" + " · ".join(facts) + " · updated on every pipeline</sub>\n"
    limit = GITLAB_NOTE_LIMIT - _FOOTER_ROOM
    if isinstance(result, DiffResult):
        markdown = render_markdown(result, limit=limit)
    else:
        markdown = render_environments(result, "markdown", limit=limit)
    return f"{MARKER}\n{markdown}{footer}"


def find_note(notes: list[Any], user_id: int | None, marker: str = MARKER) -> Any | None:
    """The oldest non-system note carrying ``marker`` written by ``user_id`` (by anyone when
    None): notes written by others cannot be edited with this token."""
    for note in notes:
        if getattr(note, "system", False) or marker not in (note.body or ""):
            continue
        if user_id is None or note.author.get("id") == user_id:
            return note
    return None


def upsert_note(
    gl: gitlab.Gitlab, mr: MergeRequest, body: str, *, token_name: str
) -> tuple[Status, int]:
    """Create the marked note on ``mr``, or edit the one this token wrote before.

    Every page of notes is read (oldest first), so an old note is found on a busy merge request.

    Raises:
        GitLabError: GitLab refused or failed a request.
    """
    with gitlab_api.errors("read the user of the token", token_name=token_name, role="Reporter"):
        gl.auth()
    user_id = gl.user.id if gl.user is not None else None
    project = gl.projects.get(mr.project_id, lazy=True)
    merge_request = project.mergerequests.get(mr.iid, lazy=True)
    with gitlab_api.errors(
        f"read the notes of merge request !{mr.iid}", token_name=token_name, role="Reporter"
    ):
        notes = list(merge_request.notes.list(iterator=True, sort="asc", order_by="created_at"))
    existing = find_note(notes, user_id)
    if existing is None:
        with gitlab_api.errors(
            f"post the diff note on merge request !{mr.iid}", token_name=token_name, role="Reporter"
        ):
            created = merge_request.notes.create({"body": body})
        return "created", int(created.id)
    if existing.body == body:
        return "unchanged", int(existing.id)
    with gitlab_api.errors(
        f"edit the diff note on merge request !{mr.iid}", token_name=token_name, role="Reporter"
    ):
        merge_request.notes.update(existing.id, {"body": body})
    return "updated", int(existing.id)


def comment_diff(
    settings: Settings, result: DiffResult | Results, progress: Progress
) -> CommentResult:
    """Post ``result`` as the one diff note on the pipeline's merge request, or edit it.

    Args:
        settings: This run's settings (GITLAB_URL, GITLAB_CA_FILE, the tokens, the environment).
        result: The diff.
        progress: Where the outcome is reported (one ok or warning line).

    Returns:
        What was done; problems are warnings, never exceptions.
    """
    environ = settings.environ
    mr = merge_request_from_env(environ)
    if mr is None:
        return _skip(
            progress,
            "--comment: not a merge-request pipeline (no CI_MERGE_REQUEST_IID), nothing to "
            "comment on",
        )
    found = comment_token(settings)
    if found is None:
        return _skip(
            progress,
            f"--comment: the comment on merge request !{mr.iid} was skipped: set COMMENT_TOKEN "
            f"(masked, not protected; {NEEDS}); the diff is in this job's log",
        )
    token_name, token = found
    gitlab_url = settings.get("GITLAB_URL")
    if not gitlab_url:
        return _skip(
            progress,
            "--comment: the comment was skipped: GITLAB_URL is not set (nor CI_SERVER_URL)",
        )
    body = note_body(result, environ)
    try:
        gl = gitlab_api.connect(
            gitlab_url,
            token,
            ca_file=settings.get("GITLAB_CA_FILE"),
            timeout=settings.seconds("NETWORK_TIMEOUT"),
        )
        status, note_id = upsert_note(gl, mr, body, token_name=token_name)
    except GitopskitError as error:
        if isinstance(
            error, GitLabAuthenticationError | GitLabPermissionError | GitLabNotFoundError
        ):
            advice = f"{token_name} needs {NEEDS}"
        else:
            advice = "GitLab could not be reached or failed; the next pipeline tries again"
        message = (
            f"--comment: the diff note was not posted: {error.message}. {advice}; "
            "the diff is in this job's log"
        )
        progress.warn(message)
        return CommentResult("failed", message)
    where = f"{mr.web_url}#note_{note_id}" if mr.web_url else f"merge request !{mr.iid}"
    verb = {"created": "posted", "updated": "updated", "unchanged": "unchanged"}[status]
    message = f"{verb} the diff note with {token_name}: {where}"
    progress.ok("comment", message)
    return CommentResult(status, message, note_id)


def _skip(progress: Progress, message: str) -> CommentResult:
    progress.warn(message)
    return CommentResult("skipped", message)
