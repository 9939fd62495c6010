"""Fixtures for the fakes' own tests (usable by other fake-based tests too)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.kube import FakeKube
from tests.fakes.sshd import GitSSHServer, require_sshd

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as fake:
        yield fake


@pytest.fixture
def kube_env(kube: FakeKube, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {**os.environ, **kube.env(tmp_path), "HOME": str(home)}


@pytest.fixture
def kubectl(kube_env: dict[str, str]) -> Kubectl:
    """Run the real kubectl against the fake: ``kubectl("get", "ns", input=None)``."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed")

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *args],
            env=kube_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


GIT_IDENTITY = ["-c", "user.name=gitopskit tests", "-c", "user.email=tests@gitopskit.invalid"]


def run(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output, never raising on failure."""
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, env=env, cwd=cwd
    )


@dataclass
class SSHKey:
    private: Path

    @property
    def public(self) -> str:
        return self.private.with_name(self.private.name + ".pub").read_text().strip()


@pytest.fixture
def make_key(tmp_path: Path) -> Callable[[str], SSHKey]:
    def make(name: str) -> SSHKey:
        private = tmp_path / "keys" / name
        private.parent.mkdir(exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(private)],
            check=True,
        )
        return SSHKey(private)

    return make


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    """A bare repository with one commit on main containing README."""
    work = tmp_path / "seed"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "README").write_text("hello from the fake sshd\n")
    subprocess.run(["git", "-C", str(work), "add", "README"], check=True)
    subprocess.run(["git", "-C", str(work), *GIT_IDENTITY, "commit", "-qm", "seed"], check=True)
    bare = tmp_path / "repos" / "group" / "manifests.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare


@dataclass
class ServerState:
    """What the server consults on every connection; tests mutate it freely."""

    keys: list[tuple[str, bool]] = field(default_factory=list)
    repos: dict[str, Path] = field(default_factory=dict)


@pytest.fixture(scope="module")
def _shared_git_ssh(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GitSSHServer, ServerState]]:
    """One sshd per test module (startup costs ~0.2 s); its state is reset for every test."""
    require_sshd()
    state = ServerState()
    server = GitSSHServer(
        tmp_path_factory.mktemp("git-sshd"),
        authorized_keys=lambda: list(state.keys),
        repos=lambda: dict(state.repos),
    )
    with server:
        yield server, state


@pytest.fixture
def ssh_state(_shared_git_ssh: tuple[GitSSHServer, ServerState], bare_repo: Path) -> ServerState:
    """No authorized keys; ``group/manifests`` -> this test's ``bare_repo``."""
    state = _shared_git_ssh[1]
    state.keys.clear()
    state.repos.clear()
    state.repos["group/manifests"] = bare_repo
    return state


@pytest.fixture
def git_ssh_server(
    _shared_git_ssh: tuple[GitSSHServer, ServerState], ssh_state: ServerState
) -> GitSSHServer:
    return _shared_git_ssh[0]


@pytest.fixture(scope="module")
def known_hosts(
    tmp_path_factory: pytest.TempPathFactory, _shared_git_ssh: tuple[GitSSHServer, ServerState]
) -> Path:
    """known_hosts filled by a real ``ssh-keyscan`` of the running server."""
    server = _shared_git_ssh[0]
    scan = run("ssh-keyscan", "-p", str(server.port), server.host)
    assert scan.returncode == 0, scan.stderr
    path = tmp_path_factory.mktemp("known-hosts") / "known_hosts"
    path.write_text(scan.stdout)
    return path
