"""Issue 9 §5: a token goes only to its own GitLab's origin (scheme, host, port), and never in
a URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitopskit import git
from gitopskit.errors import ConfigError, GitError, GitLabError
from tests.fakes.gitlab import DEVELOPER, FakeGitLab, RecordedRequest
from tests.hostile.conftest import (
    PROJECT,
    TOKEN,
    Captured,
    configmap,
    do_publish,
    gitlab_env,
    invoke,
    write_dist,
)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[FakeGitLab]:
    """Another git server, which would accept the token if it were sent."""
    with FakeGitLab(tmp_path / "elsewhere") as fake:
        fake.add_user("someone", TOKEN, access_level=DEVELOPER)
        fake.add_project(PROJECT, initial_files={"README.md": "hi\n"})
        yield fake


def credentials_sent(requests: list[RecordedRequest]) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in requests
        if any(k.lower() in ("authorization", "private-token") for k in r.headers)
    ]


def test_diff_sends_no_token_when_no_gitlab_is_configured(
    project_dir: Path, elsewhere: FakeGitLab, captured: Captured
) -> None:
    """Today, with GITLAB_URL unset, the read token went to whatever host --against named."""
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    url = f"{elsewhere.url}/{PROJECT}.git"
    done = invoke(
        project_dir, "diff", "--no-synth", "--against", url, captured=captured,
        MANIFESTS_READ_TOKEN=TOKEN, MANIFESTS_TOKEN=TOKEN,
    )  # fmt: skip
    assert done.returncode == 2  # the server wants credentials; none were ours to give
    assert elsewhere.requests, "the server was asked"
    assert credentials_sent(elsewhere.requests) == []


def test_diff_sends_no_token_to_another_port_of_the_same_host(
    project_dir: Path, gitlab: FakeGitLab, elsewhere: FakeGitLab, captured: Captured
) -> None:
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    done = invoke(
        project_dir, "diff", "--no-synth", "--against", f"{elsewhere.url}/{PROJECT}.git",
        captured=captured, GITLAB_URL=gitlab.url, MANIFESTS_READ_TOKEN=TOKEN,
    )  # fmt: skip
    assert done.returncode == 2
    assert credentials_sent(elsewhere.requests) == []


def test_diff_sends_the_token_to_its_own_gitlab_and_warns_about_plain_http(
    project_dir: Path, gitlab: FakeGitLab, captured: Captured
) -> None:
    gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    done = invoke(
        project_dir, "diff", "--no-synth", captured=captured,
        GITLAB_URL=gitlab.url, MANIFESTS_PROJECT=PROJECT, MANIFESTS_READ_TOKEN=TOKEN,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert credentials_sent(gitlab.requests)
    assert done.stderr.count("travels unencrypted") == 1


def test_publish_sends_no_token_to_a_git_url_on_another_host(
    elsewhere: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    """Today publish sent MANIFESTS_TOKEN to whatever host MANIFESTS_GIT_URL named."""
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    env = {
        "MANIFESTS_GIT_URL": f"{elsewhere.url}/{PROJECT}.git",
        "MANIFESTS_TOKEN": TOKEN,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/nonexistent",
    }
    with pytest.raises(GitError):
        do_publish(env, dist, captured)
    assert elsewhere.requests
    assert credentials_sent(elsewhere.requests) == []


def test_the_local_mode_sends_the_token_to_its_own_gitlab(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    """No MANIFESTS_PROJECT (no merge request), but MANIFESTS_GIT_URL is GitLab's own: the token
    goes with the push, as the warning for other hosts implies."""
    project = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    env = gitlab_env(gitlab, MANIFESTS_GIT_URL=f"{gitlab.url}/{PROJECT}.git")
    del env["MANIFESTS_PROJECT"]
    published = do_publish(env, dist, captured)
    assert published.result.status == "published", published.output
    assert project.branch_sha(published.result.branch)
    assert project.merge_requests == []


@pytest.mark.parametrize(
    "setting",
    ["MANIFESTS_GIT_URL", "GITLAB_URL"],
)
def test_a_url_with_a_token_in_it_is_refused_before_anything_runs(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured, setting: str
) -> None:
    project = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    host = gitlab.url.removeprefix("http://")
    env = gitlab_env(gitlab)
    env[setting] = f"http://oauth2:{TOKEN}@{host}" + (f"/{PROJECT}.git" if "GIT" in setting else "")
    before = len(gitlab.requests)
    with pytest.raises(ConfigError) as caught:
        do_publish(env, dist, captured)
    assert "MANIFESTS_TOKEN" in str(caught.value) and TOKEN not in str(caught.value)
    assert len(gitlab.requests) == before and project.branches() == ["main"]


def test_diff_refuses_a_url_with_a_token_in_it(project_dir: Path, captured: Captured) -> None:
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    done = invoke(
        project_dir, "diff", "--no-synth", "--against",
        f"https://gitopskit:{TOKEN}@gitlab.example.com/g/r.git", captured=captured,
    )  # fmt: skip
    assert done.returncode == 2
    assert "credentials" in done.stderr and "MANIFESTS_READ_TOKEN" in done.stderr


@pytest.mark.parametrize(
    ("url", "gitlab_url", "same"),
    [
        ("https://gl.example/g/r.git", "https://gl.example", True),
        ("https://gl.example:443/g/r.git", "https://GL.example/", True),
        ("http://gl.example/g/r.git", "https://gl.example", False),
        ("https://gl.example:8443/g/r.git", "https://gl.example", False),
        ("https://gl.example.evil.com/g/r.git", "https://gl.example", False),
        ("https://evil.com/gl.example/r.git", "https://gl.example", False),
        ("https://gl.example@evil.com/g/r.git", "https://gl.example", False),
        ("git@gl.example:g/r.git", "https://gl.example", False),
        ("https://gl.example/g/r.git", None, False),
    ],
)
def test_same_origin(url: str, gitlab_url: str | None, same: bool) -> None:
    assert git.same_origin(url, gitlab_url) is same


# --- redirects: a token never follows one to another origin -------------------------------------


@pytest.fixture
def public_elsewhere(tmp_path: Path) -> Iterator[FakeGitLab]:
    """Another server, which serves a public copy of the project to anyone, and would take the
    token if it came."""
    with FakeGitLab(tmp_path / "public-elsewhere") as fake:
        fake.add_user("someone", TOKEN, access_level=DEVELOPER)
        fake.add_project(PROJECT, initial_files={"README.md": "hi\n"}, visibility="public")
        yield fake


def redirect_git(gitlab: FakeGitLab, to: FakeGitLab) -> None:
    """Make GitLab answer every ref advertisement with a redirect to ``to``."""
    for service in ("git-upload-pack", "git-receive-pack"):
        gitlab.fail_next(
            "GET", r"\.git/info/refs$", 301, times=10,
            headers={"Location": f"{to.url}/{PROJECT}.git/info/refs?service={service}"},
        )  # fmt: skip


def test_diff_sends_no_token_where_its_gitlab_redirects_git(
    project_dir: Path, gitlab: FakeGitLab, public_elsewhere: FakeGitLab, captured: Captured
) -> None:
    """git sent the header of GITLAB_URL's origin to wherever the first answer redirected it."""
    gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    redirect_git(gitlab, public_elsewhere)
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    invoke(
        project_dir, "diff", "--no-synth", captured=captured,
        GITLAB_URL=gitlab.url, MANIFESTS_PROJECT=PROJECT, MANIFESTS_READ_TOKEN=TOKEN,
    )  # fmt: skip
    assert public_elsewhere.requests, "git followed the redirect"
    assert credentials_sent(public_elsewhere.requests) == []


def test_publish_sends_no_token_where_its_gitlab_redirects_git(
    gitlab: FakeGitLab, public_elsewhere: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    redirect_git(gitlab, public_elsewhere)
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    with pytest.raises(GitError):
        do_publish(gitlab_env(gitlab), dist, captured)
    assert public_elsewhere.requests, "git followed the redirect"
    assert credentials_sent(public_elsewhere.requests) == []


def test_the_token_still_follows_a_redirect_within_its_gitlab(
    project_dir: Path, gitlab: FakeGitLab, captured: Captured
) -> None:
    """GitLab redirects a repository path without ``.git`` to the one with it."""
    gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    gitlab.fail_next(
        "GET", rf"^/{PROJECT}/info/refs$", 301, times=10,
        headers={"Location": f"{gitlab.url}/{PROJECT}.git/info/refs?service=git-upload-pack"},
    )  # fmt: skip
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    done = invoke(
        project_dir, "diff", "--no-synth", captured=captured, GITLAB_URL=gitlab.url,
        MANIFESTS_GIT_URL=f"{gitlab.url}/{PROJECT}", MANIFESTS_READ_TOKEN=TOKEN,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 to add" in done.stdout


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_the_api_client_sends_no_token_where_gitlab_redirects_it(
    gitlab: FakeGitLab, elsewhere: FakeGitLab, tmp_path: Path, captured: Captured, status: int
) -> None:
    """requests keeps a PRIVATE-TOKEN header on a redirect to any host."""
    gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    gitlab.fail_next(
        "GET", r"^/api/v4/projects/", status,
        headers={"Location": f"{elsewhere.url}/api/v4/projects/{PROJECT.replace('/', '%2F')}"},
    )  # fmt: skip
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    with pytest.raises(GitLabError) as caught:
        do_publish(gitlab_env(gitlab), dist, captured)
    assert credentials_sent(elsewhere.requests) == []
    assert "redirect" in caught.value.message and elsewhere.url.split("//")[1] in str(caught.value)


def test_the_api_client_sends_no_token_to_a_next_page_on_another_origin(
    gitlab: FakeGitLab, elsewhere: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    """python-gitlab followed a ``Link: <…>; rel="next"`` anywhere, with the token."""
    project = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    next_page = (
        f"{elsewhere.url}/api/v4/projects/{project.id}/merge_requests?page=2&per_page=100"
    )
    gitlab.fail_next(
        "GET", r"/merge_requests$", 200, body=[],
        headers={"Link": f'<{next_page}>; rel="next"', "X-Next-Page": "2"},
    )  # fmt: skip
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    do_publish(gitlab_env(gitlab), dist, captured)
    assert credentials_sent(elsewhere.requests) == []


def test_a_runners_credential_helper_never_answers_for_gitlab(
    project_dir: Path, gitlab: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    """GitLab runners configure a global helper that answers with CI_JOB_TOKEN."""
    gitlab.add_job_token("job-token-of-the-runner")
    gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    config = tmp_path / "gitconfig"
    config.write_text(
        "[credential]\n\thelper = \"!f() { echo username=gitlab-ci-token; "
        'echo password=job-token-of-the-runner; }; f"\n'
    )
    write_dist(project_dir / "dist", {"web.k8s.yaml": [configmap("web")]})
    done = invoke(
        project_dir, "diff", "--no-synth", captured=captured, GIT_CONFIG_GLOBAL=str(config),
        GITLAB_URL=gitlab.url, MANIFESTS_PROJECT=PROJECT, MANIFESTS_READ_TOKEN=TOKEN,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    users = {r.user for r in gitlab.requests if r.is_git and r.user}
    assert users == {"project_1_bot"}
