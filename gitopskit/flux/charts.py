"""Flux installed by helm charts alone: the fluxcd-community ``flux2`` and ``flux2-sync`` charts
(``--installer charts``), or Flux 1's own chart (``--flux-version 1``, end of life).

Flux's installation docs list the community charts as a development install; the Flux Operator
(:mod:`gitopskit.flux.operator`) is the default. The ``flux2`` chart templates Flux's CRDs; its
base values (``flux/flux2-values.yaml``) annotate them ``helm.sh/resource-policy: keep``, so
that uninstalling the release can never delete them and, with them, every Flux object.
"""

from __future__ import annotations

from gitopskit.errors import ConfigError
from gitopskit.flux.detect import FLUX1_CHART, OPERATOR_CHART, find_instance
from gitopskit.flux.installer import DeploymentsInstaller, Release
from gitopskit.helm import Chart
from gitopskit.ssh import KeyPair

FLUX1_REPO = "https://charts.fluxcd.io"
FLUX2_REPO = "https://fluxcd-community.github.io/helm-charts"
#: The CRDs flux2-sync's GitRepository and Kustomization need (installed by the flux2 chart).
FLUX2_SYNC_CRDS = (
    "gitrepositories.source.toolkit.fluxcd.io",
    "kustomizations.kustomize.toolkit.fluxcd.io",
)
UNKNOWN_URL = "<unknown: pass --git-url>"
UNKNOWN_BRANCH = "<unknown: pass --git-branch>"


class CommunityCharts(DeploymentsInstaller):
    """Flux 2 from the fluxcd-community ``flux2`` (controllers, CRDs) and ``flux2-sync``
    (GitRepository, Kustomization) charts."""

    name = "charts"

    def preflight(self) -> None:
        """Refuse a namespace where the Flux Operator runs Flux: a second Flux beside it would
        fight it over every object."""
        session, namespace = self.session, self.options.namespace
        if session.unreadable:
            return
        with session.cluster_reads():
            operator = [r for r in session.helm.releases(namespace)
                        if r.chart_name == OPERATOR_CHART]  # fmt: skip
            instance = find_instance(session.kubectl, namespace)
            if operator or instance is not None:
                what = f"helm release {operator[0].name}" if operator else "FluxInstance flux"
                raise ConfigError(
                    f"Flux in {namespace} is installed by the Flux Operator ({what}): "
                    "--installer charts would install a second Flux beside it",
                    hint="drop --installer charts: flux-bootstrap then updates the FluxInstance",
                )

    def releases(self, hosts: str) -> list[Release]:
        """``flux2``, then ``flux2-sync`` once the CRDs it needs are established."""
        options = self.options
        names, versions, base = options.release_names, options.chart_versions, options.values_dir
        url = options.git_url.ssh_url if options.git_url else UNKNOWN_URL
        controllers = Chart(FLUX2_REPO, "flux2", versions["FLUX2_CHART_VERSION"])
        sync = Chart(FLUX2_REPO, "flux2-sync", versions["FLUX2_SYNC_CHART_VERSION"])
        sync_values = {
            "gitRepository": {
                "spec": {
                    "url": url,
                    "secretRef": {"name": options.secret_name},
                    "ref": {"branch": options.git_branch or UNKNOWN_BRANCH},
                }
            },
            "kustomization": {"spec": {"path": options.sync_path, "prune": True}},
            # The key lives in the Secret of step 4, not in helm's release data.
            "secret": {"create": False},
        }
        return [
            Release(names["FLUX2_RELEASE"], controllers, base / "flux2-values.yaml", {}),
            Release(
                names["FLUX2_SYNC_RELEASE"],
                sync,
                base / "flux2-sync-values.yaml",
                sync_values,
                needs_crds=FLUX2_SYNC_CRDS,
            ),
        ]


class Flux1(DeploymentsInstaller):
    """Flux 1 (end of life) from its own chart, with a read-only key."""

    name = "flux1"

    def secret_data(self, key: KeyPair, hosts: str) -> dict[str, str]:
        """Flux 1 reads ``identity`` only; known_hosts goes through the chart's values."""
        return {"identity": key.private}

    def releases(self, hosts: str) -> list[Release]:
        """The ``flux`` chart, with git settings for a read-only deploy key."""
        options = self.options
        chart = Chart(FLUX1_REPO, FLUX1_CHART, options.chart_versions["FLUX1_CHART_VERSION"])
        values = {
            "git": {
                "url": options.git_url.ssh_url if options.git_url else UNKNOWN_URL,
                "branch": options.git_branch or UNKNOWN_BRANCH,
                "path": options.git_path,
                "secretName": options.secret_name,
                # A read-only deploy key: fluxd must not try to push (it would never sync).
                "readonly": True,
            },
            "sync": {"state": "secret"},
            "ssh": {"known_hosts": hosts},
        }
        release = options.release_names["FLUX1_RELEASE"]
        return [Release(release, chart, options.values_dir / "flux1-values.yaml", values)]
