"""The step that varies: how Flux is installed, watched and told about a new key.

One small type per way of installing Flux, chosen once per run
(:func:`gitopskit.flux.steps.choose`):
:class:`~gitopskit.flux.operator.FluxOperator` (the default for Flux 2),
:class:`~gitopskit.flux.charts.CommunityCharts` (``--installer charts``) and
:class:`~gitopskit.flux.charts.Flux1` (``--flux-version 1``). Each knows its helm releases, what
else it applies, what "ready" means and what to do once the Secret holds a new key; the steps
before (host keys, key pair, Secret, deploy key) and after (rotation, summary) are shared.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitopskit.errors import ConfigError
from gitopskit.flux.session import Session, command
from gitopskit.helm import Chart, ReleaseInfo, dump_values
from gitopskit.ssh import KeyPair


@dataclass(frozen=True)
class Release:
    """One helm release: chart, base values file from ``flux/``, the computed values and the
    CRDs that must be established before it is installed."""

    name: str
    chart: Chart
    base_values: Path
    values: Mapping[str, Any]
    needs_crds: tuple[str, ...] = ()


class Installer(ABC):
    """One way of installing Flux.

    Args:
        session: The run: options, kubectl, helm, output, result.
    """

    #: The ``--installer`` value (``flux1`` for Flux 1).
    name = ""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.options = session.options
        self.ui = session.ui

    def secret_data(self, key: KeyPair, hosts: str) -> dict[str, str]:
        """The Secret's keys: ``identity``, ``identity.pub``, ``known_hosts`` (Flux 2)."""
        return {"identity": key.private, "identity.pub": key.public + "\n", "known_hosts": hosts}

    def preflight(self) -> None:  # noqa: B027 (a step most installers do not need)
        """Before anything is written: refuse a cluster this installer must not change (it
        only reads)."""

    @abstractmethod
    def install(self, hosts: str) -> None:
        """Step 6: install or upgrade Flux (a dry run plans it)."""

    @abstractmethod
    def wait(self, *, secret_changed: bool = False) -> None:
        """Step 7: wait, bounded, until Flux is ready; ``secret_changed``: the Secret was just
        written, so Flux must read it again."""

    def after_ready(self) -> None:  # noqa: B027 (a step most installers do not need)
        """What is left once Flux is ready (a migration's last step)."""

    @abstractmethod
    def reload(self) -> None:
        """The Secret holds a new key: make Flux use it, and wait until it does (a rotation)."""

    # --- helm releases, shared ----------------------------------------------------------------

    def install_release(self, release: Release) -> None:
        """``helm upgrade --install`` of ``release`` by chart URL or OCI reference, its owner
        proven first; skipped when it is deployed from the same chart version with the same
        values (nothing to write); a release that needs CRDs waits until they are
        established."""
        session, options = self.session, self.options
        if not release.base_values.is_file():
            raise ConfigError(
                f"base values file {release.base_values} is missing",
                hint="run from the project directory; the flux/ values files are in git",
            )
        if options.dry_run:
            self._plan_release(release)
            return
        if release.needs_crds:
            session.kubectl.wait_established(release.needs_crds, options.wait_timeout)
            self.ui.step("crds", f"established: {', '.join(release.needs_crds)}")
        chart = release.chart
        existing = session.helm.check_owner(release.name, chart, options.namespace)
        if existing is not None and self._current(existing, release):
            self.ui.step("helm", f"{release.name}: {chart} is up to date")
            return
        installed = session.helm.upgrade_install(
            release.name, chart, options.namespace, release.base_values, release.values,
            wait_timeout=options.wait_timeout, owner_checked=(existing,),
        )  # fmt: skip
        session.result.releases.append(f"{release.name} ({chart.name} {chart.version})")
        verb = "installed" if installed else "upgraded"
        self.ui.step("helm", f"{release.name}: {chart} {verb}")

    def _current(self, existing: ReleaseInfo, release: Release) -> bool:
        return self.session.helm.is_current(
            existing, release.chart, release.base_values, release.values
        )

    def _plan_release(self, release: Release) -> None:
        """A dry run's helm step: owner and state checked when the cluster can be read,
        commands planned."""
        session, options = self.session, self.options
        session.result.values[release.name] = dump_values(release.values)
        if release.needs_crds:
            session.plan(command(session.kubectl.wait_args(release.needs_crds,
                                                           options.wait_timeout)))  # fmt: skip
        would = f"would install or upgrade {release.name} ({release.chart})"
        problem = session.unreadable
        if problem:
            session.unchecked("helm", problem, would + "; its owner is checked first")
        else:
            existing = session.helm.check_owner(release.name, release.chart, options.namespace)
            if existing is not None and self._current(existing, release):
                self.ui.step("helm", f"{release.name} ({release.chart}) is up to date")
                return
            state = "upgrade" if existing else "install"
            self.ui.step("helm", f"would {state} {release.name} ({release.chart})")
        args = session.helm.upgrade_args(
            release.name, release.chart, options.namespace, release.base_values,
            f"<generated values for {release.name}>",
            timeout=session.helm.install_timeout(options.wait_timeout),
        )  # fmt: skip
        session.plan(command(args))


class DeploymentsInstaller(Installer):
    """Flux installed by helm charts alone: ready when its Deployments have rolled out; a new
    key is read once they are restarted."""

    @abstractmethod
    def releases(self, hosts: str) -> list[Release]:
        """The helm releases to install, in order, with the values gitopskit computes."""

    def install(self, hosts: str) -> None:
        """Step 6: each release in turn."""
        for release in self.releases(hosts):
            self.install_release(release)

    def wait(self, *, secret_changed: bool = False, restart: bool = False) -> None:
        """Step 7: rollout status of the Flux deployments (after a restart, when rotating)."""
        session, options = self.session, self.options
        verb = "restart and wait for" if restart else "wait for"
        if options.dry_run:
            session.plan(f"{verb} the Deployments in {options.namespace}")
            if session.cluster_problem:
                would = f"would {verb} the Deployments in {options.namespace}"
                session.unchecked("wait", session.cluster_problem, would)
            return
        names = session.kubectl.deployments(options.namespace)
        if not names:
            self.ui.warn(f"no Deployments in {options.namespace} to wait for")
            return
        for name in names:
            if restart:
                session.kubectl.rollout_restart(name, options.namespace)
        for name in names:
            session.kubectl.rollout_status(name, options.namespace, options.wait_timeout)
        done = "restarted and ready" if restart else "ready"
        self.ui.step("wait", f"{len(names)} Deployments {done}: {', '.join(names)}")

    def reload(self) -> None:
        """Restart the controllers (they read the Secret at start) and wait for them."""
        self.wait(restart=True)
