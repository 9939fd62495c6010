"""Retiring the community charts' helm releases once the Flux Operator runs Flux: helm forgets
them, and not one object goes.

``helm uninstall`` of the ``flux2`` release would delete the CRDs it templates (without
``helm.sh/resource-policy: keep``), and with them every GitRepository, Kustomization and
HelmRelease in the cluster. So only helm's own records of each release are removed: the
Secrets (or, with ``HELM_DRIVER=configmap``, ConfigMaps) labelled ``owner=helm`` and
``name=<release>`` in the release's namespace. Afterwards ``helm list`` no longer shows the
releases; the controllers, CRDs and Flux objects they made are the operator's to manage.
"""

from __future__ import annotations

from collections.abc import Sequence

from gitopskit.errors import HelmError
from gitopskit.flux.session import Session, command
from gitopskit.helm import ReleaseInfo

#: The type of the Secrets helm's default driver stores a release revision in.
RELEASE_SECRET_TYPE = "helm.sh/release.v1"


def records(session: Session, release: str) -> list[tuple[str, list[str]]]:
    """helm's records of ``release``: ``(kind, names)`` for Secrets and ConfigMaps."""
    namespace = session.options.namespace
    selector = f"owner=helm,name={release}"
    secrets = session.kubectl.names("secrets", namespace, selector=selector,
                                    field_selector=f"type={RELEASE_SECRET_TYPE}")  # fmt: skip
    configmaps = session.kubectl.names("configmaps", namespace, selector=selector)
    return [(kind, names) for kind, names in (("secret", secrets), ("configmap", configmaps))
            if names]  # fmt: skip


def retire(session: Session, releases: Sequence[ReleaseInfo]) -> None:
    """Remove helm's records of ``releases`` (a dry run plans it), then check helm forgot them.

    Raises:
        HelmError: helm keeps a release where gitopskit cannot see it (another storage driver),
            or still lists it afterwards.
    """
    namespace = session.options.namespace
    for release in releases:
        found = records(session, release.name)
        if not found:
            raise HelmError(
                f"helm lists release {namespace}/{release.name} but keeps no Secret or ConfigMap "
                "for it there (HELM_DRIVER=sql?): gitopskit cannot retire it safely",
                hint="do not `helm uninstall` it: its chart would delete Flux's CRDs and every "
                "Flux object; remove helm's record of it with the storage driver it uses",
            )
        for kind, names in found:
            what = f"helm's record of release {release.name} ({release.chart}): {kind} " \
                f"{', '.join(names)}; its objects stay"  # fmt: skip
            if session.dry_run:
                args = session.kubectl.args("delete", kind, *names, "--namespace", namespace)
                session.plan(f"{command(args)}  <- {what}")
                continue
            session.kubectl.delete(kind, names, namespace)
            session.ui.step("migrate", f"removed {what}")
        if not session.dry_run:
            session.result.retired_releases.append(f"{release.name} ({release.chart})")
    if session.dry_run:
        return
    left = {r.name for r in session.helm.releases(namespace)} & {r.name for r in releases}
    if left:
        raise HelmError(f"helm still lists {', '.join(sorted(left))} in {namespace} after its "
                        "records were removed")  # fmt: skip
