"""A real OpenSSH ``sshd`` serving git repositories the way GitLab's SSH endpoint does.

The server is Debian's ``/usr/sbin/sshd`` (package ``openssh-server``) started in the
foreground on 127.0.0.1 with a throw-away config and freshly generated host keys
(ed25519, ecdsa P-256, rsa).  Authorization is decided *per connection*:

* ``AuthorizedKeysCommand`` runs a small stdlib-only gatekeeper script which asks the
  test process (over a Unix socket in a private 0700 directory) for the current result
  of the ``authorized_keys`` callable.  Every key is emitted with a forced command and
  GitLab's ``no-port-forwarding,...`` options, so adding/removing keys in the callable
  takes effect on the next connection without any ``refresh()``.
* The forced command is the same gatekeeper script: it parses ``SSH_ORIGINAL_COMMAND``,
  allows ``git-upload-pack`` for every key and ``git-receive-pack`` only for keys with
  ``can_push=True``, resolves the repository path through the ``repos`` callable (also
  asked over the socket, at connection time) and ``exec``s ``git upload-pack`` /
  ``git receive-pack`` on the bare repository.

Linux only (uses /proc to make sure no per-connection sshd outlives ``stop()``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

import pytest

DEBIAN_PACKAGE = "openssh-server"
SSHD_SEARCH_PATH = "/usr/sbin:/usr/local/sbin:/sbin"

READ_ONLY_ERROR = "ERROR: This deploy key does not have write access to this project."
NOT_FOUND_ERROR = "ERROR: The project you were looking for could not be found."

HOST_KEY_TYPES: tuple[tuple[str, list[str]], ...] = (
    ("ed25519", ["-t", "ed25519"]),
    ("ecdsa", ["-t", "ecdsa", "-b", "256"]),
    ("rsa", ["-t", "rsa", "-b", "2048"]),
)

# GitLab writes exactly these restrictions next to its forced command.
KEY_OPTIONS = "no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty,no-user-rc"

# Runs as AuthorizedKeysCommand and as the forced command; must be stdlib only because it
# is started with ``python -I -S`` by sshd, outside any virtualenv.
GATEKEEPER = r"""
import os, socket, sys


def ask(sock_path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(sock_path)
        s.sendall(request.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def fail(message):
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    sys.exit(1)


def main():
    mode, sock_path = sys.argv[1], sys.argv[2]
    if mode == "keys":
        sys.stdout.write(ask(sock_path, "keys"))
        return
    import shlex  # only here: AuthorizedKeysCommand runs on every auth, keep it quick

    can_push = sys.argv[3] == "1"
    original = os.environ.get("SSH_ORIGINAL_COMMAND", "")
    try:
        words = shlex.split(original)
    except ValueError:
        words = []
    if len(words) == 3 and words[0] == "git" and words[1] in ("upload-pack", "receive-pack"):
        words = ["git-" + words[1], words[2]]
    if len(words) != 2 or words[0] not in ("git-upload-pack", "git-receive-pack"):
        fail("ERROR: Unknown command: " + original)
    verb, path = words
    if verb == "git-receive-pack" and not can_push:
        fail(READ_ONLY_ERROR)
    repo = ask(sock_path, "repo " + path).strip()
    if not repo:
        fail(NOT_FOUND_ERROR)
    sys.stdout.flush()
    os.execvp("git", ["git", verb[len("git-"):], repo])


main()
""".replace("READ_ONLY_ERROR", repr(READ_ONLY_ERROR)).replace(
    "NOT_FOUND_ERROR", repr(NOT_FOUND_ERROR)
)


def find_sshd() -> str | None:
    """Path of the sshd binary (``$GITOPSKIT_SSHD`` overrides), or None."""
    override = os.environ.get("GITOPSKIT_SSHD")
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("sshd", path=f"{SSHD_SEARCH_PATH}:{os.environ.get('PATH', '')}")


def require_sshd() -> str:
    """Return the sshd path or skip the calling test (loudly, naming the Debian package)."""
    sshd = find_sshd()
    if sshd is None:
        pytest.skip(
            f"OpenSSH server not found (looked in {SSHD_SEARCH_PATH} and $PATH): "
            f"install the Debian package {DEBIAN_PACKAGE} (apt-get install -y {DEBIAN_PACKAGE})"
        )
    for tool in ("ssh", "ssh-keygen", "ssh-keyscan", "git"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: install the Debian packages openssh-client and git")
    return sshd


def sshd_version(sshd: str) -> tuple[int, int]:
    """(major, minor) of an sshd binary, from ``sshd -V`` (e.g. 'OpenSSH_9.2p1 ...')."""
    proc = subprocess.run([sshd, "-V"], capture_output=True, text=True, check=False)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", proc.stderr + proc.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def ssh_git_env(identity: Path, known_hosts: Path) -> dict[str, str]:
    """A full environment (copy of os.environ) making git use exactly this key/known_hosts."""
    command = [
        "ssh",
        "-F", "/dev/null",
        "-i", str(identity),
        "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=10",
    ]  # fmt: skip
    env = dict(os.environ)
    env.update(
        GIT_SSH_COMMAND=shlex.join(command),
        GIT_SSH_VARIANT="ssh",
        GIT_TERMINAL_PROMPT="0",
    )
    env.pop("SSH_AUTH_SOCK", None)
    return env


def _path_is_safe(path: str) -> bool:
    """Mimic sshd's safe_path(): file and every parent root/owner-owned, not g/o-writable."""
    uid = os.getuid()
    current = os.path.realpath(path)
    while True:
        try:
            st = os.stat(current)
        except OSError:
            return False
        if st.st_uid not in (0, uid) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return False
        if current == "/":
            return True
        current = os.path.dirname(current)


def _safe_python() -> str:
    """A python3 interpreter sshd will accept as the AuthorizedKeysCommand binary."""
    candidates = [sys.executable, getattr(sys, "_base_executable", ""), "/usr/bin/python3"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and _path_is_safe(candidate):
            return os.path.realpath(candidate)
    raise RuntimeError(
        "no python3 with a root-owned, non group/world-writable path for AuthorizedKeysCommand"
        f" (tried {candidates})"
    )


def _normalise_repo_path(path: str) -> str:
    path = path.strip().strip("/")
    return path.removesuffix(".git")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(root_pid: int) -> list[list[int]]:
    """Live descendants of ``root_pid`` (from /proc/*/stat), grouped by depth: children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_line = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ..." -- comm may contain spaces/parentheses.
        fields = stat_line[stat_line.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    levels: list[list[int]] = []
    level = children.get(root_pid, [])
    while level:
        levels.append(level)
        level = [grandchild for child in level for grandchild in children.get(child, [])]
    return levels


def _alive(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line[stat_line.rindex(")") + 2 :].split()[0] != "Z"


def _end_processes(pids: list[int], timeout: float = 5.0) -> None:
    """SIGTERM, wait up to ``timeout`` (for them to be reaped, too), then SIGKILL."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # Give the (still running) parents a moment to reap, so no zombie is handed to init.
    deadline = time.monotonic() + 0.5
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


class _ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    owner: GitSSHServer


class _ControlHandler(socketserver.StreamRequestHandler):
    server: _ControlServer

    def handle(self) -> None:
        request = self.rfile.readline().decode().strip()
        try:
            answer = self.server.owner._answer(request)
        except Exception as exc:  # the test callables are user code: deny and remember
            self.server.owner.errors.append(f"{request!r}: {exc!r}")
            answer = ""
        self.wfile.write(answer.encode())


class GitSSHServer:
    """A real sshd on 127.0.0.1:<random port> that serves bare git repos like GitLab."""

    host = "127.0.0.1"

    def __init__(
        self,
        root: Path,
        *,
        authorized_keys: Callable[[], list[tuple[str, bool]]],
        repos: Callable[[], Mapping[str, Path]],
        sshd: str | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self.root = Path(root)
        self.authorized_keys = authorized_keys
        self.repos = repos
        self.sshd = sshd or find_sshd() or "/usr/sbin/sshd"
        self.start_timeout = start_timeout
        self.ssh_user = pwd.getpwuid(os.getuid()).pw_name
        self.port = 0
        self.errors: list[str] = []
        self.state_dir = self.root / "sshd"
        self.config_path = self.state_dir / "sshd_config"
        self.log_path = self.state_dir / "sshd.log"
        self.gatekeeper_path = self.state_dir / "gatekeeper.py"
        self._sock_dir: Path | None = None
        self._control: _ControlServer | None = None
        self._control_thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._host_key_pubs: list[Path] = []
        self._final_log = ""

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> GitSSHServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("sshd already started")
        if os.getuid() == 0:
            # Privilege separation directory; Debian's sshd refuses to start without it.
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        self.gatekeeper_path.write_text(GATEKEEPER)
        self._generate_host_keys()
        self._start_control_server()
        try:
            for _attempt in range(5):
                self.port = _free_port()
                self._write_config()
                if self._spawn():
                    return
            raise RuntimeError(f"sshd did not come up:\n{self.log_text()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate sshd (listener and any per-connection children) and remove temp files."""
        if self._proc is not None:
            # Per-connection sshd processes call setsid() and would outlive the listener, so
            # they are found through the process tree and ended first (while their parents
            # are still there to reap them), then the listener itself.
            for level in reversed(_descendants(self._proc.pid)):  # deepest first
                _end_processes(level)
            self._terminate(self._proc)
            self._proc = None
        if self._control is not None:
            self._control.shutdown()
            self._control.server_close()
            self._control = None
        if self._control_thread is not None:
            self._control_thread.join(timeout=5)
            self._control_thread = None
        if self._sock_dir is not None:
            shutil.rmtree(self._sock_dir, ignore_errors=True)
            self._sock_dir = None
        # Everything lives in state_dir; keep the log text in memory for post-mortems.
        if self.state_dir.exists():
            self._final_log = self.log_text()
            shutil.rmtree(self.state_dir, ignore_errors=True)
        self._host_key_pubs = []

    def refresh(self) -> None:
        """No-op: keys and repos are asked from the callables on every connection."""

    # -- public helpers ------------------------------------------------------------------

    def git_url(self, path: str) -> str:
        return f"ssh://{self.ssh_user}@{self.host}:{self.port}/{_normalise_repo_path(path)}.git"

    def scp_url(self, path: str) -> str:
        """scp-like form; only usable by git on port 22, mainly for URL parsing tests."""
        return f"{self.ssh_user}@{self.host}:{_normalise_repo_path(path)}.git"

    def host_key_fingerprints(self) -> dict[str, str]:
        """Key algorithm as in known_hosts (ssh-ed25519, ...) -> 'SHA256:...'."""
        result = {}
        for pub in self._host_key_pubs:
            key_type = pub.read_text().split()[0]
            out = subprocess.run(
                ["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            result[key_type] = out.split()[1]
        return result

    def host_public_keys(self) -> dict[str, str]:
        """Key algorithm -> 'algo base64' public host key line."""
        return {
            line.split()[0]: " ".join(line.split()[:2])
            for line in (p.read_text() for p in self._host_key_pubs)
        }

    def known_hosts_lines(self) -> list[str]:
        """known_hosts lines as ssh-keyscan would print them for this server."""
        return [f"[{self.host}]:{self.port} {key}" for key in self.host_public_keys().values()]

    def log_text(self) -> str:
        """sshd's stderr (LogLevel VERBOSE); still available after stop()."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return self._final_log

    # -- internals -----------------------------------------------------------------------

    def _answer(self, request: str) -> str:
        if request == "keys":
            keys = self.authorized_keys()
            return "".join(self._key_line(key, can_push) for key, can_push in keys)
        if request.startswith("repo "):
            wanted = _normalise_repo_path(request[len("repo ") :])
            for name, directory in self.repos().items():
                if _normalise_repo_path(name) == wanted:
                    return f"{Path(directory).resolve()}\n"
            return ""
        raise ValueError(f"unknown request {request!r}")

    def _key_line(self, public_key: str, can_push: bool) -> str:
        fields = public_key.strip().split()
        if len(fields) < 2 or not fields[0].startswith(("ssh-", "ecdsa-", "sk-")):
            raise ValueError(f"not a plain OpenSSH public key line: {public_key!r}")
        assert self._sock_dir is not None
        command = shlex.join(
            [
                _safe_python(),
                "-I",
                "-S",
                str(self.gatekeeper_path),
                "serve",
                str(self._sock_dir / "ctl.sock"),
                "1" if can_push else "0",
            ]
        )
        return f'command="{command}",{KEY_OPTIONS} {" ".join(fields)}\n'

    def _generate_host_keys(self) -> None:
        self._host_key_pubs = []
        for name, args in HOST_KEY_TYPES:
            key = self.state_dir / f"ssh_host_{name}_key"
            key.unlink(missing_ok=True)
            key.with_suffix(".pub").unlink(missing_ok=True)
            subprocess.run(
                ["ssh-keygen", "-q", *args, "-N", "", "-C", f"gitopskit-fake-{name}",
                 "-f", str(key)],
                check=True, capture_output=True,
            )  # fmt: skip
            self._host_key_pubs.append(key.with_name(key.name + ".pub"))

    def _start_control_server(self) -> None:
        # Unix socket paths are limited to ~107 bytes, so the socket gets its own short,
        # private (mkdtemp = 0700) directory instead of living under a long tmp_path.
        self._sock_dir = Path(tempfile.mkdtemp(prefix="gsshd-"))
        control = _ControlServer(str(self._sock_dir / "ctl.sock"), _ControlHandler)
        control.owner = self
        self._control = control
        self._control_thread = threading.Thread(
            target=control.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-sshd-control",
            daemon=True,
        )
        self._control_thread.start()

    def _write_config(self) -> None:
        assert self._sock_dir is not None
        keys_command = shlex.join(
            [
                _safe_python(),
                "-I",
                "-S",
                str(self.gatekeeper_path),
                "keys",
                str(self._sock_dir / "ctl.sock"),
            ]
        )
        lines = [
            f"Port {self.port}",
            f"ListenAddress {self.host}",
            *(f"HostKey {p.with_name(p.name.removesuffix('.pub'))}" for p in self._host_key_pubs),
            f"PidFile {self.state_dir / 'sshd.pid'}",
            "UsePAM no",
            # Only keys with a command="..." option may log in as root -- all of ours have one.
            "PermitRootLogin forced-commands-only",
            f"AllowUsers {self.ssh_user}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "AuthorizedKeysFile none",
            f"AuthorizedKeysCommand {keys_command}",
            f"AuthorizedKeysCommandUser {self.ssh_user}",
            "StrictModes yes",
            "PermitUserRC no",
            "PermitUserEnvironment no",
            "PermitTTY no",
            "AllowTcpForwarding no",
            "AllowStreamLocalForwarding no",
            "AllowAgentForwarding no",
            "X11Forwarding no",
            "PermitTunnel no",
            "AcceptEnv GIT_PROTOCOL",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "MaxStartups 50:30:100",
            "MaxAuthTries 10",
            "LoginGraceTime 20",
            "LogLevel VERBOSE",
        ]
        if sshd_version(self.sshd) >= (9, 8):
            # Newer sshd penalises source addresses after failed auths; tests do that on purpose.
            lines.append("PerSourcePenalties no")
        self.config_path.write_text("\n".join(lines) + "\n")
        self.config_path.chmod(0o600)

    def _spawn(self) -> bool:
        """Start sshd; True once it listens, False if the port was taken (caller retries)."""
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.sshd, "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                text = self.log_text()
                self._proc = None
                if "Address already in use" in text:
                    return False
                raise RuntimeError(f"sshd exited during startup:\n{text}")
            if f"Server listening on {self.host} port {self.port}" in self.log_text():
                return True
            time.sleep(0.02)
        self._terminate(self._proc)
        self._proc = None
        raise RuntimeError(
            f"sshd did not start listening in {self.start_timeout}s:\n{self.log_text()}"
        )

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
