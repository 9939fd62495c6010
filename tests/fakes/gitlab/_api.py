"""The REST API v4: token auth and scopes, request parameters, and the route table."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

from tests.fakes.gitlab._base import _json, _msg, _Principal, _Response
from tests.fakes.gitlab._deploy_keys import _DeployKeysAPI
from tests.fakes.gitlab._merge_requests import _MergeRequestsAPI
from tests.fakes.gitlab._model import API_PREFIX, FakeProject, RecordedRequest


class _RestAPI(_MergeRequestsAPI, _DeployKeysAPI):
    """Requests under ``/api/v4``: authenticated, parsed and routed to the resource handlers."""

    def _api_principal(self, headers: Mapping[str, str]) -> _Principal | None:
        lower = {k.lower(): v for k, v in headers.items()}
        token = lower.get("private-token")
        auth = lower.get("authorization", "")
        if token is None and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        with self._lock:
            if token is not None:
                user = next((u for u in self.users.values() if u.token == token), None)
                return None if user is None else _Principal(user, user.username)
            job = lower.get("job-token")
            if job is not None and job in self._job_tokens:
                return _Principal(None, "gitlab-ci-token")
        return None

    @staticmethod
    def _params(query_string: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        params: dict[str, Any] = {}

        def merge_form(pairs: dict[str, list[str]]) -> None:
            for key, values in pairs.items():
                if key.endswith("[]"):
                    params[key[:-2]] = values
                else:
                    params[key] = values[-1]

        merge_form(parse_qs(query_string, keep_blank_values=True))
        ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if body:
            if "json" in ctype:
                data = json.loads(body)
                if isinstance(data, dict):
                    params.update(data)
            else:
                merge_form(parse_qs(body.decode(), keep_blank_values=True))
        return params

    def _api(
        self,
        rec: RecordedRequest,
        method: str,
        raw_path: str,
        query_string: str,
        headers: dict[str, str],
        body: bytes,
    ) -> _Response:
        principal = self._api_principal(headers)
        if principal is None:
            return _msg(401, "401 Unauthorized")
        rec.user = principal.label
        if principal.user is not None:
            scopes = set(principal.user.scopes)
            if "api" not in scopes and not (method == "GET" and "read_api" in scopes):
                return _json(
                    403,
                    {
                        "error": "insufficient_scope",
                        "error_description": "The request requires higher privileges than "
                        "provided by the access token.",
                        "scope": "api read_api" if method == "GET" else "api",
                    },
                )
        try:
            params = self._params(query_string, headers, body)
        except (ValueError, UnicodeDecodeError):
            return _msg(400, "400 Bad request - Invalid JSON")
        sub = raw_path[len(API_PREFIX) :]
        if sub == "/user" and method == "GET":
            return self._user_get(principal)
        if sub == "/users" and method == "GET":
            return self._users_list(params)
        if sub == "/version" and method == "GET":
            return _json(200, {"version": "17.0.0-fake", "revision": "fake"})
        m = re.fullmatch(r"/projects/([^/]+)(/.*)?", sub)
        if m is None:
            return _json(404, {"error": "404 Not Found"})
        project = self._find_project(unquote(m.group(1)))
        if project is None:
            return _msg(404, "404 Project Not Found")
        rest = m.group(2) or ""
        with self._lock:
            return self._project_route(project, principal, method, raw_path, rest, params)

    def _project_route(
        self,
        project: FakeProject,
        who: _Principal,
        method: str,
        raw_path: str,
        rest: str,
        params: dict[str, Any],
    ) -> _Response:
        if rest in ("", "/"):
            if method == "GET":
                return _json(200, self._render_project(project))
        elif rest == "/merge_requests":
            if method == "GET":
                return self._mr_list(project, raw_path, params)
            if method == "POST":
                return self._mr_create(project, who, params)
        elif m := re.fullmatch(r"/merge_requests/(\d+)", rest):
            mr = project._find_mr(int(m.group(1)))
            if mr is None:
                return _msg(404, "404 Not found")
            if method == "GET":
                return _json(200, self._render_mr(project, mr))
            if method == "PUT":
                return self._mr_update(project, who, mr, params)
        elif m := re.fullmatch(r"/merge_requests/(\d+)/merge", rest):
            mr = project._find_mr(int(m.group(1)))
            if mr is None:
                return _msg(404, "404 Not found")
            if method == "PUT":
                return self._mr_merge(project, who, mr, params)
        elif m := re.fullmatch(r"/merge_requests/(\d+)/notes(?:/(\d+))?", rest):
            mr = project._find_mr(int(m.group(1)))
            if mr is None:
                return _msg(404, "404 Not found")
            note_id = int(m.group(2)) if m.group(2) else None
            return self._notes(project, who, mr, note_id, method, raw_path, params)
        elif rest == "/repository/branches":
            if method == "GET":
                return self._branches_list(project, raw_path, params)
        elif rest.startswith("/repository/branches/"):
            name = unquote(rest[len("/repository/branches/") :])
            return self._branch(project, who, name, method)
        elif rest == "/deploy_keys" or re.fullmatch(r"/deploy_keys/\d+", rest):
            key_id = int(rest.rsplit("/", 1)[1]) if rest.count("/") == 2 else None
            return self._deploy_keys_route(project, who, key_id, method, raw_path, params)
        return _json(404, {"error": "404 Not Found"})
