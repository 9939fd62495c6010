"""gitopskit.ssh: git URLs, ssh-keyscan against a real sshd, pins, key pairs."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from gitopskit import redact, ssh
from gitopskit.errors import ConfigError, HostKeyError, SSHError
from tests.flux_fixtures import *  # noqa: F403
from tests.flux_fixtures import GitSSHServer, _Wiring


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@gitlab.com:group/repo.git", ("git", "gitlab.com", 22, "group/repo.git")),
        ("ssh://git@host:2222/g/s/r.git", ("git", "host", 2222, "g/s/r.git")),
        ("ssh://git@host/r.git", ("git", "host", 22, "r.git")),
        ("ssh://host:22/r.git", ("git", "host", 22, "r.git")),
    ],
)
def test_parse_git_url(url: str, expected: tuple[str, str, int, str]) -> None:
    parsed = ssh.parse_git_url(url)
    assert (parsed.user, parsed.host, parsed.port, parsed.path) == expected


@pytest.mark.parametrize(
    "url",
    ["https://gitlab.com/g/r.git", "/srv/repo.git", "git@host", "ssh://git@host:99999/r.git",
     "ssh://git@host:22/", "git@host:../r.git", ""],
)  # fmt: skip
def test_malformed_git_url(url: str) -> None:
    with pytest.raises(ConfigError):
        ssh.parse_git_url(url)


def test_ssh_url_and_known_hosts_host() -> None:
    scp = ssh.parse_git_url("git@gitlab.com:g/r.git")
    assert scp.ssh_url == "ssh://git@gitlab.com/g/r.git"
    assert scp.known_hosts_host == "gitlab.com"
    custom = ssh.parse_git_url("ssh://git@10.0.0.1:2222/g/r.git")
    assert custom.ssh_url == "ssh://git@10.0.0.1:2222/g/r.git"
    assert custom.known_hosts_host == "[10.0.0.1]:2222"


def test_keyscan_real_sshd(git_sshd: tuple[GitSSHServer, _Wiring]) -> None:
    server = git_sshd[0]
    url = ssh.parse_git_url(server.git_url("group/manifests"))
    keys = ssh.keyscan(url, timeout=5)
    assert {k.key_type for k in keys} == {"ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"}
    # Fingerprints computed in Python agree with ssh-keygen -l.
    assert {k.key_type: k.fingerprint for k in keys} == server.host_key_fingerprints()
    text = ssh.known_hosts(url, keys)
    assert sorted(text.splitlines()) == sorted(server.known_hosts_lines())
    assert "#" not in text
    pins = list(server.host_key_fingerprints().values())
    assert ssh.verify_host_keys(url, keys, pins) is True
    assert ssh.verify_host_keys(url, keys, []) is False
    with pytest.raises(HostKeyError) as raised:
        ssh.verify_host_keys(url, keys, pins[:1] + list(ssh.GITLAB_COM_FINGERPRINTS))
    assert "scanned:" in str(raised.value) and ssh.GITLAB_COM_FINGERPRINTS[0] in str(raised.value)
    with pytest.raises(HostKeyError, match="require-pinned"):
        ssh.verify_host_keys(url, keys, [], require_pinned=True)


def test_keyscan_unreachable_is_bounded() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = ssh.parse_git_url(f"ssh://git@127.0.0.1:{port}/r.git")
    with pytest.raises(SSHError, match="no host key"):
        ssh.keyscan(url, timeout=2)


def test_builtin_gitlab_pins() -> None:
    assert ssh.pins_for("gitlab.com") == list(ssh.GITLAB_COM_FINGERPRINTS)
    assert ssh.pins_for("gitlab.com", ["SHA256:x"]) == ["SHA256:x"]
    assert ssh.pins_for("example.com") == []
    with pytest.raises(ConfigError):
        ssh.pins_for("example.com", ["MD5:aa"])


@pytest.mark.parametrize(
    ("key_type", "algorithm"),
    [("ed25519", "ssh-ed25519"), ("ecdsa", "ecdsa-sha2-nistp384"), ("rsa", "ssh-rsa")],
)
def test_generate_key(
    key_type: str, algorithm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    key = ssh.generate_key(key_type)
    assert key.key_type == algorithm
    assert list(tmp_path.iterdir()) == [], "the private temporary directory is removed"
    assert redact.redact(key.private) != key.private, "registered with the redactor at once"
    assert key.private not in repr(key)
    assert ssh.public_key_of(key.private) == key.public
    assert list(tmp_path.iterdir()) == []
    pub = tmp_path / "k.pub"
    pub.write_text(key.public + "\n")
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True)
    assert listed.stdout.split()[1] == key.fingerprint


def test_key_directory_removed_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(SSHError):
        ssh.public_key_of(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nbroken\n-----END OPENSSH PRIVATE KEY-----\n"
        )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError):
        ssh.generate_key("dsa")
