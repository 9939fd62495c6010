"""helm, through the one program helper, without side effects on the operator's helm.

Charts are installed by URL (``helm upgrade --install RELEASE CHART --repo URL``) or by OCI
reference, never through ``helm repo add``: that rewrites the operator's ``repositories.yaml``
and replaces a same-named repository (a mirror, say). Before a release is installed or upgraded
its owner is proven: an existing release of that name with another chart is refused, not
overwritten. A first install that fails is uninstalled again (or the message gives the one
command that does it); a failed upgrade of an existing release is left to helm's history.

Values gitopskit computes go through one generated values file (mode 0600, in a private
temporary directory removed afterwards), never ``--set``: its parser breaks on commas, and
known_hosts has them.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitopskit._context_tool import NETWORK_TIMEOUT, ContextTool
from gitopskit._run import run
from gitopskit.errors import ConfigError, HelmError
from gitopskit.kube import duration
from gitopskit.ssh import private_directory

_RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$")
_CHART_LABEL = re.compile(r"^(?P<name>.+)-(?P<version>v?\d+\.\d+\.\d+\S*)$")


class HelmReleaseConflictError(HelmError):
    """A release of that name exists with another chart: it is not gitopskit's to replace."""


@dataclass(frozen=True)
class Chart:
    """A chart at a pinned version, in a chart repository (``https://``) or a registry
    (``oci://``)."""

    repo_url: str
    name: str
    version: str

    @property
    def oci(self) -> bool:
        """Whether the chart lives in an OCI registry."""
        return self.repo_url.startswith("oci://")

    @property
    def ref(self) -> str:
        """The chart argument: the name (with ``--repo``), or the full ``oci://`` reference."""
        return f"{self.repo_url.rstrip('/')}/{self.name}" if self.oci else self.name

    def source_args(self) -> list[str]:
        """``--repo URL`` for a chart repository; nothing for an OCI reference."""
        return [] if self.oci else ["--repo", self.repo_url]

    def __str__(self) -> str:
        where = self.ref if self.oci else f"{self.name} from {self.repo_url}"
        return f"{where} {self.version}"


@dataclass(frozen=True)
class ReleaseInfo:
    """A release as ``helm list`` shows it."""

    name: str
    namespace: str
    chart: str
    status: str
    revision: str

    @property
    def chart_name(self) -> str:
        """The chart's name without its version (``flux2`` of ``flux2-2.18.3``)."""
        match = _CHART_LABEL.match(self.chart)
        return match["name"] if match else self.chart


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Values files merged as helm merges them: maps key by key, anything else replaced."""
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_values(current, value)
        else:
            merged[key] = value
    return merged


def load_values(path: Path) -> dict[str, Any]:
    """A values file as a mapping (empty file: no values).

    Raises:
        ConfigError: It cannot be read, is not YAML, or is not a mapping.
    """
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read the values file {path}: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        kind = type(loaded).__name__
        raise ConfigError(f"the values file {path} must hold a mapping, not a {kind}")
    return loaded


def dump_values(values: Mapping[str, Any]) -> str:
    """Values as YAML, in the order given (block style, so known_hosts stays readable)."""
    return yaml.safe_dump(dict(values), sort_keys=False, default_flow_style=False, width=10_000)


def check_release_name(name: str) -> str:
    """``name`` when it is a valid helm release name (a DNS label of at most 53 characters).

    Raises:
        ConfigError: It is not.
    """
    if not _RELEASE_NAME.match(name):
        raise ConfigError(
            f"{name!r} is not a valid helm release name",
            hint="use at most 53 lower-case letters, digits and '-', starting and ending with "
            "a letter or digit",
        )
    return name


class Helm(ContextTool):
    """helm for one kube context.

    Args:
        context: The kubeconfig context (None: the current one).
        env: The environment helm runs with (default: this process's).
        network_timeout: Seconds a single network operation may take.
        server: The Kubernetes API server, for messages.
    """

    program = "helm"
    context_flag = "--kube-context"

    def __init__(
        self,
        context: str | None = None,
        env: Mapping[str, str] | None = None,
        *,
        network_timeout: float = NETWORK_TIMEOUT,
        server: str = "",
    ) -> None:
        super().__init__(context, env, network_timeout=network_timeout)
        self.server = server

    def install_timeout(self, wait_timeout: float) -> float:
        """helm's ``--timeout`` for an install or upgrade: the wait timeout or the network
        timeout, whichever is larger."""
        return max(wait_timeout, self.network_timeout)

    def upgrade_args(
        self,
        release: str,
        chart: Chart,
        namespace: str,
        base_values: Path,
        values_file: str,
        *,
        timeout: float,
    ) -> list[str]:
        """The argv of ``helm upgrade --install`` (chart by URL or OCI reference)."""
        return [
            "helm", "upgrade", "--install", release, chart.ref, *chart.source_args(),
            *self.context_args(),
            "--namespace", namespace,
            "--version", chart.version,
            "--timeout", duration(timeout),
            "-f", str(base_values),
            "-f", values_file,
        ]  # fmt: skip

    def uninstall_args(self, release: str, namespace: str) -> list[str]:
        """The argv of ``helm uninstall``."""
        return ["helm", "uninstall", release, *self.context_args(), "--namespace", namespace,
                "--timeout", duration(self.network_timeout)]  # fmt: skip

    def _run(self, args: Sequence[str], *, timeout: float, what: str, where: str) -> str:
        started = time.monotonic()
        try:
            return run(args, env=self.env, error=HelmError, timeout=timeout, what=what).stdout
        except HelmError as error:
            if error.returncode is None and time.monotonic() - started >= timeout * 0.99:
                raise HelmError(
                    f"{what} did not finish within {timeout:g}s (talking to {where})",
                    hint="check the network and the cluster; GITOPSKIT_NETWORK_TIMEOUT bounds "
                    f"each network operation (now {self.network_timeout:g}s)",
                ) from None
            raise

    @property
    def _margin(self) -> float:
        """Seconds a helm process may take on top of its own ``--timeout``: two network
        operations (the chart download, the API server) and its start."""
        return 2 * self.network_timeout + 3

    def _cluster(self) -> str:
        return f"the Kubernetes API server at {self.server}" if self.server else "the cluster"

    def find(self, release: str, namespace: str) -> ReleaseInfo | None:
        """The release named ``release`` in ``namespace`` in any state, or None."""
        args = ["helm", "list", *self.context_args(), "--namespace", namespace, "--all",
                "--filter", f"^{check_release_name(release)}$", "--output", "json"]  # fmt: skip
        out = self._run(args, timeout=self._margin,
                        what=f"helm list {namespace}/{release}", where=self._cluster())  # fmt: skip
        for item in json.loads(out or "[]"):
            if item.get("name") == release:
                return ReleaseInfo(
                    name=release,
                    namespace=str(item.get("namespace") or namespace),
                    chart=str(item.get("chart") or ""),
                    status=str(item.get("status") or ""),
                    revision=str(item.get("revision") or ""),
                )
        return None

    def releases(self, namespace: str) -> list[ReleaseInfo]:
        """Every release in ``namespace``, in any state."""
        args = ["helm", "list", *self.context_args(), "--namespace", namespace, "--all",
                "--output", "json"]  # fmt: skip
        out = self._run(args, timeout=self._margin, what=f"helm list {namespace}",
                        where=self._cluster())  # fmt: skip
        return [
            ReleaseInfo(
                name=str(item.get("name") or ""),
                namespace=str(item.get("namespace") or namespace),
                chart=str(item.get("chart") or ""),
                status=str(item.get("status") or ""),
                revision=str(item.get("revision") or ""),
            )
            for item in json.loads(out or "[]")
        ]

    def values(self, release: str, namespace: str) -> dict[str, Any]:
        """The values a release was installed with (``helm get values``: those given, merged)."""
        args = ["helm", "get", "values", check_release_name(release), *self.context_args(),
                "--namespace", namespace, "--output", "json"]  # fmt: skip
        out = self._run(args, timeout=self._margin,
                        what=f"helm get values {namespace}/{release}",
                        where=self._cluster())  # fmt: skip
        loaded = json.loads(out or "null")
        return loaded if isinstance(loaded, dict) else {}

    def is_current(
        self,
        existing: ReleaseInfo,
        chart: Chart,
        base_values: Path,
        values: Mapping[str, Any],
    ) -> bool:
        """Whether ``existing`` is deployed from ``chart`` at its version with exactly these
        values (base file, then computed): an upgrade would change nothing."""
        if existing.status != "deployed" or existing.chart != f"{chart.name}-{chart.version}":
            return False
        wanted = merge_values(load_values(base_values), values)
        return self.values(existing.name, existing.namespace) == wanted

    def check_owner(self, release: str, chart: Chart, namespace: str) -> ReleaseInfo | None:
        """The existing release, when it is of ``chart`` (gitopskit's to upgrade); None when
        there is none.

        Raises:
            HelmReleaseConflictError: A release of that name has another chart.
        """
        existing = self.find(release, namespace)
        if existing is not None and existing.chart_name != chart.name:
            command = shlex.join(self.uninstall_args(release, namespace))
            raise HelmReleaseConflictError(
                f"helm release {namespace}/{release} is the chart {existing.chart} "
                f"({existing.status}), not {chart.name}: refusing to replace it",
                hint="it is not this installation's: choose another release name, or, if it is "
                f"no longer needed, remove it first ({command})",
            )
        return existing

    def upgrade_install(
        self,
        release: str,
        chart: Chart,
        namespace: str,
        base_values: Path,
        values: Mapping[str, Any],
        *,
        wait_timeout: float = 0,
        owner_checked: tuple[ReleaseInfo | None] | None = None,
    ) -> bool:
        """Install or upgrade ``release`` after proving it is gitopskit's to change.

        Args:
            release: The release name.
            chart: The chart, by repository URL or OCI reference.
            namespace: The release's namespace (it must exist).
            base_values: The reviewed base values file.
            values: The values gitopskit computes (written to a private file).
            wait_timeout: Seconds helm may wait for any Kubernetes operation; the network
                timeout when larger.
            owner_checked: ``(existing,)`` when :meth:`check_owner` has just been asked (so it
                is not asked again).

        Returns:
            True when the release was installed, False when an existing one was upgraded.

        Raises:
            HelmReleaseConflictError: The release exists with another chart.
            HelmError: helm failed; a failed first install has been uninstalled (or the hint
                gives the command that does it).
            ToolNotFoundError: helm is not installed.
        """
        if owner_checked is None:
            existing = self.check_owner(release, chart, namespace)
        else:
            (existing,) = owner_checked
        timeout = self.install_timeout(wait_timeout)
        with private_directory() as directory:
            path = directory / "values.yaml"
            path.touch(mode=0o600)
            path.write_text(dump_values(values))
            args = self.upgrade_args(release, chart, namespace, base_values, str(path),
                                     timeout=timeout)  # fmt: skip
            try:
                self._run(
                    args,
                    timeout=timeout + self._margin,
                    what=f"helm upgrade --install {release}",
                    where=f"the chart repository {chart.repo_url} and {self._cluster()}",
                )
            except HelmError as error:
                if existing is not None:
                    raise
                raise self._rolled_back(error, release, namespace) from None
        return existing is None

    def _rolled_back(self, error: HelmError, release: str, namespace: str) -> HelmError:
        """Uninstall what a failed first install left; the error to raise says which."""
        command = shlex.join(self.uninstall_args(release, namespace))
        try:
            if self.find(release, namespace) is None:
                return error
            self._run(self.uninstall_args(release, namespace),
                      timeout=self.network_timeout + self._margin,
                      what=f"helm uninstall {release}",
                      where=self._cluster())  # fmt: skip
        except HelmError:
            return HelmError(
                f"{error.message}\nthe failed first install of {namespace}/{release} could "
                "not be uninstalled",
                returncode=error.returncode,
                hint=f"clean it up with: {command}",
            )
        return HelmError(
            f"{error.message}\nthe failed first install of {namespace}/{release} was "
            "uninstalled: nothing is left behind",
            returncode=error.returncode,
            hint=error.hint,
        )
