"""What ``invoke diff`` compares with, and the only credentials that may travel there.

Settings, tokens and URLs stay here, out of the diff engine. A token goes only to the origin
(scheme, host, port) of the configured GitLab; a git URL anywhere else is fetched without any
token of gitopskit's, with the user's own credential setup. A URL with a password in it is
refused, since git would keep it in argv and ``.git/config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitopskit import git
from gitopskit.config import Settings
from gitopskit.errors import ConfigError

#: Where a token for a manifests repository comes from, named in messages.
TOKEN_VARIABLES = "MANIFESTS_TOKEN (publish), MANIFESTS_READ_TOKEN (diff) or COMMENT_TOKEN"


@dataclass(frozen=True)
class Against:
    """What ``invoke diff`` compares with.

    Attributes:
        location: A directory, or a git URL.
        ref: The branch (None: a directory, or resolved from the remote).
        env: git's environment for a git URL (a read token as a header only for the GitLab).
        warnings: Things the user should know (a token over plain HTTP), once each.
    """

    location: str
    ref: str | None
    env: dict[str, str] | None = None
    warnings: list[str] = field(default_factory=list)


def refuse_embedded_credentials(url: str, setting: str) -> None:
    """Refuse a URL with a password in it.

    Raises:
        ConfigError: It has one; the message names the token variables to use instead.
    """
    if git.embedded_credentials(url):
        raise ConfigError(
            f"{setting} has credentials in it ({git.display_url(url)}): git would put them in "
            "its command line and .git/config",
            hint=f"remove them from the URL and set the token in {TOKEN_VARIABLES} instead; "
            "revoke the token if the URL was committed or logged",
        )


def plain_http_warning(gitlab_url: str | None) -> list[str]:
    """A warning when the GitLab a token goes to is reached over plain ``http://``."""
    if gitlab_url and gitlab_url.lower().startswith("http://"):
        return [
            f"GITLAB_URL is {git.display_url(gitlab_url)}: the token travels unencrypted "
            "(use https:// outside a test)"
        ]
    return []


def resolve_against(settings: Settings, against: str | None, ref: str | None) -> Against:
    """What ``invoke diff`` compares with: ``--against`` and ``--ref``, else the configured
    manifests repository (``MANIFESTS_GIT_URL``, else the GitLab project ``MANIFESTS_PROJECT``
    on ``GITLAB_URL``) and its target branch.

    A token reaches git only for a URL on the configured GitLab's exact origin:
    ``MANIFESTS_READ_TOKEN`` (a ``read_repository`` token, which merge-request pipelines can
    have), else ``MANIFESTS_TOKEN``. With no ``GITLAB_URL``, no token is sent anywhere.

    Args:
        settings: This run's settings.
        against: ``--against``, or None.
        ref: ``--ref``, or None.

    Raises:
        ConfigError: Nothing to compare with, or a URL with credentials in it.
    """
    gitlab_url = settings.get("GITLAB_URL")
    if gitlab_url:
        refuse_embedded_credentials(gitlab_url, "GITLAB_URL")
    if against:
        refuse_embedded_credentials(against, "--against")
        location, branch = against, ref
    else:
        configured = settings.get("MANIFESTS_GIT_URL")
        project = settings.get("MANIFESTS_PROJECT")
        if configured:
            refuse_embedded_credentials(configured, "MANIFESTS_GIT_URL")
        if not configured and project and gitlab_url:
            # GitLab's http_url_to_repo, without an API call (which would need the api scope).
            configured = f"{gitlab_url.rstrip('/')}/{project.strip('/')}.git"
        if not configured:
            raise ConfigError(
                "nothing to compare with: give --against PATH_OR_GIT_URL, or configure the "
                "manifests repository (MANIFESTS_GIT_URL, or GITLAB_URL and MANIFESTS_PROJECT)",
                hint="set the environment variable MANIFESTS_GIT_URL or "
                "gitopskit.manifests_git_url in invoke.yaml",
            )
        location, branch = configured, settings.get("MANIFESTS_TARGET_BRANCH", ref)
    timeout = settings.seconds("NETWORK_TIMEOUT")
    warnings: list[str] = []
    token = ca_file = None
    if git.same_origin(location, gitlab_url):
        token = settings.token("MANIFESTS_READ_TOKEN") or settings.token("MANIFESTS_TOKEN")
        ca_file = settings.get("GITLAB_CA_FILE")
        if token:
            warnings += plain_http_warning(gitlab_url)
    env = git.git_environment(location, token, ca_file=ca_file, timeout=timeout)
    return Against(location, branch, env, warnings)
