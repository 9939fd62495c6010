"""Fixtures for fault injection: servers that stall, and the hostile suite's helpers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.hostile.conftest import captured, gitlab, project_dir  # noqa: F401  (fixtures)


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
        self.sock.listen(16)
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
    with StalledServer() as server:
        yield server


#: An HTTP answer whose body never comes (or comes a byte at a time).
JSON_HEADERS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n["
)
