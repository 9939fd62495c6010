"""Bootstrap Flux in a cluster, and rotate its deploy key: what ``invoke flux-bootstrap`` and
``invoke flux-rotate-key`` do.

Flux 2 is installed by default the way Flux installs itself now, with the Flux Operator and one
FluxInstance (:mod:`gitopskit.flux.operator`); ``--installer charts`` keeps the fluxcd-community
charts and ``--flux-version 1`` the end-of-life Flux 1 (:mod:`gitopskit.flux.charts`). The
installer is chosen once (:mod:`gitopskit.flux.installer`); the steps before and after it are
shared (:mod:`gitopskit.flux.steps`): host key, key pair, Secret, deploy key, key rotation.

``--dry-run`` sends no write anywhere and prints the whole plan, secrets masked, even without a
cluster, network or token: a step that could not be checked says why ("cluster not reachable:
would create Namespace flux-system"). It fails only when the plan itself is incomplete (no git
URL or branch could be known), or when the real run would stop before writing (a community-chart
install without ``--migrate``).

Modules: :mod:`~gitopskit.flux.options` (settings → :class:`Options`),
:mod:`~gitopskit.flux.deploy_keys` (GitLab), :mod:`~gitopskit.flux.session` (one run's tools,
output and :class:`Result`), :mod:`~gitopskit.flux.steps`, :mod:`~gitopskit.flux.installer`,
:mod:`~gitopskit.flux.operator` with :mod:`~gitopskit.flux.instance` (the FluxInstance),
:mod:`~gitopskit.flux.readiness` (waiting for Flux's objects) and
:mod:`~gitopskit.flux.migrate` (retiring community releases), :mod:`~gitopskit.flux.charts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gitopskit.config import Settings
from gitopskit.errors import ConfigError
from gitopskit.flux.deploy_keys import gitlab_access
from gitopskit.flux.options import Options, resolve
from gitopskit.flux.session import Result
from gitopskit.flux.steps import RETIRING_ANNOTATION, Bootstrap, key_of, retiring_fingerprints
from gitopskit.ui import Progress

__all__ = [
    "RETIRING_ANNOTATION",
    "Bootstrap",
    "Options",
    "Result",
    "key_of",
    "report",
    "resolve",
    "retiring_fingerprints",
    "run",
]


def report(ui: Progress, result: Result) -> None:
    """Step 8: the summary (and a dry run's plan, generated values and FluxInstance).

    Raises:
        ConfigError: A dry run's plan is incomplete (after printing it).
    """
    if result.dry_run:
        for line in result.plan:
            ui.step("would", line)
        for name, text in result.values.items():
            heading = f"{name} it would apply:" if name.startswith("FluxInstance") else (
                f"generated values for {name}:")  # fmt: skip
            ui.step("values", heading)
            ui.block(text)
    ui.step("summary", f"key {result.key_fingerprint}")
    if result.deploy_key_id is not None:
        ui.step("", f"deploy key id {result.deploy_key_id}")
    if result.old_deploy_key_id is not None:
        ui.step("", f"old deploy key id {result.old_deploy_key_id}")
    for line in result.host_fingerprints:
        ui.step("", f"host key {line}" + ("" if result.host_pinned else " (trusted on first use)"))
    for release in result.releases:
        ui.step("", f"release {release}")
    for applied in result.applied:
        ui.step("", f"applied {applied}")
    for retired in result.retired_releases:
        ui.step("", f"retired helm release {retired} (objects kept)")
    if result.flux_version:
        ui.step("", f"Flux {result.flux_version}")
    if result.revision:
        ui.step("", f"applied revision {result.revision}")
    if result.missing:
        raise ConfigError(
            f"dry run: the plan is incomplete: {'; '.join(result.missing)} could not be known",
            hint="pass the missing values, or run where GitLab can be reached with a token",
        )
    if result.unchecked:
        ui.warn(f"not checked: {'; '.join(result.unchecked)}")
    ui.ok("flux", "dry run: nothing was changed" if result.dry_run else "done")


def run(
    settings: Settings,
    values_dir: Path,
    progress: Progress,
    *,
    rotate: bool = False,
    fingerprints: Sequence[str] = (),
    require_pinned: bool = False,
    wait: bool = True,
    dry_run: bool = False,
    migrate: bool = False,
    environment: str | None = None,
) -> Result:
    """Bootstrap Flux (or rotate its key) and print the summary: what the tasks do.

    Args:
        settings: This run's settings (flags included).
        values_dir: The directory of the reviewed templates (``flux/``: helm base values, the
            FluxInstance).
        progress: Where the steps and the summary go.
        rotate: Replace the key instead of bootstrapping.
        fingerprints: Pinned host key fingerprints (``SHA256:…``).
        require_pinned: Refuse a host with no pinned fingerprint.
        wait: Wait until Flux is ready.
        dry_run: Print the plan; write nothing anywhere.
        migrate: Move a community-chart install to the Flux Operator.
        environment: The environment whose cluster this is (named in the deploy key's title).

    Raises:
        GitopskitError: Any expected failure; a re-run finishes what was left.
    """
    access = gitlab_access(settings, dry_run=dry_run)
    options = resolve(
        settings,
        values_dir=values_dir,
        access=access,
        fingerprints=fingerprints,
        require_pinned=require_pinned,
        wait=wait,
        dry_run=dry_run,
        migrate=migrate,
    )
    options.environment = environment
    bootstrap = Bootstrap(options, access, progress)
    result = bootstrap.rotate() if rotate else bootstrap.bootstrap()
    report(progress, result)
    return result
