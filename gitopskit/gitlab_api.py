"""The GitLab client: python-gitlab with a private token, bounded retries, errors made ours.

Only project access tokens (or personal tokens) are used, sent as ``PRIVATE-TOKEN``. CI_JOB_TOKEN
can neither open merge requests in another project nor push there, so it is never used.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gitlab
import gitlab.exceptions
import requests
import urllib3.exceptions

from gitopskit.errors import (
    ConfigError,
    GitLabAuthenticationError,
    GitLabError,
    GitLabNotFoundError,
    GitLabPermissionError,
)
from gitopskit.git import display_url, origin_of
from gitopskit.redact import add_secret, redact

#: Retries of a 429 or a transient 5xx answer: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s of backoff (or
#: what Retry-After asks), then a clear failure.
MAX_RETRIES = 5
TIMEOUT_SECONDS = 60.0
TOKEN_SCOPES = "api, write_repository"
_TRANSIENT = frozenset({500, 502, 503, 504})


class _BoundedSession(requests.Session):
    """A session whose every answer, its body included, ends within about ``deadline`` seconds.

    requests' timeout bounds connecting and each read, not the answer: a server that sends the
    headers and then the body a byte at a time would hold a call for ever, and a body that
    stalls surfaces as a ConnectionError that names no host. Here the body is read under the
    deadline, and a read that times out is a :class:`requests.exceptions.ReadTimeout`.
    """

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        stream = kwargs.get("stream", False)
        started = time.monotonic()
        response = super().send(request, **{**kwargs, "stream": True})
        if stream:
            return response
        try:
            body = self._read(response, started)
        except BaseException:
            response.close()
            raise
        response._content = body
        return response

    def _read(self, response: requests.Response, started: float) -> bytes:
        """The body, read as it comes (``read1``: whatever one read returns, so that a byte at
        a time is seen to be late), under the deadline."""
        request = response.request
        read1 = getattr(response.raw, "read1", None)  # urllib3 2.3 and later
        chunks: list[bytes] = []
        try:
            if read1 is None:
                chunks.extend(response.iter_content(65536))
            else:
                while chunk := read1(65536, decode_content=True):
                    chunks.append(chunk)
                    if time.monotonic() - started > self.deadline:
                        raise requests.exceptions.ReadTimeout(
                            f"the answer took longer than {self.deadline:g}s", request=request
                        )
        except urllib3.exceptions.ReadTimeoutError as error:
            raise requests.exceptions.ReadTimeout(str(error), request=request) from None
        except requests.exceptions.ConnectionError as error:
            cause = error.args[0] if error.args else None
            if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
                raise requests.exceptions.ReadTimeout(str(cause), request=request) from None
            raise
        except urllib3.exceptions.HTTPError as error:
            raise requests.exceptions.ConnectionError(str(error), request=request) from None
        return b"".join(chunks)


class _Gitlab(gitlab.Gitlab):
    """python-gitlab with every wait bounded.

    python-gitlab retries 10 times by default, retries a request that timed out (a stalled
    server then costs ten timeouts), and sleeps for whatever ``Retry-After`` asks. Here its own
    retries are off and this loop retries a 429 or a 5xx at most :data:`MAX_RETRIES` times,
    honouring ``Retry-After`` only while the waits fit in one network timeout (the
    ``network_timeout`` budget of a single call). A timeout is never retried.
    """

    network_timeout: float = TIMEOUT_SECONDS
    _retry_after: str | None = None

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._retry_after = response.headers.get("Retry-After")

    def http_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["obey_rate_limit"] = False
        kwargs["retry_transient_errors"] = False
        waited = 0.0
        for attempt in range(MAX_RETRIES + 1):
            try:
                response: requests.Response = super().http_request(*args, **kwargs)
                return response
            except gitlab.exceptions.GitlabHttpError as error:
                code = error.response_code
                if (code != 429 and code not in _TRANSIENT) or attempt == MAX_RETRIES:
                    raise
                wait = _retry_after_seconds(self._retry_after) if code == 429 else None
                if wait is None:
                    wait = 0.1 * 2**attempt
                if waited + wait > self.network_timeout:
                    raise GitLabError(
                        f"GitLab answered {code} and asks to wait {wait:g}s, longer than "
                        f"GITOPSKIT_NETWORK_TIMEOUT ({self.network_timeout:g}s) allows",
                        response_code=code,
                        hint="GitLab is rate limiting or overloaded: run again later",
                    ) from None
                waited += wait
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


class _OwnOriginSession(_BoundedSession):
    """A session that sends nothing to another origin than GitLab's.

    python-gitlab puts the token in every request's headers (``PRIVATE-TOKEN``), and requests
    keeps such a header on a redirect to any host; python-gitlab also follows the ``next`` link
    of a page wherever it points. A request anywhere else (scheme, host and port) is refused
    before it is sent.
    """

    def __init__(self, base_url: str, deadline: float) -> None:
        super().__init__(deadline)
        self.base_url = base_url
        self.origin = origin_of(base_url)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if origin_of(url) != self.origin:
            raise GitLabError(
                f"GitLab at {display_url(self.base_url)} sent a redirect or a link to "
                f"{_origin_text(url)}, another origin: the token is never sent there, so "
                "nothing was",
                hint="set GITLAB_URL to the address GitLab answers on (its external_url)",
            )
        return super().send(request, **kwargs)


def _origin_text(url: str) -> str:
    parts = urlsplit(url)
    return display_url(urlunsplit((parts.scheme, parts.netloc, "", "", "")))


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def connect(
    url: str, token: str, *, ca_file: str | None = None, timeout: float = TIMEOUT_SECONDS
) -> gitlab.Gitlab:
    """A python-gitlab client for ``url`` authenticating with ``token``.

    Args:
        url: GitLab's base URL.
        token: A project access token or personal access token (never a job token).
        ca_file: A CA bundle for a self-managed GitLab with its own CA.
        timeout: Seconds one request may wait for GitLab, and the budget of its retries
            (``GITOPSKIT_NETWORK_TIMEOUT``).

    Raises:
        ConfigError: The URL is not http(s) or carries credentials.
    """
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"GITLAB_URL {redact(url)!r} is not an http(s) URL")
    if urlsplit(url).password is not None:
        raise ConfigError(
            "GITLAB_URL has credentials in it",
            hint="remove them; the token is read from MANIFESTS_TOKEN, GITLAB_TOKEN or "
            "COMMENT_TOKEN only",
        )
    add_secret(token)
    session = _OwnOriginSession(url, timeout)
    client = _Gitlab(
        url.rstrip("/"),
        private_token=token,
        ssl_verify=ca_file or True,
        timeout=timeout,
        session=session,
        per_page=100,
        keep_base_url=True,  # a next page's link stays on GITLAB_URL, whatever GitLab says
    )
    client.network_timeout = timeout
    session.hooks["response"].append(client._remember)
    return client


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
    except requests.exceptions.Timeout as error:
        raise GitLabError(
            f"GitLab{_host_of(error)} did not answer in time (GITOPSKIT_NETWORK_TIMEOUT) while "
            f"trying to {action}; nothing more was sent",
            hint="check GITLAB_URL and the network, or raise GITOPSKIT_NETWORK_TIMEOUT",
        ) from None
    except requests.exceptions.RequestException as error:
        raise GitLabError(
            f"cannot reach GitLab{_host_of(error)} to {action}: {redact(type(error).__name__)}",
            hint="check GITLAB_URL and the network",
        ) from None


def _host_of(error: requests.exceptions.RequestException) -> str:
    request = getattr(error, "request", None)
    url = getattr(request, "url", None)
    if not isinstance(url, str):
        return ""
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port
    return f" at {host}:{port}" if port else f" at {host}" if host else ""
