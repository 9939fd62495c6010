"""The HTTP server, FakeGitLab's lifecycle and setup, dispatch, faults and request hooks."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from tests.fakes.gitlab._api import _RestAPI
from tests.fakes.gitlab._base import _json, _msg, _Response
from tests.fakes.gitlab._git_http import _HOOK, _GitHTTP
from tests.fakes.gitlab._model import (
    _GIT_RE,
    API_PREFIX,
    DEVELOPER,
    MAINTAINER,
    FakeProject,
    FakeUser,
    RecordedRequest,
    _git_env,
)

_REDACTED_HEADERS = {"authorization", "private-token", "job-token"}


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int
    body: Any
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, fake: FakeGitLab) -> None:
        self.fake = fake
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        body = self._read_body()
        raw_path, _, query_string = self.path.partition("?")
        headers = {k: v for k, v in self.headers.items()}
        resp = self.server.fake._dispatch(self.command, raw_path, query_string, headers, body)
        self.send_response(resp.status)
        for key, value in resp.headers:
            self.send_header(key, value)
        if resp.status != 204:
            self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if resp.body and resp.status != 204:
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class FakeGitLab(_RestAPI, _GitHTTP):
    """A fake GitLab server (see the package docstring).

    The request handlers are mixins, one module per resource family: ``_RestAPI`` (routing
    to projects, users, branches, merge requests, notes and deploy keys) and ``_GitHTTP``.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._repos = self.root / "repos"
        self._home = self.root / "home"
        self._repos.mkdir(parents=True, exist_ok=True)
        self._home.mkdir(parents=True, exist_ok=True)
        self._git_env = _git_env(self._home)
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.ssh_url_base: str | None = None
        self.users: dict[str, FakeUser] = {}
        self._job_tokens: set[str] = set()
        self.projects: dict[int, FakeProject] = {}
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self._faults: list[_Fault] = []
        #: Called with every request once recorded, before it is answered (to move a branch
        #: between two reads of a client, say).
        self.on_request: list[Callable[[RecordedRequest], None]] = []
        self._deploy_keys: dict[int, dict[str, Any]] = {}
        self._ids: dict[str, int] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeGitLab:
        if self._server is not None:
            return self
        self._server = _Server(self)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-gitlab-{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()  # joins the handler threads (block_on_close)
        if thread is not None:
            thread.join(timeout=10)
        self._server = self._thread = None

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def __enter__(self) -> FakeGitLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- setup -------------------------------------------------------------------------------
    def add_user(
        self,
        username: str,
        token: str,
        *,
        access_level: int = MAINTAINER,
        scopes: Iterable[str] = ("api", "write_repository"),
        name: str | None = None,
        email: str | None = None,
    ) -> FakeUser:
        user = FakeUser(
            id=self._next_id("user"),
            username=username,
            token=token,
            access_level=access_level,
            scopes=tuple(scopes),
            name=name or username.title(),
            email=email or f"{username}@example.com",
        )
        with self._lock:
            self.users[username] = user
        return user

    def add_job_token(self, token: str) -> None:
        with self._lock:
            self._job_tokens.add(token)

    def add_project(
        self,
        path_with_namespace: str,
        *,
        default_branch: str = "main",
        initial_files: Mapping[str, str | bytes] | None = None,
        visibility: str = "private",
    ) -> FakeProject:
        path_with_namespace = path_with_namespace.strip("/")
        repo_path = self._repos / f"{path_with_namespace}.git"
        repo_path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", default_branch, str(repo_path)],
            check=True,
            capture_output=True,
            env=self._git_env,
        )
        for key, value in (
            ("receive.advertisePushOptions", "true"),
            ("http.receivepack", "true"),
            ("uploadpack.allowFilter", "true"),
        ):
            subprocess.run(
                ["git", "--git-dir", str(repo_path), "config", key, value],
                check=True,
                env=self._git_env,
            )
        hook = repo_path / "hooks" / "pre-receive"
        hook.write_text(_HOOK.format(python=sys.executable))
        hook.chmod(0o755)
        project = FakeProject(
            self, self._next_id("project"), path_with_namespace, default_branch, repo_path
        )
        project.visibility = visibility
        if initial_files:
            project.commit_files(default_branch, initial_files, "Initial commit")
        with self._lock:
            self.projects[project.id] = project
        return project

    def protect_branch(
        self, project: FakeProject | int | str, name: str, push_access_level: int = MAINTAINER
    ) -> None:
        proj = self._resolve_project(project)
        with self._lock:
            proj.protected_branches[name] = push_access_level

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        times: int = 1,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (before any auth)."""
        with self._lock:
            self._faults.append(
                _Fault(
                    method.upper(), re.compile(path_regex), status, times, body, dict(headers or {})
                )
            )

    def _resolve_project(self, ref: FakeProject | int | str) -> FakeProject:
        if isinstance(ref, FakeProject):
            return ref
        found = self._find_project(str(ref))
        if found is None:
            raise KeyError(ref)
        return found

    # -- dispatch ----------------------------------------------------------------------------
    def _dispatch(
        self,
        method: str,
        raw_path: str,
        query_string: str,
        headers: dict[str, str],
        body: bytes,
    ) -> _Response:
        redacted = {}
        for key, value in headers.items():
            if key.lower() in _REDACTED_HEADERS:
                scheme = value.split(" ", 1)[0] if " " in value else ""
                value = f"{scheme} ***" if scheme else "***"
            redacted[key] = value
        rec = RecordedRequest(
            method, raw_path, parse_qs(query_string, keep_blank_values=True), redacted, body
        )
        with self._lock:
            self.requests.append(rec)
            hooks = list(self.on_request)
        for hook in hooks:
            hook(rec)
        try:
            resp = self._take_fault(method, raw_path)
            if resp is None:
                if raw_path == API_PREFIX or raw_path.startswith(API_PREFIX + "/"):
                    resp = self._api(rec, method, raw_path, query_string, headers, body)
                elif (m := _GIT_RE.match(raw_path)) is not None:
                    resp = self._git(rec, m, method, raw_path, query_string, headers, body)
                else:
                    resp = _json(404, {"error": "404 Not Found"})
        except Exception:
            with self._lock:
                self.errors.append(traceback.format_exc())
            resp = _msg(500, "500 Internal Server Error")
        rec.status = resp.status
        return resp

    def _take_fault(self, method: str, raw_path: str) -> _Response | None:
        with self._lock:
            for fault in self._faults:
                if fault.method not in (method, "*"):
                    continue
                if not (fault.pattern.search(raw_path) or fault.pattern.search(unquote(raw_path))):
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                payload = (
                    fault.body
                    if fault.body is not None
                    else {"message": f"{fault.status} Fake Failure"}
                )
                return _json(fault.status, payload, fault.headers.items())
        return None


def fake_gitlab_server(tmp_path: Path) -> Iterator[FakeGitLab]:
    """Generator for a pytest fixture: ``fake_gitlab = pytest.fixture(fake_gitlab_server)``.

    Starts a FakeGitLab with a Maintainer ``maintainer``/``glpat-maintainer``, a Developer
    ``developer``/``glpat-developer`` and a job token ``job-token``; stops it afterwards.
    """
    fake = FakeGitLab(tmp_path / "fake-gitlab")
    fake.add_user("maintainer", "glpat-maintainer", access_level=MAINTAINER)
    fake.add_user("developer", "glpat-developer", access_level=DEVELOPER)
    fake.add_job_token("job-token")
    with fake:
        yield fake
