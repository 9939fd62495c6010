"""The task boundary: settings from invoke's config, progress output, errors turned into exits.

Tasks in ``tasks.py`` stay thin: they read options, call the library inside :func:`boundary`,
and print. Every expected failure leaves here as ``invoke.exceptions.Exit`` with one clear,
redacted message on stderr and no traceback.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke.context import Context
from invoke.exceptions import Exit

from gitopskit import interrupts, invoke_config
from gitopskit.config import Settings
from gitopskit.environments import Environment
from gitopskit.environments import parse as parse_environments
from gitopskit.environments import select as select_environments
from gitopskit.errors import GitopskitError
from gitopskit.ui import Progress, use_colour

if TYPE_CHECKING:  # imported where used: a task that does not synth does not load validation
    from gitopskit.diff import Results
    from gitopskit.publish import PublishResult
    from gitopskit.synth import SynthResult
    from gitopskit.validate import Report

EXIT_FAILURE = 1
INTERRUPTED = 130
DEBUG_VARIABLE = "GITOPSKIT_DEBUG"
_FILES_LISTED = 6
_WARNINGS_SHOWN = 20


def check_project_config(project_dir: Path) -> None:
    """Stop with one line (exit 1) when invoke itself would trip over the project's invoke.yaml
    before a task starts (a key that is not text, two keys mapping to one variable)."""
    found = invoke_config.problem(project_dir)
    if found is not None:
        Progress().error(found)
        raise SystemExit(1)


def declared_environments(c: Context) -> list[Environment]:
    """The environments declared under ``gitopskit.environments`` in invoke.yaml (none: [])."""
    section: Any = c.config.get("gitopskit") or {}
    return parse_environments(dict(section).get("environments"))


def environments(c: Context, names: list[str] | None = None) -> list[Environment]:
    """The environments this run covers: ``--env`` names (repeatable), else every one declared
    under ``gitopskit.environments`` in invoke.yaml; the one unnamed environment when none is.

    Raises:
        ConfigError: A malformed declaration, or ``--env`` naming an undeclared environment.
    """
    return select_environments(declared_environments(c), names or [])


def settings(c: Context, **flags: str | None) -> Settings:
    """The settings of this run: flags given as ``NAME=value`` (None: not given), then the
    environment, then ``gitopskit:`` in invoke.yaml."""
    section: Any = c.config.get("gitopskit") or {}
    project = {str(k): v for k, v in dict(section).items()}
    return Settings(
        project=project,
        environ=dict(os.environ),
        flags={k: v for k, v in flags.items() if v is not None},
    )


@contextmanager
def boundary(
    progress: Progress | None = None, *, exit_code: int = EXIT_FAILURE
) -> Iterator[Progress]:
    """Run a task's body: every way it can end becomes one exit status and a few clear lines.

    - A :class:`GitopskitError` (a user's mistake, a failing tool): its redacted message, hint
      and details; exit ``exit_code``.
    - SIGINT or SIGTERM, at any moment (see :mod:`gitopskit.interrupts`): programs ended,
      temporary directories removed, one line ``interrupted``; exit 130 or 143.
    - Any other exception is a bug of ours or an unexpected condition: one line naming it and
      how to see the traceback (``GITOPSKIT_DEBUG=1``, which shows it, redacted); exit
      ``exit_code``.

    What the task said it had done (:func:`gitopskit.interrupts.done_so_far`) follows a failure
    or an interrupt. Whatever is still registered for cleanup is removed on the way out.

    Args:
        progress: Where messages go (a new stderr :class:`Progress` by default).
        exit_code: The exit status of a failure (``diff`` uses 2: 1 means "differs").

    Raises:
        Exit: The body failed or was interrupted.
    """
    ui = progress or Progress()
    with interrupts.handling():
        try:
            try:
                yield ui
            except GitopskitError as error:
                with interrupts.deferred():
                    _report_error(ui, error)
                raise Exit(code=exit_code) from None
            except Exit:
                raise
            except Exception as error:
                with interrupts.deferred():
                    _report_unexpected(ui, error)
                raise Exit(code=exit_code) from None
            finally:
                with interrupts.deferred():
                    interrupts.cleanup()
        except KeyboardInterrupt as stop:
            interrupts.cleanup(interrupted=True)
            _report_interrupt(ui, stop)
            raise Exit(code=getattr(stop, "exit_status", INTERRUPTED)) from None


def _report_error(ui: Progress, error: GitopskitError) -> None:
    ui.error(error.message)
    if error.details:
        ui.block(error.details)
    if error.hint:
        ui.block(f"hint: {error.hint}")
    _report_so_far(ui)


def _report_unexpected(ui: Progress, error: BaseException) -> None:
    text = str(error).strip().splitlines()
    name = type(error).__name__ + (f": {text[0]}" if text else "")
    if os.environ.get(DEBUG_VARIABLE):
        ui.block("".join(traceback.format_exception(error)))
        ui.error(f"unexpected error: {name}")
    else:
        ui.error(f"unexpected error: {name} (set {DEBUG_VARIABLE}=1 for the traceback)")
    _report_so_far(ui)


def _report_interrupt(ui: Progress, stop: KeyboardInterrupt) -> None:
    with suppress(OSError, ValueError):
        sys.stdout.flush()
    ui.stream.write("interrupted\n")
    ui.stream.flush()
    _report_so_far(ui)


def _report_so_far(ui: Progress) -> None:
    done = interrupts.so_far()
    if done:
        ui.block(f"done so far: {done}")


def app_start(project_dir: Path) -> Path:
    """Where to look for ``cdk8s.yaml`` (upwards): the current directory when it is inside the
    project, else the project."""
    cwd = Path.cwd().resolve()
    project = project_dir.resolve()
    return cwd if cwd.is_relative_to(project) else project


def output_dir(project_dir: Path, settings: Settings, flag: str | None = None) -> Path:
    """The output directory: ``--outdir``, ``GITOPSKIT_OUTDIR`` or ``outdir`` in invoke.yaml
    (relative to the project; ``~`` is the home directory), else ``output:`` of ``cdk8s.yaml``
    (relative to it), else ``dist``."""
    from gitopskit.cdk8s_app import configured_output
    from gitopskit.synth import DEFAULT_OUTDIR

    if settings.source("OUTDIR", flag) != "default":
        # ~ is the home directory, as a shell would have it (none expands --outdir=~).
        return project_dir / os.path.expanduser(settings.require("OUTDIR", flag))
    return configured_output(app_start(project_dir)) or project_dir / DEFAULT_OUTDIR


def run_synth(
    ui: Progress,
    project_dir: Path,
    settings: Settings,
    outdir: Path,
    *,
    app: str | None = None,
    validate: bool = True,
    kubernetes_version: str | None = None,
    strict: bool | None = None,
    dry_run: bool = False,
    environments: list[Environment] | None = None,
) -> list[SynthResult]:
    """Synth as every task runs it: settings resolved, one step line, then the summary of each
    environment (the one unnamed environment when ``environments`` is None)."""
    from gitopskit.environments import UNNAMED
    from gitopskit.synth import synth_all

    crds = settings.paths("CRDS")
    started = time.perf_counter()
    results = synth_all(
        project_dir,
        outdir,
        environments or [UNNAMED],
        app=settings.get("APP", app),
        start=app_start(project_dir),
        validate=validate,
        kubernetes_version=settings.get("KUBERNETES_VERSION", kubernetes_version),
        strict=settings.enabled("STRICT", strict),
        crds=None if settings.source("CRDS") == "default" else [Path(p) for p in crds],
        schemas=[Path(p) for p in settings.paths("SCHEMAS")],
        dry_run=dry_run,
        on_start=lambda command: ui.step("synth", f"running {command}"),
    )
    for result in results:
        report_synth(ui, result, project_dir, dry_run=dry_run)
    if len(results) > 1:
        objects = sum(sum(r.kinds.values()) for r in results)
        ui.ok(
            "synth",
            f"{len(results)} environments, {objects} object{'s' if objects != 1 else ''} in "
            f"{time.perf_counter() - started:.2f}s",
        )
    return results


def report_synth(
    ui: Progress, result: SynthResult, project_dir: Path, *, dry_run: bool = False
) -> None:
    """The summary of a synth: files written, objects by kind, seconds taken."""
    if result.app_output:
        ui.block(result.app_output)
    for note in result.notes:
        ui.note(note)
    from gitopskit.synth import display_path, plural

    shown = display_path(result.outdir, project_dir)
    total = sum(result.kinds.values())
    if result.report is not None:
        report_validation(ui, result.report)
    else:
        ui.warn("validation skipped (--no-validate)")
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(result.kinds.items()))
    ui.step("objects", kinds or "none")
    names = ", ".join(result.files[:_FILES_LISTED])
    if len(result.files) > _FILES_LISTED:
        names += f" and {len(result.files) - _FILES_LISTED} more"
    if dry_run:
        ui.step("dry run", f"{shown}/ left as it is; would write {names}")
    else:
        ui.step("wrote", f"{shown}/: {names}")
    ui.ok(
        "synth",
        f"{plural(total, 'object')} in {plural(len(result.files), 'file')} "
        f"in {result.seconds:.2f}s",
    )


def report_validation(ui: Progress, report: Report) -> None:
    """What validation found that did not stop synth: the schemas used, the warnings (a few),
    the kinds with no schema."""
    from gitopskit.synth import plural

    counted = plural(report.validated, "object")
    builtin = f"Kubernetes {report.schema_version}"
    if set(report.sources) <= {builtin}:
        verb = "matches" if report.validated == 1 else "match"
        ui.step("validate", f"{counted} {verb} the {builtin} schema")
    else:
        by_source = ", ".join(f"{n} {source}" for source, n in report.sources.most_common())
        verb = "matches its schema" if report.validated == 1 else "match their schemas"
        ui.step("validate", f"{counted} {verb}: {by_source}")
    for warning in report.warnings[:_WARNINGS_SHOWN]:
        ui.warn(str(warning))
    if len(report.warnings) > _WARNINGS_SHOWN:
        more = len(report.warnings) - _WARNINGS_SHOWN
        ui.warn(f"... and {more} more warning{'' if more == 1 else 's'}")
    for kind, count in sorted(report.not_validated.items()):
        ui.warn(f"not validated (no schema for it): {count} x {kind}")


def report_publish(ui: Progress, result: PublishResult) -> None:
    """The end of a publish: the merge request's URL (or, without GitLab, the branch) on stdout,
    the rest on stderr."""
    if result.status == "dry-run":
        if result.diff is not None:
            from gitopskit.render import render_text

            sys.stdout.write(render_text(result.diff, colour=use_colour(sys.stdout)))
        for line in result.plan or ["nothing to push or open"]:
            ui.step("would", line)
        ui.ok("dry run", "nothing was changed")
        return
    if result.status == "up-to-date":
        ui.ok("publish", f"the manifests on {result.target_branch} are up to date")
        return
    if result.merge_request_url:
        ui.ok("publish", f"merge request {result.merge_request_url}")
        print(result.merge_request_url)
        return
    at = f" at {result.commit[:8]}" if result.commit else ""
    if result.merged:
        ui.ok("publish", f"{result.target_branch}{at} holds the new manifests")
        print(result.target_branch)
        return
    verb = "pushed" if result.pushed else "already there:"
    ui.ok("publish", f"{verb} {result.branch}{at}")
    compare = (
        f"git diff origin/{result.target_branch}...origin/{result.branch}"
        if result.target_exists
        else f"git log --stat origin/{result.branch}"
    )
    ui.step("review", f"in a clone of {result.git_url}: git fetch origin && {compare}")
    envs = "".join(f" --env {name}" for name in result.only)
    ui.step(
        "merge",
        f"invoke publish --merge{envs} (fast-forwards {result.target_branch} to {result.branch})",
    )
    print(result.branch)


def report_diff(
    ui: Progress,
    settings: Settings,
    results: Results,
    fmt: str,
    *,
    comment: bool,
    fail_on: frozenset[str] = frozenset(),
) -> bool:
    """The diff of each environment on stdout in ``fmt``, notes and the plan on stderr, the
    merge-request note if asked.

    Args:
        ui: Where notes and the plan go.
        settings: This run's settings (for the note).
        results: Each environment's diff (the one unnamed environment's, without environments).
        fmt: text, markdown or json.
        comment: Also post the markdown as the merge request's note.
        fail_on: Warning codes (or families) that fail the task (``--fail-on``).

    Returns:
        Whether a warning of ``fail_on`` is present (named on stderr).
    """
    from gitopskit.diff import total
    from gitopskit.render import plan_line, render_chunks, render_environments
    from gitopskit.review import matches

    combined = total(results)
    named = len(results) > 1 or results[0][0].name is not None
    for note in combined.notes:
        ui.note(note)
    colour = use_colour(sys.stdout)
    if named:
        sys.stdout.write(render_environments(results, fmt, colour=colour))
    else:
        for chunk in render_chunks(results[0][1], fmt, colour=colour):
            sys.stdout.write(chunk)  # as it is made: a large diff is never held twice
    sys.stdout.flush()
    warnings = combined.warnings
    if fmt != "text":
        ui.ok("diff", plan_line(combined, lambda text: ui.style(text, "bold")))
        if warnings:
            counts: dict[str, int] = {}
            for flagged in warnings:
                counts[flagged.warning.code] = counts.get(flagged.warning.code, 0) + 1
            plural = "s" if len(warnings) != 1 else ""
            listed = ", ".join(f"{n} {code}" for code, n in counts.items())
            ui.warn(f"{len(warnings)} warning{plural} in the diff: {listed}")
    if comment:
        from gitopskit.comment import comment_diff

        comment_diff(settings, results if named else results[0][1], ui)
    failing = [f for f in warnings if matches(f.warning.code, fail_on)]
    if failing:
        codes = sorted({f.warning.code for f in failing})
        ui.error(
            f"--fail-on {','.join(sorted(fail_on))}: {len(failing)} warning"
            f"{'s' if len(failing) != 1 else ''} ({', '.join(codes)}), first: "
            f"{failing[0].label}: {failing[0].warning.message}"
        )
    return bool(failing)
