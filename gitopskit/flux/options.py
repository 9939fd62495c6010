"""What flux-bootstrap and flux-rotate-key do, resolved once from flags and settings.

:class:`Options` is one flat dataclass: a new setting is one field with a default and one line
in :func:`resolve`. The settings of one way of installing Flux are grouped
(:class:`OperatorSettings`), and only that installer reads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitopskit.config import Settings
from gitopskit.errors import ConfigError, ManifestError
from gitopskit.flux.deploy_keys import GitLabAccess, project_defaults
from gitopskit.helm import check_release_name
from gitopskit.ssh import KEY_TYPES, GitURL, parse_git_url
from gitopskit.tree import subdir_path

#: The ways Flux 2 can be installed (``--installer``); Flux 1 has its own chart only.
INSTALLERS = ("operator", "charts")
FLUX1 = "flux1"
#: The controllers a FluxInstance may list (the operator's API reference).
COMPONENTS = (
    "source-controller", "kustomize-controller", "helm-controller", "notification-controller",
    "image-reflector-controller", "image-automation-controller", "source-watcher",
)  # fmt: skip
CLUSTER_TYPES = ("kubernetes", "openshift", "aws", "azure", "gcp")
#: A sync interval as the FluxInstance API accepts it: a Go duration of whole units.
INTERVAL = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")


@dataclass(frozen=True)
class OperatorSettings:
    """What the Flux Operator installer installs: its chart, and the FluxInstance's fields that
    settings give."""

    release: str = "flux-operator"
    chart_version: str = "0.58.1"
    distribution_version: str = "2.9.x"
    components: tuple[str, ...] = (
        "source-controller", "kustomize-controller", "helm-controller", "notification-controller",
    )  # fmt: skip
    cluster_type: str = "kubernetes"
    sync_interval: str = "1m"


@dataclass
class Options:
    """What to bootstrap, resolved from flags and settings (see :func:`resolve`).

    ``git_url`` and ``git_branch`` are None only in a dry run that could not learn them: the
    plan is then incomplete.
    """

    flux_version: int
    git_url: GitURL | None
    namespace: str
    secret_name: str
    git_branch: str | None
    git_path: str
    installer: str = "operator"
    migrate: bool = False
    key_type: str = "ed25519"
    fingerprints: list[str] = field(default_factory=list)
    require_pinned: bool = False
    context: str | None = None
    wait: bool = True
    wait_timeout: float = 300
    network_timeout: float = 60
    dry_run: bool = False
    values_dir: Path = Path("flux")
    release_names: Mapping[str, str] = field(default_factory=dict)  # by setting name
    chart_versions: Mapping[str, str] = field(default_factory=dict)  # by setting name
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    environment: str | None = None  # the environment whose cluster this is

    @property
    def sync_path(self) -> str:
        """The path Flux applies, as Flux writes it: ``./`` for the root, ``./clusters/prod``."""
        return f"./{self.git_path}" if self.git_path else "./"


def _installer(settings: Settings, version: int, migrate: bool) -> str:
    chosen = settings.require("FLUX_INSTALLER")
    explicit = settings.source("FLUX_INSTALLER") != "default"
    if chosen not in INSTALLERS:
        raise ConfigError(
            f"--installer must be one of {', '.join(INSTALLERS)}, not {chosen!r}",
            hint="operator installs the Flux Operator and one FluxInstance (the default); charts "
            "the fluxcd-community flux2 and flux2-sync charts",
        )
    if version == 1:
        if explicit:
            raise ConfigError(
                f"--installer {chosen} installs Flux 2; Flux 1 has its own chart only",
                hint="drop --installer, or install Flux 2 (--flux-version 2)",
            )
        chosen = FLUX1
    if migrate and chosen != "operator":
        other = "--flux-version 1" if version == 1 else "--installer charts"
        raise ConfigError(
            "--migrate moves a Flux installed with the community charts to the Flux Operator: "
            f"it cannot be combined with {other}"
        )
    return chosen


def _git_path(path: str) -> str:
    """``--git-path`` as publish reads ``MANIFESTS_PATH``: '' for the root (``.`` too),
    ``clusters/prod`` for ``./clusters/prod/``.

    Raises:
        ConfigError: It leaves the repository (Flux would clamp it to the root and apply
            everything there) or holds refused characters.
    """
    try:
        return subdir_path(path)
    except ManifestError:
        raise ConfigError(
            f"--git-path: {path!r} is not a directory inside the manifests repository",
            hint="a relative path such as clusters/prod (the root: leave it out)",
        ) from None


def operator_settings(settings: Settings) -> OperatorSettings:
    """The Flux Operator installer's settings, checked.

    Raises:
        ConfigError: A component, cluster type, interval or version the operator refuses.
    """
    components = tuple(
        c.strip() for c in settings.require("FLUX_COMPONENTS").split(",") if c.strip()
    )
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown or not components:
        raise ConfigError(
            f"GITOPSKIT_FLUX_COMPONENTS: {', '.join(unknown) or 'no component'} is not a Flux "
            "component the operator installs",
            hint=f"choose from {', '.join(COMPONENTS)}",
        )
    cluster_type = settings.require("FLUX_CLUSTER_TYPE")
    if cluster_type not in CLUSTER_TYPES:
        raise ConfigError(
            f"GITOPSKIT_FLUX_CLUSTER_TYPE must be one of {', '.join(CLUSTER_TYPES)}, not "
            f"{cluster_type!r}"
        )
    interval = settings.require("FLUX_SYNC_INTERVAL")
    if not INTERVAL.match(interval):
        raise ConfigError(
            f"GITOPSKIT_FLUX_SYNC_INTERVAL must be a duration such as 1m, 30s or 1h30m, not "
            f"{interval!r}"
        )
    version = settings.require("FLUX_DISTRIBUTION_VERSION")
    if not re.fullmatch(r"[0-9vx*.<>=, -]+", version) or not re.search(r"[0-9x*]", version):
        raise ConfigError(
            f"GITOPSKIT_FLUX_DISTRIBUTION_VERSION must be a Flux version or range such as "
            f"2.9.x, 2.x or 2.9.4, not {version!r}"
        )
    return OperatorSettings(
        release=check_release_name(settings.require("FLUX_OPERATOR_RELEASE")),
        chart_version=settings.require("FLUX_OPERATOR_CHART_VERSION"),
        distribution_version=version,
        components=components,
        cluster_type=cluster_type,
        sync_interval=interval,
    )


def resolve(
    settings: Settings,
    *,
    values_dir: Path,
    access: GitLabAccess,
    fingerprints: Sequence[str] = (),
    require_pinned: bool = False,
    wait: bool = True,
    dry_run: bool = False,
    migrate: bool = False,
) -> Options:
    """Options from the settings (flags already in ``settings``); may read the GitLab project.

    Raises:
        ConfigError: A bad or missing value (malformed git URL, Flux version, key type…).
    """
    version_text = settings.require("FLUX_VERSION")
    if version_text not in ("1", "2"):
        raise ConfigError(f"--flux-version must be 1 or 2, not {version_text!r}")
    version = int(version_text)
    installer = _installer(settings, version, migrate)
    operator = operator_settings(settings) if installer == "operator" else OperatorSettings()
    key_type = settings.require("FLUX_KEY_TYPE")
    if key_type not in KEY_TYPES:
        raise ConfigError(f"--key-type must be one of {', '.join(KEY_TYPES)}, not {key_type!r}")
    url_text = settings.get("FLUX_GIT_URL")
    if url_text:
        parse_git_url(url_text)
    branch = settings.get("MANIFESTS_TARGET_BRANCH")
    if access.deploy_keys is not None and (not url_text or not branch):
        project_url, project_branch = project_defaults(access, dry_run)
        url_text = url_text or project_url
        branch = branch or project_branch
    if not url_text and not dry_run:
        raise ConfigError(
            "no git URL for Flux",
            hint="pass --git-url git@host:group/repo.git, or set GITLAB_URL and "
            "MANIFESTS_PROJECT to use the manifests project's SSH URL",
        )
    if not branch and not dry_run:
        raise ConfigError(
            "no branch for Flux to follow",
            hint="pass --git-branch, or set MANIFESTS_TARGET_BRANCH",
        )
    return Options(
        flux_version=version,
        git_url=parse_git_url(url_text) if url_text else None,
        namespace=settings.get("FLUX_NAMESPACE") or ("flux-system" if version == 2 else "flux"),
        secret_name=settings.require("FLUX_SECRET_NAME"),
        git_branch=branch or None,
        git_path=_git_path(settings.get("MANIFESTS_PATH") or ""),
        installer=installer,
        migrate=migrate,
        key_type=key_type,
        fingerprints=list(fingerprints),
        require_pinned=require_pinned,
        context=settings.get("KUBE_CONTEXT"),
        wait=wait,
        wait_timeout=settings.seconds("FLUX_WAIT_TIMEOUT"),
        network_timeout=settings.seconds("NETWORK_TIMEOUT"),
        dry_run=dry_run,
        values_dir=values_dir,
        release_names={
            n: check_release_name(settings.require(n))
            for n in ("FLUX1_RELEASE", "FLUX2_RELEASE", "FLUX2_SYNC_RELEASE")
        },
        chart_versions={
            n: settings.require(n)
            for n in ("FLUX1_CHART_VERSION", "FLUX2_CHART_VERSION", "FLUX2_SYNC_CHART_VERSION")
        },
        operator=operator,
    )
