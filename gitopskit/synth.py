"""``synth``: run the cdk8s app, validate what it wrote, and replace the output directory.

The app is user code, so it runs as its own process: the command from ``app:`` in ``cdk8s.yaml``
through the shell, as the cdk8s CLI runs it (see :mod:`gitopskit.cdk8s_app`), into a fresh
directory handed over through ``CDK8S_OUTDIR``. Only when it succeeds and validates does that
directory replace the output directory, in one step: a failing chart never leaves a half-written
or emptied ``dist/``.

:func:`stage` is the reusable half: run the app once into a directory and check what it wrote.
:func:`synth` adds the output directory's ownership rule and the swap.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitopskit import _fs
from gitopskit import outdir as ownership
from gitopskit.cdk8s_app import CdkApp, find_app, run_app
from gitopskit.crds import make_validator
from gitopskit.environments import Environment
from gitopskit.errors import (
    GitopskitError,
    ManifestError,
    OutdirError,
    SynthError,
    ValidationError,
)
from gitopskit.manifests import count_kinds, load_file, manifest_files
from gitopskit.validate import Report, SchemaValidator

DEFAULT_OUTDIR = "dist"
DEFAULT_CRDS = "crds"
_MAX_PROBLEMS_SHOWN = 20


@dataclass
class SynthResult:
    """What a synth produced.

    Attributes:
        outdir: The output directory, now holding the new manifests.
        files: Paths of the files written, relative to ``outdir``, sorted.
        kinds: Number of objects per kind.
        report: The validation report (None with validation off).
        seconds: Wall time of the whole synth.
        app_output: What the app printed (stderr then stdout), for the user to see.
        notes: Things worth knowing (an earlier version's ``dist/`` adopted).
    """

    outdir: Path
    files: list[str]
    kinds: Counter[str]
    report: Report | None
    seconds: float
    app_output: str = ""
    notes: list[str] = field(default_factory=list)


def default_outdir(app: CdkApp, project_dir: Path) -> Path:
    """The output directory when no setting names one: ``output:`` of ``cdk8s.yaml`` (relative
    to it), else ``dist`` in the project."""
    return app.output or project_dir.resolve() / DEFAULT_OUTDIR


@dataclass
class Staged:
    """What one run of the app wrote into a directory, checked.

    Attributes:
        files: Paths of the files written, relative to the directory, sorted.
        kinds: Number of objects per kind.
        report: The validation report (None with validation off).
        app_output: What the app printed (stderr then stdout).
    """

    files: list[str]
    kinds: Counter[str]
    report: Report | None
    app_output: str


def stage(
    app: CdkApp,
    directory: Path,
    validator: SchemaValidator | None,
    *,
    extra_env: Mapping[str, str] | None = None,
) -> Staged:
    """Run ``app`` once into ``directory`` (existing and empty) and check what it wrote.

    Args:
        app: The app.
        directory: Its ``CDK8S_OUTDIR``.
        validator: Validates every object; None skips validation (kinds are then counted
            without parsing).
        extra_env: Added to the app's environment.

    Raises:
        NodeNotFoundError: No Node.js for jsii.
        SynthError: The app failed or wrote no manifests.
        ManifestError: A file it wrote cannot be read or parsed.
        ValidationError: Objects do not validate.
    """
    output = run_app(app, directory, extra_env)
    files = manifest_files(directory)
    if not files:
        raise SynthError(
            f"the app ({app.command}) wrote no manifests",
            hint="does it call app.synth()? cdk8s writes to the directory in CDK8S_OUTDIR",
        )
    report = None
    if validator is not None:
        documents = [d for path in files for d in load_file(path, _shown(path, directory))]
        objects = [d for d in documents if d.is_object]
        report = validator.validate(objects)
        if report.problems:
            raise _validation_error(report)
        kinds = Counter(str(d.data["kind"]) for d in objects)
    else:
        kinds = _count_kinds(files, directory)
    return Staged([_shown(path, directory) for path in files], kinds, report, output)


def synth(
    project_dir: Path,
    outdir: Path | None = None,
    *,
    app: str | None = None,
    start: Path | None = None,
    validate: bool = True,
    kubernetes_version: str | None = None,
    strict: bool = False,
    crds: Sequence[Path] | None = None,
    schemas: Sequence[Path] = (),
    dry_run: bool = False,
    on_start: Callable[[str], None] | None = None,
    app_env: Mapping[str, str] | None = None,
    before_replace: Callable[[], None] | None = None,
) -> SynthResult:
    """Synthesize the cdk8s app into ``outdir``, which must be synth's (see
    :mod:`gitopskit.outdir`).

    Args:
        project_dir: The project (where ``tasks.py`` is).
        outdir: The output directory (relative paths are taken from ``project_dir``); default:
            ``output:`` of ``cdk8s.yaml``, else ``dist``.
        app: The app command, overriding ``app:`` of ``cdk8s.yaml``.
        start: Where to look for ``cdk8s.yaml``, upwards (default: ``project_dir``).
        validate: Validate every object against its schema.
        kubernetes_version: The schema's Kubernetes version (default: cdk8s-plus's).
        strict: Unknown fields of custom resources, and kinds with no schema, are errors.
        crds: CRD manifests (files or folders; relative to ``project_dir``) that give custom
            resources their schemas (default: the project's ``crds/``, if there is one).
        schemas: Schema-catalog directories (relative to ``project_dir``).
        dry_run: Run and validate, then throw the result away: ``outdir`` is left as it is.
        on_start: Called with the app command once the checks passed, just before it runs.
        app_env: Added to the app's environment (``GITOPSKIT_ENV``, ``GITOPSKIT_ENV_VALUES``).
        before_replace: Called once the output is made and validated, just before it replaces
            ``outdir``; raising there leaves ``outdir`` as it was (see :func:`synth_all`).

    Returns:
        What was written.

    Raises:
        ConfigError: No app command, or a bad Kubernetes version.
        OutdirError: ``outdir`` is not synth's to replace, or cannot be made; nothing touched.
        NodeNotFoundError: No Node.js for jsii.
        SynthError: The app failed or wrote nothing; the message names the chart's file and
            line, and :attr:`SynthError.details` holds the app's own traceback.
        ValidationError: Objects do not match their schema.
    """
    started = time.perf_counter()
    project_dir = project_dir.resolve()
    the_app = find_app(start or project_dir, app)
    if outdir is None:
        outdir = default_outdir(the_app, project_dir)
    outdir = Path(os.path.normpath(outdir if outdir.is_absolute() else project_dir / outdir))
    shown = display_path(outdir, project_dir)
    validator = None
    if validate:
        validator = build_validator(
            project_dir, kubernetes_version, strict=strict, crds=crds, schemas=schemas
        )
    note = ownership.claim(outdir, project_dir, shown=shown)
    with ExitStack() as stack:
        try:
            staged = stack.enter_context(_fs.staging_dir(outdir))
        except OSError as error:
            raise OutdirError(f"cannot create {shown}: {error.strerror}") from None
        if on_start is not None:
            on_start(the_app.command)
        done = stage(the_app, staged, validator, extra_env=app_env)
        if before_replace is not None:
            before_replace()
        if not dry_run:
            ownership.claim(outdir, project_dir, shown=shown)  # nothing moved in meanwhile
            ownership.write_marker(staged)
            _fs.replace_dir(staged, outdir)
    return SynthResult(
        outdir=outdir,
        files=done.files,
        kinds=done.kinds,
        report=done.report,
        seconds=time.perf_counter() - started,
        app_output=done.app_output,
        notes=[note] if note else [],
    )


def build_validator(
    project_dir: Path,
    kubernetes_version: str | None = None,
    *,
    strict: bool = False,
    crds: Sequence[Path] | None = None,
    schemas: Sequence[Path] = (),
) -> SchemaValidator:
    """The validator of a synth (see :func:`synth` for the arguments), built once: it can check
    the output of several runs of the app.

    Raises:
        ConfigError: A bad Kubernetes version, or a CRD or catalog path that does not exist.
    """
    if crds is None:
        default = project_dir / DEFAULT_CRDS
        crds = [default] if default.is_dir() else []
    return make_validator(
        kubernetes_version,
        strict=strict,
        crd_paths=[project_dir / path for path in crds],
        catalogs=[project_dir / path for path in schemas],
        shown=lambda path: display_path(path, project_dir),
    )


def display_path(path: Path, project_dir: Path) -> str:
    """``path`` as messages show it: relative to the project when inside it."""
    try:
        return path.relative_to(project_dir).as_posix()
    except ValueError:
        return str(path)


def _count_kinds(files: list[Path], root: Path) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for path in files:
        try:
            kinds.update(count_kinds([path]))
        except OSError as error:
            raise ManifestError(f"{_shown(path, root)}: cannot read: {error.strerror}") from None
    return kinds


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def plural(count: int, noun: str) -> str:
    """``1 object``, ``2 objects``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _validation_error(report: Report) -> ValidationError:
    problems = report.problems
    lines = [str(p) for p in problems[:_MAX_PROBLEMS_SHOWN]]
    if len(problems) > _MAX_PROBLEMS_SHOWN:
        lines.append(f"... and {len(problems) - _MAX_PROBLEMS_SHOWN} more")
    warnings = report.warnings
    if warnings:  # what did not stop synth, so that fixing the errors brings no news
        lines.append(f"and {plural(len(warnings), 'warning')}:")
        lines += [str(w) for w in warnings[:_MAX_PROBLEMS_SHOWN]]
        if len(warnings) > _MAX_PROBLEMS_SHOWN:
            lines.append(f"... and {len(warnings) - _MAX_PROBLEMS_SHOWN} more")
    objects = report.invalid_objects
    verb = "does not match its schema" if objects == 1 else "do not match their schemas"
    return ValidationError(
        f"{plural(objects, 'object')} in {plural(report.invalid_files, 'file')} {verb} "
        f"(Kubernetes {report.schema_version}):\n  " + "\n  ".join(lines),
        hint="fix the charts, or skip validation with --no-validate",
    )


def synth_all(
    project_dir: Path,
    outdir: Path,
    environments: list[Environment],
    *,
    app: str | None = None,
    start: Path | None = None,
    validate: bool = True,
    kubernetes_version: str | None = None,
    strict: bool = False,
    crds: Sequence[Path] | None = None,
    schemas: Sequence[Path] = (),
    dry_run: bool = False,
    on_start: Callable[[str], None] | None = None,
) -> list[SynthResult]:
    """Synthesize the app once per environment, side by side, into ``outdir/<name>``.

    Each environment's app run gets ``GITOPSKIT_ENV`` and ``GITOPSKIT_ENV_VALUES``. The runs go
    in parallel (the apps are processes of their own), as many at once as there are CPUs. Every
    output is made and validated before any replaces its directory: when one environment
    fails, the error names it and every output directory is left as it was. The one unnamed
    environment of a project without environments is a plain :func:`synth` into ``outdir``.

    The arguments are :func:`synth`'s.

    Raises:
        GitopskitError: The first environment's failure (in declaration order), its message
            starting with the environment's name; or any failure of :func:`synth`.
    """
    common: dict[str, Any] = {
        "app": app, "start": start, "validate": validate,
        "kubernetes_version": kubernetes_version, "strict": strict, "crds": crds,
        "schemas": schemas, "dry_run": dry_run,
    }  # fmt: skip
    if len(environments) == 1 and environments[0].name is None:
        return [synth(project_dir, outdir, on_start=on_start, **common)]
    project_dir = project_dir.resolve()
    base = Path(os.path.normpath(outdir if outdir.is_absolute() else project_dir / outdir))
    ownership.claim_parent(base, project_dir, shown=display_path(base, project_dir))
    barrier = threading.Barrier(len(environments))
    # One thread per environment (they all meet at the barrier), but no more apps at once than
    # there are CPUs: a slot is taken as an app starts and given back once it is validated.
    running = threading.BoundedSemaphore(max(1, min(len(environments), os.cpu_count() or 1)))
    started: list[str] = []

    def one(environment: Environment) -> SynthResult:
        holding = False

        def begin(command: str) -> None:
            nonlocal holding
            running.acquire()
            holding = True
            if on_start is not None and not started:
                started.append(command)
                on_start(f"{command} ({plural(len(environments), 'environment')})")

        def staged() -> None:
            nonlocal holding
            running.release()
            holding = False
            barrier.wait()

        try:
            return synth(
                project_dir, environment.outdir(base), on_start=begin,
                app_env=environment.app_environment(), before_replace=staged, **common,
            )  # fmt: skip
        except BaseException:
            barrier.abort()  # the others stop before they replace anything
            raise
        finally:
            if holding:
                running.release()

    with ThreadPoolExecutor(max_workers=len(environments), thread_name_prefix="synth") as pool:
        futures = [pool.submit(one, e) for e in environments]
        try:
            outcomes = [_outcome(f.result) for f in futures]
        except BaseException:
            barrier.abort()
            raise
    failures = [
        (env, error)
        for env, (result, error) in zip(environments, outcomes, strict=True)
        if error is not None and not isinstance(error, threading.BrokenBarrierError)
    ]
    if failures:
        environment, error = failures[0]
        if isinstance(error, GitopskitError):
            error.message = f"environment {environment.name}: {error.message}"
            error.args = (error.message,)
        raise error
    return [result for result, _ in outcomes if result is not None]


def _outcome(
    get: Callable[[], SynthResult],
) -> tuple[SynthResult | None, BaseException | None]:
    """A finished run's result or error (an interrupt is raised at once)."""
    try:
        return get(), None
    except KeyboardInterrupt:
        raise
    except Exception as error:
        return None, error
