"""An external program bound to one kube context: what kubectl and helm have in common.

Each names the context its own way (``kubectl --context``, ``helm --kube-context``), runs with
one environment, and bounds every network operation by the same timeout
(``GITOPSKIT_NETWORK_TIMEOUT``). The programs themselves run through :func:`gitopskit._run.run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from gitopskit._run import which

#: Seconds for a network operation when no timeout is given (GITOPSKIT_NETWORK_TIMEOUT's default).
NETWORK_TIMEOUT = 60.0


class ContextTool:
    """A program (``program``) that talks to the cluster of one kube context.

    Args:
        context: The kubeconfig context (None: the current one).
        env: The environment the program runs with (default: this process's).
        network_timeout: Seconds any single network operation may take.
    """

    program: ClassVar[str]
    context_flag: ClassVar[str]

    def __init__(
        self,
        context: str | None = None,
        env: Mapping[str, str] | None = None,
        *,
        network_timeout: float = NETWORK_TIMEOUT,
    ) -> None:
        self.context = context or None
        self.env = env
        self.network_timeout = network_timeout

    def check(self) -> None:
        """Raise :class:`~gitopskit.errors.ToolNotFoundError` naming the program when it is
        missing."""
        which(self.program, path=self.env.get("PATH") if self.env else None)

    def context_args(self) -> list[str]:
        """The program's flag naming the context, when one is chosen."""
        return [self.context_flag, self.context] if self.context else []
