"""Issue 10 §1: every network operation of diff and publish has a bound
(``GITOPSKIT_NETWORK_TIMEOUT``); on expiry, exit 1 (diff: 2) naming the operation and the host,
with nothing half made and nothing left in the temporary directory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gitopskit.errors import GitLabError
from tests.fakes.gitlab import FakeGitLab
from tests.faults.conftest import JSON_HEADERS
from tests.flux_fixtures import StalledServer
from tests.hostile.conftest import (
    PROJECT,
    Captured,
    configmap,
    do_publish,
    gitlab_env,
    invoke,
    write_dist,
)

BOUND = "2"


def _tmpdir(tmp_path: Path) -> Path:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return tmp


def test_publish_to_a_stalled_git_server_stops_at_the_bound(
    project_dir: Path, stalled: StalledServer, tmp_path: Path, captured: Captured
) -> None:
    """A git server that accepts and then stalls held publish for 600 s in git ls-remote."""
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    tmp = _tmpdir(tmp_path)
    started = time.monotonic()
    done = invoke(
        project_dir, "publish", "--no-synth", captured=captured, timeout=60,
        MANIFESTS_GIT_URL=f"{stalled.url}/g/r.git", GITOPSKIT_NETWORK_TIMEOUT=BOUND,
        TMPDIR=str(tmp),
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert done.returncode == 1
    assert f"127.0.0.1:{stalled.port}" in done.stderr and "git ls-remote" in done.stderr
    assert "Traceback" not in done.stderr
    assert stalled.accepted, "git did connect"
    assert list(tmp.iterdir()) == []


def test_diff_against_a_stalled_git_server_exits_2(
    project_dir: Path, stalled: StalledServer, tmp_path: Path, captured: Captured
) -> None:
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    tmp = _tmpdir(tmp_path)
    done = invoke(
        project_dir, "diff", "--no-synth", "--against", f"{stalled.url}/g/r.git",
        captured=captured, timeout=60, GITOPSKIT_NETWORK_TIMEOUT=BOUND, TMPDIR=str(tmp),
    )  # fmt: skip
    assert done.returncode == 2
    assert f"127.0.0.1:{stalled.port}" in done.stderr
    assert list(tmp.iterdir()) == []


def test_a_stalled_gitlab_api_stops_at_the_bound(
    project_dir: Path, stalled: StalledServer, captured: Captured
) -> None:
    """python-gitlab retried a timed-out request, and honoured any Retry-After."""
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    started = time.monotonic()
    done = invoke(
        project_dir, "publish", "--no-synth", captured=captured, timeout=60,
        GITLAB_URL=stalled.url, MANIFESTS_PROJECT=PROJECT, MANIFESTS_TOKEN="glpat-x-123456789",
        GITOPSKIT_NETWORK_TIMEOUT=BOUND,
    )  # fmt: skip
    assert time.monotonic() - started < 20
    assert done.returncode == 1
    assert f"127.0.0.1:{stalled.port}" in done.stderr and "did not answer" in done.stderr
    assert len(stalled.accepted) == 1  # a timeout is not retried


@pytest.mark.parametrize("drip", [None, 0.5], ids=["stalled-body", "dripping-body"])
def test_a_gitlab_api_that_stalls_in_the_body_stops_at_the_bound(
    project_dir: Path, captured: Captured, drip: float | None
) -> None:
    """requests bounds each read, not the answer: a stalled body was "cannot reach GitLab:
    ConnectionError" with no host, and a body sent a byte at a time was never bounded."""
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    with StalledServer(JSON_HEADERS, drip=drip) as server:
        started = time.monotonic()
        done = invoke(
            project_dir, "publish", "--no-synth", captured=captured, timeout=60,
            GITLAB_URL=server.url, MANIFESTS_PROJECT=PROJECT,
            MANIFESTS_TOKEN="glpat-x-123456789", GITOPSKIT_NETWORK_TIMEOUT=BOUND,
        )  # fmt: skip
        assert time.monotonic() - started < 20
    assert done.returncode == 1
    assert f"GitLab at 127.0.0.1:{server.port} did not answer in time" in done.stderr
    assert "read the project" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(server.accepted) == 1


def test_a_retry_after_longer_than_the_bound_is_not_waited_for(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    project = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    gitlab.fail_next("GET", r"/api/v4/projects/[^/]+$", 429, headers={"Retry-After": "3600"})
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    started = time.monotonic()
    with pytest.raises(GitLabError, match="asks to wait 3600s"):
        do_publish(gitlab_env(gitlab, GITOPSKIT_NETWORK_TIMEOUT=BOUND), dist, captured)
    assert time.monotonic() - started < 10
    assert project.merge_requests == []


@pytest.mark.parametrize("retry_after", ["1", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_short_retry_after_is_honoured(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured, retry_after: str
) -> None:
    """A Retry-After in the HTTP-date form made python-gitlab crash on int()."""
    project = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    gitlab.fail_next("GET", r"/api/v4/projects/[^/]+$", 429, headers={"Retry-After": retry_after})
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    do_publish(gitlab_env(gitlab, GITOPSKIT_NETWORK_TIMEOUT=BOUND), dist, captured)
    assert len(project.merge_requests) == 1
