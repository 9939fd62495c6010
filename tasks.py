"""gitopskit's tasks: cdk8s charts → YAML → manifests repository → Flux.

    invoke synth            charts/ → validated, deterministic YAML in dist/

Each task is thin: options, settings (flag, then environment, then invoke.yaml, then default),
one call into the ``gitopskit`` library, a summary on stderr. Exit status: 0 success, 1 failure.
"""

from __future__ import annotations

from pathlib import Path

from invoke.context import Context
from invoke.tasks import task

from gitopskit import cli

PROJECT_DIR = Path(__file__).resolve().parent


@task(
    help={
        "app": "command that runs the cdk8s app (default: `app:` in cdk8s.yaml)",
        "outdir": "output directory, replaced in one step on success (default: dist)",
        "validate": "validate every object against the Kubernetes schema (--no-validate: skip)",
        "kubernetes-version": "Kubernetes version of the schema (default: cdk8s-plus's)",
    }
)
def synth(
    c: Context,
    app: str | None = None,
    outdir: str | None = None,
    validate: bool = True,
    kubernetes_version: str | None = None,
) -> None:
    """Synthesize the cdk8s app in charts/ into validated YAML."""
    from gitopskit.synth import app_command
    from gitopskit.synth import synth as run_synth

    with cli.boundary() as ui:
        settings = cli.settings(c)
        command = app_command(PROJECT_DIR, settings.get("APP", app))
        ui.step("synth", f"running {command}")
        result = run_synth(
            PROJECT_DIR,
            Path(settings.require("OUTDIR", outdir)),
            app=command,
            validate=validate,
            kubernetes_version=settings.get("KUBERNETES_VERSION", kubernetes_version),
        )
        cli.report_synth(ui, result, PROJECT_DIR)
