"""gitopskit's tasks: cdk8s charts → YAML → manifests repository → Flux.

    invoke synth            charts/ → validated, deterministic YAML in dist/
    invoke diff             what would change in the manifests repository, resource by resource

Each task is thin: options, settings (flag, then environment, then invoke.yaml, then default),
one call into the ``gitopskit`` library, a summary on stderr. Exit status: 0 success, 1 failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit
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


@task(
    help={
        "against": "manifests to compare with: a directory, or a git URL or bare repository "
        "(default: MANIFESTS_GIT_URL)",
        "ref": "branch of a git --against (default: MANIFESTS_TARGET_BRANCH, else the remote's "
        "default branch); an error with a plain directory",
        "manifests-path": "subdirectory of the manifests tree to compare (default: the root)",
        "format": "text (coloured on a terminal), markdown (merge requests) or json",
        "exit-code": "exit 1 when any resource is added, removed, changed or moved",
        "synth": "synthesize first (--no-synth: compare the output directory as it is)",
        "outdir": "the synthesized output directory (default: dist)",
        "comment": "in a merge-request pipeline, also post the markdown diff as one note on the "
        "merge request, edited by later pipelines (COMMENT_TOKEN, else MANIFESTS_TOKEN); "
        "a failure to post is a warning",
    }
)
def diff(
    c: Context,
    against: str | None = None,
    ref: str | None = None,
    manifests_path: str | None = None,
    format: str = "text",
    exit_code: bool = False,
    synth: bool = True,
    outdir: str | None = None,
    comment: bool = False,
) -> None:
    """Show what would change in the manifests repository, resource by resource.

    Exit status: 0; 1 with --exit-code when anything changes; 2 on any error.
    """
    from gitopskit import diff as engine
    from gitopskit.git import display_url
    from gitopskit.synth import app_command
    from gitopskit.synth import synth as run_synth
    from gitopskit.ui import use_colour

    with cli.boundary(exit_code=2) as ui:
        settings = cli.settings(c)
        fmt = engine.check_format(format)
        target = engine.resolve_against(settings, against, ref)
        output = PROJECT_DIR / settings.require("OUTDIR", outdir)
        if synth:
            command = app_command(PROJECT_DIR, settings.get("APP"))
            ui.step("synth", f"running {command}")
            cli.report_synth(ui, run_synth(PROJECT_DIR, output, app=command), PROJECT_DIR)
        against_label = display_url(target.location) + (f" {target.ref}" if target.ref else "")
        ui.step("diff", f"{output.name}/ against {against_label}")
        result = engine.diff_against(
            output,
            target.location,
            ref=target.ref,
            subdir=settings.get("MANIFESTS_PATH", manifests_path) or "",
            extra_env=target.env,
        )
        for note in result.notes:
            ui.note(note)
        sys.stdout.write(engine.render(result, fmt, colour=use_colour(sys.stdout)))
        sys.stdout.flush()
        if fmt != "text":
            ui.ok("diff", result.summary_line())
        if comment:
            from gitopskit.comment import comment_diff

            comment_diff(settings, result, ui, against=against_label)
    if exit_code and result.has_changes:
        raise Exit(code=1)


@task(
    iterable=["label"],
    help={
        "synth": "synthesize first (--no-synth: publish the output directory as it is)",
        "outdir": "the synthesized output directory (default: dist)",
        "branch": "publish branch (default: MANIFESTS_BRANCH, else gitopskit/<project slug>)",
        "branch-per-commit": "one branch per source commit (gitopskit/<slug>-<short sha>), "
        "leaving earlier merge requests alone",
        "manifests-path": "subdirectory of the manifests repository to write (default: root)",
        "allow-plain-secrets": "publish Secrets that carry data or stringData anyway",
        "adopt": "take over existing files whose names the synthesized ones use",
        "label": "label for the merge request (repeatable)",
        "assignee": "user name to assign the merge request to",
        "draft": "open the merge request as a draft",
        "auto-merge": "merge automatically when the pipeline succeeds",
        "dry-run": "print the diff and what would be pushed and opened; change nothing",
    },
)
def publish(
    c: Context,
    synth: bool = True,
    outdir: str | None = None,
    branch: str | None = None,
    branch_per_commit: bool = False,
    manifests_path: str | None = None,
    allow_plain_secrets: bool = False,
    adopt: bool = False,
    label: list[str] | None = None,
    assignee: str | None = None,
    draft: bool = False,
    auto_merge: bool = False,
    dry_run: bool = False,
) -> None:
    """Push the manifests to the manifests repository and open or update one merge request."""
    from gitopskit import publish as publisher

    with cli.boundary() as ui:
        settings = cli.settings(c, MANIFESTS_PATH=manifests_path)
        options = publisher.Options(
            branch=branch,
            branch_per_commit=branch_per_commit,
            allow_plain_secrets=allow_plain_secrets,
            adopt=adopt,
            dry_run=dry_run,
            labels=list(label or []),
            assignee=assignee,
            draft=draft,
            auto_merge=auto_merge,
        )
        result = publisher.publish(
            PROJECT_DIR,
            settings,
            options,
            outdir=Path(settings.require("OUTDIR", outdir)),
            synth=synth,
            progress=ui,
        )
        cli.report_publish(ui, result)
