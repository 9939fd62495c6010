"""The namespace the application lives in, and a default-deny ingress policy for it."""

from __future__ import annotations

import cdk8s_plus_34 as kplus
from cdk8s import ApiObjectMetadata, Chart
from constructs import Construct

from charts.settings import Settings


class BaseChart(Chart):
    """Namespace ``settings.namespace``, labelled like everything else."""

    def __init__(self, scope: Construct, id: str, settings: Settings) -> None:
        super().__init__(scope, id, labels=settings.labels("base"))
        kplus.Namespace(self, "namespace", metadata=ApiObjectMetadata(name=settings.namespace))
