"""What runs in Flux's namespace already, read only: a FluxInstance, the community charts'
releases, Flux 1's. The installers decide from it (refuse, migrate, rotate for what is there)."""

from __future__ import annotations

from typing import Any

from gitopskit.flux.readiness import instance_target
from gitopskit.flux.session import Session
from gitopskit.kube import Kubectl, UnknownKindError

#: The Flux Operator's chart.
OPERATOR_CHART = "flux-operator"
#: The fluxcd-community charts gitopskit installs with ``--installer charts``.
COMMUNITY_CHARTS = ("flux2", "flux2-sync")
#: Flux 1's chart.
FLUX1_CHART = "flux"


def find_instance(kubectl: Kubectl, namespace: str) -> dict[str, Any] | None:
    """The FluxInstance ``flux`` in ``namespace``; None when absent or its CRD is not there."""
    try:
        found = kubectl.get_objects(namespace, [instance_target().ref])
    except UnknownKindError:
        return None
    return found[0] if found else None


def installed(session: Session) -> str | None:
    """How Flux 2 is installed in the namespace: ``operator`` (a FluxInstance), ``charts`` (a
    release of a community chart), or None."""
    namespace = session.options.namespace
    if find_instance(session.kubectl, namespace) is not None:
        return "operator"
    releases = session.helm.releases(namespace)
    if any(r.chart_name in COMMUNITY_CHARTS for r in releases):
        return "charts"
    return None
