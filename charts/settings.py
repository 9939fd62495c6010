"""What every chart shares, defined once: the point of writing manifests in code.

Change the namespace, the registry or a label here and every object follows; no chart can
disagree with another about them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import cdk8s_plus_34 as kplus
from cdk8s import Size


@dataclass(frozen=True)
class Settings:
    """The application's settings, one instance per environment."""

    app: str = "shop"
    environment: str = "production"
    namespace: str = "shop"
    registry: str = "registry.example.com/shop"
    version: str = "1.4.2"
    domain: str = "shop.example.com"
    replicas: int = 3
    autoscale: bool = True
    extra_labels: dict[str, str] = field(default_factory=dict)

    def labels(self, component: str) -> dict[str, str]:
        """Labels on every object of a component (Kubernetes' recommended set)."""
        return {
            "app.kubernetes.io/name": component,
            "app.kubernetes.io/part-of": self.app,
            "app.kubernetes.io/version": self.version,
            "app.kubernetes.io/managed-by": "gitopskit",
            "environment": self.environment,
            **self.extra_labels,
        }

    def image(self, component: str) -> str:
        """The image of a component, at the application's version."""
        return f"{self.registry}/{component}:{self.version}"


def resources(cpu_millis: int, memory_mebibytes: int) -> kplus.ContainerResources:
    """Requests as given, limits at twice the CPU and the same memory (no memory overcommit)."""
    return kplus.ContainerResources(
        cpu=kplus.CpuResources(
            request=kplus.Cpu.millis(cpu_millis), limit=kplus.Cpu.millis(2 * cpu_millis)
        ),
        memory=kplus.MemoryResources(
            request=Size.mebibytes(memory_mebibytes), limit=Size.mebibytes(memory_mebibytes)
        ),
    )


PRODUCTION = Settings()


def from_environment(environ: Mapping[str, str] = os.environ) -> Settings:
    """The settings of the environment ``invoke synth`` renders.

    gitopskit runs the app once per environment declared in invoke.yaml, with the environment's
    name in ``GITOPSKIT_ENV`` and its ``values`` as JSON in ``GITOPSKIT_ENV_VALUES``; without
    environments neither is set, and the app renders :data:`PRODUCTION`. Values that name a
    field of :class:`Settings` override it (``replicas``, ``autoscale``, ``domain``…).
    """
    name = environ.get("GITOPSKIT_ENV")
    values: dict[str, Any] = json.loads(environ.get("GITOPSKIT_ENV_VALUES") or "{}")
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"GITOPSKIT_ENV_VALUES: unknown value {', '.join(unknown)}")
    settings = replace(PRODUCTION, **values)
    return replace(settings, environment=name) if name else settings
