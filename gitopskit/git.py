"""git, run through the one program helper, with credentials that never touch argv or disk.

It tells git URLs from directories, fetches branches shallowly, and builds, commits and pushes
trees with git's plumbing. git never prompts (``GIT_TERMINAL_PROMPT=0``). A token reaches git
through a credential helper that answers only for the GitLab origin (``credential.<url>.helper``),
configured through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` and reading the
token from the environment: git asks helpers again for the host a redirect leads to, so the token
never follows a redirect elsewhere. Other credential helpers are reset, since GitLab runners
export a global one that feeds CI_JOB_TOKEN to git. Error messages are redacted and show URLs
without their user information.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from gitopskit import interrupts
from gitopskit._run import Result, run
from gitopskit.errors import ConfigError, GitError
from gitopskit.redact import add_secret, redact

# git's scp-like syntax, user@host:path (the user part is what tells it from a Windows path or a
# file name holding a colon).
_SCP_FORM = re.compile(r"^[^@/:\s]+@[^@/:\s]+:\S*$")

#: The environment every git command runs with, on top of the caller's.
GIT_ENV: dict[str, str] = {
    "GIT_TERMINAL_PROMPT": "0",
    "GCM_INTERACTIVE": "never",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
}


class SourceKind(Enum):
    """How a location is read."""

    GIT = "git"
    DIRECTORY = "directory"


def is_bare_repository(path: Path) -> bool:
    """Whether ``path`` is a bare git repository (it holds ``HEAD`` and ``objects/``)."""
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def classify(location: str) -> SourceKind:
    """Tell a git URL from a directory compared as it stands on disk.

    A value with ``://``, of the scp form ``user@host:path``, or naming a bare repository is a
    git URL; any other existing directory is a directory.

    Args:
        location: What the user gave.

    Raises:
        ConfigError: It is neither a git URL nor an existing directory.
    """
    if "://" in location:
        return SourceKind.GIT
    path = Path(location).expanduser()
    if path.is_dir():
        return SourceKind.GIT if is_bare_repository(path) else SourceKind.DIRECTORY
    if _SCP_FORM.match(location):
        return SourceKind.GIT
    raise ConfigError(
        f"{display_url(location)} is neither a directory nor a git URL",
        hint="give an existing directory, a bare repository, or a URL such as "
        "https://host/group/repo.git, ssh://git@host/repo.git or git@host:group/repo.git",
    )


def absolute_location(location: str) -> str:
    """A local path made absolute (against the current directory, as the user meant it), since
    git runs elsewhere (in a temporary repository); a URL or ``user@host:path`` as it is."""
    if "://" in location or _SCP_FORM.match(location):
        return location
    return os.path.abspath(os.path.expanduser(location))


def display_url(url: str) -> str:
    """``url`` fit for messages: user information (a token in ``https://user:token@``) removed."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            host = parts.hostname or ""
            if parts.port:
                host = f"{host}:{parts.port}"
            url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return redact(url)


def origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an http(s) URL, the port made explicit; None for others."""
    if not is_http_url(url):
        return None
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    default = 443 if scheme == "https" else 80
    return scheme, (parts.hostname or "").lower(), port or default


def same_origin(url: str, other: str | None) -> bool:
    """Whether two http(s) URLs share scheme, host and port: where a token may go."""
    if not other:
        return False
    first = origin_of(url)
    return first is not None and first == origin_of(other)


def embedded_credentials(url: str) -> bool:
    """Whether a URL carries a password (``https://user:token@host/…``).

    git would keep it in argv and ``.git/config``; a user name alone (``ssh://git@host``) is fine.
    """
    if "://" not in url:
        return False
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def host_of(url: str) -> str:
    """The host (and port) a git URL reaches, for messages: ``gitlab.example.com``,
    ``127.0.0.1:8080``; a local path is ``this machine``."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme == "file":
            return "this machine"
        host = parts.hostname or ""
        try:
            port = parts.port
        except ValueError:
            port = None
        return f"{host}:{port}" if port else host
    match = _SCP_FORM.match(url)
    if match:
        return url.split("@", 1)[1].split(":", 1)[0]
    return "this machine"


# Variables that would point git at another repository or index than the one we run it on.
_INHERITED_GIT_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


def is_http_url(url: str) -> bool:
    """Whether git reaches ``url`` over HTTP(S), where a token header applies."""
    return url.startswith(("http://", "https://"))


#: The variable that hands the token to :data:`_CREDENTIAL_HELPER` (never argv or a file).
TOKEN_VARIABLE = "GITOPSKIT_GIT_TOKEN"
_CREDENTIAL_HELPER = (
    '!f() { if test "$1" = get; then '
    f"printf 'username=gitopskit\\npassword=%s\\n' \"${TOKEN_VARIABLE}\"; fi; }}; f"
)

DEFAULT_TIMEOUT = 60.0
#: git over HTTP(S) gives up when it receives less than this many bytes a second…
LOW_SPEED_LIMIT = 1
#: …for as long as the network timeout (``http.lowSpeedTime``).


def git_environment(
    url: str | None = None,
    token: str | None = None,
    *,
    ca_file: str | None = None,
    base: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, str]:
    """The environment for git: no prompts, bounded network waits, and the token given only to
    ``url``'s origin (a credential helper scoped to it).

    Every git command that touches the network is bounded three ways: the caller's overall
    timeout (see :class:`Repo`), ``http.lowSpeedLimit``/``http.lowSpeedTime`` (a stalled HTTP
    server), and for SSH ``ConnectTimeout`` and ``ServerAliveInterval`` (unless the user set their
    own ssh command, which is then theirs to bound).

    Args:
        url: The remote's URL; the helper is scoped to its scheme, host and port.
        token: A GitLab token, sent as HTTP Basic password (any user name is accepted). The
            caller decides that ``url`` is the token's own GitLab (see :func:`same_origin`).
        ca_file: A CA bundle for the remote's TLS certificate (``http.sslCAInfo``).
        base: The environment to start from (default: this process's).
        timeout: Seconds a network operation may stall (``GITOPSKIT_NETWORK_TIMEOUT``).
    """
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    for name in _INHERITED_GIT_VARIABLES:
        env.pop(name, None)
    env.update(GIT_ENV)
    seconds = max(1, round(timeout))
    entries: list[tuple[str, str]] = [
        ("http.lowSpeedLimit", str(LOW_SPEED_LIMIT)),
        ("http.lowSpeedTime", str(seconds)),
    ]
    if not env.get("GIT_SSH_COMMAND") and not env.get("GIT_SSH"):
        alive = max(1, min(15, seconds // 3))
        env["GIT_SSH_COMMAND"] = (
            f"ssh -o ConnectTimeout={seconds} -o ServerAliveInterval={alive} "
            f"-o ServerAliveCountMax=3 -o BatchMode=yes"
        )
    count = int(env.get("GIT_CONFIG_COUNT", "0") or "0")
    if token and url and is_http_url(url):
        parts = urlsplit(url)
        scope = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/"
        add_secret(token)
        add_secret(base64.b64encode(f"gitopskit:{token}".encode()).decode())
        env[TOKEN_VARIABLE] = token
        # An empty helper resets the list: a runner's CI_JOB_TOKEN helper never answers for us.
        # Ours answers only for the origin: git asks again for wherever a redirect leads (an
        # http.<url>.extraHeader would go along to a redirect's host).
        entries += [
            ("credential.helper", ""),
            (f"credential.{scope}.helper", _CREDENTIAL_HELPER),
        ]
    if ca_file:
        entries.append(("http.sslCAInfo", ca_file))
    for index, (key, value) in enumerate(entries, start=count):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(count + len(entries))
    return env


@dataclass(frozen=True)
class PushResult:
    """How a push ended: ``ok``, ``stale`` (the lease failed: someone moved the branch), or
    ``rejected`` (the server refused, e.g. a protected branch) with git's ``message``."""

    status: str
    message: str = ""


@dataclass(frozen=True)
class RemoteRefs:
    """What a remote says it holds: its branches and the branch its HEAD names.

    Attributes:
        heads: Commit id of every branch, by name.
        head: The branch HEAD points to, when it says (it may name a branch that is missing).
    """

    heads: dict[str, str] = field(default_factory=dict)
    head: str | None = None

    @property
    def empty(self) -> bool:
        """Whether the repository has no branch at all (no commits)."""
        return not self.heads


def resolve_branch(
    refs: RemoteRefs,
    explicit: str | None = None,
    gitlab_default: str | None = None,
    *,
    where: str = "the manifests repository",
    exclude: Iterable[str] = (),
) -> str | None:
    """The target branch, one way for every task.

    In order: ``explicit`` (a flag or ``MANIFESTS_TARGET_BRANCH``; it must exist), GitLab's
    default branch, the branch the remote HEAD names if it exists, the only branch, ``main``,
    ``master``. None when the repository has no branch at all (no commits), ``exclude`` aside.

    Args:
        refs: What the remote holds.
        explicit: The branch the user named.
        gitlab_default: The GitLab project's default branch.
        where: Names the repository in messages.
        exclude: Branches that are never a target (publish's own branch).

    Raises:
        GitError: ``explicit`` is missing, or none of the rules picks a branch; the message
            lists the branches found.
    """
    heads = {b: sha for b, sha in refs.heads.items() if b not in set(exclude)}
    found = ", ".join(sorted(heads)) or "none"
    if explicit:
        if explicit in refs.heads:
            return explicit
        raise GitError(
            f"{where} has no branch {explicit} (branches: {found})",
            hint="push a first commit to it, or set MANIFESTS_TARGET_BRANCH to one of them",
        )
    if not heads:
        return None
    for candidate in (gitlab_default, refs.head):
        if candidate and candidate in heads:
            return candidate
    if len(heads) == 1:
        return next(iter(heads))
    for candidate in ("main", "master"):
        if candidate in heads:
            return candidate
    dangling = f"its HEAD names {refs.head}, which does not exist, and " if refs.head else ""
    raise GitError(
        f"cannot tell which branch of {where} is the target: {dangling}it has several "
        f"branches: {found}",
        hint="set MANIFESTS_TARGET_BRANCH (or --ref for diff) to one of them",
    )


_GIT_MODES = {"100644": "file", "100755": "file", "120000": "link"}


class Repo:
    """A local repository that git commands run in.

    Args:
        path: The repository's directory.
        env: The environment for every git command (see :func:`git_environment`).
        url: The ``origin`` remote, named in messages by its host.
        timeout: Seconds any one network command (ls-remote, fetch, push) may take.
    """

    def __init__(
        self,
        path: Path,
        env: Mapping[str, str],
        url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.path = path
        self.env = dict(env)
        self.url = url
        self.timeout = timeout

    @property
    def host(self) -> str:
        """The host ``origin`` reaches, for messages."""
        return host_of(self.url) if self.url else "origin"

    def git(
        self,
        *args: str,
        stdin: str | bytes | None = None,
        ok_codes: Iterable[int] = (0,),
        extra_env: Mapping[str, str] | None = None,
        what: str | None = None,
        network: bool = False,
        text: bool = True,
    ) -> Result:
        """Run ``git ARGS`` here.

        Args:
            args: git's arguments.
            stdin: Fed to git's standard input.
            ok_codes: Exit statuses that count as success.
            extra_env: Added to the environment.
            what: Names the command in messages.
            network: It talks to ``origin``: bounded by :attr:`timeout`, and named with the host.
            text: Decode the output (False: :attr:`Result.raw_stdout` only).

        Raises:
            GitError: git failed or timed out; the message holds its redacted stderr, never the
                token, and for a network command the host.
        """
        label = what or f"git {args[0]}"
        if network:
            label = f"{label} ({self.host})"
        return run(
            ["git", *args],
            env=self.env,
            extra_env=extra_env,
            stdin=stdin,
            cwd=self.path,
            ok_codes=tuple(ok_codes),
            error=GitError,
            what=label,
            timeout=self.timeout if network else None,
            text=text,
        )

    @classmethod
    def init(
        cls, path: Path, url: str, env: Mapping[str, str], timeout: float = DEFAULT_TIMEOUT
    ) -> Repo:
        """A new, empty repository at ``path`` with ``url`` as its ``origin`` (a relative path
        taken from the current directory)."""
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path, env, url, timeout)
        repo.git("init", "--quiet")
        # A relative path means what it means where the user is, not in this repository.
        repo.git("remote", "add", "origin", absolute_location(url))
        return repo

    def remote_refs(self) -> RemoteRefs:
        """Every branch of ``origin`` and where its HEAD points, in one request.

        Raises:
            GitError: The remote cannot be reached, refuses access, or times out.
        """
        out = self.git(
            "ls-remote", "--symref", "origin", "HEAD", "refs/heads/*",
            what="git ls-remote (reading the manifests repository)", network=True,
        ).stdout  # fmt: skip
        heads: dict[str, str] = {}
        head = None
        for line in out.splitlines():
            first, _, ref = line.partition("\t")
            if first.startswith("ref: ") and ref == "HEAD":
                head = first.removeprefix("ref: refs/heads/")
            elif ref.startswith("refs/heads/"):
                heads[ref.removeprefix("refs/heads/")] = first
        return RemoteRefs(heads, head)

    def fetch(self, *branches: str, depth: int | None = 1) -> dict[str, str]:
        """Fetch ``branches`` into ``refs/remotes/origin/*``, shallowly by default.

        Returns:
            The commit each branch was fetched at: what was read, even if a branch moved since
            it was listed.

        Raises:
            GitError: The fetch failed or timed out (a branch deleted since it was listed too).
        """
        specs = [f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in branches]
        args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
        if depth:
            args.append(f"--depth={depth}")
        self.git(
            *args, "origin", *specs,
            what="git fetch (reading the manifests repository)", network=True,
        )  # fmt: skip
        return {b: self.rev_parse(f"refs/remotes/origin/{b}") for b in branches}

    def rev_parse(self, rev: str) -> str:
        """The object id ``rev`` names."""
        return self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").stdout.strip()

    def commit_parents(self, sha: str) -> list[str]:
        """The parents recorded in a commit object (shallow grafts ignored)."""
        raw = self.git("cat-file", "commit", sha).stdout
        header = raw.split("\n\n", 1)[0]
        return [line.split()[1] for line in header.splitlines() if line.startswith("parent ")]

    def tree_of(self, rev: str) -> str:
        """The tree of a commit."""
        return self.git("rev-parse", f"{rev}^{{tree}}").stdout.strip()

    def entry_mode(self, rev: str, path: str) -> str | None:
        """The mode of ``path`` at ``rev`` (``040000`` a directory, ``120000`` a symbolic
        link), or None when it is not there."""
        out = self.git("ls-tree", "-z", "--full-tree", rev, "--", path).stdout
        for entry in out.split("\0"):
            if entry:
                meta, name = entry.split("\t", 1)
                if name == path:
                    return meta.split()[0]
        return None

    def entries(self, rev: str, path: str = "") -> dict[str, tuple[str, str]]:
        """Every non-directory entry under ``path`` at ``rev``: ``(kind, object id)`` by path
        relative to ``path``; kind is ``file``, ``link`` or ``other`` (a submodule)."""
        spec = f"{path}/" if path else "."
        out = self.git("ls-tree", "-r", "-z", "--full-tree", rev, "--", spec).stdout
        prefix = f"{path}/" if path else ""
        found = {}
        for entry in out.split("\0"):
            if not entry:
                continue
            meta, name = entry.split("\t", 1)
            mode, _kind, sha = meta.split()
            found[name.removeprefix(prefix)] = (_GIT_MODES.get(mode, "other"), sha)
        return found

    def read_blobs(self, ids: Iterable[str]) -> Iterator[bytes]:
        """The content of each blob, in order, read by one ``git cat-file --batch``."""
        wanted = list(ids)
        if not wanted:
            return
        raw = self.git(
            "cat-file", "--batch", stdin="".join(f"{i}\n" for i in wanted), text=False
        ).raw_stdout
        view = memoryview(raw)
        offset = 0
        for sha in wanted:
            end = raw.index(b"\n", offset)
            header = raw[offset:end].split()
            if len(header) != 3 or header[1] != b"blob":
                raise GitError(f"git cat-file: {sha} is not a blob")
            size = int(header[2])
            start = end + 1
            yield bytes(view[start : start + size])
            offset = start + size + 1

    def hash_objects(self, sources: Mapping[str, Path | bytes]) -> dict[str, str]:
        """Store files (by path) or contents as blobs; their object ids, by the same keys."""
        names = list(sources)
        files = {n: p for n, p in sources.items() if isinstance(p, Path)}
        ids: dict[str, str] = {}
        if files:
            out = self.git(
                "hash-object",
                "-w",
                "--no-filters",
                "--stdin-paths",
                stdin="".join(f"{p}\n" for p in files.values()),
            ).stdout.split()
            ids.update(zip(files, out, strict=True))
        for name in names:
            content = sources[name]
            if isinstance(content, bytes):
                result = self.git("hash-object", "-w", "--no-filters", "--stdin", stdin=content)
                ids[name] = result.stdout.strip()
        return {name: ids[name] for name in names}

    def build_tree(self, base: str | None, remove: Iterable[str], add: Mapping[str, str]) -> str:
        """Write a tree: ``base``'s tree, less ``remove``, plus ``add`` (path → blob id).

        No work tree is touched: a private index is filled with git's plumbing, so the result is
        compared with other trees by object id, byte for byte.
        """
        index = self.path / ".git" / "gitopskit-index"
        index.unlink(missing_ok=True)
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            if base:
                self.git("read-tree", base, extra_env=env)
            removals = "".join(f"{p}\0" for p in remove)
            if removals:
                self.git(
                    "update-index", "--force-remove", "-z", "--stdin", stdin=removals, extra_env=env
                )
            if add:
                info = "".join(f"100644 {sha}\t{name}\0" for name, sha in add.items())
                self.git("update-index", "--add", "-z", "--index-info", stdin=info, extra_env=env)
            return self.git("write-tree", extra_env=env).stdout.strip()
        finally:
            index.unlink(missing_ok=True)

    def commit_tree(
        self, tree: str, parent: str | None, message: str, author: tuple[str, str]
    ) -> str:
        """A commit of ``tree`` on ``parent``; ``author`` (name, email) is author and committer."""
        name, email = author
        identity = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        args = ["commit-tree", tree, "-F", "-"]
        if parent:
            args[2:2] = ["-p", parent]
        return self.git(*args, stdin=message, extra_env=identity).stdout.strip()

    def push(self, commit: str, branch: str, *, expected: str | None) -> PushResult:
        """Push ``commit`` to ``branch`` only if the branch is still at ``expected`` (None: absent).

        Returns:
            ``ok``, ``stale`` (the branch moved since it was read) or ``rejected``.

        Raises:
            GitError: The push failed for another reason (network, authentication, timeout).
        """
        lease = f"--force-with-lease=refs/heads/{branch}:{expected or ''}"
        result = self.git(
            "push", "--porcelain", lease, "origin", f"{commit}:refs/heads/{branch}",
            ok_codes=(0, 1), what=f"git push to {branch}", network=True,
        )  # fmt: skip
        if result.returncode == 0:
            return PushResult("ok")
        text = f"{result.stdout}\n{result.stderr}"
        # The lease failed, or another push won the race for the ref on the server side.
        moved = ("stale info", "fetch first", "cannot lock ref", "failed to update ref")
        if any(sign in text for sign in moved):
            return PushResult("stale", text)
        if re.search(r"^!\t", result.stdout, re.MULTILINE) or "[remote rejected]" in text:
            remote = [
                ln.removeprefix("remote: ").strip()
                for ln in result.stderr.splitlines()
                if ln.startswith("remote:") and ln.removeprefix("remote:").strip()
            ]
            return PushResult("rejected", "\n".join(remote) or text.strip())
        raise GitError(
            f"git push to {branch} ({self.host}) failed:\n{redact(result.stderr.strip())}",
            returncode=result.returncode,
        )

    def delete_remote_branch(self, branch: str, *, expected: str) -> PushResult:
        """Delete ``branch`` on ``origin`` if it is still at ``expected``."""
        result = self.git(
            "push", "--porcelain", f"--force-with-lease=refs/heads/{branch}:{expected}",
            "origin", f":refs/heads/{branch}",
            ok_codes=(0, 1), what=f"git push deleting {branch}", network=True,
        )  # fmt: skip
        return PushResult("ok" if result.returncode == 0 else "stale", result.stderr)


@contextmanager
def temporary_repo(
    url: str, env: Mapping[str, str], timeout: float = DEFAULT_TIMEOUT
) -> Iterator[Repo]:
    """An empty repository with ``url`` as ``origin`` in a temporary directory, removed on exit.

    Nothing is checked out from it, ever: trees are read with git's plumbing, so a symbolic link
    committed to the remote never becomes a link on this machine.
    """
    with interrupts.temporary_directory("gitopskit-repo-") as tmp:
        yield Repo.init(tmp / "repo", url, env, timeout)


def head_subject(directory: Path) -> tuple[str | None, str | None]:
    """The subject and commit id of HEAD in ``directory``'s repository, if it is one."""
    result = run(
        ["git", "log", "-1", "--format=%H%n%s"],
        cwd=directory,
        ok_codes=range(256),
        env=git_environment(),
        error=GitError,
    )
    if result.returncode != 0:
        return None, None
    sha, _, subject = result.stdout.strip().partition("\n")
    return subject or None, sha or None
