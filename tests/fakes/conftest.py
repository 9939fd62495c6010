"""Fixtures for the fake sshd's own tests (usable by other fake-based tests too)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.sshd import GitSSHServer, require_sshd

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


@pytest.fixture
def ssh_state(bare_repo: Path) -> ServerState:
    return ServerState(repos={"group/manifests": bare_repo})


@pytest.fixture
def git_ssh_server(tmp_path: Path, ssh_state: ServerState) -> Iterator[GitSSHServer]:
    require_sshd()
    server = GitSSHServer(
        tmp_path / "server",
        authorized_keys=lambda: list(ssh_state.keys),
        repos=lambda: dict(ssh_state.repos),
    )
    with server:
        yield server


@pytest.fixture
def known_hosts(tmp_path: Path, git_ssh_server: GitSSHServer) -> Path:
    """known_hosts filled by a real ``ssh-keyscan`` of the running server."""
    scan = run("ssh-keyscan", "-p", str(git_ssh_server.port), git_ssh_server.host)
    assert scan.returncode == 0, scan.stderr
    path = tmp_path / "known_hosts"
    path.write_text(scan.stdout)
    return path
