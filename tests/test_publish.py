"""publish against the GitLab fake: real python-gitlab over HTTP, real git over smart HTTP."""

from __future__ import annotations

import io
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitopskit.config import Settings
from gitopskit.errors import (
    ConfigError,
    GitError,
    GitLabAuthenticationError,
    GitLabError,
    ManifestError,
)
from gitopskit.publish import Options, publish
from gitopskit.tree import INDEX_FILE
from gitopskit.ui import Progress
from tests.conftest import run_invoke
from tests.fakes.gitlab import DEVELOPER, FakeGitLab, FakeProject
from tests.hostile.conftest import Captured, Published
from tests.hostile.conftest import do_publish as publish_through_library

TOKEN = "glpat-publish-secret-0123456789"
PROJECT = "platform/k8s-manifests"
BRANCH = "gitopskit/shop-app"
CI = {
    "CI_PROJECT_PATH_SLUG": "shop-app",
    "CI_PROJECT_PATH": "shop/app",
    "CI_PROJECT_URL": "https://gitlab.example.com/shop/app",
    "CI_COMMIT_TITLE": "Scale the web front end",
    "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
    "CI_PIPELINE_URL": "https://gitlab.example.com/shop/app/-/pipelines/7",
    "GITLAB_USER_NAME": "Ada Lovelace",
    "GITLAB_USER_EMAIL": "ada@example.com",
}
HAND_WRITTEN = {
    "README.md": "# manifests\n",
    ".gitlab-ci.yml": "stages: [lint]\n",
    "old-app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: old, namespace: shop}\n",
    "team-b/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: b}\n",
    "flux-system/gotk-sync.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: flux}\n",
}


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "shop"},
        "data": data,
    }


def write_dist(outdir: Path, files: dict[str, list[dict[str, Any]]]) -> Path:
    """Replace ``outdir`` with these files, as synth would write them."""
    if outdir.exists():
        for old in outdir.iterdir():
            old.unlink()
    outdir.mkdir(parents=True, exist_ok=True)
    for name, objects in files.items():
        (outdir / name).write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return outdir


@pytest.fixture
def gitlab(tmp_path: Path) -> Iterator[FakeGitLab]:
    with FakeGitLab(tmp_path / "gitlab") as fake:
        fake.add_user("project_1_bot", TOKEN, access_level=DEVELOPER)
        fake.add_job_token("job-token-value-abcdef")
        yield fake


@pytest.fixture
def manifests(gitlab: FakeGitLab) -> FakeProject:
    return gitlab.add_project(PROJECT, initial_files=HAND_WRITTEN)


@pytest.fixture
def outputs() -> Iterator[list[str]]:
    """Every captured output of the test; none may contain the token."""
    captured: list[str] = []
    yield captured
    for text in captured:
        assert TOKEN not in text


def environ(gitlab: FakeGitLab, **extra: str) -> dict[str, str]:
    return {
        **CI,
        "GITLAB_URL": gitlab.url,
        "MANIFESTS_PROJECT": PROJECT,
        "MANIFESTS_TOKEN": TOKEN,
        "HOME": "/nonexistent",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        **extra,
    }


def do_publish(
    env: dict[str, str],
    outdir: Path,
    outputs: list[str],
    **options: Any,
) -> Published:
    """One publish through the library; what it printed is kept in ``outputs`` too."""
    return publish_through_library(env, outdir, Captured(outputs), **options)


def merge(project: FakeProject) -> None:
    """Merge the publish branch's merge request as GitLab would (fast-forward, branch removed)."""
    project.git("update-ref", "refs/heads/main", project.branch_sha(BRANCH) or "")
    project.git("update-ref", "-d", f"refs/heads/{BRANCH}")
    project.merge_requests[0]["state"] = "merged"


def open_mrs(project: FakeProject) -> list[dict[str, Any]]:
    return [mr for mr in project.merge_requests if mr["state"] == "opened"]


def test_first_publish_opens_one_merge_request_adopting_top_level_yaml(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    dist = write_dist(
        tmp_path / "dist",
        {"web.k8s.yaml": [configmap("web", a="1")], "api.k8s.yaml": [configmap("api")]},
    )
    run = do_publish(environ(gitlab), dist, outputs)
    assert run.result is not None
    (mr,) = open_mrs(manifests)
    assert run.result.merge_request_url == mr["web_url"]
    assert mr["source_branch"] == BRANCH and mr["target_branch"] == "main"
    assert mr["title"] == "Scale the web front end"
    assert mr["force_remove_source_branch"] is True
    assert "### Manifest diff" in mr["description"]
    assert f"Target: `{PROJECT}`, branch `main`\n" in mr["description"]
    assert CI["CI_PIPELINE_URL"] in mr["description"]
    files = manifests.list_files(BRANCH)
    assert "old-app.yaml" not in files  # adopted, then removed: no chart writes it
    for kept in ("README.md", ".gitlab-ci.yml", "team-b/app.yaml", "flux-system/gotk-sync.yaml"):
        assert kept in files
        assert manifests.read_file(BRANCH, kept) == HAND_WRITTEN[kept].encode()
    index = manifests.read_file(BRANCH, INDEX_FILE).decode()
    assert [ln for ln in index.splitlines() if not ln.startswith("#")] == [
        "api.k8s.yaml",
        "web.k8s.yaml",
    ]
    assert manifests.read_file(BRANCH, "web.k8s.yaml") == (dist / "web.k8s.yaml").read_bytes()
    log = manifests.git("log", "-1", "--format=%an <%ae>%n%B", BRANCH)
    assert log.startswith("Ada Lovelace <ada@example.com>\nScale the web front end\n")
    assert f"Source-Commit: {CI['CI_COMMIT_SHA']}" in log
    assert manifests.commit_count(BRANCH) == manifests.commit_count("main") + 1


def test_rerun_without_change_pushes_nothing_and_opens_nothing(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web", a="1")]})
    do_publish(environ(gitlab), dist, outputs)
    sha = manifests.branch_sha(BRANCH)
    pushes = [r for r in gitlab.requests if "git-receive-pack" in r.path]
    run = do_publish(environ(gitlab), dist, outputs)
    assert manifests.branch_sha(BRANCH) == sha
    assert [r for r in gitlab.requests if "git-receive-pack" in r.path] == pushes
    assert len(manifests.merge_requests) == 1
    assert "already holds these manifests" in run.output
    assert "already up to date" in run.output  # the merge request needed no write either


def test_change_updates_the_same_merge_request_and_deleted_chart_removes_its_file(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    dist = tmp_path / "dist"
    write_dist(
        dist, {"web.k8s.yaml": [configmap("web", a="1")], "api.k8s.yaml": [configmap("api")]}
    )
    do_publish(environ(gitlab), dist, outputs)
    first_sha = manifests.branch_sha(BRANCH)
    write_dist(dist, {"web.k8s.yaml": [configmap("web", a="2")]})
    run = do_publish(environ(gitlab, CI_COMMIT_TITLE="Drop the API"), dist, outputs)
    (mr,) = manifests.merge_requests
    assert mr["iid"] == 1 and mr["state"] == "opened"
    assert mr["title"] == "Drop the API"
    assert manifests.branch_sha(BRANCH) != first_sha
    assert "api.k8s.yaml" not in manifests.list_files(BRANCH)
    assert run.result is not None and run.result.diff is not None
    # described against the target branch: web added, the adopted old-app.yaml's object removed
    assert run.result.diff.summary == {
        "added": 1,
        "removed": 1,
        "changed": 0,
        "unchanged": 0,
        "moved": 0,
    }
    assert "ConfigMap shop/api" not in mr["description"]
    # rebuilt from the target branch: one commit on top of it, not a pile
    assert manifests.commit_count(BRANCH) == manifests.commit_count("main") + 1


def test_merged_then_reverted_closes_the_stale_merge_request(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    dist = tmp_path / "dist"
    write_dist(dist, {"web.k8s.yaml": [configmap("web", a="1")]})
    do_publish(environ(gitlab), dist, outputs)
    merge(manifests)
    write_dist(dist, {"web.k8s.yaml": [configmap("web", a="2")]})
    changed = do_publish(environ(gitlab), dist, outputs)
    assert changed.result is not None and changed.result.diff is not None
    assert changed.result.diff.summary == {
        "added": 0,
        "removed": 0,
        "changed": 1,
        "unchanged": 0,
        "moved": 0,
    }
    assert len(open_mrs(manifests)) == 1
    write_dist(dist, {"web.k8s.yaml": [configmap("web", a="1")]})  # the revert
    run = do_publish(environ(gitlab), dist, outputs)
    assert run.result is not None and run.result.status == "up-to-date"
    assert open_mrs(manifests) == []
    assert manifests.branch_sha(BRANCH) is None
    closing = manifests.notes[manifests.merge_requests[-1]["iid"]][-1]["body"]
    assert "already match" in closing


def test_only_file_names_changed_says_no_resource_changes(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    dist = tmp_path / "dist"
    write_dist(dist, {"web.k8s.yaml": [configmap("web", a="1")]})
    do_publish(environ(gitlab), dist, outputs)
    merge(manifests)
    write_dist(dist, {"frontend.k8s.yaml": [configmap("web", a="1")]})
    renamed = do_publish(environ(gitlab), dist, outputs)
    assert renamed.result is not None and renamed.result.diff is not None
    assert renamed.result.diff.summary["moved"] == 1
    (mr,) = open_mrs(manifests)
    assert "No resource changes" in mr["description"]


def test_two_publishes_at_once_leave_one_merge_request_and_one_complete_result(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    dist = write_dist(
        tmp_path / "dist", {f"c{i}.k8s.yaml": [configmap(f"c{i}", v=str(i))] for i in range(5)}
    )
    results: list[Published | BaseException] = []

    def one() -> None:
        try:
            results.append(do_publish(environ(gitlab), dist, outputs))
        except BaseException as error:  # reported below
            results.append(error)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(isinstance(r, Published) for r in results), results
    assert len(open_mrs(manifests)) == 1
    files = manifests.list_files(BRANCH)
    for i in range(5):
        assert (
            manifests.read_file(BRANCH, f"c{i}.k8s.yaml") == (dist / f"c{i}.k8s.yaml").read_bytes()
        )
    assert INDEX_FILE in files


def test_a_500_is_retried(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    gitlab.fail_next("GET", r"/api/v4/projects/[^/]+$", 500)
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    do_publish(environ(gitlab), dist, outputs)
    assert len(open_mrs(manifests)) == 1
    statuses = [r.status for r in gitlab.requests if r.method == "GET" and r.path.count("/") == 4]
    assert 500 in statuses


def test_a_wrong_token_fails_cleanly_naming_the_scopes(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    with pytest.raises(GitLabAuthenticationError) as caught:
        do_publish(environ(gitlab, MANIFESTS_TOKEN="glpat-wrong-token-000000"), dist, outputs)
    assert "401" in str(caught.value) and "api, write_repository" in str(caught.value)
    assert manifests.branches() == ["main"]
    assert manifests.merge_requests == []


def test_job_token_alone_fails_before_any_work(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    env = environ(gitlab, CI_JOB_TOKEN="job-token-value-abcdef")
    del env["MANIFESTS_TOKEN"]
    before = len(gitlab.requests)
    with pytest.raises(ConfigError) as caught:
        do_publish(env, tmp_path / "missing-dist", outputs)
    assert "CI_JOB_TOKEN" in str(caught.value) and "MANIFESTS_TOKEN" in str(caught.value)
    assert "write_repository" in str(caught.value)
    assert len(gitlab.requests) == before


def test_nothing_configured_names_both_ways(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no manifests repository") as caught:
        publish(
            tmp_path,
            Settings({}, {}),
            Options(),
            outdir=tmp_path,
            progress=Progress(io.StringIO()),
        )
    assert "MANIFESTS_PROJECT" in str(caught.value) and "MANIFESTS_GIT_URL" in str(caught.value)


def test_protected_publish_branch_names_the_role_needed(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    gitlab.protect_branch(manifests, BRANCH, push_access_level=40)
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    with pytest.raises(GitError) as caught:
        do_publish(environ(gitlab), dist, outputs)
    assert "Maintainer" in str(caught.value)
    assert manifests.merge_requests == []


def test_plain_secrets_are_refused_by_name(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "stringData": {"password": "hunter2-hunter2"},
    }
    dist = write_dist(tmp_path / "dist", {"db.k8s.yaml": [secret]})
    with pytest.raises(ManifestError, match="shop/db") as caught:
        do_publish(environ(gitlab), dist, outputs)
    assert "Sealed Secrets" in str(caught.value)
    assert manifests.branches() == ["main"]


def test_a_file_publish_does_not_own_is_refused_unless_adopted(
    gitlab: FakeGitLab, tmp_path: Path, outputs: list[str]
) -> None:
    project = gitlab.add_project(PROJECT, initial_files=HAND_WRITTEN)
    project.commit_files("main", {INDEX_FILE: "# index\nother.yaml\n"})
    dist = write_dist(tmp_path / "dist", {"old-app.yaml": [configmap("old")]})
    with pytest.raises(ManifestError, match=r"old-app\.yaml"):
        do_publish(environ(gitlab), dist, outputs)
    do_publish(environ(gitlab), dist, outputs, adopt=True)
    assert len(open_mrs(project)) == 1


def test_dry_run_changes_nothing(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    run = do_publish(environ(gitlab), dist, outputs, dry_run=True)
    assert run.result is not None and run.result.status == "dry-run"
    assert any("open a merge request" in line for line in run.result.plan)
    assert [r for r in gitlab.requests if r.is_write] == []
    assert manifests.branches() == ["main"]


def test_local_mode_pushes_to_a_bare_repository(tmp_path: Path, outputs: list[str]) -> None:
    bare = tmp_path / "manifests.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(bare)], check=True)
    seed = tmp_path / "seed"
    subprocess.run(
        ["git", "clone", "--quiet", str(bare), str(seed)], check=True, capture_output=True
    )
    (seed / "README.md").write_text("hi\n")
    git = ["git", "-C", str(seed), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "seed"], check=True)
    subprocess.run([*git, "push", "--quiet", "origin", "main"], check=True)
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    env = {"MANIFESTS_GIT_URL": str(bare), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    run = do_publish(env, dist, outputs)
    assert run.result is not None and run.result.pushed
    assert run.result.branch == "gitopskit/local" and run.result.merge_request_url is None
    listed = subprocess.run(
        ["git", "-C", str(bare), "ls-tree", "--name-only", "gitopskit/local"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert listed == [INDEX_FILE, "README.md", "web.k8s.yaml"]
    again = do_publish(env, dist, outputs)
    assert again.result is not None and not again.result.pushed


def test_invoke_publish_prints_the_url_and_leaks_nothing(
    gitlab: FakeGitLab, manifests: FakeProject, project: Path
) -> None:
    write_dist(project / "dist", {"web.k8s.yaml": [configmap("web")]})
    env = environ(gitlab)
    env.pop("PATH")
    env.pop("HOME")
    done = run_invoke(project, "publish", "--no-synth", env=env)
    assert done.returncode == 0, done.stderr
    (mr,) = manifests.merge_requests
    assert done.stdout == mr["web_url"] + "\n"
    assert TOKEN not in done.stdout + done.stderr
    failed = run_invoke(
        project, "publish", "--no-synth", env={**env, "MANIFESTS_TOKEN": "glpat-wrong-token-000000"}
    )
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert "401" in failed.stderr
    assert "glpat-wrong-token-000000" not in failed.stdout + failed.stderr
    for request in gitlab.requests:
        assert TOKEN not in str(request.headers) + request.path + str(request.query)
    assert TOKEN not in manifests.git("log", "--all", "--format=%B%an%ae")


def test_unchanged_files_are_counted_without_being_compared(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    dist = tmp_path / "dist"
    files = {f"c{i}.k8s.yaml": [configmap(f"c{i}", v="1"), configmap(f"d{i}")] for i in range(3)}
    write_dist(dist, files)
    do_publish(environ(gitlab), dist, outputs)
    merge(manifests)
    write_dist(dist, {**files, "c0.k8s.yaml": [configmap("c0", v="2"), configmap("d0")]})
    run = do_publish(environ(gitlab), dist, outputs)
    assert run.result is not None and run.result.diff is not None
    assert run.result.diff.summary == {
        "added": 0,
        "removed": 0,
        "changed": 1,
        "unchanged": 5,
        "moved": 0,
    }


def test_merge_request_options_labels_draft_assignee_auto_merge(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    gitlab.add_user("ada", "glpat-ada-0000000000000000", access_level=DEVELOPER)
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    do_publish(
        environ(gitlab),
        dist,
        outputs,
        labels=["gitops", "cdk8s"],
        draft=True,
        assignee="ada",
        auto_merge=True,
    )
    (mr,) = open_mrs(manifests)
    assert mr["title"] == "Draft: Scale the web front end" and mr["draft"] is True
    assert sorted(mr["labels"]) == ["cdk8s", "gitops"]
    assert mr["assignee"]["username"] == "ada"
    assert mr["merge_when_pipeline_succeeds"] is True


def test_branch_per_commit_keeps_earlier_merge_requests(
    gitlab: FakeGitLab, manifests: FakeProject, tmp_path: Path, outputs: list[str]
) -> None:
    dist = tmp_path / "dist"
    write_dist(dist, {"web.k8s.yaml": [configmap("web", a="1")]})
    do_publish(environ(gitlab), dist, outputs, branch_per_commit=True)
    write_dist(dist, {"web.k8s.yaml": [configmap("web", a="2")]})
    second_sha = "fedcba9876543210fedcba9876543210fedcba98"
    do_publish(environ(gitlab, CI_COMMIT_SHA=second_sha), dist, outputs, branch_per_commit=True)
    branches = sorted(mr["source_branch"] for mr in open_mrs(manifests))
    assert branches == ["gitopskit/shop-app-01234567", "gitopskit/shop-app-fedcba98"]


def test_manifests_path_confines_publish_to_its_directory(
    gitlab: FakeGitLab, tmp_path: Path, outputs: list[str]
) -> None:
    project = gitlab.add_project(
        PROJECT,
        initial_files={
            **HAND_WRITTEN,
            "clusters/prod/old.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: o}\n",
            "clusters/prod/addons/keep.yaml": "kind: Keep\n",
            "clusters/staging/web.k8s.yaml": "kind: Staging\n",
        },
    )
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    do_publish(environ(gitlab, MANIFESTS_PATH="clusters/prod"), dist, outputs)
    files = set(project.list_files(BRANCH))
    assert {"clusters/prod/web.k8s.yaml", f"clusters/prod/{INDEX_FILE}"} <= files
    assert "clusters/prod/old.yaml" not in files  # adopted from the top of MANIFESTS_PATH
    assert "clusters/prod/addons/keep.yaml" in files
    assert project.read_file(BRANCH, "clusters/staging/web.k8s.yaml") == b"kind: Staging\n"
    assert "old-app.yaml" in files  # outside MANIFESTS_PATH: never touched


def test_no_network_is_one_clear_failure(tmp_path: Path, outputs: list[str]) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **CI,
        "GITLAB_URL": f"http://127.0.0.1:{port}",
        "MANIFESTS_PROJECT": PROJECT,
        "MANIFESTS_TOKEN": TOKEN,
    }
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": [configmap("web")]})
    with pytest.raises(GitLabError) as caught:
        do_publish(env, dist, outputs)
    assert "cannot reach GitLab" in str(caught.value)
    assert TOKEN not in str(caught.value)
