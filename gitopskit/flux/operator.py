"""Flux 2 installed the way Flux installs itself: the Flux Operator and one FluxInstance.

Install: ``helm upgrade --install flux-operator oci://ghcr.io/controlplaneio-fluxcd/charts/
flux-operator --version <pin>`` (no ``helm repo add``: an OCI reference), then the FluxInstance
``flux`` (:mod:`gitopskit.flux.instance`) by server-side apply once its CRD is established. The
operator installs the controllers and makes a GitRepository and a Kustomization named after the
namespace (or ``spec.sync.name``) from ``spec.sync``, with the Secret as ``pullSecret``.

Ready: the GitRepository, the Kustomization and the FluxInstance all ``Ready`` (see
:mod:`gitopskit.flux.readiness`); the revision Flux applied is printed.

A new key: source-controller does not watch Secrets, so the GitRepository is asked to reconcile
(``reconcile.fluxcd.io/requestedAt``), and the run waits until it has fetched with the new key;
no controller is restarted.

On a namespace where the community charts run Flux (:mod:`gitopskit.flux.charts`), bootstrap
stops and explains; with ``--migrate`` it installs the operator beside them, names the sync
after the ``flux2-sync`` release so that the operator adopts that GitRepository and
Kustomization (nothing is deleted, nothing pruned), waits until all is Ready, then retires the
releases by removing helm's records only (:mod:`gitopskit.flux.migrate`).
"""

from __future__ import annotations

from typing import Any

from gitopskit.errors import ConfigError
from gitopskit.flux.detect import COMMUNITY_CHARTS, FLUX1_CHART, OPERATOR_CHART, find_instance
from gitopskit.flux.installer import Installer, Release
from gitopskit.flux.instance import NAME, render, to_yaml, up_to_date
from gitopskit.flux.migrate import retire
from gitopskit.flux.readiness import (
    REQUESTED_AT,
    Target,
    instance_target,
    kustomization_target,
    look,
    now_token,
    source_target,
    state_of,
    wait_ready,
)
from gitopskit.flux.session import Session, command
from gitopskit.helm import Chart, ReleaseInfo
from gitopskit.kube import FIELD_MANAGER

Obj = dict[str, Any]

OPERATOR_REPO = "oci://ghcr.io/controlplaneio-fluxcd/charts"
BASE_VALUES = "flux-operator-values.yaml"
INSTANCE_CRD = "fluxinstances.fluxcd.controlplane.io"


class FluxOperator(Installer):
    """The Flux Operator (helm, by OCI reference) and one FluxInstance."""

    name = "operator"

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        #: The FluxInstance in the cluster before this run wrote anything (None: none).
        self.instance: Obj | None = None
        #: Releases of the community charts in the namespace (a migration retires them).
        self.community: list[ReleaseInfo] = []
        #: ``spec.sync.name`` to apply (None: the operator's default, the namespace).
        self.sync_name: str | None = None

    @property
    def namespace(self) -> str:
        """Flux's namespace, the operator's."""
        return self.options.namespace

    @property
    def chart(self) -> Chart:
        """The operator's chart, pinned."""
        return Chart(OPERATOR_REPO, OPERATOR_CHART, self.options.operator.chart_version)

    @property
    def synced(self) -> str:
        """The name of the GitRepository and Kustomization."""
        return self.sync_name or self.namespace

    # --- before anything is written -----------------------------------------------------------

    def preflight(self) -> None:
        """Read the FluxInstance and the namespace's helm releases; stop on a community-chart
        install unless migrating."""
        session = self.session
        if session.unreadable:
            return
        with session.cluster_reads():
            self.instance = find_instance(session.kubectl, self.namespace)
            releases = session.helm.releases(self.namespace)
            self.community = [r for r in releases if r.chart_name in COMMUNITY_CHARTS]
        if session.unreadable:
            return
        for release in releases:
            if release.chart_name == FLUX1_CHART:
                uninstall = command(session.helm.uninstall_args(release.name, self.namespace))
                raise ConfigError(
                    f"Flux 1 (helm release {release.name}, {release.chart}) runs in "
                    f"{self.namespace}: the Flux Operator would install a second Flux beside it",
                    hint=f"uninstall Flux 1 first ({uninstall}; the objects it applied stay), "
                    "then run flux-bootstrap again",
                )
        named = (((self.instance or {}).get("spec") or {}).get("sync") or {}).get("name")
        sync_release = [r.name for r in self.community if r.chart_name == "flux2-sync"]
        if named:
            self.sync_name = str(named)  # immutable once set
        elif self.instance is None and sync_release:
            self.sync_name = sync_release[0]
        if self.community:
            self._migrating()

    def _migrating(self) -> None:
        listed = ", ".join(f"{r.name} ({r.chart}, {r.status})" for r in self.community)
        if not self.options.migrate:
            raise ConfigError(
                f"Flux in {self.namespace} was installed with the community charts (helm "
                f"releases {listed}): installing the Flux Operator beside them would run two "
                "Flux installations on one cluster",
                hint="run `invoke flux-bootstrap --migrate` to move to the Flux Operator: every "
                f"CRD and Flux object stays, the GitRepository and Kustomization {self.synced} "
                "are adopted by the operator, and the releases are retired once Flux is ready "
                "(never `helm uninstall` the flux2 release: its chart deletes Flux's CRDs and "
                "every Flux object with them); or keep the charts with --installer charts",
            )
        self.ui.step("migrate", f"from the community charts ({listed}) to the Flux Operator; "
                     f"GitRepository and Kustomization {self.namespace}/{self.synced} are "
                     "adopted, nothing is deleted")  # fmt: skip

    # --- install ------------------------------------------------------------------------------

    def install(self, hosts: str) -> None:
        """The operator's chart, then the FluxInstance."""
        base = self.options.values_dir / BASE_VALUES
        self.install_release(Release(self.options.operator.release, self.chart, base, {}))
        self.apply_instance()
        if self.community and not self.options.wait:
            self.ui.warn("the community releases are retired only once Flux is ready: run "
                         "`invoke flux-bootstrap --migrate` again without --no-wait")  # fmt: skip

    def apply_instance(self) -> None:
        """Server-side apply of the FluxInstance, unless the cluster's already holds it."""
        session, options = self.session, self.options
        wanted = render(options, self.sync_name)
        label = f"FluxInstance {self.namespace}/{NAME}"
        sync = wanted["spec"]["sync"]
        what = (f"Flux {wanted['spec']['distribution']['version']}, sync {sync['url']} "
                f"{sync['ref']} {sync['path']}")  # fmt: skip
        current = up_to_date(self.instance, wanted)
        if options.dry_run:
            session.result.values[label] = to_yaml(wanted)
            session.plan(command(session.kubectl.wait_args([INSTANCE_CRD], options.wait_timeout)))
            session.plan(command(session.kubectl.args(
                "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-"))
                + f"  <- {label} (below)")  # fmt: skip
            if session.unreadable:
                session.unchecked("flux", session.unreadable, f"would apply {label} ({what})")
            elif current:
                self.ui.step("flux", f"{label} is up to date")
            else:
                verb = "update" if self.instance else "create"
                self.ui.step("flux", f"would {verb} {label} ({what})")
            return
        if self.instance is None:  # else its CRD is there
            session.kubectl.wait_established([INSTANCE_CRD], options.wait_timeout)
        if current:
            self.ui.step("flux", f"{label} is up to date")
            return
        session.kubectl.apply([wanted])
        session.result.applied.append(label)
        self.ui.step("flux", f"applied {label} ({what})")

    # --- ready --------------------------------------------------------------------------------

    def targets(self) -> list[Target]:
        """What must be Ready, most specific first."""
        return [source_target(self.synced), kustomization_target(self.synced), instance_target()]

    def wait(self, *, secret_changed: bool = False) -> None:
        """Until the GitRepository, the Kustomization and the FluxInstance are Ready. An existing
        GitRepository is asked to fetch again first when the Secret just changed or it is not
        Ready (a deploy key added by hand since, say): the wait then shows the fetch of now."""
        session, options = self.session, self.options
        names = ", ".join(f"{t.kind} {self.namespace}/{t.name}" for t in self.targets())
        if options.dry_run:
            session.plan(f"wait until {names} are Ready (at most {options.wait_timeout:g}s)")
            if session.cluster_problem:
                session.unchecked("wait", session.cluster_problem,
                                  f"would wait until {names} are Ready")  # fmt: skip
            return
        handled, seen = {}, None
        if self.instance is not None:
            seen = look(session.kubectl, self.namespace, self.targets())
            repo = seen.get("GitRepository")
            if repo is not None and (secret_changed or not state_of(repo).ready):
                handled["GitRepository"] = self._request_reconcile()
                seen = None
        self._wait(self.targets(), handled, seen)

    def _wait(
        self, targets: list[Target], handled: dict[str, str], seen: dict[str, Obj] | None = None
    ) -> None:
        session, options = self.session, self.options
        found = wait_ready(
            session.kubectl, self.namespace, targets, timeout=options.wait_timeout, ui=self.ui,
            handled=handled, secret=session.where, key_fingerprint=session.result.key_fingerprint,
            seen=seen,
        )  # fmt: skip
        source = found.get("GitRepository") or {}
        revision = str(((source.get("status") or {}).get("artifact") or {}).get("revision", ""))
        applied = str(((found.get("Kustomization") or {}).get("status") or {}).get(
            "lastAppliedRevision", ""))  # fmt: skip
        flux = str(((found.get("FluxInstance") or {}).get("status") or {}).get(
            "lastAppliedRevision", "")).split("@")[0]  # fmt: skip
        session.result.revision = applied or revision
        session.result.flux_version = flux or session.result.flux_version
        if "FluxInstance" in found:
            self.ui.step("ready", f"Flux {flux or '?'} is Ready: GitRepository "
                         f"{self.namespace}/{self.synced} at {revision}, Kustomization "
                         f"{self.namespace}/{self.synced} applied {applied}")  # fmt: skip
        else:
            self.ui.step("ready", f"GitRepository {self.namespace}/{self.synced} is Ready at "
                         f"{revision}")  # fmt: skip

    def after_ready(self) -> None:
        """A migration's last step: retire the community releases (their records only)."""
        if self.community:
            retire(self.session, self.community)
            if not self.options.dry_run:
                self.ui.step("migrate", f"done: Flux in {self.namespace} is the Flux Operator's; "
                             "helm no longer lists the community releases")  # fmt: skip

    # --- a new key ----------------------------------------------------------------------------

    def _request_reconcile(self) -> str:
        """Ask source-controller to fetch again now (it reads the Secret then; it does not watch
        it, and retries a failed fetch only at its interval); returns the request's token."""
        target = source_target(self.synced)
        token = now_token()
        self.session.kubectl.annotate(target.resource, target.name, self.namespace, REQUESTED_AT,
                                      token)  # fmt: skip
        self.ui.step("reconcile", f"asked GitRepository {self.namespace}/{target.name} to fetch "
                     "again with the Secret's key and known_hosts")  # fmt: skip
        return token

    def reload(self) -> None:
        """Request a reconcile of the GitRepository and wait until it has fetched (so with the
        new key) and it, the Kustomization and the FluxInstance are Ready; no controller
        restarts."""
        session, options = self.session, self.options
        if self.instance is None and not session.unreadable:
            with session.cluster_reads():
                self.instance = find_instance(session.kubectl, self.namespace)
        named = (((self.instance or {}).get("spec") or {}).get("sync") or {}).get("name")
        self.sync_name = str(named) if named else self.sync_name
        target = source_target(self.synced)
        if options.dry_run:
            session.plan(command(session.kubectl.args(
                "annotate", target.resource, target.name, f"{REQUESTED_AT}=<now>", "--overwrite",
                "--namespace", self.namespace)))  # fmt: skip
            session.plan(f"wait until GitRepository {self.namespace}/{target.name} has fetched "
                         "with the new key and is Ready")  # fmt: skip
            return
        seen = look(session.kubectl, self.namespace, [target])
        if self.instance is None or "GitRepository" not in seen:
            raise ConfigError(
                f"there is no GitRepository {self.namespace}/{target.name} of a FluxInstance to "
                "fetch with the new key",
                hint="run `invoke flux-bootstrap` to install Flux, then rotate again",
            )
        self._wait(self.targets(), {"GitRepository": self._request_reconcile()})
