"""SSH for Flux: git URLs, host keys (scan, known_hosts, pinned fingerprints) and key pairs.

Host keys are scanned with ``ssh-keyscan`` (bounded by ``-T`` and a process timeout) and checked
against pinned SHA256 fingerprints computed here in Python the way ``ssh-keygen -l`` does: the
keys that match a pin are written to known_hosts, one per line without comments
(``[host]:port`` for a port other than 22); the unpinned types are named, not written. A host
that cannot be reached is reported with the cause (name resolution, refused, no answer). Key
pairs are made by
``ssh-keygen`` in a private temporary directory that is removed even on failure; the private key
is registered with the redactor the moment it is read and is never printed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gitopskit import interrupts
from gitopskit._run import run
from gitopskit.errors import ConfigError, HostKeyError, SSHError
from gitopskit.redact import add_secret

DEFAULT_PORT = 22
#: Seconds a network operation may take when no timeout is given (GITOPSKIT_NETWORK_TIMEOUT).
NETWORK_TIMEOUT = 60.0
KEYSCAN_TYPES = "rsa,ecdsa,ed25519"

#: SSH host key fingerprints GitLab publishes for gitlab.com (ED25519, ECDSA, RSA).
GITLAB_COM_FINGERPRINTS = (
    "SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8",
    "SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw",
    "SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ",
)
BUILTIN_PINS: Mapping[str, tuple[str, ...]] = {
    "gitlab.com": GITLAB_COM_FINGERPRINTS,
    "altssh.gitlab.com": GITLAB_COM_FINGERPRINTS,
}

#: ``--key-type`` → ssh-keygen arguments.
KEY_TYPES: Mapping[str, tuple[str, ...]] = {
    "ed25519": ("-t", "ed25519"),
    "ecdsa": ("-t", "ecdsa", "-b", "384"),
    "rsa": ("-t", "rsa", "-b", "4096"),
}

_SCP = re.compile(r"^(?P<user>[^@/:\s]+)@(?P<host>[^@/:\s\[\]]+):(?P<path>[^\s]+)$")
_SSH = re.compile(
    r"^ssh://(?:(?P<user>[^@/:\s]+)@)?(?P<host>[^@/:\s\[\]]+)(?::(?P<port>\d*))?/(?P<path>\S+)$"
)
_URL_HINT = (
    "give the manifests repository's SSH URL, as git@host:group/repo.git or "
    "ssh://git@host:port/group/repo.git"
)
_PORT_LIKE = re.compile(r"^(?P<port>\d{1,5})/(?P<rest>.+)$")


class HostUnreachableError(SSHError):
    """The git host's SSH port cannot be reached: name resolution, refused, or no answer."""


@dataclass(frozen=True)
class GitURL:
    """An SSH git URL, parsed.

    Attributes:
        user: The SSH user (``git`` on GitLab).
        host: The host name or address.
        port: The SSH port.
        path: The repository path, without a leading slash (``group/repo.git``).
        scp: Written in git's scp syntax (``git@host:path``), which has no port.
    """

    user: str
    host: str
    port: int
    path: str
    scp: bool = field(default=False, compare=False)

    @property
    def ssh_url(self) -> str:
        """The ``ssh://`` form, the only one Flux 2's GitRepository accepts."""
        port = f":{self.port}" if self.port != DEFAULT_PORT else ""
        return f"ssh://{self.user}@{self.host}{port}/{self.path}"

    @property
    def known_hosts_host(self) -> str:
        """The host as known_hosts names it: ``host``, or ``[host]:port`` off port 22."""
        return self.host if self.port == DEFAULT_PORT else f"[{self.host}]:{self.port}"


def parse_git_url(url: str) -> GitURL:
    """Parse ``git@host:group/repo.git`` or ``ssh://git@host:port/group/repo.git``.

    Raises:
        ConfigError: Not an SSH git URL (an https URL, a path, a bad port).
    """
    text = url.strip()
    match = _SSH.match(text) if text.startswith("ssh://") else _SCP.match(text)
    if match is None:
        raise ConfigError(f"{url!r} is not an SSH git URL", hint=_URL_HINT)
    groups = match.groupdict()
    port_text = groups.get("port")
    port = int(port_text) if port_text else DEFAULT_PORT
    if not 0 < port < 65536:
        raise ConfigError(f"{url!r}: port {port} is out of range", hint=_URL_HINT)
    path = groups["path"].lstrip("/")
    if not path or path.startswith("~") or ".." in path.split("/"):
        raise ConfigError(f"{url!r} names no repository path", hint=_URL_HINT)
    user = groups.get("user") or "git"
    return GitURL(user=user, host=groups["host"], port=port, path=path, scp=match.re is _SCP)


def scp_port_hint(url: GitURL) -> str | None:
    """The ``ssh://`` URL meant by ``git@host:2222/group/repo.git``, else None.

    In git's scp syntax everything after the colon is the path: ``2222/group/repo.git`` on port
    22, not port 2222.
    """
    match = _PORT_LIKE.match(url.path)
    if not url.scp or match is None or not 0 < int(match["port"]) < 65536:
        return None
    return f"ssh://{url.user}@{url.host}:{int(match['port'])}/{match['rest']}"


def fingerprint(key_line: str) -> str:
    """The ``SHA256:…`` fingerprint of a public key (``type base64 [comment]`` or the base64).

    Raises:
        ConfigError: The key's base64 blob is malformed.
    """
    fields = key_line.split()
    blob = fields[1] if len(fields) >= 2 else (fields[0] if fields else "")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("malformed SSH public key") from None
    digest = hashlib.sha256(raw).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class HostKey:
    """One host key as scanned: its algorithm and base64 blob."""

    key_type: str
    blob: str

    @property
    def fingerprint(self) -> str:
        """``SHA256:…``, as ``ssh-keygen -l`` shows it."""
        return fingerprint(f"{self.key_type} {self.blob}")

    def line(self, host: str) -> str:
        """The known_hosts line for ``host`` (already ``[host]:port`` when needed)."""
        return f"{host} {self.key_type} {self.blob}"


def parse_keyscan(output: str) -> list[HostKey]:
    """Host keys from ``ssh-keyscan`` output (comments and blank lines dropped, deduplicated)."""
    keys: list[HostKey] = []
    for raw in output.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 3:
            continue
        key = HostKey(fields[1], fields[2])
        if key not in keys:
            keys.append(key)
    return sorted(keys, key=lambda k: k.key_type)


def keyscan(url: GitURL, *, timeout: float = NETWORK_TIMEOUT) -> list[HostKey]:
    """Scan the git host's SSH keys (every type it offers, ecdsa-sha2-nistp256 included).

    Args:
        url: The git URL whose host and port are scanned.
        timeout: Seconds the connection may stay silent (``ssh-keyscan -T``).

    Raises:
        HostUnreachableError: The host cannot be resolved, refuses, or does not answer; the
            message names the cause.
        SSHError: ssh-keyscan itself failed.
    """
    seconds = max(1, math.ceil(timeout))
    started = time.monotonic()
    result = run(
        ["ssh-keyscan", "-T", str(seconds), "-p", str(url.port), "-t", KEYSCAN_TYPES, url.host],
        error=SSHError,
        ok_codes=(0, 1),
        timeout=2 * seconds + 5,
        what=f"ssh-keyscan of {url.host}:{url.port}",
    )
    keys = parse_keyscan(result.stdout)
    if not keys:
        raise HostUnreachableError(
            f"cannot scan the SSH host keys of {url.host}:{url.port}: "
            f"{unreachable_cause(url, result.stderr, seconds, time.monotonic() - started)}",
            hint="check the git URL's host and port, the network and any firewall; "
            f"GITOPSKIT_NETWORK_TIMEOUT bounds the wait (now {seconds}s)",
        )
    return keys


def unreachable_cause(
    url: GitURL, keyscan_stderr: str, timeout: float, waited: float = 0.0
) -> str:
    """Why ssh-keyscan got no key: from its own errors, else from one probe of the port.

    Args:
        url: What was scanned.
        keyscan_stderr: What ssh-keyscan said.
        timeout: The bound of the scan and of the probe.
        waited: Seconds the scan took: as long as the bound, a server that greets was silent
            after its greeting (ssh-keyscan says nothing then).
    """
    for line in keyscan_stderr.splitlines():
        if line.startswith("getaddrinfo"):
            return f"name resolution failed ({line.partition(': ')[2].strip()})"
    try:
        conn = socket.create_connection((url.host, url.port), timeout=timeout)
    except socket.gaierror as error:
        return f"name resolution failed ({error.strerror})"
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"timed out connecting (no answer within {timeout:g}s)"
    except OSError as error:
        return (error.strerror or str(error)).lower()
    with conn:
        try:
            greeting = conn.recv(255)
        except TimeoutError:
            return (
                f"timed out: the connection was accepted but sent no SSH greeting within "
                f"{timeout:g}s"
            )
        except OSError as error:
            return (error.strerror or str(error)).lower()
    if not greeting.startswith(b"SSH-"):
        return "it is not an SSH server (no SSH greeting)"
    if waited >= timeout:
        return f"timed out: the SSH server sent its greeting but no host key within {timeout:g}s"
    return f"the SSH server offered no host key of the types {KEYSCAN_TYPES}"


def known_hosts(url: GitURL, keys: Iterable[HostKey]) -> str:
    """known_hosts text: one key per line, no comments, ``[host]:port`` off port 22."""
    return "".join(key.line(url.known_hosts_host) + "\n" for key in keys)


def pins_for(host: str, given: Iterable[str] = ()) -> list[str]:
    """The fingerprints ``host``'s keys must match: those given, else the built-in ones."""
    pins = [p.strip() for p in given if p and p.strip()]
    if not pins:
        pins = list(BUILTIN_PINS.get(host.lower(), ()))
    for pin in pins:
        if not pin.startswith("SHA256:"):
            raise ConfigError(
                f"host key fingerprint {pin!r} is not of the form SHA256:…",
                hint="take it from `ssh-keygen -lf` or the Git host's documentation",
            )
    return pins


@dataclass(frozen=True)
class HostKeyCheck:
    """The result of checking scanned host keys against pins.

    Attributes:
        keys: The keys to write to known_hosts: those matching a pin, or all when trusted on
            first use.
        pinned: Whether ``keys`` were verified against pinned fingerprints.
        left_out: Scanned keys matching no pin, not written (their types are named to the user).
    """

    keys: list[HostKey]
    pinned: bool
    left_out: list[HostKey] = field(default_factory=list)


def verify_host_keys(
    url: GitURL, keys: list[HostKey], pins: list[str], *, require_pinned: bool = False
) -> HostKeyCheck:
    """Check scanned keys against pinned fingerprints.

    The keys that match a pin are kept; those that match none are left out (and named). With no
    pins the host is trusted on first use, unless ``require_pinned``.

    Raises:
        HostKeyError: No scanned key matches a pin, or the host has no pin and pins are required.
    """
    scanned = "\n".join(f"  {k.key_type} {k.fingerprint}" for k in keys)
    if not pins:
        if require_pinned:
            raise HostKeyError(
                f"{url.host} has no pinned host key fingerprint and --require-pinned-host-key "
                f"is set; scanned:\n{scanned}",
                hint="check these fingerprints with the Git host's administrators or "
                "documentation, then pass each with --host-key-fingerprint",
            )
        return HostKeyCheck(keys=list(keys), pinned=False)
    matching = [k for k in keys if k.fingerprint in pins]
    if not matching:
        expected = "\n".join(f"  {p}" for p in pins)
        raise HostKeyError(
            f"the SSH host key of {url.known_hosts_host} matches none of the pinned "
            f"fingerprints: nothing was changed\nscanned:\n{scanned}\nexpected:\n{expected}",
            hint="if the host really changed its keys, verify the new fingerprints out of band "
            "and pass them with --host-key-fingerprint; otherwise someone may be intercepting "
            "the connection",
        )
    left_out = [k for k in keys if k not in matching]
    return HostKeyCheck(keys=matching, pinned=True, left_out=left_out)


@dataclass(frozen=True)
class KeyPair:
    """An SSH key pair. ``private`` is registered for redaction and never printed."""

    private: str
    public: str

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public!r}, private=***)"

    @property
    def key_type(self) -> str:
        """The public key's algorithm (``ssh-ed25519``…)."""
        return self.public.split()[0]

    @property
    def fingerprint(self) -> str:
        """``SHA256:…`` of the public key."""
        return fingerprint(self.public)


def canonical_public(public: str) -> str:
    """``type base64`` of a public key line (its comment dropped): how keys are compared."""
    fields = public.split()
    if len(fields) < 2:
        raise ConfigError("malformed SSH public key")
    return f"{fields[0]} {fields[1]}"


@contextmanager
def private_directory() -> Iterator[Path]:
    """A temporary directory only this user can read (0700), removed even on failure."""
    with interrupts.temporary_directory("gitopskit-ssh-") as directory:
        directory.chmod(0o700)
        yield directory


def generate_key(key_type: str = "ed25519") -> KeyPair:
    """A new key pair with no passphrase (ed25519; ecdsa P-384; rsa 4096 bits).

    Raises:
        ConfigError: Unknown key type.
        SSHError: ssh-keygen failed.
    """
    if key_type not in KEY_TYPES:
        raise ConfigError(
            f"unknown key type {key_type!r}", hint=f"choose one of {', '.join(KEY_TYPES)}"
        )
    with private_directory() as directory:
        path = directory / "identity"
        run(
            ["ssh-keygen", "-q", *KEY_TYPES[key_type], "-N", "", "-C", "", "-f", str(path)],
            error=SSHError,
            timeout=60,
            what="ssh-keygen",
        )
        private = path.read_text()
        add_secret(private)
        public = canonical_public(path.with_name("identity.pub").read_text())
    return KeyPair(private=private, public=public)


def public_key_of(private: str) -> str:
    """The public key (``type base64``) of a private key, through ``ssh-keygen -y``.

    Raises:
        SSHError: The key cannot be read.
    """
    add_secret(private)
    with private_directory() as directory:
        path = directory / "identity"
        path.touch(mode=0o600)
        path.write_text(private if private.endswith("\n") else private + "\n")
        result = run(
            ["ssh-keygen", "-y", "-f", str(path)], error=SSHError, timeout=30, what="ssh-keygen -y"
        )
    return canonical_public(result.stdout)
