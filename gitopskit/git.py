"""Generic git operations, through :func:`gitopskit._run.run` only.

Nothing here knows about manifests: it tells git URLs from directories and fetches a branch.
git never prompts (``GIT_TERMINAL_PROMPT=0``); credentials travel in the environment the caller
passes (``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``), never in argv, and
error messages are redacted and show URLs without their user information.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from gitopskit._run import run
from gitopskit.errors import ConfigError, GitError
from gitopskit.redact import redact

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
    with tempfile.TemporaryDirectory(prefix="gitopskit-clone-") as tmp:
        yield clone_shallow(url, Path(tmp) / "repo", ref=ref, extra_env=extra_env)
