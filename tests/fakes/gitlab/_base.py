"""What every request handler shares: who asks, the answer, and the fake's state."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.gitlab._model import REPORTER, FakeProject, FakeUser


@dataclass
class _Principal:
    user: FakeUser | None  # None for a job token
    label: str

    @property
    def is_job(self) -> bool:
        return self.user is None

    @property
    def level(self) -> int:
        return REPORTER if self.user is None else self.user.access_level


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> _Response:
    body = b"" if status == 204 else json.dumps(payload).encode()
    return _Response(status, body, [("Content-Type", "application/json"), *headers])


def _msg(status: int, message: Any) -> _Response:
    return _json(status, {"message": message})


_FORBIDDEN = (403, "403 Forbidden")


class _State:
    """The state the request handlers share, declared for them; ``FakeGitLab.__init__`` sets it.

    Each family of request handlers is a mixin on this class, and ``FakeGitLab`` composes them.
    """

    url: str
    users: dict[str, FakeUser]
    projects: dict[int, FakeProject]
    _lock: threading.RLock
    _repos: Path
    _git_env: dict[str, str]
    _job_tokens: set[str]
    _deploy_keys: dict[int, dict[str, Any]]
    _ids: dict[str, int]

    def _next_id(self, kind: str) -> int:
        with self._lock:
            self._ids[kind] = self._ids.get(kind, 0) + 1
            return self._ids[kind]

    def _find_project(self, ref: str) -> FakeProject | None:
        with self._lock:
            if ref.isdigit():
                return self.projects.get(int(ref))
            return next(
                (p for p in self.projects.values() if p.path_with_namespace == ref.strip("/")),
                None,
            )
