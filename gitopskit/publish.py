"""``publish``: push the manifests to the manifests repository and keep one merge request.

What the article's ``create-mr`` CI stage did with git, ``lab`` and shell, done so that it is
safe to re-run: publish owns exactly the files listed in ``MANIFESTS_PATH/.gitopskit-files``
(on the first publish, the top-level YAML files it adopts), rebuilds a stable publish branch from
the target branch with one commit, pushes with a lease, and opens or updates the one merge
request from that branch. Nothing differs: nothing is pushed, and a stale merge request is closed.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from gitopskit import gitlab as gitlab_api
from gitopskit import interrupts
from gitopskit.config import Settings
from gitopskit.diff import (
    INDEX_FILE,
    DiffResult,
    compare,
    load_tree,
    parse_index,
    render_markdown,
)
from gitopskit.errors import ConfigError, GitError, GitLabError, ManifestError
from gitopskit.git import Repo, git_environment, head_subject
from gitopskit.manifests import count_kinds, describe, load_file, manifest_files
from gitopskit.ui import Progress

BOT_AUTHOR = ("gitopskit", "gitopskit@localhost")
MARKER = "<!-- gitopskit:publish -->"
GITLAB_DESCRIPTION_LIMIT = 1_000_000
MAX_ATTEMPTS = 3
JOB_TOKEN_MESSAGE = (
    "only CI_JOB_TOKEN is available, and it can neither push to nor open merge requests in "
    "another project"
)
TOKEN_HINT = (
    "create a project access token on the manifests project with the scopes api and "
    "write_repository (role Developer; Maintainer if the publish branch is protected) and set "
    "it as the masked CI/CD variable MANIFESTS_TOKEN"
)
SECRETS_HINT = (
    "a manifests repository is no place for plain secrets: keep them encrypted with Sealed "
    "Secrets or SOPS, or reference them with External Secrets; --allow-plain-secrets publishes "
    "them anyway"
)


@dataclass(frozen=True)
class Source:
    """Where the manifests come from: the source commit and pipeline, for commit and MR text."""

    title: str
    sha: str | None
    project_path: str | None
    project_url: str | None
    pipeline_url: str | None
    slug: str

    @classmethod
    def detect(cls, environ: Mapping[str, str], project_dir: Path) -> Source:
        """From GitLab CI's predefined variables, else the local repository's HEAD."""
        title = environ.get("CI_COMMIT_TITLE")
        sha = environ.get("CI_COMMIT_SHA")
        if not title or not sha:
            local_title, local_sha = head_subject(project_dir)
            title = title or local_title
            sha = sha or local_sha
        return cls(
            title=title or "Update manifests",
            sha=sha,
            project_path=environ.get("CI_PROJECT_PATH"),
            project_url=environ.get("CI_PROJECT_URL"),
            pipeline_url=environ.get("CI_PIPELINE_URL"),
            slug=environ.get("CI_PROJECT_PATH_SLUG") or "local",
        )

    def commit_url(self) -> str | None:
        """The source commit's page, when known."""
        if self.project_url and self.sha:
            return f"{self.project_url}/-/commit/{self.sha}"
        return None


@dataclass
class Options:
    """What the user asked of this publish (flags)."""

    branch: str | None = None
    branch_per_commit: bool = False
    allow_plain_secrets: bool = False
    adopt: bool = False
    dry_run: bool = False
    labels: list[str] = field(default_factory=list)
    assignee: str | None = None
    draft: bool = False
    auto_merge: bool = False


@dataclass
class Destination:
    """The manifests repository, resolved from settings (no network yet).

    Attributes:
        git_url: Where git pushes (None: the GitLab project's ``http_url_to_repo``).
        gitlab_url: GitLab's base URL, when merge requests are opened.
        project: The manifests project's path, when merge requests are opened.
        token: The token git and GitLab get.
        target_branch: The branch merge requests target (None: default branch / remote HEAD).
        path: ``MANIFESTS_PATH``, the subdirectory publish writes into ('' for the root).
        ca_file: A CA bundle for a self-managed GitLab.
    """

    git_url: str | None
    gitlab_url: str | None
    project: str | None
    token: str | None
    target_branch: str | None
    path: str
    ca_file: str | None

    @property
    def uses_gitlab(self) -> bool:
        """Whether a merge request is opened (else: push only, the local mode)."""
        return bool(self.gitlab_url and self.project)


@dataclass
class PublishResult:
    """How a publish ended.

    Attributes:
        status: ``up-to-date``, ``published`` or ``dry-run``.
        branch: The publish branch.
        target_branch: The branch it targets.
        diff: What changes, resource by resource.
        description: The merge request's description.
        pushed: Whether a commit was pushed.
        commit: The publish branch's commit (pushed or already there).
        merge_request_url: The merge request opened or updated (None in local mode).
        closed_merge_request_url: A stale merge request this run closed.
        plan: What a dry run would do, one line each.
    """

    status: str
    branch: str
    target_branch: str
    diff: DiffResult | None = None
    description: str = ""
    pushed: bool = False
    commit: str | None = None
    merge_request_url: str | None = None
    closed_merge_request_url: str | None = None
    plan: list[str] = field(default_factory=list)


def resolve_destination(settings: Settings, environ: Mapping[str, str]) -> Destination:
    """Where to publish, from the settings, before any work is done.

    Raises:
        ConfigError: Nothing is configured, GitLab is half configured, or the only token is
            CI_JOB_TOKEN.
    """
    gitlab_url = settings.get("GITLAB_URL")
    project = settings.get("MANIFESTS_PROJECT")
    git_url = settings.get("MANIFESTS_GIT_URL")
    token = settings.token("MANIFESTS_TOKEN")
    if project and not gitlab_url:
        raise ConfigError(
            "MANIFESTS_PROJECT is set but GITLAB_URL is not",
            hint="set GITLAB_URL (GitLab CI sets CI_SERVER_URL for you)",
        )
    if not project and not git_url:
        raise ConfigError(
            "no manifests repository is configured",
            hint="set GITLAB_URL and MANIFESTS_PROJECT (plus MANIFESTS_TOKEN) to publish through "
            "a merge request, or MANIFESTS_GIT_URL to push to any git URL or local path",
        )
    if project and not token:
        if environ.get("CI_JOB_TOKEN"):
            raise ConfigError(JOB_TOKEN_MESSAGE, hint=TOKEN_HINT)
        raise ConfigError("MANIFESTS_TOKEN is not set", hint=TOKEN_HINT)
    path = (settings.get("MANIFESTS_PATH") or "").strip("/")
    if path and (PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts):
        raise ConfigError(f"MANIFESTS_PATH {path!r} must be a path inside the repository")
    return Destination(
        git_url=git_url,
        gitlab_url=gitlab_url if project else None,
        project=project,
        token=token,
        target_branch=settings.get("MANIFESTS_TARGET_BRANCH"),
        path="" if path in ("", ".") else path,
        ca_file=settings.get("GITLAB_CA_FILE"),
    )


def publish_branch(options: Options, settings: Settings, source: Source) -> str:
    """The publish branch: flag, setting, else ``gitopskit/<project slug>`` (per commit:
    ``gitopskit/<slug>-<short sha>``, the article's naming)."""
    configured = settings.get("MANIFESTS_BRANCH", options.branch)
    if configured:
        return configured
    if options.branch_per_commit:
        short = (settings.environ.get("CI_COMMIT_SHORT_SHA") or (source.sha or "")[:8]) or "head"
        return f"gitopskit/{source.slug}-{short}"
    return f"gitopskit/{source.slug}"


def plain_secrets(outdir: Path, files: list[str]) -> list[str]:
    """Secrets carrying ``data`` or ``stringData`` in the output, as ``namespace/name (file)``.

    Only files with a top-level ``kind: Secret`` line are parsed (a top-level key starts at
    column 0, where no nested line can): thousands of manifests cost a scan, not a parse.
    """
    found = []
    for name in files:
        if not count_kinds([outdir / name]).get("Secret"):
            continue
        for doc in load_file(outdir / name, name):
            data = doc.data
            if (
                doc.is_object
                and data["kind"] == "Secret"
                and data["apiVersion"] == "v1"
                and (data.get("data") or data.get("stringData"))
            ):
                found.append(f"{describe(data).split(' ', 2)[2]} ({name})")
    return found


def index_text(files: list[str]) -> bytes:
    """The ownership index: a header, then one path per line, sorted."""
    header = (
        "# Files owned by `invoke publish` (gitopskit), relative to this directory.\n"
        "# Publish rewrites or removes exactly these; every other file here is left alone.\n"
    )
    return (header + "".join(f"{f}\n" for f in sorted(files))).encode()


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


@contextmanager
def _workdir() -> Iterator[Path]:
    with interrupts.temporary_directory("gitopskit-publish-") as directory:
        yield directory


class Publisher:
    """One publish run.

    Args:
        destination: Where to publish (see :func:`resolve_destination`).
        options: The user's flags.
        source: The source commit and pipeline.
        branch: The publish branch.
        progress: Where progress lines go.
        environ: GitLab CI's variables (the author); ``os.environ`` by default.
    """

    def __init__(
        self,
        destination: Destination,
        options: Options,
        source: Source,
        branch: str,
        progress: Progress,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.destination = destination
        self.options = options
        self.source = source
        self.branch = branch
        self.ui = progress
        self.gl: Any = None
        self.project: Any = None

    def run(self, outdir: Path) -> PublishResult:
        """Publish the manifests in ``outdir``.

        Raises:
            ConfigError, ManifestError: Bad input; nothing was pushed or opened.
            GitError, GitLabError: git or GitLab failed; no branch or merge request is left
                half made.
        """
        files = [p.relative_to(outdir).as_posix() for p in manifest_files(outdir)]
        if not files:
            raise ManifestError(
                f"{outdir} holds no manifests", hint="run `invoke synth` first, or drop --no-synth"
            )
        secrets = plain_secrets(outdir, files)
        if secrets and not self.options.allow_plain_secrets:
            raise ManifestError(
                "refusing to publish plain Secrets: " + ", ".join(secrets), hint=SECRETS_HINT
            )
        if self.destination.uses_gitlab:
            self._connect()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with _workdir() as work:
                result = self._attempt(outdir, files, work)
            if result is not None:
                return result
            self.ui.step("retry", f"{self.branch} moved while publishing; again ({attempt + 1})")
            time.sleep(0.2 * attempt)
        raise GitError(
            f"the publish branch {self.branch} kept moving ({MAX_ATTEMPTS} attempts)",
            hint="another publish is running; retry when it is done",
        )

    # --- GitLab -------------------------------------------------------------------------------

    def _connect(self) -> None:
        destination = self.destination
        assert destination.gitlab_url and destination.project and destination.token
        self.gl = gitlab_api.connect(
            destination.gitlab_url, destination.token, ca_file=destination.ca_file
        )
        with gitlab_api.errors(f"read the project {destination.project}"):
            self.project = self.gl.projects.get(destination.project)
        self.ui.step("project", f"{self.project.path_with_namespace} on {destination.gitlab_url}")

    def _open_merge_requests(self, target: str) -> list[Any]:
        with gitlab_api.errors("find the open merge request"):
            found: list[Any] = self.project.mergerequests.list(
                state="opened", source_branch=self.branch, target_branch=target, get_all=True
            )
        return found

    # --- one attempt: read, compare, write ----------------------------------------------------

    def _attempt(self, outdir: Path, files: list[str], work: Path) -> PublishResult | None:
        destination = self.destination
        git_url = destination.git_url or (self.project.http_url_to_repo if self.project else None)
        assert git_url is not None
        env = git_environment(git_url, destination.token, ca_file=destination.ca_file)
        repo = Repo.init(work, git_url, env)
        target = (
            destination.target_branch
            or (self.project.default_branch if self.project else None)
            or repo.remote_default_branch()
        )
        if not target:
            raise GitError(
                "the manifests repository has no default branch (is it empty?)",
                hint="push a first commit (a README) to it, or set MANIFESTS_TARGET_BRANCH",
            )
        heads = repo.remote_heads(target, self.branch)
        if target not in heads:
            raise GitError(
                f"the manifests repository has no branch {target}",
                hint="push a first commit to it, or set MANIFESTS_TARGET_BRANCH",
            )
        if self.branch == target:
            raise ConfigError(f"the publish branch and the target branch are both {target}")
        target_sha, branch_sha = heads[target], heads.get(self.branch)
        repo.fetch(*([target, self.branch] if branch_sha else [target]))
        self.ui.step(
            "fetch",
            f"{target} at {target_sha[:8]}"
            + (f", {self.branch} at {branch_sha[:8]}" if branch_sha else ""),
        )

        old_blobs = repo.blobs(target_sha, destination.path)
        owned = self._owned_files(repo, target_sha, old_blobs)
        self._check_conflicts(files, owned, old_blobs)
        path = destination.path
        new_blobs = repo.hash_objects(
            {**{f: outdir / f for f in files}, INDEX_FILE: index_text(files)}
        )
        new_tree = repo.build_tree(
            target_sha,
            remove=[_join(path, f) for f in [*owned, INDEX_FILE]],
            add={_join(path, f): sha for f, sha in new_blobs.items()},
        )
        if new_tree == repo.tree_of(target_sha):
            up_to_date = PublishResult("up-to-date", self.branch, target)
            return self._up_to_date(repo, up_to_date, target, branch_sha)

        diff = self._diff(repo, target, target_sha, outdir, owned, old_blobs, new_blobs)
        for note in diff.notes:
            self.ui.note(note)
        self.ui.step("compare", diff.summary_line())
        result = PublishResult("published", self.branch, target, diff=diff)
        result.description = self._description(diff)
        same_tree_on_target = (
            branch_sha is not None
            and repo.commit_parents(branch_sha) == [target_sha]
            and repo.tree_of(branch_sha) == new_tree
        )
        if same_tree_on_target:
            result.commit = branch_sha
            self.ui.step("push", f"{self.branch} already holds these manifests on {target}")
        elif self.options.dry_run:
            result.plan.append(
                f"push one commit to {self.branch} ({len(files)} files, "
                f"{'replacing ' + branch_sha[:8] if branch_sha else 'new branch'}) on {target}"
            )
        else:
            commit = repo.commit_tree(new_tree, target_sha, self._message(), self._author())
            pushed = repo.push(commit, self.branch, expected=branch_sha)
            if pushed.status == "stale":
                return None
            if pushed.status == "rejected":
                raise GitError(
                    f"the manifests repository refused the push to {self.branch}:\n"
                    f"{pushed.message}",
                    hint="if the branch is protected, MANIFESTS_TOKEN needs the Maintainer role "
                    "(or publish to an unprotected branch with --branch)",
                )
            result.commit, result.pushed = commit, True
            self.ui.step("push", f"{self.branch} at {commit[:8]} ({len(files)} files)")
        if self.project is not None:
            self._merge_request(result, target)
        if self.options.dry_run:
            result.status = "dry-run"
        return result

    def _owned_files(self, repo: Repo, target_sha: str, present: dict[str, str]) -> list[str]:
        path = self.destination.path
        index = repo.show(target_sha, _join(path, INDEX_FILE))
        if index is not None:
            return parse_index(index.decode("utf-8", "replace"), INDEX_FILE)
        # First publish: adopt the top-level YAML, as the article's `git rm ./*.yaml` did. Like
        # that shell glob, it skips dotfiles, so .gitlab-ci.yml is never taken.
        adopted = sorted(
            name
            for name in present
            if "/" not in name and name.endswith((".yaml", ".yml")) and not name.startswith(".")
        )
        if adopted:
            self.ui.note(f"first publish: adopting {len(adopted)} top-level YAML files")
        return adopted

    def _diff(
        self,
        repo: Repo,
        target: str,
        target_sha: str,
        outdir: Path,
        owned: list[str],
        old_blobs: dict[str, str],
        new_blobs: dict[str, str],
    ) -> DiffResult:
        """The diff engine on the owned files, parsing only the files whose bytes differ: a
        file identical on both sides holds the same objects, unchanged and unmoved."""
        path = self.destination.path
        owned_there = [f for f in owned if f in old_blobs]
        same = {f for f in owned_there if old_blobs[f] == new_blobs.get(f)}
        old_files = [f for f in owned_there if f not in same]
        new_files = [f for f in new_blobs if f != INDEX_FILE and f not in same]
        repo.checkout_files(target_sha, [_join(path, f) for f in old_files])
        work = repo.path
        diff = compare(
            load_tree(work, files=old_files, subdir=path, label=target),
            load_tree(outdir, files=new_files, label=outdir.name),
        )
        diff.summary["unchanged"] += sum(count_kinds(outdir / f for f in same).values())
        return diff

    def _check_conflicts(self, files: list[str], owned: list[str], present: dict[str, str]) -> None:
        taken = sorted(set(files) & set(present) - set(owned))
        if taken and not self.options.adopt:
            raise ManifestError(
                "these files exist in the manifests repository and publish does not own them: "
                + ", ".join(taken),
                hint="rename the charts, or pass --adopt to let publish take them over",
            )
        if taken:
            self.ui.note(f"adopting {', '.join(taken)}")

    def _up_to_date(
        self, repo: Repo, result: PublishResult, target: str, branch_sha: str | None
    ) -> PublishResult:
        result.status = "dry-run" if self.options.dry_run else "up-to-date"
        stale = self._open_merge_requests(target) if self.project is not None else []
        for mr in stale:
            if self.options.dry_run:
                result.plan.append(f"close merge request !{mr.iid} ({mr.web_url})")
                continue
            with gitlab_api.errors(f"close the stale merge request !{mr.iid}"):
                mr.notes.create(
                    {"body": f"The manifests already match `{target}`: closing. {MARKER}"}
                )
                mr.state_event = "close"
                mr.save()
            result.closed_merge_request_url = mr.web_url
            self.ui.step("close", f"merge request !{mr.iid}: the manifests already match {target}")
        if branch_sha:
            if self.options.dry_run:
                result.plan.append(f"delete the branch {self.branch}")
            elif repo.delete_remote_branch(self.branch, expected=branch_sha).status == "ok":
                self.ui.step("delete", f"branch {self.branch}")
        return result

    def _description(self, diff: DiffResult) -> str:
        footer = ["", "---", ""]
        links = []
        commit_url = self.source.commit_url()
        if self.source.sha:
            short = self.source.sha[:8]
            links.append(f"source commit [{short}]({commit_url})" if commit_url else short)
        if self.source.pipeline_url:
            links.append(f"[pipeline]({self.source.pipeline_url})")
        if links:
            footer.append("Published by gitopskit from " + ", ".join(links) + ".")
        footer.append(MARKER)
        tail = "\n".join(footer) + "\n"
        summary = diff.summary
        resource_changes = summary["added"] + summary["removed"] + summary["changed"]
        head = ""
        if resource_changes == 0:
            head = "**No resource changes**: only formatting or file names differ.\n\n"
        limit = GITLAB_DESCRIPTION_LIMIT - len(head) - len(tail)
        return head + render_markdown(diff, limit=limit) + tail

    def _message(self) -> str:
        lines = [self.source.title, ""]
        if self.source.project_path:
            lines.append(f"Source-Project: {self.source.project_path}")
        if self.source.sha:
            lines.append(f"Source-Commit: {self.source.sha}")
        if self.source.pipeline_url:
            lines.append(f"Pipeline: {self.source.pipeline_url}")
        return "\n".join(lines).rstrip() + "\n"

    def _author(self) -> tuple[str, str]:
        name = self.environ.get("GITLAB_USER_NAME")
        email = self.environ.get("GITLAB_USER_EMAIL")
        if name and email and "@" in email:
            return name, email
        return BOT_AUTHOR

    def _merge_request(self, result: PublishResult, target: str) -> None:
        title = ("Draft: " if self.options.draft else "") + self.source.title
        wanted: dict[str, Any] = {"title": title, "description": result.description}
        if self.options.labels:
            wanted["labels"] = self.options.labels
        existing = self._open_merge_requests(target)
        if self.options.dry_run:
            verb = (
                f"update merge request !{existing[0].iid}" if existing else "open a merge request"
            )
            result.plan.append(f"{verb} {self.branch} → {target}: {title}")
            return
        if existing:
            mr = existing[0]
            self._update(mr, wanted)
        else:
            mr = self._create(wanted, target)
        if self.options.auto_merge and not getattr(mr, "merge_when_pipeline_succeeds", False):
            try:
                with gitlab_api.errors(f"set merge request !{mr.iid} to merge automatically"):
                    mr.merge(merge_when_pipeline_succeeds=True)
            except GitLabError as error:
                self.ui.warn(f"auto-merge not set: {error.message}")
        result.merge_request_url = mr.web_url

    def _create(self, wanted: dict[str, Any], target: str) -> Any:
        body = {
            "source_branch": self.branch,
            "target_branch": target,
            "remove_source_branch": True,
            **wanted,
        }
        if self.options.assignee:
            body["assignee_id"] = self._user_id(self.options.assignee)
        try:
            with gitlab_api.errors("open the merge request"):
                mr = self.project.mergerequests.create(body)
        except GitLabError as error:
            if error.response_code != 409:
                raise
            # Another publish opened it a moment ago: that one is ours to update.
            existing = self._open_merge_requests(target)
            if not existing:
                raise
            mr = existing[0]
            self._update(mr, wanted)
            return mr
        self.ui.step("open", f"merge request !{mr.iid}")
        return mr

    def _update(self, mr: Any, wanted: dict[str, Any]) -> None:
        changed = False
        for key, value in wanted.items():
            current = getattr(mr, key, None)
            if key == "labels":
                if sorted(current or []) != sorted(value):
                    mr.labels = value
                    changed = True
            elif current != value:
                setattr(mr, key, value)
                changed = True
        if changed:
            with gitlab_api.errors(f"update merge request !{mr.iid}"):
                mr.save()
            self.ui.step("update", f"merge request !{mr.iid}")
        else:
            self.ui.step("update", f"merge request !{mr.iid} is already up to date")

    def _user_id(self, username: str) -> int:
        with gitlab_api.errors(f"look up the user {username}"):
            users = self.gl.users.list(username=re.sub(r"^@", "", username))
        if not users:
            raise ConfigError(f"no GitLab user {username!r} to assign the merge request to")
        return int(users[0].id)


def prepare(
    project_dir: Path, settings: Settings, options: Options, progress: Progress
) -> Publisher:
    """A publisher for this project, its settings checked before any work (no network yet).

    Raises:
        ConfigError: Nothing or half of GitLab is configured, or the only token is CI_JOB_TOKEN.
    """
    destination = resolve_destination(settings, settings.environ)
    source = Source.detect(settings.environ, project_dir)
    branch = publish_branch(options, settings, source)
    return Publisher(destination, options, source, branch, progress, settings.environ)


def publish(
    project_dir: Path, settings: Settings, options: Options, *, outdir: Path, progress: Progress
) -> PublishResult:
    """Publish the manifests already in ``outdir`` (``invoke publish --no-synth``).

    Raises:
        GitopskitError: Any expected failure, with nothing left half made.
    """
    return prepare(project_dir, settings, options, progress).run(outdir)
