"""``publish``: push the manifests to the manifests repository and keep one merge request.

What the hand-made pipeline's ``create-mr`` CI stage did with git, ``lab`` and shell, done so
that it is safe to re-run: publish owns exactly the files listed in
``MANIFESTS_PATH/.gitopskit-files`` (on the first publish, the top-level YAML files it adopts;
see :func:`gitopskit.tree.ownership`), rebuilds a stable publish branch from the target branch
with one commit, pushes with a lease, and opens or updates the one merge request from that
branch. Nothing differs: nothing is pushed, and a stale merge request is closed.

Without GitLab (``MANIFESTS_GIT_URL`` alone, a bare repository say) it pushes the branch, says
how to review it, and ``--merge`` fast-forwards the target branch to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitopskit import gitlab_api, interrupts
from gitopskit._run import run as run_program
from gitopskit.against import plain_http_warning, refuse_embedded_credentials
from gitopskit.config import Settings
from gitopskit.diff import DiffResult, Results, Target, compare, total
from gitopskit.environments import UNNAMED, Environment, Slot
from gitopskit.errors import ConfigError, GitError, GitLabError, ManifestError
from gitopskit.git import (
    Repo,
    display_url,
    git_environment,
    head_subject,
    is_http_url,
    resolve_branch,
    same_origin,
)
from gitopskit.render import render_environments, render_markdown
from gitopskit.tree import (
    INDEX_FILE,
    DirectoryReader,
    GitReader,
    Kind,
    Output,
    Ownership,
    Tree,
    index_bytes,
    join,
    listing_text,
    load,
    load_output,
    ownership,
    read_index,
    subdir_path,
    unmanaged_notes,
)
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


GITLAB_ONLY_OPTIONS = ("--label", "--assignee", "--draft", "--auto-merge")


@dataclass(frozen=True)
class Source:
    """Where the manifests come from: the source commit and pipeline, for commit and MR text.

    Attributes:
        title: The commit's subject.
        sha: The source commit (``-dirty`` appended when chart sources have uncommitted
            changes, outside CI).
        project_path: The source project (GitLab CI).
        project_url: Its web page (GitLab CI).
        pipeline_url: The pipeline (GitLab CI).
        slug: Names the publish branch (``CI_PROJECT_PATH_SLUG``, else ``local``).
        author: The commit author: GitLab CI's user, else the local git identity, else a bot.
    """

    title: str
    sha: str | None
    project_path: str | None
    project_url: str | None
    pipeline_url: str | None
    slug: str
    author: tuple[str, str] = BOT_AUTHOR

    @classmethod
    def detect(
        cls, environ: Mapping[str, str], project_dir: Path, outdir: Path | None = None
    ) -> Source:
        """From GitLab CI's predefined variables, else the local repository's HEAD."""
        title = environ.get("CI_COMMIT_TITLE")
        sha = environ.get("CI_COMMIT_SHA")
        in_ci = bool(environ.get("GITLAB_CI") or environ.get("CI_COMMIT_SHA"))
        if not title or not sha:
            local_title, local_sha = head_subject(project_dir)
            title = title or local_title
            if not sha and local_sha:
                sha = local_sha + ("-dirty" if _dirty(project_dir, outdir) else "")
        return cls(
            title=title or "Update manifests",
            sha=sha,
            project_path=environ.get("CI_PROJECT_PATH"),
            project_url=environ.get("CI_PROJECT_URL"),
            pipeline_url=environ.get("CI_PIPELINE_URL"),
            slug=environ.get("CI_PROJECT_PATH_SLUG") or "local",
            author=_ci_author(environ) if in_ci else _git_identity(project_dir),
        )

    def commit_url(self) -> str | None:
        """The source commit's page, when known."""
        if self.project_url and self.sha and not self.sha.endswith("-dirty"):
            return f"{self.project_url}/-/commit/{self.sha}"
        return None


def _ci_author(environ: Mapping[str, str]) -> tuple[str, str]:
    name = environ.get("GITLAB_USER_NAME")
    email = environ.get("GITLAB_USER_EMAIL")
    if name and email and "@" in email:
        return name, email
    return BOT_AUTHOR


def _git(project_dir: Path, *args: str) -> str | None:
    result = run_program(
        ["git", *args], cwd=project_dir, ok_codes=range(256), env=git_environment(),
        error=GitError,
    )  # fmt: skip
    return result.stdout if result.returncode == 0 else None


def _git_identity(project_dir: Path) -> tuple[str, str]:
    """The user's git identity (``user.name``, ``user.email``) where the charts are."""
    name = (_git(project_dir, "config", "user.name") or "").strip()
    email = (_git(project_dir, "config", "user.email") or "").strip()
    if name and "@" in email:
        return name, email
    return BOT_AUTHOR


def _dirty(project_dir: Path, outdir: Path | None) -> bool:
    """Whether the chart sources have uncommitted changes (the output directory aside)."""
    args = ["status", "--porcelain", "--untracked-files=normal", "--", "."]
    if outdir is not None:
        try:
            rel = outdir.resolve().relative_to(project_dir.resolve()).as_posix()
        except ValueError:
            rel = ""
        if rel and rel != ".":
            args.append(f":(exclude){rel}")
    status = _git(project_dir, *args)
    return bool(status and status.strip())


@dataclass
class Options:
    """What the user asked of this publish (flags)."""

    branch: str | None = None
    branch_per_commit: bool = False
    allow_plain_secrets: bool = False
    allow_empty: bool = False
    adopt: bool = False
    dry_run: bool = False
    merge: bool = False
    labels: list[str] = field(default_factory=list)
    assignee: str | None = None
    draft: bool = False
    auto_merge: bool = False

    def gitlab_only(self) -> list[str]:
        """The options given that only mean something with GitLab."""
        given = (bool(self.labels), bool(self.assignee), self.draft, self.auto_merge)
        return [name for name, on in zip(GITLAB_ONLY_OPTIONS, given, strict=True) if on]


@dataclass
class Destination:
    """The manifests repository, resolved from settings (no network yet).

    Attributes:
        git_url: Where git pushes (None: the GitLab project's ``http_url_to_repo``).
        gitlab_url: GitLab's base URL (merge requests need ``project`` too); the token goes
            only to its origin, in the local mode as well.
        project: The manifests project's path, when merge requests are opened.
        token: The token: python-gitlab always gets it; git only on GitLab's own origin.
        target_branch: The branch merge requests target (None: see
            :func:`gitopskit.git.resolve_branch`).
        path: ``MANIFESTS_PATH``, the subdirectory publish writes into ('' for the root).
        ca_file: A CA bundle for a self-managed GitLab.
        timeout: Seconds any one network operation may take.
        warnings: Things to tell the user once (a token over plain HTTP).
    """

    git_url: str | None
    gitlab_url: str | None
    project: str | None
    token: str | None
    target_branch: str | None
    path: str
    ca_file: str | None
    timeout: float = 60.0
    warnings: list[str] = field(default_factory=list)

    @property
    def uses_gitlab(self) -> bool:
        """Whether a merge request is opened (else: push only, the local mode)."""
        return bool(self.gitlab_url and self.project)

    def git_env(self, url: str) -> dict[str, str]:
        """git's environment for ``url``: the token only when it is GitLab's own origin."""
        own = same_origin(url, self.gitlab_url)
        return git_environment(
            url,
            self.token if own else None,
            ca_file=self.ca_file if own else None,
            timeout=self.timeout,
        )


@dataclass
class PublishResult:
    """How a publish ended.

    Attributes:
        status: ``up-to-date``, ``published`` or ``dry-run``.
        branch: The publish branch.
        target_branch: The branch it targets.
        diff: What changes, resource by resource (every environment's, added up).
        results: What changes in each environment.
        description: The merge request's description.
        pushed: Whether a commit was pushed to the publish branch.
        commit: The publish branch's commit (pushed or already there).
        merged: Whether ``--merge`` fast-forwarded the target branch (local mode).
        target_exists: Whether the target branch existed (local mode: ``--merge`` creates it).
        merge_request_url: The merge request opened or updated (None in local mode).
        closed_merge_request_url: A stale merge request this run closed.
        git_url: Where it published (no credentials), for the review hint.
        only: The environments ``--env`` named, for the merge hint.
        plan: What a dry run would do, one line each.
    """

    status: str
    branch: str
    target_branch: str
    diff: DiffResult | None = None
    results: Results = field(default_factory=list)
    description: str = ""
    pushed: bool = False
    commit: str | None = None
    merged: bool = False
    target_exists: bool = True
    merge_request_url: str | None = None
    closed_merge_request_url: str | None = None
    git_url: str = ""
    only: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)


def resolve_destination(
    settings: Settings, environ: Mapping[str, str], options: Options | None = None
) -> Destination:
    """Where to publish, from the settings, before any work is done.

    Raises:
        ConfigError: Nothing is configured, GitLab is half configured, the only token is
            CI_JOB_TOKEN, a URL carries credentials, or a GitLab-only option is given without
            GitLab (``--merge`` with it).
    """
    gitlab_url = settings.get("GITLAB_URL")
    project = settings.get("MANIFESTS_PROJECT")
    git_url = settings.get("MANIFESTS_GIT_URL")
    token = settings.token("MANIFESTS_TOKEN")
    if gitlab_url:
        refuse_embedded_credentials(gitlab_url, "GITLAB_URL")
    if git_url:
        refuse_embedded_credentials(git_url, "MANIFESTS_GIT_URL")
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
    if options is not None:
        _check_mode(options, bool(project))
    path = subdir_path(settings.get("MANIFESTS_PATH") or "")
    reaches_gitlab = bool(project) or bool(git_url and same_origin(git_url, gitlab_url))
    return Destination(
        git_url=git_url,
        gitlab_url=gitlab_url,  # the token's own origin, also in the local mode
        project=project,
        token=token if reaches_gitlab else None,
        target_branch=settings.get("MANIFESTS_TARGET_BRANCH"),
        path=path,
        ca_file=settings.get("GITLAB_CA_FILE"),
        timeout=settings.seconds("NETWORK_TIMEOUT"),
        warnings=plain_http_warning(gitlab_url) if reaches_gitlab and token else [],
    )


def _check_mode(options: Options, gitlab: bool) -> None:
    if not gitlab and options.gitlab_only():
        raise ConfigError(
            f"{', '.join(options.gitlab_only())}: merge-request options, but no GitLab project "
            "is configured (the local mode pushes a branch only)",
            hint="drop them, or set GITLAB_URL and MANIFESTS_PROJECT to publish through a merge "
            "request",
        )
    if gitlab and options.merge:
        raise ConfigError(
            "--merge is for the local mode: with GitLab, the merge request is merged in GitLab",
            hint="merge it there after review, or pass --auto-merge to merge it when its "
            "pipeline succeeds",
        )


def publish_branch(options: Options, settings: Settings, source: Source) -> str:
    """The publish branch: flag, setting, else ``gitopskit/<project slug>`` (per commit:
    ``gitopskit/<slug>-<short sha>``, as the hand-made pipeline named them)."""
    configured = settings.get("MANIFESTS_BRANCH", options.branch)
    if configured:
        return configured
    if options.branch_per_commit:
        short = (settings.environ.get("CI_COMMIT_SHORT_SHA") or (source.sha or "")[:8]) or "head"
        return f"gitopskit/{source.slug}-{short}"
    return f"gitopskit/{source.slug}"


@contextmanager
def _workdir() -> Iterator[Path]:
    with interrupts.temporary_directory("gitopskit-publish-") as directory:
        yield directory


def _retired_environment(path: str, base: str) -> Environment:
    """How a retired directory is named in messages and the merge request."""
    relative = path.removeprefix(base).strip("/") if base else path
    name = relative.rsplit("/", 1)[-1] if relative else "root"
    return Environment(f"{name} (removed from invoke.yaml)", relative)


def _in(side: _Side) -> str:
    """`` of dev`` for a named environment's messages; '' without environments."""
    return f" of {side.label}" if side.label else ""


def _parents(path: str) -> list[str]:
    """``a``, ``a/b`` for ``a/b/c.yaml``: the directories a file needs."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass
class _Loaded:
    """A slot with its output listed and parsed (before any network); ``retired``: the
    directory of an environment no longer declared, emptied with ``--allow-empty``."""

    slot: Slot
    output: Output
    retired: bool = False


@dataclass
class _Side:
    """A slot as one attempt reads it on the target branch."""

    loaded: _Loaded
    reader: GitReader | None
    listing: Mapping[str, Kind]
    owned: Ownership
    new_blobs: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.loaded.slot.environment.label


@dataclass
class _Target:
    """The target and publish branches as read in one attempt."""

    name: str
    sha: str | None
    branch_sha: str | None


class Publisher:
    """One publish run.

    Args:
        destination: Where to publish (see :func:`resolve_destination`).
        options: The user's flags.
        source: The source commit and pipeline.
        branch: The publish branch.
        progress: Where progress lines go.
        declared: Every environment declared in invoke.yaml (to tell a stale one in the
            repository); empty without environments.
    """

    def __init__(
        self,
        destination: Destination,
        options: Options,
        source: Source,
        branch: str,
        progress: Progress,
        declared: list[Environment] | None = None,
    ) -> None:
        self.destination = destination
        self.options = options
        self.source = source
        self.branch = branch
        self.ui = progress
        self.declared = list(declared or [])
        #: The environments ``--env`` named (the publish branch is theirs), else empty.
        self.only: list[str] = []
        self.gl: Any = None
        self.project: Any = None

    def run(self, outdir: Path) -> PublishResult:
        """Publish the manifests in ``outdir`` (the one unnamed environment)."""
        return self.run_slots([Slot(UNNAMED, outdir, self.destination.path)])

    def run_slots(self, slots: list[Slot]) -> PublishResult:
        """Publish each environment's output into its path, in one commit.

        Raises:
            ConfigError, ManifestError: Bad input; nothing was pushed or opened.
            GitError, GitLabError: git or GitLab failed; no branch or merge request is left
                half made.
        """
        for warning in self.destination.warnings:
            self.ui.warn(warning)
        loaded = [_Loaded(slot, self._load(slot.outdir)) for slot in slots]
        if self.destination.uses_gitlab:
            self._connect()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with _workdir() as work:
                result = self._attempt(loaded, work)
            if result is not None:
                return result
            if attempt < MAX_ATTEMPTS:
                self.ui.step(
                    "retry",
                    f"a branch moved while publishing: attempt {attempt + 1} of {MAX_ATTEMPTS}",
                )
                time.sleep(0.2 * attempt)
        raise GitError(
            f"the branches kept moving while publishing ({MAX_ATTEMPTS} attempts); nothing was "
            "left half made",
            hint="another publish is running; run publish again when it is done",
        )

    def _load(self, outdir: Path) -> Output:
        """List and parse an output directory once; refuse what must never be published."""
        if not outdir.is_dir():
            raise ManifestError(
                f"{outdir} does not exist", hint="run `invoke synth` first, or drop --no-synth"
            )
        output = load_output(outdir)
        if output.links:
            raise ManifestError(
                f"{outdir} holds symbolic links: {listing_text(output.links)}",
                hint="publish copies regular files only and never follows a link; make the app "
                "write files",
            )
        if not output.tree.files:
            raise ManifestError(
                f"{outdir} holds no manifests", hint="run `invoke synth` first, or drop --no-synth"
            )
        secrets = output.tree.plain_secrets
        if secrets and not self.options.allow_plain_secrets:
            raise ManifestError(
                "refusing to publish plain Secrets: " + ", ".join(secrets), hint=SECRETS_HINT
            )
        return output

    # --- GitLab -------------------------------------------------------------------------------

    def _connect(self) -> None:
        destination = self.destination
        assert destination.gitlab_url and destination.project and destination.token
        self.gl = gitlab_api.connect(
            destination.gitlab_url,
            destination.token,
            ca_file=destination.ca_file,
            timeout=destination.timeout,
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

    def _read_target(self, repo: Repo) -> _Target | None:
        """Resolve and fetch the target and publish branches; None when one moved meanwhile."""
        destination = self.destination
        refs = repo.remote_refs()
        where = display_url(repo.url or "the manifests repository")
        resolved = resolve_branch(
            refs,
            destination.target_branch,
            self.project.default_branch if self.project is not None else None,
            where=where,
            exclude=[self.branch],
        )
        if resolved is None:
            if self.project is not None:
                raise GitError(
                    f"the manifests project {destination.project} has no commits: a merge "
                    "request needs a branch to target",
                    hint="push a first commit (a README) to it",
                )
            resolved = destination.target_branch or "main"
            self.ui.note(f"{where} has no {resolved} yet: publish --merge creates it")
        target = resolved
        if self.branch == target:
            raise ConfigError(f"the publish branch and the target branch are both {target}")
        wanted = [b for b in (target, self.branch) if b in refs.heads]
        try:
            fetched = repo.fetch(*wanted) if wanted else {}
        except GitError as error:
            if "couldn't find remote ref" in error.message:
                return None  # deleted since it was listed
            raise
        target_sha, branch_sha = fetched.get(target), fetched.get(self.branch)
        self.ui.step(
            "fetch",
            (f"{target} at {target_sha[:8]}" if target_sha else f"{target} (new)")
            + (f", {self.branch} at {branch_sha[:8]}" if branch_sha else ""),
        )
        return _Target(target, target_sha, branch_sha)

    def _side(self, repo: Repo, target: _Target, loaded: _Loaded) -> _Side:
        """Read one environment's directory on the target branch and decide what it owns."""
        path = loaded.slot.path
        reader = GitReader(repo, target.sha, path, label=target.name) if target.sha else None
        listing = reader.listing if reader is not None else {}
        index = read_index(reader) if reader is not None else None
        label = join(target.name, path) if path else target.name
        owned = ownership(listing, index, label)
        side = _Side(loaded, reader, listing, owned)
        for note in owned.notes:
            self.ui.note(note)
        if owned.adopted:
            self.ui.note(
                f"first publish{_in(side)}: adopting {len(owned.adopted)} top-level YAML "
                f"file{'s' if len(owned.adopted) != 1 else ''}: {', '.join(owned.adopted)}"
            )
        self._check_conflicts(loaded.output.tree.files, owned, listing)
        return side

    def _attempt(self, loaded: list[_Loaded], work: Path) -> PublishResult | None:
        destination = self.destination
        git_url = destination.git_url or (self.project.http_url_to_repo if self.project else None)
        assert git_url is not None
        if destination.token and is_http_url(git_url) and not same_origin(
            git_url, destination.gitlab_url
        ):
            self.ui.warn(
                f"{display_url(git_url)} is not on GITLAB_URL's origin: git gets no token there "
                "and uses your own git credentials"
            )
        repo = Repo.init(work, git_url, destination.git_env(git_url), destination.timeout)
        target = self._read_target(repo)
        if target is None:
            return None
        sides = [self._side(repo, target, each) for each in loaded]
        if target.sha is not None:
            sides += [
                self._side(repo, target, each)
                for each in self._stale_environments(repo, target, work)
            ]
        remove: list[str] = []
        add: dict[str, str] = {}
        for side in sides:
            files = side.loaded.output.tree.files
            base = side.loaded.output.reader.base
            side.new_blobs = {} if side.loaded.retired else repo.hash_objects(
                {**{f: base / f for f in files}, INDEX_FILE: index_bytes(files)}
            )
            owned = [*side.owned.files, *side.owned.links]
            if side.listing.get(INDEX_FILE) is Kind.FILE:
                owned.append(INDEX_FILE)
            path = side.loaded.slot.path
            remove += [join(path, f) for f in owned]
            add.update({join(path, f): sha for f, sha in side.new_blobs.items()})
        new_tree = repo.build_tree(target.sha, remove=remove, add=add)
        result = PublishResult(
            "published",
            self.branch,
            target.name,
            git_url=display_url(git_url),
            target_exists=target.sha is not None,
            only=list(self.only),
        )
        if target.sha is not None and new_tree == repo.tree_of(target.sha):
            return self._up_to_date(repo, result, target)

        results = [(side.loaded.slot.environment, self._diff(side, target)) for side in sides]
        for env, diff in results:
            for note in diff.notes:
                self.ui.note(note)
            self.ui.step("compare", (f"{env.label}: " if env.name else "") + diff.summary_line())
            self._check_empty(env, diff)
        result.diff = total(results)
        result.results = results
        result.description = self._description(results, sides, target)
        same_tree_on_branch = (
            target.branch_sha is not None
            and repo.commit_parents(target.branch_sha) == ([target.sha] if target.sha else [])
            and repo.tree_of(target.branch_sha) == new_tree
        )
        count = sum(len(side.loaded.output.tree.files) for side in sides)
        if same_tree_on_branch:
            result.commit = target.branch_sha
            self.ui.step("push", f"{self.branch} already holds these manifests on {target.name}")
        elif self.options.dry_run:
            replacing = f"replacing {target.branch_sha[:8]}" if target.branch_sha else "new branch"
            result.plan.append(
                f"push one commit to {self.branch} ({count} files, {replacing}) on {target.name}"
            )
        else:
            commit = repo.commit_tree(new_tree, target.sha, self._message(), self.source.author)
            pushed = repo.push(commit, self.branch, expected=target.branch_sha)
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
            self.ui.step("push", f"{self.branch} at {commit[:8]} ({count} files)")
            pushed_at = f"{self.branch} pushed at {commit[:8]}"
            if self.project is not None:
                interrupts.done_so_far(
                    f"{pushed_at}; merge request not updated; run publish again to finish"
                )
            elif self.options.merge:
                interrupts.done_so_far(
                    f"{pushed_at}; {target.name} not fast-forwarded; run publish --merge again "
                    "to finish"
                )
        if self.project is not None:
            self._merge_request(result, target.name)
        elif self.options.merge and not self._merge(repo, result, target):
            return None
        interrupts.done_so_far(None)
        if self.options.dry_run:
            result.status = "dry-run"
        return result

    def _stale_environments(self, repo: Repo, target: _Target, work: Path) -> list[_Loaded]:
        """The ownership indexes in ``MANIFESTS_PATH`` that no declared environment writes (an
        environment removed from invoke.yaml). Never deleted silently: each is named and left
        alone, unless ``--allow-empty`` when publishing every environment: then each is a slot
        with no output, so that its owned files and its index go, shown as removed."""
        if not self.declared:
            return []
        base = self.destination.path
        paths = {e.repository_path(base) for e in self.declared}
        reader = GitReader(repo, target.sha or "", base, label=target.name)
        stale = sorted(
            join(base, name.removesuffix(INDEX_FILE).rstrip("/"))
            for name in reader.listing
            if name == INDEX_FILE or name.endswith("/" + INDEX_FILE)
            if join(base, name.removesuffix(INDEX_FILE).rstrip("/")) not in paths
        )
        if self.options.allow_empty and not self.only:
            nothing = work / ".retired"  # never made: an output of no files
            return [
                _Loaded(
                    Slot(_retired_environment(path, base), nothing, path),
                    Output(Tree(path or "the root"), [], DirectoryReader(nothing)),
                    retired=True,
                )
                for path in stale
            ]
        for path in stale:
            self.ui.note(
                f"{path or 'the root of the repository'} holds manifests gitopskit published "
                "for an environment no longer declared in invoke.yaml: left alone (publish "
                "--allow-empty removes them when it publishes every environment; that "
                "cluster's Flux then stops at a missing path, pruning nothing)"
            )
        return []

    def _merge(self, repo: Repo, result: PublishResult, target: _Target) -> bool:
        """``--merge`` (local mode): fast-forward the target branch to the publish branch when
        nobody moved it, then delete the publish branch. False when a branch moved meanwhile."""
        if self.options.dry_run:
            result.plan.append(f"fast-forward {target.name} to {self.branch}, then delete it")
            return True
        assert result.commit is not None
        moved = repo.push(result.commit, target.name, expected=target.sha)
        if moved.status == "stale":
            return False
        if moved.status == "rejected":
            raise GitError(f"the manifests repository refused the push to {target.name}:\n"
                           f"{moved.message}")  # fmt: skip
        result.merged = True
        self.ui.step("merge", f"{target.name} fast-forwarded to {result.commit[:8]}")
        if repo.delete_remote_branch(self.branch, expected=result.commit).status == "ok":
            self.ui.step("delete", f"branch {self.branch}")
        return True

    def _check_conflicts(
        self, files: list[str], owned: Ownership, listing: Mapping[str, Kind]
    ) -> None:
        """Refuse to write over what publish does not own: a file, a link, or a directory."""
        mine = set(owned.files) | set(owned.links)
        taken = sorted(f for f in files if f in listing and f not in mine)
        directories = sorted(
            f for f in files if any(name.startswith(f + "/") for name in listing)
        )
        in_the_way = sorted(
            {
                prefix
                for f in files
                for prefix in _parents(f)
                if prefix in listing and prefix not in mine
            }
        )
        if directories or in_the_way:
            what = [f"{f} is a directory there" for f in directories]
            what += [f"{p} is a file there, not a directory" for p in in_the_way]
            raise ManifestError(
                "synthesized files collide with the manifests repository: " + "; ".join(what),
                hint="rename the charts; publish never replaces a directory or what is in it",
            )
        if taken and not self.options.adopt:
            raise ManifestError(
                "these files exist in the manifests repository and publish does not own them: "
                + ", ".join(taken),
                hint="rename the charts, or pass --adopt to let publish take them over",
            )
        if taken:
            special = [f"{f} is a {listing[f].value}" for f in taken if listing[f] is not Kind.FILE]
            if special:
                raise ManifestError("--adopt takes over regular files only: " + ", ".join(special))
            owned.files += taken
            self.ui.note(f"adopting {', '.join(taken)}")

    def _diff(self, side: _Side, target: _Target) -> DiffResult:
        """The diff engine on one environment's owned files, parsing only the owned files whose
        bytes differ: a file identical on both sides holds the same objects, unchanged and
        unmoved. An owned file that is not valid YAML is replaced, with a note."""
        path = side.loaded.slot.path
        label = side.reader.label if side.reader is not None else path or "target"
        old = Tree(label)
        owned = side.owned
        blobs = side.reader.blobs if side.reader is not None else {}
        same = {f for f in owned.files if blobs.get(f) == side.new_blobs.get(f)}
        old.notes += unmanaged_notes(side.listing, owned, old.label)
        if side.reader is not None:
            load(
                side.reader,
                [f for f in owned.files if f not in same],
                tolerate_broken=True,
                tree=old,
            )
        new = side.loaded.output.tree
        changed_part = Tree(
            new.label,
            {i: r for i, r in new.resources.items() if r.file not in same},
            notes=list(new.notes),
        )
        unchanged = new.object_count - len(changed_part.resources)
        destination = self.destination
        repository = destination.project or display_url(destination.git_url or "")
        env = side.loaded.slot.environment
        shown = Target(repository, target.name, path, env.name)
        result = compare(old, changed_part, unchanged=unchanged, target=shown)
        result.broken = list(old.broken)
        return result

    def _check_empty(self, env: Environment, diff: DiffResult) -> None:
        removed = diff.summary["removed"]
        objects = diff.summary["added"] + diff.summary["changed"] + diff.summary["unchanged"]
        objects += diff.summary["moved"]
        if objects == 0 and removed and not self.options.allow_empty:
            where = f" of environment {env.label}" if env.name else ""
            raise ManifestError(
                f"the output{where} holds no objects: publishing it would remove all {removed} "
                f"object{'s' if removed != 1 else ''} gitopskit owns in the manifests repository, "
                "and Flux would delete them from the cluster",
                hint="check that the charts still import and synthesize; if the removal is "
                "meant, pass --allow-empty",
            )

    def _up_to_date(self, repo: Repo, result: PublishResult, target: _Target) -> PublishResult:
        result.status = "dry-run" if self.options.dry_run else "up-to-date"
        stale = self._open_merge_requests(target.name) if self.project is not None else []
        for mr in stale:
            if self.options.dry_run:
                result.plan.append(f"close merge request !{mr.iid} ({mr.web_url})")
                continue
            with gitlab_api.errors(f"close the stale merge request !{mr.iid}"):
                mr.notes.create(
                    {"body": f"The manifests already match `{target.name}`: closing. {MARKER}"}
                )
                mr.state_event = "close"
                mr.save()
            result.closed_merge_request_url = mr.web_url
            self.ui.step(
                "close", f"merge request !{mr.iid}: the manifests already match {target.name}"
            )
        if target.branch_sha:
            if self.options.dry_run:
                result.plan.append(f"delete the branch {self.branch}")
            elif repo.delete_remote_branch(self.branch, expected=target.branch_sha).status == "ok":
                self.ui.step("delete", f"branch {self.branch}")
        return result

    def _description(self, results: Results, sides: list[_Side], target: _Target) -> str:
        footer = ["", "---", ""]
        links = []
        commit_url = self.source.commit_url()
        if self.source.sha:
            short = self.source.sha[:8] + ("-dirty" if self.source.sha.endswith("-dirty") else "")
            links.append(f"source commit [{short}]({commit_url})" if commit_url else short)
        if self.source.pipeline_url:
            links.append(f"[pipeline]({self.source.pipeline_url})")
        if links:
            footer.append("Published by gitopskit from " + ", ".join(links) + ".")
        footer.append(MARKER)
        tail = "\n".join(footer) + "\n"
        combined = total(results)
        summary = combined.summary
        resource_changes = summary["added"] + summary["removed"] + summary["changed"]
        head = ""
        if resource_changes == 0:
            head = "**No resource changes**: only formatting or file names differ.\n\n"
        notes = []
        for side in sides:
            adopted = side.owned.adopted
            if adopted:
                notes.append(
                    f"First publish{_in(side)}: gitopskit adopts {len(adopted)} top-level YAML "
                    f"file{'s' if len(adopted) != 1 else ''} of `{target.name}` and owns "
                    "them from now on: " + ", ".join(f"`{f}`" for f in adopted) + "."
                )
        for broken in combined.broken:
            notes.append(
                f"`{broken}` on `{target.name}` is not valid YAML: it could not be compared "
                "and is replaced."
            )
        if notes:
            head += "".join(f"> **Note**: {n}\n>\n" for n in notes).rstrip(">\n") + "\n\n"
        limit = GITLAB_DESCRIPTION_LIMIT - len(head) - len(tail)
        if len(results) == 1 and results[0][0].name is None:
            return head + render_markdown(results[0][1], limit=limit) + tail
        return head + render_environments(results, "markdown", limit=limit) + tail

    def _message(self) -> str:
        lines = [self.source.title, ""]
        if self.source.project_path:
            lines.append(f"Source-Project: {self.source.project_path}")
        if self.source.sha:
            lines.append(f"Source-Commit: {self.source.sha}")
        if self.source.pipeline_url:
            lines.append(f"Pipeline: {self.source.pipeline_url}")
        return "\n".join(lines).rstrip() + "\n"
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
            users = self.gl.users.list(username=username.removeprefix("@"))
        if not users:
            raise ConfigError(f"no GitLab user {username!r} to assign the merge request to")
        return int(users[0].id)


def prepare(
    project_dir: Path,
    settings: Settings,
    options: Options,
    progress: Progress,
    outdir: Path | None = None,
    *,
    environments: list[Environment] | None = None,
    declared: list[Environment] | None = None,
) -> Publisher:
    """A publisher for this project, its settings checked before any work (no network yet).

    Args:
        project_dir: Where the charts are (the source commit is read there).
        settings: This run's settings.
        options: The user's flags.
        progress: Where progress lines go.
        outdir: The output directory, left out of the "uncommitted changes" check.
        environments: The environments ``--env`` named (publish branch ``<branch>-<name>``, or
            ``<branch>-<a>+<b>`` for several, and their ``auto_merge``); None or empty: every
            one, on the publish branch itself.
        declared: Every environment declared in invoke.yaml.

    Raises:
        ConfigError: Nothing or half of GitLab is configured, the only token is CI_JOB_TOKEN,
            or an option does not fit the mode (GitLab or local).
    """
    destination = resolve_destination(settings, settings.environ, options)
    source = Source.detect(settings.environ, project_dir, outdir)
    branch = publish_branch(options, settings, source)
    named = sorted((e for e in environments or [] if e.name), key=lambda e: str(e.name))
    if named:
        # "+" is in no environment's name: dev and prod together never share the branch of an
        # environment named "dev-prod", and the order of the flags makes no second branch.
        branch += "-" + "+".join(str(e.name) for e in named)
        if destination.uses_gitlab and all(e.auto_merge for e in named):
            options.auto_merge = True
    publisher = Publisher(destination, options, source, branch, progress, declared)
    publisher.only = [str(e.name) for e in named]
    return publisher


def slots(publisher: Publisher, environments: list[Environment], outdir: Path) -> list[Slot]:
    """Each environment's output directory and its path in the manifests repository."""
    path = publisher.destination.path
    return [Slot.of(e, outdir, path) for e in environments]


def publish(
    project_dir: Path, settings: Settings, options: Options, *, outdir: Path, progress: Progress
) -> PublishResult:
    """Publish the manifests already in ``outdir`` (``invoke publish --no-synth``), the one
    unnamed environment.

    Raises:
        GitopskitError: Any expected failure, with nothing left half made.
    """
    return prepare(project_dir, settings, options, progress, outdir).run(outdir)
