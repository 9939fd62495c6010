"""Fixtures for fault injection: servers that stall, and the hostile suite's helpers."""

from __future__ import annotations

from tests.flux_fixtures import stalled  # noqa: F401  (a fixture)
from tests.hostile.conftest import captured, gitlab, project_dir  # noqa: F401  (fixtures)

#: An HTTP answer whose body never comes (or comes a byte at a time).
JSON_HEADERS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n["
)
