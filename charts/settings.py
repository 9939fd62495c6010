"""What every chart shares, defined once: the point of writing manifests in code.

Change the namespace, the registry or a label here and every object follows; no chart can
disagree with another about them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
