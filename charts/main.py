"""The cdk8s app: one file per chart in the output directory.

Run by `invoke synth` (and by `cdk8s synth`, through `app:` in cdk8s.yaml). cdk8s's `App()` writes
where CDK8S_OUTDIR points, `dist/` by default.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cdk8s import App

# Run as a script, Python puts charts/ on sys.path; the charts import each other as `charts.*`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from charts.api import ApiChart
from charts.base import BaseChart
from charts.settings import PRODUCTION, Settings, from_environment
from charts.web import WebChart
from charts.worker import WorkerChart


def build(app: App, settings: Settings = PRODUCTION) -> App:
    """Add the shop's charts to ``app``."""
    # No chart dependencies: they would prefix file names with an order (0000-base.k8s.yaml)
    # that shifts whenever a chart is added. Flux applies Namespaces first anyway.
    BaseChart(app, "base", settings)
    api = ApiChart(app, "api", settings)
    WebChart(app, "web", settings, api_url=api.url)
    WorkerChart(app, "worker", settings)
    return app


if __name__ == "__main__":
    build(App(), from_environment()).synth()
