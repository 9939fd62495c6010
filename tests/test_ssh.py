"""gitopskit.ssh: git URLs, ssh-keyscan against a real sshd, pins, key pairs."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from gitopskit import redact, ssh
from gitopskit.errors import ConfigError, HostKeyError, SSHError
from gitopskit.ssh import HostUnreachableError
from tests.fakes.sshd import GitSSHServer
from tests.flux_fixtures import *  # noqa: F403
from tests.flux_fixtures import StalledServer, _Wiring, closed_port


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
    checked = ssh.verify_host_keys(url, keys, pins)
    assert checked.pinned and checked.keys == keys and checked.left_out == []
    unpinned = ssh.verify_host_keys(url, keys, [])
    assert not unpinned.pinned and unpinned.keys == keys
    with pytest.raises(HostKeyError) as raised:
        ssh.verify_host_keys(url, keys, list(ssh.GITLAB_COM_FINGERPRINTS))
    assert "scanned:" in str(raised.value) and ssh.GITLAB_COM_FINGERPRINTS[0] in str(raised.value)
    assert "matches none" in str(raised.value)
    with pytest.raises(HostKeyError, match="require-pinned"):
        ssh.verify_host_keys(url, keys, [], require_pinned=True)


def test_one_pinned_type_is_written_and_the_others_are_named(
    git_sshd: tuple[GitSSHServer, _Wiring],
) -> None:
    """People pin the one fingerprint they have (ed25519); the host offers three types."""
    server = git_sshd[0]
    url = ssh.parse_git_url(server.git_url("group/manifests"))
    keys = ssh.keyscan(url, timeout=5)
    ed25519 = server.host_key_fingerprints()["ssh-ed25519"]
    checked = ssh.verify_host_keys(url, keys, [ed25519, *ssh.GITLAB_COM_FINGERPRINTS])
    assert checked.pinned
    assert [k.key_type for k in checked.keys] == ["ssh-ed25519"]
    assert sorted(k.key_type for k in checked.left_out) == ["ecdsa-sha2-nistp256", "ssh-rsa"]
    text = ssh.known_hosts(url, checked.keys)
    ed25519_line = f"[127.0.0.1]:{server.port} {server.host_public_keys()['ssh-ed25519']}"
    assert text.splitlines() == [ed25519_line]


# gitlab.com's SSH host keys as GitLab's documentation publishes them (known_hosts entries).
GITLAB_COM_KNOWN_HOSTS = Path(__file__).with_name("gitlab-com-known-hosts.txt")


def test_builtin_gitlab_com_pins_keep_all_three_types() -> None:
    """gitlab.com's published known_hosts lines against the built-in pins: nothing left out."""
    url = ssh.parse_git_url("git@gitlab.com:group/manifests.git")
    keys = ssh.parse_keyscan(GITLAB_COM_KNOWN_HOSTS.read_text())
    checked = ssh.verify_host_keys(url, keys, ssh.pins_for("gitlab.com"))
    assert checked.pinned and checked.left_out == []
    assert sorted(k.key_type for k in checked.keys) == [
        "ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"
    ]  # fmt: skip


def test_keyscan_refused_names_the_cause() -> None:
    url = ssh.parse_git_url(f"ssh://git@127.0.0.1:{closed_port()}/r.git")
    with pytest.raises(HostUnreachableError) as raised:
        ssh.keyscan(url, timeout=2)
    assert f"127.0.0.1:{url.port}" in raised.value.message
    assert "connection refused" in raised.value.message


def test_keyscan_unresolvable_names_the_cause() -> None:
    url = ssh.parse_git_url("git@nohost.invalid:group/r.git")
    with pytest.raises(HostUnreachableError) as raised:
        ssh.keyscan(url, timeout=2)
    assert "nohost.invalid:22" in raised.value.message
    assert "name resolution failed" in raised.value.message


def test_keyscan_stalled_listener_is_bounded_and_named(stalled: StalledServer) -> None:
    url = ssh.parse_git_url(f"ssh://git@127.0.0.1:{stalled.port}/r.git")
    started = time.monotonic()
    with pytest.raises(HostUnreachableError) as raised:
        ssh.keyscan(url, timeout=1)
    assert time.monotonic() - started < 8
    assert f"127.0.0.1:{stalled.port}" in raised.value.message
    assert "timed out: the connection was accepted but sent no SSH greeting within 1s" in (
        raised.value.message
    )
    assert "GITOPSKIT_NETWORK_TIMEOUT" in str(raised.value)


def test_scp_url_with_a_port_like_path_gets_the_ssh_form() -> None:
    typo = ssh.parse_git_url("git@gitlab.example.com:2222/group/repo.git")
    assert (typo.port, typo.path) == (22, "2222/group/repo.git")
    assert ssh.scp_port_hint(typo) == "ssh://git@gitlab.example.com:2222/group/repo.git"
    for fine in ("git@gitlab.example.com:group/repo.git",
                 "ssh://git@gitlab.example.com/2222/group/repo.git",
                 "ssh://git@gitlab.example.com:2222/group/repo.git"):  # fmt: skip
        assert ssh.scp_port_hint(ssh.parse_git_url(fine)) is None


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


def test_keyscan_of_a_server_that_stalls_after_its_greeting_says_it_timed_out() -> None:
    """It said "the SSH server offered no host key of the types …": it offered nothing at all,
    in time."""
    with StalledServer(answer=b"SSH-2.0-OpenSSH_9.6\r\n") as server:
        url = ssh.parse_git_url(f"ssh://git@127.0.0.1:{server.port}/r.git")
        started = time.monotonic()
        with pytest.raises(HostUnreachableError) as raised:
            ssh.keyscan(url, timeout=1)
    assert time.monotonic() - started < 8
    assert f"127.0.0.1:{server.port}" in raised.value.message
    assert "timed out: the SSH server sent its greeting but no host key within 1s" in (
        raised.value.message
    )
