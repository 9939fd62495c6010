"""Merge requests (list, create, update, merge) and their notes."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from tests.fakes.gitlab._base import _FORBIDDEN, _json, _msg, _Principal, _Response
from tests.fakes.gitlab._model import DEVELOPER, FakeProject, _now, _truthy
from tests.fakes.gitlab._projects import _ProjectsAPI

_DRAFT_RE = re.compile(r"^\s*(\[draft\]|\(draft\)|draft:|draft\s-\s|draft\s)\s*", re.IGNORECASE)


class _MergeRequestsAPI(_ProjectsAPI):
    """``/projects/:id/merge_requests[/:iid[/merge|/notes[/:id]]]``."""

    # -- merge requests ----------------------------------------------------------------------
    def _render_mr(self, project: FakeProject, mr: dict[str, Any]) -> dict[str, Any]:
        head = project.branch_sha(mr["source_branch"])
        if head is not None and mr["state"] == "opened":
            mr["sha"] = head
        mr["draft"] = mr["work_in_progress"] = bool(_DRAFT_RE.match(mr["title"]))
        return copy.deepcopy(mr)

    def _mr_list(self, project: FakeProject, raw_path: str, params: Mapping[str, Any]) -> _Response:
        state = params.get("state", "all")
        items = []
        for mr in project.merge_requests:
            if state not in ("all", None, "") and mr["state"] != state:
                continue
            if params.get("source_branch") and mr["source_branch"] != params["source_branch"]:
                continue
            if params.get("target_branch") and mr["target_branch"] != params["target_branch"]:
                continue
            if params.get("iids") and str(mr["iid"]) not in [str(i) for i in params["iids"]]:
                continue
            if labels := params.get("labels"):
                wanted = self._labels(labels)
                if not set(wanted) <= set(mr["labels"]):
                    continue
            items.append(self._render_mr(project, mr))
        items.sort(key=lambda m: m["id"], reverse=params.get("sort", "desc") != "asc")
        return self._paginate(items, raw_path, params)

    @staticmethod
    def _labels(value: Any) -> list[str]:
        raw = value if isinstance(value, list) else str(value).split(",")
        return sorted({str(v).strip() for v in raw if str(v).strip()})

    @staticmethod
    def _apply_draft(title: str, draft: Any) -> str:
        bare = _DRAFT_RE.sub("", title, count=1)
        return f"Draft: {bare}" if _truthy(draft) else bare

    def _mr_create(
        self, project: FakeProject, who: _Principal, params: dict[str, Any]
    ) -> _Response:
        if who.is_job or who.level < DEVELOPER:
            return _msg(*_FORBIDDEN)
        missing = [k for k in ("source_branch", "target_branch", "title") if not params.get(k)]
        if missing:
            return _json(400, {"error": ", ".join(f"{k} is missing" for k in missing)})
        src, tgt = str(params["source_branch"]), str(params["target_branch"])
        if src == tgt:
            return _msg(422, ["You can't use same project/branch for source and target"])
        for label, branch in (("Source", src), ("Target", tgt)):
            if project.branch_sha(branch) is None:
                return _msg(422, [f'{label} branch "{branch}" does not exist'])
        for other in project.merge_requests:
            if (
                other["state"] == "opened"
                and other["source_branch"] == src
                and other["target_branch"] == tgt
            ):
                return _msg(
                    409,
                    [
                        f"Another open merge request already exists for this source branch: "
                        f"!{other['iid']}"
                    ],
                )
        title = str(params["title"])
        if "draft" in params:
            title = self._apply_draft(title, params["draft"])
        assignee = None
        if params.get("assignee_id") not in (None, ""):
            assignee = next(
                (
                    self._render_user(u)
                    for u in self.users.values()
                    if u.id == int(params["assignee_id"])
                ),
                None,
            )
        iid = len(project.merge_requests) + 1
        now = _now()
        assert who.user is not None
        mr: dict[str, Any] = {
            "id": self._next_id("mr"),
            "iid": iid,
            "project_id": project.id,
            "title": title,
            "description": str(params.get("description") or ""),
            "state": "opened",
            "created_at": now,
            "updated_at": now,
            "merged_at": None,
            "closed_at": None,
            "merged_by": None,
            "target_branch": tgt,
            "source_branch": src,
            "source_project_id": project.id,
            "target_project_id": project.id,
            "author": self._render_user(who.user),
            "assignee": assignee,
            "assignees": [assignee] if assignee else [],
            "labels": self._labels(params.get("labels") or []),
            "draft": False,
            "work_in_progress": False,
            "merge_when_pipeline_succeeds": False,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable",
            "sha": project.branch_sha(src),
            "merge_commit_sha": None,
            "squash": _truthy(params.get("squash")),
            "force_remove_source_branch": _truthy(params.get("remove_source_branch")),
            "should_remove_source_branch": None,
            "has_conflicts": False,
            "references": {
                "short": f"!{iid}",
                "relative": f"!{iid}",
                "full": f"{project.path_with_namespace}!{iid}",
            },
            "web_url": f"{project.web_url}/-/merge_requests/{iid}",
        }
        project.merge_requests.append(mr)
        project.notes[iid] = []
        return _json(201, self._render_mr(project, mr))

    _MR_UPDATABLE = (
        "title",
        "description",
        "labels",
        "add_labels",
        "remove_labels",
        "state_event",
        "remove_source_branch",
        "draft",
        "target_branch",
        "assignee_id",
        "squash",
    )

    def _mr_update(
        self, project: FakeProject, who: _Principal, mr: dict[str, Any], params: dict[str, Any]
    ) -> _Response:
        if who.is_job or who.level < DEVELOPER:
            return _msg(*_FORBIDDEN)
        if not any(k in params for k in self._MR_UPDATABLE):
            return _json(
                400,
                {
                    "error": ", ".join(self._MR_UPDATABLE)
                    + " are missing, at least one parameter must be provided"
                },
            )
        if "title" in params:
            mr["title"] = str(params["title"])
        if "draft" in params:
            mr["title"] = self._apply_draft(mr["title"], params["draft"])
        if "description" in params:
            mr["description"] = str(params["description"] or "")
        if "labels" in params:
            mr["labels"] = self._labels(params["labels"] or [])
        if "add_labels" in params:
            mr["labels"] = sorted(set(mr["labels"]) | set(self._labels(params["add_labels"])))
        if "remove_labels" in params:
            mr["labels"] = sorted(set(mr["labels"]) - set(self._labels(params["remove_labels"])))
        if "target_branch" in params:
            mr["target_branch"] = str(params["target_branch"])
        if "remove_source_branch" in params:
            mr["force_remove_source_branch"] = _truthy(params["remove_source_branch"])
        if "squash" in params:
            mr["squash"] = _truthy(params["squash"])
        if "assignee_id" in params:
            aid = params["assignee_id"]
            assignee: dict[str, Any] | None = None
            for u in self.users.values():
                if aid not in (None, "", 0, "0") and u.id == int(aid):
                    assignee = self._render_user(u)
            mr["assignee"], mr["assignees"] = assignee, [assignee] if assignee else []
        event = params.get("state_event")
        if event == "close" and mr["state"] == "opened":
            mr["state"], mr["closed_at"] = "closed", _now()
        elif event == "reopen" and mr["state"] == "closed":
            mr["state"], mr["closed_at"] = "opened", None
        mr["updated_at"] = _now()
        return _json(200, self._render_mr(project, mr))

    def _mr_merge(
        self, project: FakeProject, who: _Principal, mr: dict[str, Any], params: dict[str, Any]
    ) -> _Response:
        if who.is_job or who.level < DEVELOPER:
            return _msg(*_FORBIDDEN)
        if mr["state"] != "opened":
            return _msg(405, "405 Method Not Allowed")
        src_sha = project.branch_sha(mr["source_branch"])
        tgt_sha = project.branch_sha(mr["target_branch"])
        if src_sha is None or tgt_sha is None:
            return _msg(405, "405 Method Not Allowed")
        if params.get("sha") and params["sha"] != src_sha:
            return _msg(409, f"SHA does not match HEAD of source branch: {src_sha}")
        if "should_remove_source_branch" in params:
            mr["should_remove_source_branch"] = _truthy(params["should_remove_source_branch"])
        if _truthy(params.get("merge_when_pipeline_succeeds")) or _truthy(params.get("auto_merge")):
            mr["merge_when_pipeline_succeeds"] = True
            mr["merge_user"] = self._render_user(who.user) if who.user else None
            mr["updated_at"] = _now()
            return _json(200, self._render_mr(project, mr))
        tree = project._run("merge-tree", "--write-tree", tgt_sha, src_sha, check=False)
        if tree.returncode != 0:
            return _msg(406, "Branch cannot be merged")
        message = (
            f"Merge branch '{mr['source_branch']}' into '{mr['target_branch']}'\n\n"
            f"{mr['title']}\n\nSee merge request {project.path_with_namespace}!{mr['iid']}"
        )
        new = project.git(
            "commit-tree",
            tree.stdout.decode().split()[0],
            "-p",
            tgt_sha,
            "-p",
            src_sha,
            "-m",
            message,
        ).strip()
        project.git("update-ref", f"refs/heads/{mr['target_branch']}", new, tgt_sha)
        mr.update(
            {
                "state": "merged",
                "merged_at": _now(),
                "merge_commit_sha": new,
                "sha": src_sha,
                "updated_at": _now(),
                "merged_by": self._render_user(who.user) if who.user else None,
            }
        )
        if mr["force_remove_source_branch"] or mr.get("should_remove_source_branch"):
            project.git("update-ref", "-d", f"refs/heads/{mr['source_branch']}", src_sha)
        return _json(200, self._render_mr(project, mr))

    # -- notes -------------------------------------------------------------------------------
    def _notes(
        self,
        project: FakeProject,
        who: _Principal,
        mr: dict[str, Any],
        note_id: int | None,
        method: str,
        raw_path: str,
        params: dict[str, Any],
    ) -> _Response:
        notes = project.notes.setdefault(mr["iid"], [])
        if note_id is None:
            if method == "GET":
                ordered = sorted(
                    notes, key=lambda n: n["id"], reverse=params.get("sort", "desc") != "asc"
                )
                return self._paginate(copy.deepcopy(ordered), raw_path, params)
            if method == "POST":
                if who.is_job or who.user is None:
                    return _msg(*_FORBIDDEN)
                if not params.get("body"):
                    return _json(400, {"error": "body is missing"})
                now = _now()
                note = {
                    "id": self._next_id("note"),
                    "type": None,
                    "body": str(params["body"]),
                    "author": self._render_user(who.user),
                    "created_at": now,
                    "updated_at": now,
                    "system": False,
                    "noteable_id": mr["id"],
                    "noteable_type": "MergeRequest",
                    "noteable_iid": mr["iid"],
                    "project_id": project.id,
                    "resolvable": False,
                    "confidential": False,
                    "internal": False,
                }
                notes.append(note)
                return _json(201, copy.deepcopy(note))
            return _json(404, {"error": "404 Not Found"})
        found = [n for n in notes if n["id"] == note_id]
        if not found:
            return _msg(404, "404 Not found")
        note = found[0]
        if method == "GET":
            return _json(200, copy.deepcopy(note))
        if method == "PUT":
            if who.user is None or note["author"]["id"] != who.user.id:
                return _msg(*_FORBIDDEN)
            if not params.get("body"):
                return _json(400, {"error": "body is missing"})
            note["body"], note["updated_at"] = str(params["body"]), _now()
            return _json(200, copy.deepcopy(note))
        return _json(404, {"error": "404 Not Found"})
