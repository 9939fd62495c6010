"""One error hierarchy for gitopskit.

Every message is written for the person at the terminal: what went wrong, where, and what to do.
Tasks turn a :class:`GitopskitError` into ``invoke.exceptions.Exit`` with :attr:`exit_code`; no
traceback of ours reaches the user for an expected failure.
"""

from __future__ import annotations


class GitopskitError(Exception):
    """Base class of every error gitopskit raises on purpose.

    Args:
        message: What went wrong, for the person at the terminal.
        hint: What to do about it, printed on its own line.

    Attributes:
        details: Verbatim text shown under the message (a chart's traceback), or None.
    """

    exit_code = 1
    details: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(GitopskitError):
    """A setting is missing, malformed, or in the wrong place."""


class NodeNotFoundError(GitopskitError):
    """No Node.js that jsii (cdk8s) can use."""


class SynthError(GitopskitError):
    """The cdk8s app failed."""


class OutdirError(GitopskitError):
    """The output directory is not synth's to replace, or cannot be made."""


class ValidationError(GitopskitError):
    """Synthesized objects do not match the Kubernetes schema."""


class ManifestError(GitopskitError):
    """A manifest file cannot be read: YAML syntax, duplicate identity."""


class CommandError(GitopskitError):
    """An external program failed.

    Args:
        message: What failed.
        returncode: The program's exit status (None when it did not start or timed out).
        hint: What to do about it.
    """

    def __init__(self, message: str, *, returncode: int | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.returncode = returncode


class ToolNotFoundError(CommandError):
    """A program gitopskit needs is not installed."""


class GitError(CommandError):
    """git failed."""


class KubeError(CommandError):
    """kubectl failed."""


class HelmError(CommandError):
    """helm failed."""


class SSHError(CommandError):
    """ssh-keyscan or ssh-keygen failed."""


class HostKeyError(GitopskitError):
    """A host key does not match its pinned fingerprint."""


class GitLabError(GitopskitError):
    """GitLab refused or failed a request.

    Args:
        message: What failed, for the person at the terminal.
        response_code: The HTTP status GitLab answered, when there was one.
        hint: What to do about it.
    """

    def __init__(
        self, message: str, *, response_code: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.response_code = response_code


class GitLabAuthenticationError(GitLabError):
    """401: the token is wrong, expired or revoked."""


class GitLabPermissionError(GitLabError):
    """403: the token's role or scopes do not allow this."""


class GitLabNotFoundError(GitLabError):
    """404: the project or object does not exist, or the token cannot see it."""
