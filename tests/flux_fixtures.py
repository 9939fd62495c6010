"""Fixtures for the Flux tests: a real sshd, the real kubectl against FakeKube with Flux's
controllers (FakeFlux: the operator, source-controller fetching over that sshd,
kustomize-controller), a recording helm and FakeGitLab, wired together so that the sshd accepts
exactly the project's deploy keys.

Import the fixtures into a test module with ``from tests.flux_fixtures import *``.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gitopskit import flux
from gitopskit.config import Settings
from gitopskit.flux import Result
from gitopskit.ui import Progress
from tests.conftest import ROOT, write_invoke_yaml
from tests.fakes.flux import FakeFlux
from tests.fakes.gitlab import DEVELOPER, MAINTAINER, FakeGitLab, FakeProject
from tests.fakes.helm import HelmCall, install_fake_helm, read_helm_log
from tests.fakes.kube import FakeKube
from tests.fakes.sshd import GitSSHServer, require_sshd, ssh_git_env

__all__ = [
    "DEV_TOKEN",
    "MAINT_TOKEN",
    "FluxWorld",
    "StalledServer",
    "closed_port",
    "flux_project",
    "git_sshd",
    "stalled",
    "world",
    "write_kubeconfig",
]

MAINT_TOKEN = "glpat-maintainer-0123456789abcdef"
DEV_TOKEN = "glpat-developer-0123456789abcdef"
PROJECT_PATH = "group/manifests"


@dataclass
class _Wiring:
    project: FakeProject | None = None


@pytest.fixture(scope="module")
def git_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GitSSHServer, _Wiring]]:
    """One real sshd per module; it serves the current test's project and its deploy keys."""
    require_sshd()
    wiring = _Wiring()

    def keys() -> list[tuple[str, bool]]:
        project = wiring.project
        return [] if project is None else [(k["key"], k["can_push"]) for k in project.deploy_keys]

    def repos() -> dict[str, Path]:
        project = wiring.project
        return {} if project is None else {PROJECT_PATH: project.repo_path}

    with GitSSHServer(tmp_path_factory.mktemp("sshd"), authorized_keys=keys, repos=repos) as server:
        yield server, wiring


@dataclass
class FluxWorld:
    """Everything one test needs; ``env`` is also set in ``os.environ`` for library calls."""

    tmp: Path
    kube: FakeKube
    gitlab: FakeGitLab
    project: FakeProject
    sshd: GitSSHServer
    helm_log: Path
    env: dict[str, str]
    flux: FakeFlux
    outputs: list[str] = field(default_factory=list)

    def settings(self, **flags: str) -> Settings:
        return Settings(environ=dict(os.environ), flags=flags)

    def run(
        self,
        *,
        rotate: bool = False,
        dry_run: bool = False,
        fingerprints: tuple[str, ...] = (),
        require_pinned: bool = False,
        wait: bool = True,
        migrate: bool = False,
        **flags: str,
    ) -> Result:
        """Bootstrap (or rotate) through the library, as the task does; output is kept."""
        stream = io.StringIO()
        ui = Progress(stream, colour=False)
        try:
            return flux.run(
                self.settings(**flags),
                ROOT / "flux",
                ui,
                rotate=rotate,
                fingerprints=fingerprints,
                require_pinned=require_pinned,
                wait=wait,
                dry_run=dry_run,
                migrate=migrate,
            )
        finally:
            self.outputs.append(stream.getvalue())

    def output(self) -> str:
        return "\n".join(self.outputs)

    def secret(self, namespace: str = "flux-system", name: str = "flux-ssh") -> dict[str, str]:
        import base64

        obj = self.kube.get("Secret", name, namespace)
        assert obj is not None
        return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}

    def helm_calls(self) -> list[HelmCall]:
        return read_helm_log(self.helm_log)

    def ready(self, kind: str, name: str, namespace: str = "flux-system") -> dict[str, Any]:
        """The object's Ready condition ({} when it has none)."""
        obj = self.kube.get(kind, name, namespace)
        assert obj is not None, f"no {kind} {namespace}/{name}"
        conditions = (obj.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "Ready"), {})

    def gitlab_writes(self) -> list[Any]:
        return [r for r in self.gitlab.requests if r.method in ("POST", "PUT", "DELETE")]

    def git(self, identity: str, known_hosts: str, *args: str) -> subprocess.CompletedProcess[str]:
        """git over SSH with this key and known_hosts (StrictHostKeyChecking=yes)."""
        keys = self.tmp / "client"
        keys.mkdir(exist_ok=True)
        key_file = keys / f"id-{abs(hash(identity))}"
        key_file.write_text(identity)
        key_file.chmod(0o600)
        hosts_file = keys / "known_hosts"
        hosts_file.write_text(known_hosts)
        env = ssh_git_env(key_file, hosts_file)
        return subprocess.run(
            ["git", *args], env=env, cwd=self.tmp, capture_output=True, text=True, timeout=60
        )


@pytest.fixture
def world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    git_sshd: tuple[GitSSHServer, _Wiring],
) -> Iterator[FluxWorld]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    server, wiring = git_sshd
    with FakeKube() as kube, FakeGitLab(tmp_path / "gitlab") as gitlab:
        controllers = FakeFlux(kube)
        gitlab.add_user("maint", MAINT_TOKEN, access_level=MAINTAINER)
        gitlab.add_user("dev", DEV_TOKEN, access_level=DEVELOPER)
        project = gitlab.add_project(
            PROJECT_PATH, initial_files={"README.md": "manifests\n", "apps/app.yaml": "{}\n"}
        )
        gitlab.ssh_url_base = f"ssh://{server.ssh_user}@{server.host}:{server.port}/"
        wiring.project = project
        bin_dir = tmp_path / "bin"
        helm_log = tmp_path / "helm.log"
        install_fake_helm(bin_dir, helm_log, kube_url=kube.url)
        home = tmp_path / "home"
        home.mkdir()
        env = {
            **kube.env(tmp_path),
            "HOME": str(home),
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "GITLAB_URL": gitlab.url,
            "MANIFESTS_PROJECT": PROJECT_PATH,
            "GITLAB_TOKEN": MAINT_TOKEN,
            "GITOPSKIT_FLUX_WAIT_TIMEOUT": "20",
            "NO_COLOR": "1",
        }
        for name in ("MANIFESTS_TOKEN", "LAB_CORE_TOKEN", "CI_SERVER_URL", "MANIFESTS_PATH"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield FluxWorld(
            tmp_path, kube, gitlab, project, server, helm_log, dict(os.environ), controllers
        )
        wiring.project = None
        assert kube.controller_errors == [], "the fake controllers failed"


@pytest.fixture
def flux_project(tmp_path: Path) -> Path:
    """A copy of the project's tasks, settings and flux/ values to run ``invoke`` in."""
    target = tmp_path / "project"
    target.mkdir()
    shutil.copy2(ROOT / "tasks.py", target / "tasks.py")
    write_invoke_yaml(target)
    shutil.copytree(ROOT / "flux", target / "flux")
    return target


class StalledServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers a byte.

    Args:
        answer: Sent as soon as a connection is accepted (an HTTP status line and headers,
            say), before the stall.
        drip: Then one more byte every ``drip`` seconds, for ever: a body that never ends.
    """

    def __init__(self, answer: bytes = b"", drip: float | None = None) -> None:
        self.answer = answer
        self.drip = drip
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(connection)
            if self.answer or self.drip:
                threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection: socket.socket) -> None:
        try:
            connection.sendall(self.answer)
            while self.drip and not self._stop.wait(self.drip):
                connection.sendall(b" ")
        except OSError:
            return

    def __enter__(self) -> StalledServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in self.accepted:
            connection.close()
        self.sock.close()


@pytest.fixture
def stalled() -> Iterator[StalledServer]:
    """A server that accepts and never answers."""
    with StalledServer() as server:
        yield server


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_kubeconfig(path: Path, server: str, context: str = "remote") -> Path:
    """A kubeconfig with one context whose cluster is ``server``."""
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: u, user: {token: not-a-secret-token}}]\n"
        f"contexts: [{{name: {context}, context: {{cluster: c, user: u}}}}]\n"
        f"current-context: {context}\n"
    )
    return path
