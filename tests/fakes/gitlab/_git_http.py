"""Git smart HTTP: ``git http-backend`` behind GitLab's Basic auth and push rules.

The client side too: the header and the environment a ``git`` subprocess needs to talk to it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote

from tests.fakes.gitlab._base import _Principal, _Response, _State
from tests.fakes.gitlab._model import DEVELOPER, RecordedRequest

# pre-receive hook: GitLab's protected-branch checks, fed by env vars from the fake.
_HOOK = """#!{python}
import json, os, subprocess, sys
if "FAKE_GITLAB_ACCESS_LEVEL" not in os.environ:
    sys.exit(0)
ZERO = "0" * 40
level = int(os.environ["FAKE_GITLAB_ACCESS_LEVEL"])
protected = json.loads(os.environ.get("FAKE_GITLAB_PROTECTED", "{{}}"))
default = os.environ.get("FAKE_GITLAB_DEFAULT_BRANCH", "")
def deny(msg):
    sys.stderr.write("GitLab: " + msg + "\\n")
    sys.exit(1)
for line in sys.stdin:
    old, new, ref = line.split()
    if not ref.startswith("refs/heads/"):
        continue
    branch = ref[len("refs/heads/"):]
    if new == ZERO and branch == default:
        deny("The default branch of a project cannot be deleted.")
    required = protected.get(branch)
    if required is None:
        continue
    if new == ZERO:
        deny("You can only delete protected branches using the web interface.")
    if level < required:
        deny("You are not allowed to push code to protected branches on this project.")
    if old != ZERO and subprocess.run(
        ["git", "merge-base", "--is-ancestor", old, new]
    ).returncode != 0:
        deny("You are not allowed to force push code to a protected branch on this project.")
"""


def basic_auth_header(user: str, token: str) -> str:
    """The ``Authorization`` header value git sends for ``user:token``."""
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def git_auth_env(url: str, user: str, token: str, *, home: Path | None = None) -> dict[str, str]:
    """Environment for a ``git`` subprocess: no prompts, isolated config, pre-emptive Basic.

    The token travels in ``http.<url>/.extraHeader`` through ``GIT_CONFIG_*`` variables,
    never in argv or a config file.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Test Author",
            "GIT_AUTHOR_EMAIL": "author@example.com",
            "GIT_COMMITTER_NAME": "Test Author",
            "GIT_COMMITTER_EMAIL": "author@example.com",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"http.{url}/.extraHeader",
            "GIT_CONFIG_VALUE_0": "Authorization: " + basic_auth_header(user, token),
        }
    )
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
        env["XDG_CONFIG_HOME"] = str(home / ".config")
    return env


class _GitHTTP(_State):
    """Requests under ``/<project>.git/``: clone, fetch and push through ``git http-backend``."""

    def _git_principal(self, headers: Mapping[str, str]) -> _Principal | None:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if not auth.lower().startswith("basic "):
            return None
        try:
            user, _, token = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not user or not token:
            return None
        with self._lock:
            if user == "gitlab-ci-token" and token in self._job_tokens:
                return _Principal(None, "gitlab-ci-token")
            found = next((u for u in self.users.values() if u.token == token), None)
        return None if found is None else _Principal(found, found.username)

    def _git(
        self,
        rec: RecordedRequest,
        m: re.Match[str],
        method: str,
        raw_path: str,
        query_string: str,
        headers: dict[str, str],
        body: bytes,
    ) -> _Response:
        text = [("Content-Type", "text/plain")]
        who = self._git_principal(headers)
        project = self._find_project(unquote(m.group("repo"))[: -len(".git")])
        push = m.group("rest") == "/git-receive-pack" or "service=git-receive-pack" in query_string
        if who is None and project is not None and project.visibility == "public" and not push:
            # GitLab lets anyone clone a public project.
            who = _Principal(None, "anonymous")
        if who is None:
            return _Response(
                401,
                b"HTTP Basic: Access denied\n",
                [*text, ("WWW-Authenticate", 'Basic realm="GitLab"')],
            )
        rec.user = who.label
        if project is None:
            return _Response(404, b"The project you were looking for could not be found.\n", text)
        scopes = set(who.user.scopes) if who.user else set()
        if who.user is not None and not scopes & {"api", "write_repository", "read_repository"}:
            return _Response(403, b"You are not allowed to download code.\n", text)
        if push and (
            who.is_job or who.level < DEVELOPER or not scopes & {"api", "write_repository"}
        ):
            return _Response(403, b"You are not allowed to push code to this project.\n", text)
        with self._lock:
            protected = json.dumps(project.protected_branches)
        env = {
            **self._git_env,
            "GIT_PROJECT_ROOT": str(self._repos),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": unquote(raw_path),
            "QUERY_STRING": query_string,
            "REQUEST_METHOD": method,
            "CONTENT_TYPE": next(
                (v for k, v in headers.items() if k.lower() == "content-type"), ""
            ),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": who.label,
            "REMOTE_ADDR": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "FAKE_GITLAB_ACCESS_LEVEL": str(who.level),
            "FAKE_GITLAB_PROTECTED": protected,
            "FAKE_GITLAB_DEFAULT_BRANCH": project.default_branch,
        }
        lower = {k.lower(): v for k, v in headers.items()}
        if "git-protocol" in lower:
            env["GIT_PROTOCOL"] = lower["git-protocol"]
        if "content-encoding" in lower:
            env["HTTP_CONTENT_ENCODING"] = lower["content-encoding"]
        proc = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=300
        )
        return self._parse_cgi(proc.stdout)

    @staticmethod
    def _parse_cgi(out: bytes) -> _Response:
        sep = out.find(b"\r\n\r\n")
        head, body = (out[:sep], out[sep + 4 :]) if sep >= 0 else out.split(b"\n\n", 1)
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            if ":" not in line:
                continue
            key, value = (s.strip() for s in line.split(":", 1))
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key.lower() != "content-length":
                headers.append((key, value))
        return _Response(status, body, headers)
