"""Settings, once for all tasks.

Every setting has one name in three forms: an environment variable, the key ``gitopskit.name``
in ``invoke.yaml``, and, where a task takes it, the flag ``--name``. A flag beats the
environment, which beats ``invoke.yaml``, which beats the setting's fallbacks (GitLab CI's
predefined variables), which beat the default. Tokens are read from the environment only.

The environment variable of gitopskit's own settings carries the prefix ``GITOPSKIT_``
(``GITOPSKIT_OUTDIR``): generic names such as ``OUTDIR`` or ``APP`` are set by other tools, and
reading them would let a stranger's variable decide where synth writes. The names a CI pipeline
sets for the repositories and tokens (``MANIFESTS_*``, ``GITLAB_*``, ``COMMENT_TOKEN``) stay as
they are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gitopskit.errors import ConfigError
from gitopskit.redact import add_secret


@dataclass(frozen=True)
class Setting:
    """A documented setting.

    Args:
        name: Upper-case name, the environment variable.
        help: One line for docs/configuration.md and ``--help``.
        default: Used when nothing else sets it.
        fallback_env: Environment variables read after ``invoke.yaml`` (GitLab CI's own).
        secret: Read from the environment only, never logged.
        own: gitopskit's own setting: its environment variable is ``GITOPSKIT_<name>``.
    """

    name: str
    help: str
    default: str | None = None
    fallback_env: tuple[str, ...] = ()
    secret: bool = False
    own: bool = False

    @property
    def key(self) -> str:
        """The key under ``gitopskit:`` in ``invoke.yaml``."""
        return self.name.lower()

    @property
    def env(self) -> str:
        """The environment variable: ``GITOPSKIT_OUTDIR`` for our own, ``MANIFESTS_TOKEN``…"""
        return f"{ENV_PREFIX}{self.name}" if self.own else self.name

    @property
    def flag(self) -> str:
        """The task flag that sets it, where a task takes one: ``--outdir``."""
        return "--" + self.key.replace("_", "-")


ENV_PREFIX = "GITOPSKIT_"


def _own(name: str, help: str, default: str | None = None) -> Setting:
    return Setting(name, help, default, own=True)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        _own("APP", "command that runs the cdk8s app (default: `app:` in cdk8s.yaml)"),
        _own("OUTDIR",
            "directory synth writes the manifests to (default: `output:` in cdk8s.yaml, else dist)",
            default="dist",
        ),
        _own("KUBERNETES_VERSION",
            "Kubernetes version whose schema validates objects (default: cdk8s-plus's)",
        ),
        _own("CRDS",
            "CRD manifests (files or folders) whose schemas validate custom resources",
            default="crds",
        ),
        _own("SCHEMAS",
            "schema-catalog directories ({group}/{kind}_{version}.json) for custom resources",
        ),
        _own("STRICT",
            "unknown fields of custom resources, and kinds with no schema, are errors",
            default="false",
        ),
        Setting(
            "GITLAB_URL",
            "GitLab base URL, e.g. https://gitlab.example.com",
            fallback_env=("CI_SERVER_URL",),
        ),
        Setting(
            "GITLAB_CA_FILE",
            "CA bundle for a self-managed GitLab",
            fallback_env=("CI_SERVER_TLS_CA_FILE",),
        ),
        Setting("MANIFESTS_PROJECT", "manifests project path, e.g. group/k8s-manifests"),
        Setting("MANIFESTS_GIT_URL", "git URL or local path of the manifests repository"),
        Setting(
            "MANIFESTS_TARGET_BRANCH",
            "branch merge requests target, diff compares with and Flux follows (default: the "
            "project's default branch, else the remote's HEAD)",
        ),
        Setting("MANIFESTS_PATH", "subdirectory of the manifests repository", default=""),
        Setting("MANIFESTS_BRANCH", "publish branch (default gitopskit/<project slug>)"),
        Setting(
            "MANIFESTS_TOKEN",
            "project access token for the manifests project (api, write_repository)",
            fallback_env=("LAB_CORE_TOKEN",),
            secret=True,
        ),
        Setting(
            "MANIFESTS_READ_TOKEN",
            "read_repository token for diffs in merge-request pipelines",
            secret=True,
        ),
        Setting(
            "COMMENT_TOKEN", "api token that posts the diff note on merge requests", secret=True
        ),
        Setting("GITLAB_TOKEN", "a Maintainer's token for deploy keys", secret=True),
        _own("KUBE_CONTEXT", "kube context Flux is bootstrapped in (default: the current one)"),
        _own("FLUX_VERSION", "Flux major version flux-bootstrap installs: 2 or 1", default="2"),
        _own("FLUX_NAMESPACE", "namespace of Flux (default: flux-system for 2, flux for 1)"),
        _own("FLUX_SECRET_NAME", "Secret holding Flux's SSH key", default="flux-ssh"),
        _own("FLUX_GIT_URL",
            "SSH URL Flux clones (default: the manifests project's ssh_url_to_repo)",
        ),
        _own("FLUX_KEY_TYPE",
            "deploy key type: ed25519, ecdsa (P-384) or rsa (4096)",
            default="ed25519",
        ),
        _own(
            "NETWORK_TIMEOUT",
            "seconds any single network operation may take (git, GitLab, kubectl, helm, ssh)",
            default="60",
        ),
        _own("FLUX_WAIT_TIMEOUT", "seconds to wait for Flux to be ready", default="300"),
        _own("FLUX_INSTALLER",
            "how flux-bootstrap installs Flux 2: operator (the Flux Operator) or charts",
            default="operator",
        ),
        _own("FLUX_OPERATOR_RELEASE", "helm release of the Flux Operator", default="flux-operator"),
        _own("FLUX_OPERATOR_CHART_VERSION",
            "pinned version of the flux-operator chart (oci://ghcr.io/controlplaneio-fluxcd)",
            default="0.58.1",
        ),
        _own("FLUX_DISTRIBUTION_VERSION",
            "Flux version the operator installs: exact (2.9.4) or a range (2.9.x, 2.x)",
            default="2.9.x",
        ),
        _own("FLUX_COMPONENTS",
            "Flux controllers the operator installs, comma-separated",
            default="source-controller,kustomize-controller,helm-controller,"
            "notification-controller",
        ),
        _own("FLUX_CLUSTER_TYPE",
            "cluster type for the operator: kubernetes, openshift, aws, azure or gcp",
            default="kubernetes",
        ),
        _own("FLUX_SYNC_INTERVAL", "how often Flux fetches the manifests (1m, 5m, 1h)",
            default="1m",
        ),
        _own("FLUX1_RELEASE", "helm release of Flux 1", default="flux"),
        _own("FLUX1_CHART_VERSION", "pinned version of the fluxcd/flux chart", default="1.13.3"),
        _own("FLUX2_RELEASE", "helm release of the Flux 2 controllers", default="flux"),
        _own("FLUX2_CHART_VERSION",
            "pinned version of the fluxcd-community/flux2 chart",
            default="2.18.3",
        ),
        _own("FLUX2_SYNC_RELEASE",
            "helm release of the Flux 2 GitRepository/Kustomization",
            default="flux-sync",
        ),
        _own("FLUX2_SYNC_CHART_VERSION",
            "pinned version of the fluxcd-community/flux2-sync chart",
            default="1.14.5",
        ),
    )
}


#: Keys of ``gitopskit:`` in invoke.yaml that hold structures, not settings (read elsewhere).
SECTIONS = ("environments",)


@dataclass(frozen=True)
class Settings:
    """Resolves settings from flags, the environment and the ``gitopskit`` section of invoke.yaml.

    Args:
        project: The ``gitopskit:`` mapping of ``invoke.yaml``.
        environ: The environment; ``os.environ`` by default.
        flags: Values the task's flags gave, by setting name; they beat everything else.

    Raises:
        ConfigError: ``invoke.yaml`` holds a token or an unknown key.
    """

    project: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    flags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in self.project:
            if key in SECTIONS:
                continue
            name = str(key).upper()
            setting = SETTINGS.get(name)
            if (setting and setting.secret) or name.endswith("TOKEN"):
                raise ConfigError(
                    f"invoke.yaml sets gitopskit.{key}: tokens are read from the environment only",
                    hint=f"remove it from invoke.yaml (it is committed; revoke the token) and "
                    f"set the environment variable {name} instead",
                )
            if setting is None:
                keys = [s.key for s in SETTINGS.values() if not s.secret]
                known = ", ".join(sorted([*keys, *SECTIONS]))
                raise ConfigError(
                    f"invoke.yaml: unknown setting gitopskit.{key}", hint=f"known settings: {known}"
                )
        # Every token in the environment is masked from the start, used by this task or not.
        for setting in SETTINGS.values():
            if setting.secret:
                self.token(setting.name)

    def get(self, name: str, flag: str | None = None, *, default: str | None = None) -> str | None:
        """Resolve one setting: flag, environment, invoke.yaml, fallbacks, default.

        Args:
            name: The setting's upper-case name.
            flag: The task's flag value; None when not given.
            default: Overrides the setting's own default.
        """
        if flag is None:
            flag = self.flags.get(name)
        if flag is not None:
            return flag
        setting = SETTINGS[name]
        if setting.secret:
            return self.token(name)
        value = self.environ.get(setting.env)
        if value:
            return value
        if setting.key in self.project:
            configured = self.project[setting.key]
            if configured is not None:
                return str(configured)
        for fallback in setting.fallback_env:
            value = self.environ.get(fallback)
            if value:
                return value
        return default if default is not None else setting.default

    def paths(self, name: str, flag: list[str] | None = None) -> list[str]:
        """A setting holding a list of paths: flags (repeatable), the environment variable
        (separated by ``os.pathsep``, as PATH is), a list (or one string) in invoke.yaml, the
        default."""
        if flag:
            return list(flag)
        setting = SETTINGS[name]
        value = self.environ.get(setting.env)
        if not value and setting.key in self.project:
            configured = self.project[setting.key]
            if isinstance(configured, list):
                return [str(item) for item in configured if item is not None]
            value = None if configured is None else str(configured)
        if not value:
            value = setting.default or ""
        return [part for part in value.split(os.pathsep) if part]

    def enabled(self, name: str, flag: bool | None = None) -> bool:
        """A yes/no setting: ``true``/``false`` (also ``1``/``0``, ``yes``/``no``).

        Raises:
            ConfigError: Anything else.
        """
        if flag is not None:
            return flag
        text = (self.get(name) or "false").strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{SETTINGS[name].env} must be true or false, not {text!r}")

    def seconds(self, name: str) -> float:
        """A setting holding a positive number of seconds.

        Raises:
            ConfigError: It is not a positive number.
        """
        text = self.require(name)
        try:
            value = float(text)
        except ValueError:
            value = 0.0
        if not 0 < value < float("inf"):
            raise ConfigError(
                f"{SETTINGS[name].env} must be a positive number of seconds, not {text!r}"
            )
        return value

    def require(self, name: str, flag: str | None = None) -> str:
        """Like :meth:`get`, but a missing value is a :class:`ConfigError`."""
        value = self.get(name, flag)
        if not value:
            setting = SETTINGS[name]
            if setting.secret:
                where = f"the environment variable {setting.env}"
            else:
                where = (
                    f"{setting.flag}, the environment variable {setting.env}, "
                    f"or gitopskit.{setting.key} in invoke.yaml"
                )
            raise ConfigError(f"{setting.env} is not set ({setting.help})", hint=f"set {where}")
        return value

    def token(self, name: str) -> str | None:
        """A token from the environment only (with its fallbacks), registered for redaction."""
        setting = SETTINGS[name]
        for var in (setting.env, *setting.fallback_env):
            value = self.environ.get(var)
            if value:
                add_secret(value)
                return value
        return None

    def source(self, name: str, flag: str | None = None) -> str:
        """Where a setting's value comes from, for messages: flag, env var, invoke.yaml."""
        setting = SETTINGS[name]
        if flag is not None or name in self.flags:
            return setting.flag
        if self.environ.get(setting.env):
            return setting.env
        if setting.key in self.project:
            return f"gitopskit.{setting.key} in invoke.yaml"
        for fallback in setting.fallback_env:
            if self.environ.get(fallback):
                return fallback
        return "default"
