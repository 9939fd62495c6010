"""``synth``: run the cdk8s app, validate what it wrote, and replace the output directory.

The app is user code, so it runs as its own process, with the command from ``app:`` in
``cdk8s.yaml`` (as the cdk8s CLI does), into a fresh directory handed over through
``CDK8S_OUTDIR``. Only when it succeeds and validates does that directory replace the output
directory, in one step: a failing chart never leaves a half-written or emptied ``dist/``.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gitopskit import _fs
from gitopskit import outdir as ownership
from gitopskit._run import run
from gitopskit.environments import Environment
from gitopskit.errors import (
    CommandError,
    ConfigError,
    GitopskitError,
    ManifestError,
    OutdirError,
    SynthError,
    ValidationError,
)
from gitopskit.manifests import count_kinds, load_file, manifest_files
from gitopskit.node import jsii_environment
from gitopskit.validate import Report, SchemaValidator

CDK8S_CONFIG = "cdk8s.yaml"
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+)', re.MULTILINE)
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


def app_command(project_dir: Path, override: str | None = None) -> str:
    """The command that runs the cdk8s app: ``override``, else ``app:`` in ``cdk8s.yaml``.

    Raises:
        ConfigError: Neither is there.
    """
    if override:
        return override
    config = project_dir / CDK8S_CONFIG
    try:
        data = yaml.safe_load(config.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no {CDK8S_CONFIG} in {project_dir}",
            hint="run from the project root, or give the app command with --app",
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{config}: not valid YAML: {error}") from None
    app = data.get("app") if isinstance(data, dict) else None
    if not isinstance(app, str) or not app.strip():
        raise ConfigError(f"{config} has no `app:` command", hint="e.g. app: python charts/main.py")
    return app


def app_environment(outdir: Path) -> dict[str, str]:
    """The environment the app runs in: ours, plus jsii's Node, CDK8S_OUTDIR, and this
    interpreter's bin directory first on PATH, so that ``python`` means the Python running us."""
    env = dict(os.environ)
    env.update(jsii_environment(env))
    env["CDK8S_OUTDIR"] = str(outdir)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def synth(
    project_dir: Path,
    outdir: Path,
    *,
    app: str | None = None,
    validate: bool = True,
    kubernetes_version: str | None = None,
    dry_run: bool = False,
    on_start: Callable[[str], None] | None = None,
    app_env: Mapping[str, str] | None = None,
    before_replace: Callable[[], None] | None = None,
) -> SynthResult:
    """Synthesize the cdk8s app into ``outdir``, which must be synth's (see
    :mod:`gitopskit.outdir`).

    Args:
        project_dir: Where ``cdk8s.yaml`` is; the app runs there.
        outdir: The output directory (relative paths are taken from ``project_dir``).
        app: The app command, overriding ``cdk8s.yaml``.
        validate: Validate every object against the Kubernetes schema.
        kubernetes_version: The schema's Kubernetes version (default: cdk8s-plus's).
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
    outdir = Path(os.path.normpath(outdir if outdir.is_absolute() else project_dir / outdir))
    shown = display_path(outdir, project_dir)
    command = app_command(project_dir, app)
    args = shlex.split(command)
    validator = SchemaValidator(kubernetes_version) if validate else None
    note = ownership.claim(outdir, project_dir, shown=shown)
    with ExitStack() as stack:
        try:
            staged = stack.enter_context(_fs.staging_dir(outdir))
        except OSError as error:
            raise OutdirError(f"cannot create {shown}: {error.strerror}") from None
        if on_start is not None:
            on_start(command)
        output = _run_app(args, project_dir, staged, app_env)
        files = manifest_files(staged)
        if not files:
            raise SynthError(
                f"the app ({' '.join(args)}) wrote no manifests",
                hint="does it call app.synth()? cdk8s writes to the directory in CDK8S_OUTDIR",
            )
        report = None
        if validator is not None:
            documents = [d for path in files for d in load_file(path, _shown(path, staged))]
            objects = [d for d in documents if d.is_object]
            report = validator.validate(objects)
            if report.problems:
                raise _validation_error(report)
            kinds = Counter(str(d.data["kind"]) for d in objects)
        else:
            kinds = _count_kinds(files, staged)
        shown_files = [_shown(path, staged) for path in files]
        if before_replace is not None:
            before_replace()
        if not dry_run:
            ownership.claim(outdir, project_dir, shown=shown)  # nothing moved in meanwhile
            ownership.write_marker(staged)
            _fs.replace_dir(staged, outdir)
    return SynthResult(
        outdir=outdir,
        files=shown_files,
        kinds=kinds,
        report=report,
        seconds=time.perf_counter() - started,
        app_output=output,
        notes=[note] if note else [],
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


def _run_app(
    args: list[str], project_dir: Path, staged: Path, extra: Mapping[str, str] | None = None
) -> str:
    env = app_environment(staged)
    env.update(extra or {})
    try:
        result = run(args, env=env, cwd=project_dir, ok_codes=range(256))
    except CommandError as error:  # not found, or killed by a signal
        raise SynthError(f"cannot run the app: {error.message}", hint=error.hint) from None
    output = "\n".join(part for part in (result.stderr.strip(), result.stdout.strip()) if part)
    if result.returncode != 0:
        raise _app_failure(args, result.returncode, result.stderr, result.stdout, project_dir)
    return output


def _app_failure(
    args: list[str], returncode: int, stderr: str, stdout: str, project_dir: Path
) -> SynthError:
    location = _user_frame(stderr, project_dir)
    last = [line for line in stderr.strip().splitlines() if line and not line[0].isspace()]
    exception = last[-1] if last else f"exit status {returncode}"
    where = f"{location}: " if location else ""
    error = SynthError(
        f"a chart failed: {where}{exception}",
        hint=None if location else f"`{' '.join(args)}` exited {returncode}",
    )
    error.details = (stderr or stdout).strip()
    return error


def _user_frame(traceback: str, project_dir: Path) -> str | None:
    """The innermost traceback frame in the project's own code, as ``path:line``."""
    prefix = sys.prefix
    found = None
    for match in _FRAME.finditer(traceback):
        file = Path(match["file"])
        if not file.is_absolute():
            file = project_dir / file
        inside = file.is_relative_to(project_dir) and not str(file).startswith(prefix)
        if inside and "site-packages" not in file.parts:
            found = f"{file.relative_to(project_dir).as_posix()}:{match['line']}"
    return found


def _validation_error(report: Report) -> ValidationError:
    problems = report.problems
    lines = [str(p) for p in problems[:_MAX_PROBLEMS_SHOWN]]
    if len(problems) > _MAX_PROBLEMS_SHOWN:
        lines.append(f"... and {len(problems) - _MAX_PROBLEMS_SHOWN} more")
    count = f"{len(problems)} object{'s' if len(problems) != 1 else ''}"
    return ValidationError(
        f"{count} do not match the Kubernetes {report.schema_version} schema:\n  "
        + "\n  ".join(lines),
        hint="fix the charts, or skip validation with --no-validate",
    )


def synth_all(
    project_dir: Path,
    outdir: Path,
    environments: list[Environment],
    *,
    app: str | None = None,
    validate: bool = True,
    kubernetes_version: str | None = None,
    dry_run: bool = False,
    on_start: Callable[[str], None] | None = None,
) -> list[SynthResult]:
    """Synthesize the app once per environment, side by side, into ``outdir/<name>``.

    Each environment's app run gets ``GITOPSKIT_ENV`` and ``GITOPSKIT_ENV_VALUES``. The runs go
    in parallel (the apps are processes of their own), as many at once as there are CPUs. Every
    output is made and validated before any replaces its directory: when one environment
    fails, the error names it and every output directory is left as it was. The one unnamed
    environment of a project without environments is a plain :func:`synth` into ``outdir``.

    Raises:
        GitopskitError: The first environment's failure (in declaration order), its message
            starting with the environment's name; or any failure of :func:`synth`.
    """
    if len(environments) == 1 and environments[0].name is None:
        single = synth(
            project_dir, outdir, app=app, validate=validate,
            kubernetes_version=kubernetes_version, dry_run=dry_run, on_start=on_start,
        )  # fmt: skip
        return [single]
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

        def start(command: str) -> None:
            nonlocal holding
            running.acquire()
            holding = True
            if on_start is not None and not started:
                started.append(command)
                on_start(f"{command} ({len(environments)} environments)")

        def staged() -> None:
            nonlocal holding
            running.release()
            holding = False
            barrier.wait()

        try:
            return synth(
                project_dir, environment.outdir(base), app=app, validate=validate,
                kubernetes_version=kubernetes_version, dry_run=dry_run, on_start=start,
                app_env=environment.app_environment(), before_replace=staged,
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
