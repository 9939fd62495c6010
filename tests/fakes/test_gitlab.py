"""Tests of the fake GitLab, driven by real python-gitlab and real git."""

from __future__ import annotations

import base64
import gzip
import os
import shutil
import socket
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import gitlab
import pytest
import requests

from tests.fakes.gitlab import (
    DEVELOPER,
    FakeGitLab,
    FakeProject,
    basic_auth_header,
    fake_gitlab_server,
    git_auth_env,
)

fake = pytest.fixture(name="fake")(fake_gitlab_server)

MAINTAINER_TOKEN = "glpat-maintainer"
DEVELOPER_TOKEN = "glpat-developer"
JOB_TOKEN = "job-token"


@pytest.fixture
def project(fake: FakeGitLab) -> FakeProject:
    return fake.add_project(
        "group/sub/manifests", initial_files={"README.md": "hello\n", "apps/a.yaml": "a: 1\n"}
    )


def client(fake: FakeGitLab, token: str = MAINTAINER_TOKEN, **kwargs: object) -> gitlab.Gitlab:
    return gitlab.Gitlab(fake.url, private_token=token, **kwargs)  # type: ignore[arg-type]


def git(
    *args: str, env: dict[str, str], cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], env=env, cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {args} failed: {proc.stderr}")
    return proc


def ed25519_key(comment: str = "deploy", seed: bytes | None = None) -> str:
    raw = seed or os.urandom(32)
    blob = len(b"ssh-ed25519").to_bytes(4, "big") + b"ssh-ed25519" + (32).to_bytes(4, "big") + raw
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def error_body(exc: gitlab.GitlabError) -> object:
    """The decoded ``message`` (python-gitlab types it as str; GitLab sends lists/dicts too)."""
    return exc.error_message


# -- REST --------------------------------------------------------------------------------------


def test_auth_missing_or_unknown_token_is_401(fake: FakeGitLab) -> None:
    with pytest.raises(gitlab.GitlabAuthenticationError):
        client(fake, "nope").auth()
    resp = requests.get(f"{fake.url}/api/v4/user", timeout=5)
    assert resp.status_code == 401
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"message": "401 Unauthorized"}
    assert requests.get(f"{fake.url}/api/v4/nothing", timeout=5).status_code == 401


def test_user_and_project_by_path_and_id(fake: FakeGitLab, project: FakeProject) -> None:
    gl = client(fake)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gl.auth()
    assert gl.user is not None and gl.user.username == "maintainer"
    by_path = gl.projects.get("group/sub/manifests")
    by_id = gl.projects.get(project.id)
    assert by_path.id == by_id.id == project.id
    assert by_path.http_url_to_repo == f"{fake.url}/group/sub/manifests.git"
    assert by_path.ssh_url_to_repo == "git@127.0.0.1:group/sub/manifests.git"
    assert by_path.default_branch == "main"
    fake.ssh_url_base = "ssh://git@127.0.0.1:2222/"
    assert gl.projects.get(project.id).ssh_url_to_repo == (
        "ssh://git@127.0.0.1:2222/group/sub/manifests.git"
    )
    lazy = gl.projects.get("group/sub/manifests", lazy=True)
    assert lazy.mergerequests.list() == []
    assert fake.requests[-1].path == "/api/v4/projects/group%2Fsub%2Fmanifests/merge_requests"
    with pytest.raises(gitlab.GitlabGetError) as err:
        gl.projects.get("group/none")
    assert err.value.response_code == 404
    assert err.value.error_message == "404 Project Not Found"
    assert requests.get(
        f"{fake.url}/api/v4/projects/1/nope", headers={"PRIVATE-TOKEN": MAINTAINER_TOKEN}
    ).json() == {"error": "404 Not Found"}


def test_merge_request_lifecycle(fake: FakeGitLab, project: FakeProject) -> None:
    sha = project.commit_files("update", {"apps/a.yaml": "a: 2\n"}, "change a")
    mrs = client(fake).projects.get(project.id).mergerequests
    mr = mrs.create(
        {
            "source_branch": "update",
            "target_branch": "main",
            "title": "Update manifests",
            "description": "body",
            "labels": "gitops,auto",
            "remove_source_branch": True,
        }
    )
    assert (mr.iid, mr.state, mr.sha, mr.labels, mr.draft) == (
        1,
        "opened",
        sha,
        ["auto", "gitops"],
        False,
    )
    assert mr.force_remove_source_branch is True
    assert mr.web_url == f"{project.web_url}/-/merge_requests/1"

    with pytest.raises(gitlab.GitlabCreateError) as err:
        mrs.create({"source_branch": "update", "target_branch": "main", "title": "again"})
    assert err.value.response_code == 409
    assert error_body(err.value) == [
        "Another open merge request already exists for this source branch: !1"
    ]
    with pytest.raises(gitlab.GitlabCreateError) as err:
        mrs.create({"source_branch": "main", "target_branch": "main", "title": "x"})
    assert err.value.response_code == 422
    with pytest.raises(gitlab.GitlabCreateError) as err:
        mrs.create({"source_branch": "update", "target_branch": "main", "title": ""})
    assert err.value.response_code == 400
    assert err.value.error_message == "title is missing"

    # sha follows the source branch at read time
    new_sha = project.commit_files("update", {"apps/b.yaml": "b: 1\n"}, "add b")
    assert mrs.get(1).sha == new_sha
    assert [m.iid for m in mrs.list(state="opened", source_branch="update")] == [1]
    assert mrs.list(state="opened", source_branch="other") == []
    assert mrs.list(state="merged") == []

    mr.title = "Update manifests (2)"
    mr.labels = ["gitops"]
    mr.save()
    assert mrs.get(1).title == "Update manifests (2)"
    assert project.merge_request(1)["labels"] == ["gitops"]  # type: ignore[index]
    put = fake.requests[-2]
    assert put.method == "PUT" and set(put.json()) == {"title", "labels"}

    mr.state_event = "close"
    mr.save()
    assert mrs.get(1).state == "closed"
    assert mrs.list(state="opened") == []
    assert [m.iid for m in mrs.list(state="closed")] == [1]
    # a closed MR no longer blocks a new one
    assert mrs.create({"source_branch": "update", "target_branch": "main", "title": "n"}).iid == 2


def test_merge_request_pagination_headers(fake: FakeGitLab, project: FakeProject) -> None:
    mrs = client(fake).projects.get(project.id).mergerequests
    for i in range(3):
        project.commit_files(f"b{i}", {"f": str(i)})
        mrs.create({"source_branch": f"b{i}", "target_branch": "main", "title": f"t{i}"})
    assert len(mrs.list(per_page=2, get_all=True)) == 3
    resp = requests.get(
        f"{fake.url}/api/v4/projects/{project.id}/merge_requests",
        params={"per_page": "2", "state": "opened"},
        headers={"PRIVATE-TOKEN": MAINTAINER_TOKEN},
        timeout=5,
    )
    assert resp.headers["X-Total"] == "3"
    assert resp.headers["X-Page"] == "1" and resp.headers["X-Next-Page"] == "2"
    assert resp.links["next"]["url"].startswith(fake.url)
    assert [m["iid"] for m in resp.json()] == [3, 2]


def test_draft_and_merge_when_pipeline_succeeds(fake: FakeGitLab, project: FakeProject) -> None:
    project.commit_files("feat", {"x": "1"})
    mrs = client(fake).projects.get(project.id).mergerequests
    mr = mrs.create({"source_branch": "feat", "target_branch": "main", "title": "t", "draft": True})
    assert mr.title == "Draft: t" and mr.draft is True
    mr.merge(merge_when_pipeline_succeeds=True)
    assert project.merge_request(1)["merge_when_pipeline_succeeds"] is True  # type: ignore[index]
    mr.merge()  # immediate merge creates a real merge commit
    assert mrs.get(1).state == "merged"
    assert project.read_file("main", "x") == b"1"


def test_notes_create_edit_and_job_token(fake: FakeGitLab, project: FakeProject) -> None:
    project.commit_files("feat", {"x": "1"})
    mrs = client(fake).projects.get(project.id).mergerequests
    mr = mrs.create({"source_branch": "feat", "target_branch": "main", "title": "t"})
    note = mr.notes.create({"body": "diff summary"})
    assert note.author["username"] == "maintainer" and note.system is False
    note.body = "diff summary v2"
    note.save()
    assert [n.body for n in mr.notes.list()] == ["diff summary v2"]

    job = gitlab.Gitlab(fake.url, job_token=JOB_TOKEN)
    job_mr = job.projects.get(project.id, lazy=True).mergerequests.get(1)
    assert [n.body for n in job_mr.notes.list()] == ["diff summary v2"]
    with pytest.raises(gitlab.GitlabCreateError) as err:
        job_mr.notes.create({"body": "nope"})
    assert err.value.response_code == 403


def test_job_token_cannot_create_or_update_merge_requests(
    fake: FakeGitLab, project: FakeProject
) -> None:
    project.commit_files("feat", {"x": "1"})
    job = gitlab.Gitlab(fake.url, job_token=JOB_TOKEN).projects.get(project.id, lazy=True)
    with pytest.raises(gitlab.GitlabCreateError) as err:
        job.mergerequests.create({"source_branch": "feat", "target_branch": "main", "title": "t"})
    assert err.value.response_code == 403
    assert err.value.error_message == "403 Forbidden"
    assert job.mergerequests.list() == []
    assert project.merge_requests == []


def test_deploy_keys(fake: FakeGitLab, project: FakeProject, tmp_path: Path) -> None:
    keys = client(fake).projects.get(project.id).keys
    seed = os.urandom(32)
    text = ed25519_key("flux", seed)
    key = keys.create({"title": "flux", "key": text, "can_push": True})
    assert key.can_push is True and key.expires_at is None
    assert key.fingerprint_sha256.startswith("SHA256:")
    if shutil.which("ssh-keygen"):
        (tmp_path / "k.pub").write_text(text + "\n")
        out = subprocess.run(
            ["ssh-keygen", "-l", "-f", str(tmp_path / "k.pub")], capture_output=True, text=True
        ).stdout
        assert out.split()[1] == key.fingerprint_sha256
        out = subprocess.run(
            ["ssh-keygen", "-l", "-E", "md5", "-f", str(tmp_path / "k.pub")],
            capture_output=True,
            text=True,
        ).stdout
        assert out.split()[1] == "MD5:" + key.fingerprint
    # GitLab returns the key already joined to the project for the same text ...
    assert keys.create({"title": "again", "key": text}).id == key.id
    # ... and refuses the same key material under another text
    with pytest.raises(gitlab.GitlabCreateError) as err:
        keys.create({"title": "other", "key": ed25519_key("other-comment", seed)})
    assert err.value.response_code == 400
    assert error_body(err.value) == {"deploy_key.fingerprint_sha256": ["has already been taken"]}
    with pytest.raises(gitlab.GitlabCreateError) as err:
        keys.create({"title": "junk", "key": "ssh-ed25519 not-base64!!"})
    assert err.value.response_code == 400

    key.title = "flux-renamed"
    key.save()
    assert [k.title for k in keys.list()] == ["flux-renamed"]

    dev_keys = client(fake, DEVELOPER_TOKEN).projects.get(project.id, lazy=True).keys
    with pytest.raises(gitlab.GitlabListError) as lerr:
        dev_keys.list()
    assert lerr.value.response_code == 403
    with pytest.raises(gitlab.GitlabCreateError):
        dev_keys.create({"title": "x", "key": ed25519_key()})

    keys.delete(key.id)
    assert keys.list() == []
    assert fake.requests[-2].method == "DELETE" and fake.requests[-2].status == 204


def test_branches_get_and_delete(fake: FakeGitLab, project: FakeProject) -> None:
    sha = project.commit_files("gitops/update", {"x": "1"}, "feature")
    branches = client(fake).projects.get(project.id).branches
    branch = branches.get("gitops/update")
    assert branch.commit["id"] == sha and branch.protected is False and branch.default is False
    assert branch.commit["title"] == "feature"
    assert fake.requests[-1].path.endswith("/repository/branches/gitops%2Fupdate")
    assert {b.name for b in branches.list()} == {"main", "gitops/update"}
    main = branches.get("main")
    assert main.default is True
    with pytest.raises(gitlab.GitlabDeleteError) as err:
        branches.delete("main")
    assert err.value.response_code == 400
    branches.delete("gitops/update")
    assert project.branch_sha("gitops/update") is None
    with pytest.raises(gitlab.GitlabGetError) as gerr:
        branches.get("gitops/update")
    assert gerr.value.error_message == "404 Branch Not Found"


def test_fail_next_then_success_with_retries(fake: FakeGitLab, project: FakeProject) -> None:
    fake.fail_next("GET", r"/projects/[^/]+$", 500, times=2)
    gl = client(fake, retry_transient_errors=True)
    assert gl.projects.get(project.id).id == project.id
    assert [r.status for r in fake.requests] == [500, 500, 200]
    fake.fail_next("GET", r"/projects/[^/]+$", 500)
    with pytest.raises(gitlab.GitlabGetError) as err:
        client(fake).projects.get(project.id)
    assert err.value.response_code == 500
    fake.fail_next("GET", r"/merge_requests", 429, headers={"Retry-After": "0"})
    assert client(fake).projects.get(project.id, lazy=True).mergerequests.list() == []
    assert [r.status for r in fake.requests[-2:]] == [429, 200]


# -- git over HTTP -----------------------------------------------------------------------------


@pytest.fixture
def maint_env(fake: FakeGitLab, tmp_path: Path) -> dict[str, str]:
    return git_auth_env(fake.url, "maintainer", MAINTAINER_TOKEN, home=tmp_path / "home")


def test_clone_push_and_large_chunked_push(
    fake: FakeGitLab, project: FakeProject, tmp_path: Path, maint_env: dict[str, str]
) -> None:
    wc = tmp_path / "wc"
    git("clone", "-q", project.http_url_to_repo, str(wc), env=maint_env)
    assert (wc / "apps" / "a.yaml").read_text() == "a: 1\n"
    git("checkout", "-q", "-b", "update", env=maint_env, cwd=wc)
    (wc / "apps" / "a.yaml").write_text("a: 2\n")
    git("commit", "-qam", "change", env=maint_env, cwd=wc)
    git("push", "-q", "origin", "update", env=maint_env, cwd=wc)
    assert project.read_file("update", "apps/a.yaml") == b"a: 2\n"
    assert project.commit_count("update") == 2

    (wc / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    git("add", "big.bin", env=maint_env, cwd=wc)
    git("commit", "-qm", "big", env=maint_env, cwd=wc)
    git("push", "-q", "-o", "merge_request.create", "origin", "update", env=maint_env, cwd=wc)
    assert "big.bin" in project.list_files("update")
    head = git("rev-parse", "HEAD", env=maint_env, cwd=wc).stdout.strip()
    assert project.branch_sha("update") == head
    pushes = [r for r in fake.requests if r.path.endswith("/git-receive-pack")]
    assert any(r.header("Transfer-Encoding") == "chunked" for r in pushes)
    assert all(r.user == "maintainer" for r in pushes)
    # never a token in clear in the records
    for rec in fake.requests:
        assert MAINTAINER_TOKEN not in repr(rec.headers)
        assert rec.header("Authorization") in (None, "Basic ***")


def test_git_without_credentials_gets_401_challenge(
    fake: FakeGitLab, project: FakeProject, tmp_path: Path, maint_env: dict[str, str]
) -> None:
    env = {k: v for k, v in maint_env.items() if not k.startswith("GIT_CONFIG_")}
    proc = git("clone", project.http_url_to_repo, str(tmp_path / "wc"), env=env, check=False)
    assert proc.returncode != 0
    resp = requests.get(f"{project.http_url_to_repo}/info/refs?service=git-upload-pack", timeout=5)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="GitLab"'
    resp = requests.get(
        f"{project.http_url_to_repo}/info/refs?service=git-upload-pack",
        headers={"Authorization": basic_auth_header("x", "wrong")},
        timeout=5,
    )
    assert resp.status_code == 401


def test_job_token_can_clone_but_not_push(
    fake: FakeGitLab, project: FakeProject, tmp_path: Path
) -> None:
    env = git_auth_env(fake.url, "gitlab-ci-token", JOB_TOKEN, home=tmp_path / "home")
    wc = tmp_path / "wc"
    git("clone", "-q", project.http_url_to_repo, str(wc), env=env)
    git("commit", "-q", "--allow-empty", "-m", "x", env=env, cwd=wc)
    proc = git("push", "origin", "HEAD:refs/heads/ci", env=env, cwd=wc, check=False)
    assert proc.returncode != 0 and "403" in proc.stderr
    assert project.branch_sha("ci") is None


def test_push_to_protected_branch_is_refused(
    fake: FakeGitLab, project: FakeProject, tmp_path: Path
) -> None:
    fake.protect_branch(project, "main", push_access_level=40)
    env = git_auth_env(fake.url, "developer", DEVELOPER_TOKEN, home=tmp_path / "home")
    wc = tmp_path / "wc"
    git("clone", "-q", project.http_url_to_repo, str(wc), env=env)
    before = project.branch_sha("main")
    git("commit", "-q", "--allow-empty", "-m", "x", env=env, cwd=wc)
    proc = git("push", "origin", "main", env=env, cwd=wc, check=False)
    assert proc.returncode != 0
    assert (
        "remote: GitLab: You are not allowed to push code to protected branches on this project."
        in proc.stderr
    )
    assert "! [remote rejected] main -> main (pre-receive hook declined)" in proc.stderr
    assert project.branch_sha("main") == before
    # Developer may push other branches
    git("push", "-q", "origin", "main:refs/heads/dev-branch", env=env, cwd=wc)
    assert project.branch_sha("dev-branch") is not None
    dev = fake.users["developer"]
    assert dev.access_level == DEVELOPER


# -- lifecycle ---------------------------------------------------------------------------------


def test_stop_joins_threads_and_closes_the_port(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    server = FakeGitLab(tmp_path / "srv")
    server.add_user("u", "t")
    with server:
        port = int(server.url.rsplit(":", 1)[1])
        session = requests.Session()  # keeps a kept-alive connection open
        assert session.get(f"{server.url}/api/v4/user", headers={"PRIVATE-TOKEN": "t"}).ok
        thread = server.thread
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()
    assert set(threading.enumerate()) <= before
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    session.close()


def test_fixture_generator_stops_server(tmp_path: Path) -> None:
    gen: Iterator[FakeGitLab] = fake_gitlab_server(tmp_path)
    server = next(gen)
    thread = server.thread
    assert thread is not None and thread.is_alive()
    with pytest.raises(StopIteration):
        next(gen)
    assert not thread.is_alive()


def test_gzip_request_body_is_inflated_by_http_backend(
    fake: FakeGitLab, project: FakeProject
) -> None:
    sha = project.branch_sha("main")
    assert sha is not None

    def pkt(line: str) -> bytes:
        return f"{len(line) + 4:04x}{line}".encode()

    body = pkt(f"want {sha} ofs-delta\n") + b"0000" + pkt("done\n")
    resp = requests.post(
        f"{project.http_url_to_repo}/git-upload-pack",
        data=gzip.compress(body),
        headers={
            "Authorization": basic_auth_header("maintainer", MAINTAINER_TOKEN),
            "Content-Type": "application/x-git-upload-pack-request",
            "Content-Encoding": "gzip",
        },
        timeout=10,
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/x-git-upload-pack-result"
    assert b"PACK" in resp.content


def test_concurrent_creates_yield_one_merge_request(fake: FakeGitLab, project: FakeProject) -> None:
    project.commit_files("race", {"x": "1"})
    codes: list[int] = []

    def create() -> None:
        resp = requests.post(
            f"{fake.url}/api/v4/projects/{project.id}/merge_requests",
            json={"source_branch": "race", "target_branch": "main", "title": "t"},
            headers={"PRIVATE-TOKEN": MAINTAINER_TOKEN},
            timeout=10,
        )
        codes.append(resp.status_code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201] + [409] * 7
    assert len(project.merge_requests) == 1


def test_job_token_gets_403_on_deploy_keys_and_branch_delete(
    fake: FakeGitLab, project: FakeProject
) -> None:
    project.commit_files("feat", {"x": "1"})
    job = gitlab.Gitlab(fake.url, job_token=JOB_TOKEN).projects.get(project.id, lazy=True)
    with pytest.raises(gitlab.GitlabListError) as err:
        job.keys.list()
    assert err.value.response_code == 403
    with pytest.raises(gitlab.GitlabDeleteError) as derr:
        job.branches.delete("feat")
    assert derr.value.response_code == 403
    assert job.branches.get("feat").name == "feat"
    assert not any(r.header("JOB-TOKEN") == JOB_TOKEN for r in fake.requests)
