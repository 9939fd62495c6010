"""The GitLab client: python-gitlab with a private token, bounded retries, errors made ours.

Only project access tokens (or personal tokens) are used, sent as ``PRIVATE-TOKEN``. CI_JOB_TOKEN
can neither open merge requests in another project nor push there, so it is never used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gitlab
import gitlab.exceptions
import requests

from gitopskit.errors import (
    ConfigError,
    GitLabAuthenticationError,
    GitLabError,
    GitLabNotFoundError,
    GitLabPermissionError,
)
from gitopskit.redact import add_secret, redact

# 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s of backoff (or what Retry-After asks), then a clear failure.
MAX_RETRIES = 5
TIMEOUT_SECONDS = 30
TOKEN_SCOPES = "api, write_repository"


class _Gitlab(gitlab.Gitlab):
    """python-gitlab retries 10 times by default (about 100 s): bound it."""

    def http_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("max_retries", MAX_RETRIES)
        response: requests.Response = super().http_request(*args, **kwargs)
        return response


def connect(url: str, token: str, *, ca_file: str | None = None) -> gitlab.Gitlab:
    """A python-gitlab client for ``url`` authenticating with ``token``.

    Args:
        url: GitLab's base URL.
        token: A project access token or personal access token (never a job token).
        ca_file: A CA bundle for a self-managed GitLab with its own CA.

    Raises:
        ConfigError: The URL is not http(s).
    """
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"GITLAB_URL {url!r} is not an http(s) URL")
    add_secret(token)
    return _Gitlab(
        url.rstrip("/"),
        private_token=token,
        ssl_verify=ca_file or True,
        timeout=TIMEOUT_SECONDS,
        retry_transient_errors=True,
        per_page=100,
    )


@contextmanager
def errors(
    action: str, *, token_name: str = "MANIFESTS_TOKEN", role: str = "Developer"
) -> Iterator[None]:
    """Turn python-gitlab and network errors raised inside into :class:`GitLabError` s.

    Args:
        action: What was being done, for the message ("open the merge request").
        token_name: The variable holding the token, named in auth failures.
        role: The role the action needs, named in permission failures.

    Raises:
        GitLabError: (or a subclass by status) with a redacted message and a hint.
    """
    try:
        yield
    except gitlab.exceptions.GitlabAuthenticationError:
        raise GitLabAuthenticationError(
            f"GitLab refused {token_name} (401) while trying to {action}: "
            "the token is wrong, expired or revoked",
            response_code=401,
            hint=f"create a project access token with the scopes {TOKEN_SCOPES} "
            f"(role {role} or higher) and set it as {token_name}",
        ) from None
    except gitlab.exceptions.GitlabError as error:
        code = error.response_code
        detail = redact(str(error.error_message or ""))
        if code == 403:
            raise GitLabPermissionError(
                f"GitLab denied permission to {action} (403): {detail}",
                response_code=403,
                hint=f"{token_name} needs the role {role} or higher and the scopes {TOKEN_SCOPES}",
            ) from None
        if code == 404:
            raise GitLabNotFoundError(
                f"not found while trying to {action} (404): {detail}",
                response_code=404,
                hint=f"check the project path, and that {token_name} can see the project",
            ) from None
        status = f" ({code})" if code else ""
        raise GitLabError(
            f"GitLab failed to {action}{status}: {detail}", response_code=code
        ) from None
    except requests.exceptions.SSLError as error:
        raise GitLabError(
            f"TLS verification failed while trying to {action}: {redact(str(error))}",
            hint="for a self-managed GitLab with its own CA, set GITLAB_CA_FILE",
        ) from None
    except requests.exceptions.RequestException as error:
        raise GitLabError(
            f"cannot reach GitLab to {action}: {redact(type(error).__name__)}",
            hint="check GITLAB_URL and the network",
        ) from None
