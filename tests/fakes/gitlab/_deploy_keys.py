"""Deploy keys, as ``lib/api/deploy_keys.rb`` has them (see the package docstring)."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
from typing import Any

from tests.fakes.gitlab._base import _FORBIDDEN, _json, _msg, _Principal, _Response
from tests.fakes.gitlab._model import MAINTAINER, FakeProject, _now, _truthy
from tests.fakes.gitlab._projects import _ProjectsAPI

_SSH_KEY_TYPES = {
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
}


def _ssh_fingerprints(key_text: str) -> tuple[str, str] | None:
    """(MD5 colon hex, "SHA256:...") like ``ssh-keygen -l``, or None if not a public key."""
    parts = key_text.split()
    if len(parts) < 2 or parts[0] not in _SSH_KEY_TYPES:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(blob) < 4:
        return None
    n = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + n] != parts[0].encode():
        return None
    md5 = hashlib.md5(blob).hexdigest()
    md5_colon = ":".join(md5[i : i + 2] for i in range(0, len(md5), 2))
    sha = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return md5_colon, "SHA256:" + sha


class _DeployKeysAPI(_ProjectsAPI):
    """``/projects/:id/deploy_keys[/:key_id]``; keys are shared between projects by text."""

    def _deploy_keys_route(
        self,
        project: FakeProject,
        who: _Principal,
        key_id: int | None,
        method: str,
        raw_path: str,
        params: dict[str, Any],
    ) -> _Response:
        if who.is_job or who.level < MAINTAINER:
            return _msg(*_FORBIDDEN)
        if key_id is None:
            if method == "GET":
                return self._paginate(copy.deepcopy(project.deploy_keys), raw_path, params)
            if method == "POST":
                return self._deploy_key_create(project, params)
            return _json(404, {"error": "404 Not Found"})
        entry = next((k for k in project.deploy_keys if k["id"] == key_id), None)
        if method == "GET":
            return _msg(404, "404 Not found") if entry is None else _json(200, entry)
        if method == "DELETE":
            if entry is None:
                return _msg(404, "404 Deploy Key Not Found")
            project.deploy_keys.remove(entry)
            return _json(204, None)
        if method == "PUT":
            if entry is None:
                return _msg(404, "404 Not found")
            if "title" not in params and "can_push" not in params:
                return _json(
                    400,
                    {
                        "error": "title, can_push are missing, at least one "
                        "parameter must be provided"
                    },
                )
            if "title" in params:
                entry["title"] = str(params["title"])
                self._deploy_keys[key_id]["title"] = entry["title"]
            if "can_push" in params:
                entry["can_push"] = _truthy(params["can_push"])
            return _json(200, copy.deepcopy(entry))
        return _json(404, {"error": "404 Not Found"})

    def _deploy_key_create(self, project: FakeProject, params: dict[str, Any]) -> _Response:
        missing = [k for k in ("key", "title") if not params.get(k)]
        if missing:
            return _json(400, {"error": ", ".join(f"{k} is missing" for k in missing)})
        text = str(params["key"]).strip()
        can_push = _truthy(params.get("can_push"))
        existing = next((k for k in project.deploy_keys if k["key"] == text), None)
        if existing is not None:  # GitLab answers the key already joined to the project
            return _json(201, copy.deepcopy(existing))
        known = next((k for k in self._deploy_keys.values() if k["key"] == text), None)
        if known is None:
            fps = _ssh_fingerprints(text)
            if fps is None:
                return _msg(
                    400,
                    {
                        "deploy_key.key": ["is invalid"],
                        "deploy_key.fingerprint_sha256": ["cannot be generated"],
                    },
                )
            if any(k["fingerprint_sha256"] == fps[1] for k in self._deploy_keys.values()):
                return _msg(400, {"deploy_key.fingerprint_sha256": ["has already been taken"]})
            known = {
                "id": self._next_id("deploy_key"),
                "title": str(params["title"]),
                "key": text,
                "created_at": _now(),
                "expires_at": params.get("expires_at"),
                "fingerprint": fps[0],
                "fingerprint_sha256": fps[1],
                "usage_type": "auth_and_signing",
            }
            self._deploy_keys[known["id"]] = known
        entry = {**copy.deepcopy(known), "can_push": can_push}
        project.deploy_keys.append(entry)
        return _json(201, copy.deepcopy(entry))
