"""helm, through the one program helper.

Values gitopskit computes go through one generated values file (mode 0600, in a private
temporary directory removed afterwards), never ``--set``: its parser breaks on commas, and
known_hosts has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitopskit._run import run, which
from gitopskit.errors import HelmError
from gitopskit.ssh import private_directory

TIMEOUT = 600


@dataclass(frozen=True)
class Chart:
    """A chart in a chart repository, at a pinned version."""

    repo_name: str
    repo_url: str
    name: str
    version: str

    @property
    def ref(self) -> str:
        """``repo/name``, as helm takes it."""
        return f"{self.repo_name}/{self.name}"


def dump_values(values: Mapping[str, Any]) -> str:
    """Values as YAML, in the order given (block style, so known_hosts stays readable)."""
    return yaml.safe_dump(dict(values), sort_keys=False, default_flow_style=False, width=10_000)


class Helm:
    """helm for one kube context.

    Args:
        context: The kubeconfig context (None: the current one).
        env: The environment helm runs with (default: this process's).
    """

    def __init__(self, context: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self.context = context or None
        self.env = env

    def check(self) -> None:
        """Raise :class:`~gitopskit.errors.ToolNotFoundError` naming helm when it is missing."""
        which("helm", path=self.env.get("PATH") if self.env else None)

    def _context(self) -> list[str]:
        return ["--kube-context", self.context] if self.context else []

    def repo_add_args(self, chart: Chart) -> list[str]:
        """The argv of ``helm repo add --force-update``."""
        return ["helm", "repo", "add", "--force-update", chart.repo_name, chart.repo_url]

    def upgrade_args(
        self, release: str, chart: Chart, namespace: str, base_values: Path, values_file: str
    ) -> list[str]:
        """The argv of ``helm upgrade --install``."""
        return [
            "helm", "upgrade", "--install", release, chart.ref,
            *self._context(),
            "--namespace", namespace,
            "--version", chart.version,
            "-f", str(base_values),
            "-f", values_file,
        ]  # fmt: skip

    def repo_add(self, chart: Chart) -> None:
        """Add (or update) the chart's repository."""
        run(self.repo_add_args(chart), env=self.env, error=HelmError, timeout=120,
            what=f"helm repo add {chart.repo_name}")  # fmt: skip

    def upgrade_install(
        self,
        release: str,
        chart: Chart,
        namespace: str,
        base_values: Path,
        values: Mapping[str, Any],
    ) -> None:
        """``helm upgrade --install`` with the base values file and one generated values file.

        Raises:
            HelmError: helm failed.
            ToolNotFoundError: helm is not installed.
        """
        with private_directory() as directory:
            path = directory / "values.yaml"
            path.touch(mode=0o600)
            path.write_text(dump_values(values))
            run(
                self.upgrade_args(release, chart, namespace, base_values, str(path)),
                env=self.env,
                error=HelmError,
                timeout=TIMEOUT,
                what=f"helm upgrade --install {release}",
            )
