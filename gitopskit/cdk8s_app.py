"""The cdk8s app: found, and run, the way the cdk8s CLI runs it.

``cdk8s synth`` reads ``cdk8s.yaml`` and hands its ``app:`` line to a shell (Node's ``spawn``
with ``shell: true``, that is ``/bin/sh -c``), with ``CDK8S_OUTDIR`` pointing at the output
directory. So does gitopskit: ``pipenv install && pipenv run python main.py`` (the line of cdk8s's
own Python examples), ``cd sub && python main.py`` and ``CDK8S_DEBUG=1 python main.py`` all mean
what they mean to the shell. The app runs in the directory that holds ``cdk8s.yaml``, so that its
relative paths resolve as under ``cdk8s synth``.

The cdk8s CLI reads ``cdk8s.yaml`` from the current directory only; gitopskit also looks in the
directories above it (the nearest wins), so that ``invoke synth`` works from anywhere in the
project, as invoke finds ``tasks.py``.

The shell, and everything it starts, runs in a process group of its own
(:func:`gitopskit._run.run`): an interrupt or a failure ends them all.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from gitopskit import interrupts
from gitopskit._run import run
from gitopskit.errors import CommandError, ConfigError, SynthError
from gitopskit.node import jsii_environment

CDK8S_CONFIG = "cdk8s.yaml"
SHELL = "/bin/sh"

# What a POSIX shell says when it cannot find a program (exit 127), as dash and bash word it:
# "sh: 1: pipenv: not found", "sh: line 1: pipenv: command not found", "sh: pipenv: command not
# found".
_NOT_FOUND = re.compile(
    r"^(?:\S*sh): (?:(?:line )?\d+: )?(?P<program>.+?): (?:command )?not found$", re.MULTILINE
)
# ... and when it finds it but may not run it (exit 126).
_NOT_EXECUTABLE = re.compile(
    r"^(?:\S*sh): (?:(?:line )?\d+: )?(?P<program>.+?): Permission denied$", re.MULTILINE
)
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+)', re.MULTILINE)
_TRACEBACK = "Traceback (most recent call last):"


@dataclass(frozen=True)
class CdkApp:
    """A cdk8s app: what runs it, where, and where its output goes by default.

    Attributes:
        command: The shell command line (``app:`` of ``cdk8s.yaml``, or an override).
        directory: Where it runs: the directory of ``cdk8s.yaml`` (without one, the directory
            the search started from).
        output: The directory ``output:`` of ``cdk8s.yaml`` names (relative to ``directory``),
            if set.
        config: The ``cdk8s.yaml`` read, if any.
    """

    command: str
    directory: Path
    output: Path | None = None
    config: Path | None = None


def find_config(start: Path) -> Path | None:
    """The nearest ``cdk8s.yaml`` in ``start`` or a directory above it."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / CDK8S_CONFIG
        if candidate.is_file():
            return candidate
    return None


def find_app(start: Path, override: str | None = None) -> CdkApp:
    """The app of the nearest ``cdk8s.yaml`` from ``start`` upwards.

    Args:
        start: Where to start looking (the current directory).
        override: A command that replaces ``app:`` (``--app``, ``GITOPSKIT_APP``). The app still
            runs beside ``cdk8s.yaml`` when there is one, else in ``start``.

    Raises:
        ConfigError: No command (no ``cdk8s.yaml``, or one without ``app:``), or a
            ``cdk8s.yaml`` that is not valid.
    """
    config = find_config(start)
    if config is None:
        if override:
            return CdkApp(override, start.resolve())
        raise ConfigError(
            f"no {CDK8S_CONFIG} in {start} or above",
            hint="run from the project, or give the app command with --app",
        )
    data = _read_config(config)
    app = data.get("app")
    if not override and (not isinstance(app, str) or not app.strip()):
        raise ConfigError(f"{config} has no `app:` command", hint="e.g. app: python main.py")
    return CdkApp(override or str(app), config.parent, _output(config, data), config)


def configured_output(start: Path) -> Path | None:
    """The output directory that ``output:`` of the nearest ``cdk8s.yaml`` names, if any.

    Raises:
        ConfigError: That ``cdk8s.yaml`` is not valid.
    """
    config = find_config(start)
    return None if config is None else _output(config, _read_config(config))


def _output(config: Path, data: dict[str, object]) -> Path | None:
    output = data.get("output")
    if output is None:
        return None
    if not isinstance(output, str) or not output.strip():
        raise ConfigError(f"{config}: `output:` must be a directory name, not {output!r}")
    return Path(os.path.normpath(config.parent / output))


def _read_config(config: Path) -> dict[str, object]:
    try:
        data = yaml.safe_load(config.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read {config}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{config}: not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{config}: not a mapping of settings")
    return data


def app_environment(
    outdir: Path, extra: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment the app runs in: ours (or ``environ``), ``extra``, jsii's Node,
    ``CDK8S_OUTDIR``, and this interpreter's bin directory first on PATH, so that ``python``
    means the Python running gitopskit."""
    env = dict(os.environ if environ is None else environ)
    env.update(extra or {})
    env.update(jsii_environment(env))
    env["CDK8S_OUTDIR"] = str(outdir)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_app(app: CdkApp, outdir: Path, extra_env: Mapping[str, str] | None = None) -> str:
    """Run ``app`` through the shell into ``outdir`` (``CDK8S_OUTDIR``).

    Args:
        app: The app.
        outdir: An existing directory for its manifests.
        extra_env: Variables added to the app's environment (an environment's name, say).

    Returns:
        What it printed: stderr, then stdout.

    Raises:
        NodeNotFoundError: No Node.js for jsii.
        SynthError: The shell could not find or run a program; the app failed (the message
            names the chart's file and line, :attr:`SynthError.details` holds its traceback);
            or it was killed by a signal.
    """
    env = app_environment(outdir, extra_env)
    # The app's own TMPDIR, removed with whatever it left there: jsii's kernel (Node) and its
    # Python host make temporary directories that only a clean exit removes, and an interrupt
    # or a timeout ends the app by a signal.
    with interrupts.temporary_directory("gitopskit-app-") as tmp:
        env["TMPDIR"] = str(tmp)
        try:
            result = run(
                [SHELL, "-c", app.command], env=env, cwd=app.directory, ok_codes=range(256)
            )
        except CommandError as error:  # no shell, or killed by a signal
            raise SynthError(f"cannot run the app: {error.message}", hint=error.hint) from None
    output = "\n".join(part for part in (result.stderr.strip(), result.stdout.strip()) if part)
    if result.returncode != 0:
        raise app_failure(app, result.returncode, result.stderr, result.stdout)
    return output


def app_failure(app: CdkApp, returncode: int, stderr: str, stdout: str) -> SynthError:
    """The error for an app that exited ``returncode``: the program the shell could not find or
    run; else the chart's exception and the line of the project's code that raised it; else
    the last thing the app said."""
    where = f"`{app.command}` (in {app.directory}, through {SHELL})"
    if returncode == 127 and (found := _NOT_FOUND.search(stderr)):
        program = found["program"]
        return SynthError(
            f"cannot run the app: {program} is not installed or not on PATH",
            hint=f"{where} needs {program}: install it, or change `app:` in {CDK8S_CONFIG} "
            "(--app)",
        )
    if returncode == 126 and (found := _NOT_EXECUTABLE.search(stderr)):
        return SynthError(
            f"cannot run the app: {found['program']} is not executable",
            hint=f"{where}: chmod +x it, or run it with its interpreter",
        )
    last = [line for line in stderr.strip().splitlines() if line and not line[0].isspace()]
    if _TRACEBACK in stderr:
        location = _user_frame(stderr, app.directory)
        exception = last[-1] if last else f"exit status {returncode}"
        error = SynthError(
            f"a chart failed: {location + ': ' if location else ''}{exception}",
            hint=None if location else f"{where} exited {returncode}",
        )
    else:
        said = last[-1] if last else (stdout.strip().splitlines() or [""])[-1]
        error = SynthError(
            f"the app failed: {said}" if said else f"the app failed (exit {returncode})",
            hint=f"{where} exited {returncode}",
        )
    error.details = (stderr or stdout).strip() or None
    return error


def _user_frame(traceback: str, directory: Path) -> str | None:
    """The innermost traceback frame in the project's own code, as ``path:line``."""
    prefix = sys.prefix
    found = None
    for match in _FRAME.finditer(traceback):
        file = Path(match["file"])
        if not file.is_absolute():
            file = directory / file
        inside = file.is_relative_to(directory) and not str(file).startswith(prefix)
        if inside and "site-packages" not in file.parts:
            found = f"{file.relative_to(directory).as_posix()}:{match['line']}"
    return found
