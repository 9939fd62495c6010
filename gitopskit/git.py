"""git, run through the one program helper, with credentials that never touch argv or disk.

It tells git URLs from directories, fetches branches shallowly, and builds, commits and pushes
trees with git's plumbing. git never prompts (``GIT_TERMINAL_PROMPT=0``). A token reaches git as
an ``Authorization`` header scoped to the GitLab host (``http.<url>.extraHeader``), passed through
``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``; credential helpers are reset for
the same reason, since GitLab runners export a global one that feeds CI_JOB_TOKEN to git. Error
messages are redacted and show URLs without their user information.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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


def clone_shallow(
    url: str,
    dest: Path,
    *,
    ref: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float | None = 300,
) -> Path:
    """Fetch one branch of ``url`` at depth 1 into ``dest`` (which must not exist yet).

    Args:
        url: A git URL, or the path of a repository.
        dest: The new working tree.
        ref: The branch (or tag) to check out; the remote's default branch when None.
        extra_env: Added to git's environment, e.g. ``GIT_CONFIG_*`` carrying an auth header.
        timeout: Seconds before git is stopped.

    Returns:
        ``dest``.

    Raises:
        GitError: git failed: unreachable, refused, or no such branch. The message names the URL
            without credentials and carries git's redacted output.
        ToolNotFoundError: git is not installed.
    """
    args = ["git", "clone", "--quiet", "--depth", "1", "--single-branch", "--no-tags"]
    if "://" not in url and not _SCP_FORM.match(url):
        args.append("--no-local")  # a plain path: go through the transport so --depth holds
    if ref:
        args += ["--branch", ref]
    args += ["--", url, str(dest)]
    env = {**GIT_ENV, **(extra_env or {})}
    where = f"branch {ref} of " if ref else ""
    try:
        run(args, extra_env=env, timeout=timeout, error=GitError, what="git clone")
    except GitError as error:
        raise GitError(
            f"cannot fetch {where}{display_url(url)}: {error.message}",
            returncode=error.returncode,
            hint="check the URL, the branch name and the credentials (git never prompts here)",
        ) from None
    return dest


@contextmanager
def temporary_clone(
    url: str, *, ref: str | None = None, extra_env: Mapping[str, str] | None = None
) -> Iterator[Path]:
    """A shallow clone of one branch in a temporary directory, removed on exit.

    Args:
        url: A git URL, or the path of a repository.
        ref: The branch; the remote's default branch when None.
        extra_env: Added to git's environment (auth).

    Yields:
        The working tree.

    Raises:
        GitError: The fetch failed.
    """
    with interrupts.temporary_directory("gitopskit-clone-") as tmp:
        yield clone_shallow(url, tmp / "repo", ref=ref, extra_env=extra_env)


# Variables that would point git at another repository or index than the one we run it on.
_INHERITED_GIT_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


def is_http_url(url: str) -> bool:
    """Whether git reaches ``url`` over HTTP(S), where a token header applies."""
    return url.startswith(("http://", "https://"))


def git_environment(
    url: str | None = None,
    token: str | None = None,
    *,
    ca_file: str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for git: no prompts, and the token as a header scoped to ``url``'s host.

    Args:
        url: The remote's URL; the header is scoped to its scheme, host and port.
        token: A GitLab token, sent as HTTP Basic password (any user name is accepted).
        ca_file: A CA bundle for the remote's TLS certificate (``http.sslCAInfo``).
        base: The environment to start from (default: this process's).
    """
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    for name in _INHERITED_GIT_VARIABLES:
        env.pop(name, None)
    env.update(GIT_ENV)
    entries: list[tuple[str, str]] = []
    count = int(env.get("GIT_CONFIG_COUNT", "0") or "0")
    if token and url and is_http_url(url):
        parts = urlsplit(url)
        scope = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/"
        header = base64.b64encode(f"gitopskit:{token}".encode()).decode()
        add_secret(token)
        add_secret(header)
        # An empty helper resets the list: a runner's CI_JOB_TOKEN helper never answers for us.
        entries += [
            ("credential.helper", ""),
            (f"http.{scope}.extraHeader", f"Authorization: Basic {header}"),
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


class Repo:
    """A local repository that git commands run in.

    Args:
        path: The repository's directory.
        env: The environment for every git command (see :func:`git_environment`).
    """

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = dict(env)

    def git(
        self,
        *args: str,
        stdin: str | bytes | None = None,
        ok_codes: Iterable[int] = (0,),
        extra_env: Mapping[str, str] | None = None,
        what: str | None = None,
    ) -> Result:
        """Run ``git ARGS`` here.

        Raises:
            GitError: git failed; the message holds its redacted stderr, never the token.
        """
        return run(
            ["git", *args],
            env=self.env,
            extra_env=extra_env,
            stdin=stdin,
            cwd=self.path,
            ok_codes=tuple(ok_codes),
            error=GitError,
            what=what or f"git {args[0]}",
        )

    @classmethod
    def init(cls, path: Path, url: str, env: Mapping[str, str]) -> Repo:
        """A new, empty repository at ``path`` with ``url`` as its ``origin``."""
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path, env)
        repo.git("init", "--quiet")
        repo.git("remote", "add", "origin", url)
        return repo

    def remote_heads(self, *branches: str) -> dict[str, str]:
        """The commit each of ``branches`` points to on ``origin``; missing ones are left out.

        Raises:
            GitError: The remote cannot be reached or refuses access.
        """
        refs = [f"refs/heads/{b}" for b in branches]
        out = self.git(
            "ls-remote", "origin", *refs, what="git ls-remote (reading the manifests repository)"
        ).stdout
        heads: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref.startswith("refs/heads/"):
                heads[ref.removeprefix("refs/heads/")] = sha
        return heads

    def remote_default_branch(self) -> str | None:
        """The branch ``origin``'s HEAD points to, if it says."""
        out = self.git("ls-remote", "--symref", "origin", "HEAD").stdout
        match = re.search(r"^ref: refs/heads/(\S+)\tHEAD$", out, re.MULTILINE)
        return match.group(1) if match else None

    def fetch(self, *branches: str, depth: int | None = 1) -> None:
        """Fetch ``branches`` into ``refs/remotes/origin/*``, shallowly by default."""
        specs = [f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in branches]
        args = ["fetch", "--quiet", "--no-tags"]
        if depth:
            args.append(f"--depth={depth}")
        self.git(*args, "origin", *specs, what="git fetch (reading the manifests repository)")

    def show(self, rev: str, path: str) -> bytes | None:
        """The content of ``path`` at ``rev``, or None when it is not there."""
        result = self.git("cat-file", "blob", f"{rev}:{path}", ok_codes=(0, 128))
        return result.stdout.encode() if result.returncode == 0 else None

    def commit_parents(self, sha: str) -> list[str]:
        """The parents recorded in a commit object (shallow grafts ignored)."""
        raw = self.git("cat-file", "commit", sha).stdout
        header = raw.split("\n\n", 1)[0]
        return [line.split()[1] for line in header.splitlines() if line.startswith("parent ")]

    def tree_of(self, rev: str) -> str:
        """The tree of a commit."""
        return self.git("rev-parse", f"{rev}^{{tree}}").stdout.strip()

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

    def blobs(self, rev: str, path: str = "") -> dict[str, str]:
        """Object ids of the files under ``path`` at ``rev``, by path relative to ``path``."""
        spec = f"{path.rstrip('/')}/" if path else "."
        out = self.git("ls-tree", "-r", "-z", "--full-tree", rev, "--", spec).stdout
        prefix = f"{path.rstrip('/')}/" if path else ""
        found = {}
        for entry in out.split("\0"):
            if not entry:
                continue
            meta, name = entry.split("\t", 1)
            _mode, kind, sha = meta.split()
            if kind == "blob":
                found[name.removeprefix(prefix)] = sha
        return found

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

    def checkout_files(self, rev: str, paths: Iterable[str]) -> None:
        """Write just ``paths`` of ``rev`` into the work tree (the rest stays unwritten)."""
        listed = "".join(f"{p}\0" for p in paths)
        if listed:
            self.git("checkout", rev, "--pathspec-from-file=-", "--pathspec-file-nul", stdin=listed)

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
            GitError: The push failed for another reason (network, authentication).
        """
        lease = f"--force-with-lease=refs/heads/{branch}:{expected or ''}"
        result = self.git(
            "push",
            "--porcelain",
            lease,
            "origin",
            f"{commit}:refs/heads/{branch}",
            ok_codes=(0, 1),
        )
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
        raise GitError(f"git push failed:\n{result.stderr.strip()}", returncode=result.returncode)

    def delete_remote_branch(self, branch: str, *, expected: str) -> PushResult:
        """Delete ``branch`` on ``origin`` if it is still at ``expected``."""
        result = self.git(
            "push",
            "--porcelain",
            f"--force-with-lease=refs/heads/{branch}:{expected}",
            "origin",
            f":refs/heads/{branch}",
            ok_codes=(0, 1),
        )
        return PushResult("ok" if result.returncode == 0 else "stale", result.stderr)


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
