"""Projects, users and branches, and the pagination every list shares."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from tests.fakes.gitlab._base import _FORBIDDEN, _json, _msg, _Principal, _Response, _State
from tests.fakes.gitlab._model import DEVELOPER, MAINTAINER, FakeProject, FakeUser, _now


class _ProjectsAPI(_State):
    """``/user``, ``/users``, ``/projects/:id`` and its branches; ``_paginate`` for every list."""

    # -- users -------------------------------------------------------------------------------
    def _user_get(self, who: _Principal) -> _Response:
        if who.user is None:
            return _msg(401, "401 Unauthorized")
        return _json(200, self._render_user(who.user, full=True))

    def _users_list(self, params: Mapping[str, Any]) -> _Response:
        # GET /users?username=NAME: a list of at most one user (GitLab's exact match).
        wanted = params.get("username")
        users = [
            self._render_user(u)
            for u in self.users.values()
            if wanted is None or u.username.lower() == str(wanted).lower()
        ]
        return _json(200, users)

    def _render_user(self, user: FakeUser, *, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": user.id,
            "username": user.username,
            "name": user.name,
            "state": "active",
            "avatar_url": None,
            "web_url": f"{self.url}/{user.username}",
        }
        if full:
            out.update(
                {
                    "email": user.email,
                    "public_email": user.email,
                    "bot": False,
                    "created_at": "2024-01-01T00:00:00.000Z",
                }
            )
        return out

    # -- projects ----------------------------------------------------------------------------
    def _render_project(self, p: FakeProject) -> dict[str, Any]:
        namespace = p.path_with_namespace.rsplit("/", 1)[0] if "/" in p.path_with_namespace else ""
        return {
            "id": p.id,
            "name": p.name,
            "path": p.name,
            "path_with_namespace": p.path_with_namespace,
            "name_with_namespace": p.path_with_namespace.replace("/", " / "),
            "namespace": {
                "id": 1,
                "name": namespace.rsplit("/", 1)[-1],
                "path": namespace.rsplit("/", 1)[-1],
                "kind": "group",
                "full_path": namespace,
            },
            "default_branch": p.default_branch,
            "visibility": p.visibility,
            "http_url_to_repo": p.http_url_to_repo,
            "ssh_url_to_repo": p.ssh_url_to_repo,
            "web_url": p.web_url,
            "created_at": p.created_at,
            "last_activity_at": _now(),
            "archived": False,
            "empty_repo": not p.branches(),
        }

    # -- branches ----------------------------------------------------------------------------
    def _branches_list(
        self, project: FakeProject, raw_path: str, params: Mapping[str, Any]
    ) -> _Response:
        names = project.branches()
        if search := params.get("search"):
            names = [n for n in names if str(search) in n]
        items = [self._render_branch(project, n) for n in names]
        return self._paginate([i for i in items if i], raw_path, params)

    def _branch(self, project: FakeProject, who: _Principal, name: str, method: str) -> _Response:
        if method == "GET":
            rendered = self._render_branch(project, name)
            if rendered is None:
                return _msg(404, "404 Branch Not Found")
            return _json(200, rendered)
        if method == "DELETE":
            if who.is_job or who.level < DEVELOPER:
                return _msg(*_FORBIDDEN)
            sha = project.branch_sha(name)
            if sha is None:
                return _msg(404, "404 Branch Not Found")
            if name == project.default_branch:
                return _msg(400, "The default branch of a project cannot be deleted.")
            if name in project.protected_branches and who.level < MAINTAINER:
                return _msg(
                    400,
                    "You are not allowed to delete protected branches from this "
                    "project. Only a project maintainer or owner can delete a "
                    "protected branch.",
                )
            project.git("update-ref", "-d", f"refs/heads/{name}", sha)
            return _json(204, None)
        return _json(404, {"error": "404 Not Found"})

    def _render_branch(self, project: FakeProject, name: str) -> dict[str, Any] | None:
        sha = project.branch_sha(name)
        if sha is None:
            return None
        default_sha = project.branch_sha(project.default_branch)
        merged = False
        if name != project.default_branch and default_sha:
            merged = (
                project._run(
                    "merge-base", "--is-ancestor", sha, default_sha, check=False
                ).returncode
                == 0
            )
        protected = name in project.protected_branches
        return {
            "name": name,
            "commit": project._commit_info(sha),
            "merged": merged,
            "protected": protected,
            "developers_can_push": not protected or project.protected_branches[name] <= DEVELOPER,
            "developers_can_merge": not protected,
            "can_push": True,
            "default": name == project.default_branch,
            "web_url": f"{project.web_url}/-/tree/{quote(name, safe='/')}",
        }

    # -- pagination --------------------------------------------------------------------------
    def _paginate(self, items: list[Any], raw_path: str, params: Mapping[str, Any]) -> _Response:
        try:
            page = max(1, int(params.get("page") or 1))
            per_page = min(100, max(1, int(params.get("per_page") or 20)))
        except ValueError:
            return _json(400, {"error": "page is invalid"})
        total = len(items)
        pages = max(1, math.ceil(total / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        base = {k: v for k, v in params.items() if not isinstance(v, (dict, list))}

        def link(n: int) -> str:
            return f"{self.url}{raw_path}?{urlencode({**base, 'page': n, 'per_page': per_page})}"

        links = []
        if page < pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        links += [f'<{link(1)}>; rel="first"', f'<{link(pages)}>; rel="last"']
        headers = [
            ("X-Total", str(total)),
            ("X-Total-Pages", str(pages)),
            ("X-Per-Page", str(per_page)),
            ("X-Page", str(page)),
            ("X-Next-Page", str(page + 1) if page < pages else ""),
            ("X-Prev-Page", str(page - 1) if page > 1 else ""),
            ("Link", ", ".join(links)),
        ]
        return _json(200, chunk, headers)
