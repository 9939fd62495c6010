"""The fake's data: access levels, recorded requests, users, and projects with their git helpers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from tests.fakes.gitlab._server import FakeGitLab

REPORTER = 20
DEVELOPER = 30
MAINTAINER = 40
ZERO_SHA = "0" * 40
API_PREFIX = "/api/v4"
_GIT_RE = re.compile(
    r"^/(?P<repo>.+?\.git)(?P<rest>/(?:info/refs|git-upload-pack|git-receive-pack|HEAD"
    r"|objects/.+))$"
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class RecordedRequest:
    """One request as the fake saw it (token headers redacted)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    user: str | None = None
    status: int = 0

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def is_git(self) -> bool:
        return _GIT_RE.match(self.path) is not None

    @property
    def is_write(self) -> bool:
        """A mutating API call, or a git push (receive-pack)."""
        if "git-receive-pack" in self.path or "service=git-receive-pack" in urlencode(
            self.query, doseq=True
        ):
            return True
        return not self.is_git and self.method in {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class FakeUser:
    id: int
    username: str
    token: str
    access_level: int
    scopes: tuple[str, ...]
    name: str
    email: str


def _git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Fake GitLab",
            "GIT_AUTHOR_EMAIL": "fake-gitlab@example.com",
            "GIT_COMMITTER_NAME": "Fake GitLab",
            "GIT_COMMITTER_EMAIL": "fake-gitlab@example.com",
        }
    )
    return env


class FakeProject:
    """A project: state dicts plus a real bare repository at ``repo_path``."""

    def __init__(
        self,
        fake: FakeGitLab,
        id: int,
        path_with_namespace: str,
        default_branch: str,
        repo_path: Path,
    ) -> None:
        self._fake = fake
        self.id = id
        self.path_with_namespace = path_with_namespace
        self.name = path_with_namespace.rsplit("/", 1)[-1]
        self.default_branch = default_branch
        self.repo_path = repo_path
        self.created_at = _now()
        self.merge_requests: list[dict[str, Any]] = []
        self.deploy_keys: list[dict[str, Any]] = []
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.protected_branches: dict[str, int] = {}
        #: ``public``: anyone may clone and fetch it without credentials, as on GitLab.
        self.visibility = "private"

    # -- URLs -------------------------------------------------------------------------------
    @property
    def http_url_to_repo(self) -> str:
        return f"{self._fake.url}/{self.path_with_namespace}.git"

    @property
    def ssh_url_to_repo(self) -> str:
        base = self._fake.ssh_url_base
        if base:
            return f"{base.rstrip('/')}/{self.path_with_namespace}.git"
        return f"git@127.0.0.1:{self.path_with_namespace}.git"

    @property
    def web_url(self) -> str:
        return f"{self._fake.url}/{self.path_with_namespace}"

    # -- git helpers ------------------------------------------------------------------------
    def _run(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["git", "--git-dir", str(self.repo_path), *args],
            input=input,
            capture_output=True,
            env=dict(env) if env is not None else self._fake._git_env,
            check=check,
        )

    def git(self, *args: str) -> str:
        """Run git in the bare repository; stdout as text."""
        return self._run(*args).stdout.decode()

    def branch_sha(self, name: str) -> str | None:
        proc = self._run(
            "rev-parse", "--verify", "-q", f"refs/heads/{name}^{{commit}}", check=False
        )
        if proc.returncode != 0:
            return None
        return proc.stdout.decode().strip() or None

    def branches(self) -> list[str]:
        out = self.git("for-each-ref", "--format=%(refname)", "refs/heads/")
        return sorted(line[len("refs/heads/") :] for line in out.splitlines() if line)

    def read_file(self, ref: str, path: str) -> bytes:
        return self._run("cat-file", "blob", f"{ref}:{path}").stdout

    def list_files(self, ref: str) -> list[str]:
        out = self._run("ls-tree", "-r", "--name-only", "-z", ref).stdout.decode()
        return [p for p in out.split("\0") if p]

    def commit_count(self, ref: str) -> int:
        return int(self.git("rev-list", "--count", ref).strip())

    def commit_files(
        self,
        branch: str,
        files: Mapping[str, str | bytes | None],
        message: str = "Update files",
        *,
        start_branch: str | None = None,
        links: Mapping[str, str] | None = None,
    ) -> str:
        """Commit ``files`` on ``branch`` server-side (like a web edit); returns the new sha.

        A missing ``branch`` starts from ``start_branch`` (default: the default branch).
        ``links`` are symbolic links to commit (path → target), as ``git add`` of a link does.
        """
        old = self.branch_sha(branch)
        parent = old or self.branch_sha(start_branch or self.default_branch)
        with tempfile.TemporaryDirectory() as tmp:
            env = {**self._fake._git_env, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent:
                self._run("read-tree", parent, env=env)
            for path, target in (links or {}).items():
                blob = self._run("hash-object", "-w", "--stdin", input=target.encode()).stdout
                self._run(
                    "update-index", "--add", "--cacheinfo",
                    f"120000,{blob.decode().strip()},{path}", env=env,
                )  # fmt: skip
            for path, content in files.items():
                if content is None:
                    self._run("update-index", "--force-remove", "--", path, env=env)
                    continue
                data = content.encode() if isinstance(content, str) else content
                blob = self._run("hash-object", "-w", "--stdin", input=data).stdout
                self._run(
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    f"100644,{blob.decode().strip()},{path}",
                    env=env,
                )
            tree = self._run("write-tree", env=env).stdout.decode().strip()
        parents = ["-p", parent] if parent else []
        sha = self._run("commit-tree", tree, *parents, "-m", message).stdout.decode().strip()
        self._run("update-ref", f"refs/heads/{branch}", sha, old or ZERO_SHA)
        return sha

    def merge_request(self, iid: int) -> dict[str, Any] | None:
        with self._fake._lock:
            mr = self._find_mr(iid)
            return None if mr is None else self._fake._render_mr(self, mr)

    def _find_mr(self, iid: int) -> dict[str, Any] | None:
        return next((m for m in self.merge_requests if m["iid"] == iid), None)

    def _commit_info(self, sha: str) -> dict[str, Any]:
        fmt = "%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
        parts = self.git("log", "-1", f"--format={fmt}", sha).split("\0")
        message = parts[8].rstrip("\n") if len(parts) > 8 else ""
        return {
            "id": parts[0],
            "short_id": parts[0][:8],
            "created_at": parts[7],
            "parent_ids": parts[1].split(),
            "title": message.split("\n", 1)[0],
            "message": message,
            "author_name": parts[2],
            "author_email": parts[3],
            "authored_date": parts[4],
            "committer_name": parts[5],
            "committer_email": parts[6],
            "committed_date": parts[7],
            "web_url": f"{self.web_url}/-/commit/{parts[0]}",
        }

    def __repr__(self) -> str:
        return f"FakeProject(id={self.id}, path={self.path_with_namespace!r})"
