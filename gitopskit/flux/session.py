"""One flux-bootstrap or flux-rotate-key run: its options, tools, output and result, shared by
the steps (:mod:`gitopskit.flux.steps`) and the installer (:mod:`gitopskit.flux.installer`).

In a dry run nothing is written; what cannot be checked (no cluster, no token) is noted once
with the reason, and each step says what it would do.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from gitopskit.errors import GitopskitError, ToolNotFoundError
from gitopskit.flux.deploy_keys import GitLabAccess
from gitopskit.flux.options import Options
from gitopskit.helm import Helm
from gitopskit.kube import ClusterUnreachableError, Kubectl, NoKubeContextError
from gitopskit.ui import Progress


@dataclass
class Result:
    """What a bootstrap or rotation did (or, in a dry run, would do)."""

    key_fingerprint: str = ""
    key_generated: bool = False
    public_key: str = ""
    deploy_key_id: int | None = None
    deploy_key_created: bool = False
    old_deploy_key_id: int | None = None
    retired: list[str] = field(default_factory=list)
    rotation_finished: bool = False
    host_fingerprints: list[str] = field(default_factory=list)
    host_pinned: bool = False
    secret_written: bool = False
    releases: list[str] = field(default_factory=list)
    #: What the installer applied besides helm releases (``FluxInstance flux-system/flux``).
    applied: list[str] = field(default_factory=list)
    #: The Flux version running and the revision of the manifests it applied, once ready.
    flux_version: str = ""
    revision: str = ""
    #: helm releases whose records were removed (objects kept) by a migration.
    retired_releases: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    dry_run: bool = False


def command(args: Sequence[str]) -> str:
    """An argv as one shell-quoted line, for plans and hints."""
    return shlex.join(args)


class Session:
    """The state of one run.

    Args:
        options: What to do.
        access: The manifests project's deploy keys (or why GitLab cannot be used).
        progress: Where progress lines go.
        env: The environment kubectl and helm run with (default: this process's).
    """

    def __init__(
        self,
        options: Options,
        access: GitLabAccess,
        progress: Progress,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.options = options
        self.access = access
        self.deploy_keys = access.deploy_keys
        self.ui = progress
        self.kubectl = Kubectl(options.context, env, request_timeout=options.network_timeout)
        self.helm = Helm(options.context, env, network_timeout=options.network_timeout)
        self.result = Result(dry_run=options.dry_run)
        #: Why the cluster cannot be checked, in a dry run (None: it can).
        self.cluster_problem: str | None = None
        self.helm_problem: str | None = None
        self.context: str | None = None
        if options.git_url is None:
            self.result.missing.append("the git URL (pass --git-url)")
        if options.git_branch is None:
            self.result.missing.append("the branch (pass --git-branch)")

    @property
    def dry_run(self) -> bool:
        """Whether nothing may be written."""
        return self.options.dry_run

    @property
    def where(self) -> str:
        """``namespace/secret``."""
        return f"{self.options.namespace}/{self.options.secret_name}"

    # --- dry-run bookkeeping ------------------------------------------------------------------

    def unchecked(self, label: str, problem: str, would: str) -> None:
        """A dry-run step that could not be checked: say why, and what would be done."""
        self.ui.step(label, f"{problem}: {would}")
        if problem not in self.result.unchecked:
            self.result.unchecked.append(problem)

    def found_problem(self, problem: str, error: GitopskitError) -> str:
        """In a dry run, note once why something cannot be checked; returns ``problem``."""
        message = error.message
        reason = message if message.startswith(problem) else f"{problem}: {message}"
        self.ui.warn(f"{reason}; the dry run cannot check it")
        if error.hint:
            self.ui.block(f"hint: {error.hint}")
        return problem

    def plan(self, line: str) -> None:
        """A command or request the run would send."""
        self.result.plan.append(line)

    @property
    def unreadable(self) -> str | None:
        """Why the cluster or helm cannot be read in this dry run (None: they can)."""
        return self.cluster_problem or self.helm_problem

    @contextmanager
    def cluster_reads(self) -> Iterator[None]:
        """In a dry run, a cluster that cannot be read becomes :attr:`cluster_problem`."""
        try:
            yield
        except NoKubeContextError as error:
            if not self.dry_run:
                raise
            self.cluster_problem = self.found_problem("no kube context configured", error)
        except ClusterUnreachableError as error:
            if not self.dry_run:
                raise
            self.cluster_problem = self.found_problem("cluster not reachable", error)

    # --- the first steps ----------------------------------------------------------------------

    def check_tools(self) -> None:
        """kubectl and helm must be installed before anything is done (a dry run plans
        without them)."""
        for tool, check in (("kubectl", self.kubectl.check), ("helm", self.helm.check)):
            try:
                check()
            except ToolNotFoundError:
                if not self.dry_run:
                    raise
                if tool == "kubectl":
                    self.cluster_problem = "kubectl is not installed"
                self.helm_problem = f"{tool} is not installed"

    def connect(self) -> None:
        """Step 1: the kube context and API server, from the kubeconfig."""
        if self.cluster_problem:
            return
        with self.cluster_reads():
            cluster = self.kubectl.cluster()
            self.helm.server = cluster.server
            self.context = cluster.context
