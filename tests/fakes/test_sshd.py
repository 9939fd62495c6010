"""Tests of the real-sshd git fixture (tests/fakes/sshd.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.conftest import GIT_IDENTITY, ServerState, SSHKey, run
from tests.fakes.sshd import (
    NOT_FOUND_ERROR,
    READ_ONLY_ERROR,
    GitSSHServer,
    _alive,
    _descendants,
    require_sshd,
    ssh_git_env,
)

REPO = "group/manifests"


def clone(
    server: GitSSHServer, key: SSHKey, known_hosts: Path, dest: Path, repo: str = REPO
) -> subprocess.CompletedProcess[str]:
    return run(
        "git", "clone", server.git_url(repo), dest, env=ssh_git_env(key.private, known_hosts)
    )


def commit_and_push(checkout: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (checkout / "pushed.txt").write_text("pushed over ssh\n")
    subprocess.run(["git", "-C", str(checkout), "add", "pushed.txt"], check=True)
    subprocess.run(
        ["git", "-C", str(checkout), *GIT_IDENTITY, "commit", "-qm", "push test"], check=True
    )
    return run("git", "-C", checkout, "push", "origin", "HEAD:main", env=env)


def head_of(bare: Path) -> str:
    return run("git", "-C", bare, "rev-parse", "main").stdout.strip()


def test_keyscan_sees_all_three_host_key_types(
    git_ssh_server: GitSSHServer, known_hosts: Path
) -> None:
    lines = [line.split() for line in known_hosts.read_text().splitlines() if line.strip()]
    assert {fields[1] for fields in lines} == {"ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"}
    for fields in lines:
        assert len(fields) == 3
        assert fields[0] == f"[127.0.0.1]:{git_ssh_server.port}"
    assert sorted(" ".join(f) for f in lines) == sorted(git_ssh_server.known_hosts_lines())

    fingerprints = git_ssh_server.host_key_fingerprints()
    assert set(fingerprints) == {"ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"}
    for fields in lines:
        single = known_hosts.with_name(f"single-{fields[1]}")
        single.write_text(" ".join(fields) + "\n")
        listed = run("ssh-keygen", "-l", "-E", "sha256", "-f", single).stdout.split()
        assert listed[1] == fingerprints[fields[1]]
        assert fingerprints[fields[1]].startswith("SHA256:")


def test_read_only_key_clones_but_cannot_push(
    tmp_path: Path,
    git_ssh_server: GitSSHServer,
    ssh_state: ServerState,
    known_hosts: Path,
    make_key: Callable[[str], SSHKey],
    bare_repo: Path,
) -> None:
    key = make_key("deploy-ro")
    ssh_state.keys.append((key.public, False))
    checkout = tmp_path / "checkout"

    cloned = clone(git_ssh_server, key, known_hosts, checkout)
    assert cloned.returncode == 0, cloned.stderr + git_ssh_server.log_text()
    assert (checkout / "README").read_text() == "hello from the fake sshd\n"

    before = head_of(bare_repo)
    pushed = commit_and_push(checkout, ssh_git_env(key.private, known_hosts))
    assert pushed.returncode != 0
    assert READ_ONLY_ERROR in pushed.stderr
    assert head_of(bare_repo) == before


def test_key_with_write_access_can_push(
    tmp_path: Path,
    git_ssh_server: GitSSHServer,
    ssh_state: ServerState,
    known_hosts: Path,
    make_key: Callable[[str], SSHKey],
    bare_repo: Path,
) -> None:
    key = make_key("deploy-rw")
    ssh_state.keys.append((key.public, True))
    checkout = tmp_path / "checkout"
    assert clone(git_ssh_server, key, known_hosts, checkout).returncode == 0

    pushed = commit_and_push(checkout, ssh_git_env(key.private, known_hosts))
    assert pushed.returncode == 0, pushed.stderr
    assert head_of(bare_repo) == run("git", "-C", checkout, "rev-parse", "HEAD").stdout.strip()


def test_scp_and_ssh_urls(git_ssh_server: GitSSHServer) -> None:
    port = git_ssh_server.port
    user = git_ssh_server.ssh_user
    assert git_ssh_server.git_url(REPO) == f"ssh://{user}@127.0.0.1:{port}/{REPO}.git"
    assert git_ssh_server.git_url(f"/{REPO}.git") == git_ssh_server.git_url(REPO)
    assert git_ssh_server.scp_url(REPO) == f"{user}@127.0.0.1:{REPO}.git"


def test_unauthorized_key_is_refused(
    tmp_path: Path,
    git_ssh_server: GitSSHServer,
    ssh_state: ServerState,
    known_hosts: Path,
    make_key: Callable[[str], SSHKey],
) -> None:
    ssh_state.keys.append((make_key("someone-else").public, True))
    stranger = make_key("stranger")

    cloned = clone(git_ssh_server, stranger, known_hosts, tmp_path / "checkout")
    assert cloned.returncode != 0
    assert "Permission denied" in cloned.stderr

    env = ssh_git_env(stranger.private, known_hosts)
    ssh = run("sh", "-c", f"$GIT_SSH_COMMAND -p {git_ssh_server.port} root@127.0.0.1 true", env=env)
    assert ssh.returncode == 255
    assert "Permission denied (publickey)" in ssh.stderr


def test_key_changes_take_effect_on_next_connection(
    tmp_path: Path,
    git_ssh_server: GitSSHServer,
    ssh_state: ServerState,
    known_hosts: Path,
    make_key: Callable[[str], SSHKey],
) -> None:
    key = make_key("rotating")
    env = ssh_git_env(key.private, known_hosts)
    url = git_ssh_server.git_url(REPO)

    assert "Permission denied" in run("git", "ls-remote", url, env=env).stderr
    ssh_state.keys.append((key.public, False))  # added after start
    listed = run("git", "ls-remote", url, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "refs/heads/main" in listed.stdout

    ssh_state.keys.clear()  # revoked
    revoked = run("git", "ls-remote", url, env=env)
    assert revoked.returncode != 0
    assert "Permission denied" in revoked.stderr


def test_unknown_repository_is_not_found(
    tmp_path: Path,
    git_ssh_server: GitSSHServer,
    ssh_state: ServerState,
    known_hosts: Path,
    make_key: Callable[[str], SSHKey],
) -> None:
    key = make_key("deploy")
    ssh_state.keys.append((key.public, True))
    cloned = clone(git_ssh_server, key, known_hosts, tmp_path / "x", repo="group/nope")
    assert cloned.returncode != 0
    assert NOT_FOUND_ERROR in cloned.stderr


def test_shell_commands_are_refused(
    git_ssh_server: GitSSHServer,
    ssh_state: ServerState,
    known_hosts: Path,
    make_key: Callable[[str], SSHKey],
) -> None:
    key = make_key("deploy")
    ssh_state.keys.append((key.public, True))
    env = ssh_git_env(key.private, known_hosts)
    ssh = run("sh", "-c", f"$GIT_SSH_COMMAND -p {git_ssh_server.port} root@127.0.0.1 id", env=env)
    assert ssh.returncode == 1
    assert "ERROR: Unknown command: id" in ssh.stderr
    assert "uid=" not in ssh.stdout


def test_wrong_known_hosts_fails_host_key_verification(
    tmp_path: Path,
    git_ssh_server: GitSSHServer,
    ssh_state: ServerState,
    make_key: Callable[[str], SSHKey],
) -> None:
    key = make_key("deploy")
    ssh_state.keys.append((key.public, False))
    impostor = make_key("impostor-host-key")
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{git_ssh_server.port} {impostor.public}\n")

    cloned = clone(git_ssh_server, key, wrong, tmp_path / "checkout")
    assert cloned.returncode != 0
    assert "Host key verification failed" in cloned.stderr

    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    cloned = clone(git_ssh_server, key, empty, tmp_path / "checkout2")
    assert cloned.returncode != 0
    assert "Host key verification failed" in cloned.stderr


def test_stop_leaves_nothing_running(
    tmp_path: Path,
    ssh_state: ServerState,
    make_key: Callable[[str], SSHKey],
) -> None:
    require_sshd()
    key = make_key("deploy")
    ssh_state.keys.append((key.public, False))
    server = GitSSHServer(
        tmp_path / "srv", authorized_keys=lambda: ssh_state.keys, repos=lambda: ssh_state.repos
    )
    server.start()
    pid, state_dir = server.pid, server.state_dir
    assert pid is not None
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("\n".join(server.known_hosts_lines()) + "\n")
    # Keep an authenticated session open across stop(): git upload-pack waits on stdin.
    env = ssh_git_env(key.private, known_hosts)
    hanging = subprocess.Popen(
        ["sh", "-c", f"exec $GIT_SSH_COMMAND -p {server.port} root@127.0.0.1 "
         f"\"git-upload-pack '{REPO}'\""],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert hanging.stdout is not None
        assert hanging.stdout.read(4)  # ref advertisement started: session is fully up
        session = [p for level in _descendants(pid) for p in level]
        assert len(session) >= 2
        server.stop()
        assert not Path(f"/proc/{pid}").exists()
        assert [p for p in session if _alive(p)] == []
        assert _descendants(pid) == []
        assert not state_dir.exists()
        assert "Server listening" in server.log_text()
        assert hanging.wait(timeout=5) != 0
    finally:
        hanging.kill()
        hanging.wait()
        server.stop()


def test_require_sshd_skips_naming_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPSKIT_SSHD", os.devnull + "/missing-sshd")
    with pytest.raises(pytest.skip.Exception, match="openssh-server"):
        require_sshd()


def test_broken_authorized_keys_deny_and_are_recorded(
    git_ssh_server: GitSSHServer,
    ssh_state: ServerState,
    known_hosts: Path,
    make_key: Callable[[str], SSHKey],
) -> None:
    key = make_key("deploy")
    ssh_state.keys.extend([(key.public, False), ("not a key", False)])
    git_ssh_server.errors.clear()
    listed = run(
        "git",
        "ls-remote",
        git_ssh_server.git_url(REPO),
        env=ssh_git_env(key.private, known_hosts),
    )
    assert listed.returncode != 0
    assert "Permission denied" in listed.stderr
    assert any("not a plain OpenSSH public key line" in e for e in git_ssh_server.errors)
