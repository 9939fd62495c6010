"""A fake GitLab server for tests: REST v4 subset + git smart HTTP, over a real socket.

It speaks the real wire protocol, so real ``python-gitlab`` and real ``git`` talk to it::

    with FakeGitLab(tmp_path) as fake:
        fake.add_user("bot", "glpat-bot", access_level=MAINTAINER)
        project = fake.add_project("group/manifests", initial_files={"README.md": "hi\\n"})
        gl = gitlab.Gitlab(fake.url, private_token="glpat-bot")
        env = git_auth_env(fake.url, "bot", "glpat-bot", home=tmp_path / "home")
        subprocess.run(["git", "clone", project.http_url_to_repo, "wc"], env=env, check=True)

Public API
----------
``FakeGitLab(root: Path)``
    ``url`` (``"http://127.0.0.1:PORT"``, set by ``start()``), context manager, ``start()``,
    ``stop()`` (shuts the server down, closes kept-alive connections, joins every thread).
    ``add_user(username, token, *, access_level=40, scopes=("api", "write_repository"),
    name=None, email=None) -> FakeUser``; ``add_job_token(token)``;
    ``add_project(path_with_namespace, *, default_branch="main", initial_files=None)
    -> FakeProject``; ``protect_branch(project, name, push_access_level=40)``;
    ``fail_next(method, path_regex, status, *, times=1, body=None, headers=None)``
    (checked before auth, against the raw and the URL-decoded path, ``re.search``);
    ``projects: dict[int, FakeProject]``; ``users: dict[str, FakeUser]``;
    ``requests: list[RecordedRequest]`` (every request, API and git; token headers
    are redacted: ``Authorization: "Basic ***"``, ``PRIVATE-TOKEN: "***"``);
    ``errors: list[str]`` (tracebacks of handler crashes, answered 500);
    ``ssh_url_base: str | None`` (e.g. ``"ssh://git@127.0.0.1:2222/"``; default form
    ``git@127.0.0.1:group/name.git``).
``FakeProject``
    ``id, path_with_namespace, name, default_branch, repo_path, merge_requests (list of
    dicts), deploy_keys (list of dicts), notes (dict MR iid -> list of dicts),
    protected_branches (dict name -> push access level)``; properties ``http_url_to_repo,
    ssh_url_to_repo, web_url``; helpers ``branch_sha(name) -> str | None``,
    ``branches() -> list[str]``, ``read_file(ref, path) -> bytes``, ``list_files(ref)``,
    ``commit_count(ref)``, ``merge_request(iid) -> dict | None`` (rendered, fresh ``sha``),
    ``commit_files(branch, files, message=..., *, start_branch=None) -> str``
    (server-side commit; a new branch starts from the default branch; ``None`` deletes a file),
    ``git(*args) -> str``.
Module helpers: ``basic_auth_header(user, token)``, ``git_auth_env(url, user, token, home=)``,
``fake_gitlab_server(tmp_path)`` (a generator to wrap with ``pytest.fixture``).

Behaviour notes (GitLab's, as far as verified): every API answer is JSON; errors are
``{"message": ...}`` (validation: ``{"error": "x is missing"}``; unknown route:
``{"error": "404 Not Found"}``); 401 ``{"message": "401 Unauthorized"}`` on a missing or
unknown token. Job tokens (``JOB-TOKEN`` header, or git user ``gitlab-ci-token``) are
read-only. Deploy keys follow ``lib/api/deploy_keys.rb``: posting the same key text again
to the same project returns the existing key (201); a different text with an already
registered fingerprint answers 400 ``{"message": {"deploy_key.fingerprint_sha256":
["has already been taken"]}}``; a key known on another project is attached to this one.

Layout: ``_model`` (levels, ``RecordedRequest``, ``FakeUser``, ``FakeProject``), ``_server``
(the HTTP server, ``FakeGitLab``: lifecycle, setup, dispatch, faults), ``_base`` (what the
handlers share), and the request handlers, mixins of ``FakeGitLab``: ``_api`` (REST auth,
parameters, routes), ``_projects`` (projects, users, branches, pagination),
``_merge_requests`` (with notes), ``_deploy_keys``, ``_git_http`` (git smart HTTP).
"""

from tests.fakes.gitlab._git_http import basic_auth_header, git_auth_env
from tests.fakes.gitlab._model import (
    DEVELOPER,
    MAINTAINER,
    REPORTER,
    FakeProject,
    FakeUser,
    RecordedRequest,
)
from tests.fakes.gitlab._server import FakeGitLab, fake_gitlab_server

__all__ = [
    "DEVELOPER",
    "MAINTAINER",
    "REPORTER",
    "FakeGitLab",
    "FakeProject",
    "FakeUser",
    "RecordedRequest",
    "basic_auth_header",
    "fake_gitlab_server",
    "git_auth_env",
]
