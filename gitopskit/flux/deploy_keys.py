"""The manifests project's deploy keys in GitLab: find, add (read-only), delete.

Only :meth:`DeployKeys.add` and :meth:`DeployKeys.delete` write. In a dry run GitLab may be out
of reach or unconfigured: :class:`GitLabAccess` then says why, and the run carries on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitopskit import gitlab_api
from gitopskit.config import Settings
from gitopskit.errors import ConfigError, GitLabError, GitopskitError
from gitopskit.ssh import canonical_public, fingerprint

DEPLOY_KEYS_PAGE = "Settings → Repository → Deploy keys"
MAINTAINER = "Maintainer"


@dataclass(frozen=True)
class GitLabTarget:
    """The manifests project in GitLab, for deploy keys."""

    url: str
    project: str
    token: str
    token_name: str
    ca_file: str | None
    timeout: float = 60.0


class DeployKeys:
    """Deploy keys of the manifests project. Only :meth:`add` and :meth:`delete` write."""

    def __init__(self, target: GitLabTarget) -> None:
        self.target = target
        self.gl = gitlab_api.connect(
            target.url, target.token, ca_file=target.ca_file, timeout=target.timeout
        )
        self._project: Any = None

    def _errors(self, action: str) -> Any:
        return gitlab_api.errors(action, token_name=self.target.token_name, role=MAINTAINER)

    @property
    def project(self) -> Any:
        """The project (one GET, cached)."""
        if self._project is None:
            with self._errors(f"read the project {self.target.project}"):
                self._project = self.gl.projects.get(self.target.project)
        return self._project

    def _keys(self) -> list[Any]:
        with self._errors("list the deploy keys"):
            return list(self.project.keys.list(get_all=True))

    def find(self, public: str) -> Any | None:
        """The deploy key holding ``public`` (compared without comments), or None."""
        wanted = canonical_public(public)
        for key in self._keys():
            fields = str(key.key).split()
            if len(fields) >= 2 and f"{fields[0]} {fields[1]}" == wanted:
                return key
        return None

    def with_fingerprint(self, wanted: str) -> list[Any]:
        """The deploy keys whose public key has the fingerprint ``wanted``."""
        found = []
        for key in self._keys():
            try:
                if fingerprint(str(key.key)) == wanted:
                    found.append(key)
            except ConfigError:
                continue
        return found

    def add(self, public: str, title: str) -> int:
        """Add ``public`` as a read-only deploy key; returns its id."""
        try:
            with self._errors("add the deploy key"):
                key = self.project.keys.create(
                    {"title": title, "key": canonical_public(public), "can_push": False}
                )
        except GitLabError as error:
            if "already been taken" in error.message:
                raise GitLabError(
                    "GitLab already holds this public key as a deploy key of another project "
                    "(with another comment), so it cannot be added again",
                    response_code=error.response_code,
                    hint=f"enable the existing key on {self.target.project} under "
                    f"{DEPLOY_KEYS_PAGE} (read-only), then run again",
                ) from None
            raise
        return int(key.id)

    def delete(self, key_id: int) -> None:
        """Remove deploy key ``key_id`` from the project."""
        with self._errors(f"delete the deploy key {key_id}"):
            self.project.keys.delete(key_id)


def gitlab_target(settings: Settings) -> GitLabTarget | None:
    """The manifests project for deploy keys, when GITLAB_URL and MANIFESTS_PROJECT are set.

    Raises:
        ConfigError: GitLab is configured but neither GITLAB_TOKEN nor MANIFESTS_TOKEN is set.
    """
    url = settings.get("GITLAB_URL")
    project = settings.get("MANIFESTS_PROJECT")
    if not url or not project:
        return None
    for name in ("GITLAB_TOKEN", "MANIFESTS_TOKEN"):
        token = settings.token(name)
        if token:
            return GitLabTarget(
                url,
                project,
                token,
                name,
                settings.get("GITLAB_CA_FILE"),
                settings.seconds("NETWORK_TIMEOUT"),
            )
    raise ConfigError(
        "deploy keys need a token: neither GITLAB_TOKEN nor MANIFESTS_TOKEN is set",
        hint=f"set GITLAB_TOKEN to a token of a {MAINTAINER} of {project} (scope api)",
    )


@dataclass
class GitLabAccess:
    """How this run reaches GitLab: the deploy keys, or (in a dry run) why it cannot."""

    deploy_keys: DeployKeys | None = None
    project: str | None = None
    problem: str | None = None
    error: GitopskitError | None = None


def gitlab_access(settings: Settings, *, dry_run: bool) -> GitLabAccess:
    """The manifests project's deploy keys; a dry run carries on without a token.

    Raises:
        ConfigError: No token (unless a dry run).
    """
    try:
        target = gitlab_target(settings)
    except ConfigError as error:
        if not dry_run:
            raise
        return GitLabAccess(
            project=settings.get("MANIFESTS_PROJECT"), problem="no GitLab token", error=error
        )
    if target is None:
        return GitLabAccess()
    return GitLabAccess(DeployKeys(target), target.project)


def project_defaults(access: GitLabAccess, dry_run: bool) -> tuple[str | None, str | None]:
    """The project's SSH URL and default branch; in a dry run (None, None) when unreadable."""
    if access.deploy_keys is None:
        return None, None
    try:
        project = access.deploy_keys.project
    except GitLabError as error:
        if not dry_run:
            raise
        access.problem = "GitLab not reachable"
        access.error = error
        return None, None
    return str(project.ssh_url_to_repo), str(project.default_branch)
