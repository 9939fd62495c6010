"""gitopskit's tasks: cdk8s charts → YAML → manifests repository → Flux.

    invoke synth             charts/ → validated, deterministic YAML in dist/
    invoke diff              what would change, resource by resource (--comment: on the MR)
    invoke publish           push dist/ to the manifests repository; keep one merge request
    invoke flux-bootstrap    once, by an operator: key, Secret, deploy key, the Flux Operator
    invoke flux-rotate-key   replace Flux's SSH key with no gap

Each task is thin: options, settings (flag, then environment, then invoke.yaml, then default),
one call into the ``gitopskit`` library, a summary on stderr and the result on stdout.
Exit status: 0 success, 1 failure (``diff``: 1 means "differs" with --exit-code or "a warning
of --fail-on", 2 failure);
130 / 143 when interrupted by SIGINT / SIGTERM.
"""

from __future__ import annotations

# First, before the imports that take time: from here on, Ctrl-C or SIGTERM while invoke is
# still starting ends it with one line "interrupted" (no traceback), until a task's boundary
# takes over.
from gitopskit import interrupts

interrupts.install_quiet_exit()

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from invoke.context import Context  # noqa: E402
from invoke.exceptions import Exit  # noqa: E402
from invoke.tasks import Task, task  # noqa: E402

from gitopskit import cli  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parent
cli.check_project_config(PROJECT_DIR)


@task(
    iterable=["env"],
    auto_shortflags=False,
    help={
        "app": "command that runs the cdk8s app (default: `app:` in cdk8s.yaml)",
        "outdir": "output directory, replaced in one step on success (default: `output:` in "
        "cdk8s.yaml, else dist); "
        "refused unless synth owns it (missing, empty, or holding only what synth wrote)",
        "validate": "validate every object against the Kubernetes schema (--no-validate: skip)",
        "kubernetes-version": "Kubernetes version of the schema (default: cdk8s-plus's)",
        "strict": "unknown fields of custom resources, and kinds with no schema, are errors "
        "(default: warnings; GITOPSKIT_STRICT)",
        "dry-run": "run and validate, but leave the output directory as it is",
        "env": "only this environment of invoke.yaml's gitopskit.environments (repeatable; "
        "default: all), written to <outdir>/<name>",
    },
)
def synth(
    c: Context,
    app: str | None = None,
    outdir: str | None = None,
    validate: bool = True,
    kubernetes_version: str | None = None,
    strict: bool = False,
    dry_run: bool = False,
    env: list[str] | None = None,
) -> None:
    """Synthesize the cdk8s app in charts/ into validated YAML (per environment, if any)."""
    with cli.boundary() as ui:
        settings = cli.settings(c)
        cli.run_synth(
            ui,
            PROJECT_DIR,
            settings,
            cli.output_dir(PROJECT_DIR, settings, outdir),
            app=app,
            validate=validate,
            kubernetes_version=kubernetes_version,
            strict=strict or None,
            dry_run=dry_run,
            environments=cli.environments(c, env),
        )


@task(
    iterable=["env"],
    auto_shortflags=False,
    help={
        "against": "manifests to compare with: a directory, or a git URL or bare repository "
        "(default: MANIFESTS_GIT_URL)",
        "ref": "branch of a git --against (default: MANIFESTS_TARGET_BRANCH, else the remote's "
        "default branch); an error with a plain directory",
        "manifests-path": "subdirectory of the manifests tree to compare (default: the root)",
        "format": "text (coloured on a terminal), markdown (merge requests) or json",
        "exit-code": "exit 1 when any resource is added, removed, changed or moved",
        "fail-on": "exit 1 when a warning of these codes is present: CODE[,CODE], e.g. "
        "delete,rbac,immutable (a family such as rbac matches rbac-grows and rbac-wildcard; "
        "codes in docs/diff.md)",
        "synth": "synthesize first (--no-synth: compare the output directory as it is)",
        "outdir": "the synthesized output directory (default: `output:` in cdk8s.yaml, else dist)",
        "comment": "in a merge-request pipeline, also post the markdown diff as one note on the "
        "merge request, edited by later pipelines (COMMENT_TOKEN, else MANIFESTS_TOKEN); "
        "a failure to post is a warning",
        "env": "only this environment of invoke.yaml's gitopskit.environments (repeatable; "
        "default: all)",
    },
)
def diff(
    c: Context,
    against: str | None = None,
    ref: str | None = None,
    manifests_path: str | None = None,
    format: str = "text",
    exit_code: bool = False,
    fail_on: str | None = None,
    synth: bool = True,
    outdir: str | None = None,
    comment: bool = False,
    env: list[str] | None = None,
) -> None:
    """Show what would change in the manifests repository, resource by resource.

    Exit status: 0; 1 with --exit-code when anything changes, or with --fail-on when a warning
    of those codes is present; 2 on any error.
    """
    from gitopskit import diff as engine
    from gitopskit.against import resolve_against
    from gitopskit.environments import Slot
    from gitopskit.git import display_url
    from gitopskit.render import check_format
    from gitopskit.review import parse_codes

    with cli.boundary(exit_code=2) as ui:
        settings = cli.settings(c, MANIFESTS_PATH=manifests_path)
        environments = cli.environments(c, env)
        fmt = check_format(format)
        codes = parse_codes(fail_on) if fail_on is not None else frozenset()
        target = resolve_against(settings, against, ref)
        for warning in target.warnings:
            ui.warn(warning)
        output = cli.output_dir(PROJECT_DIR, settings, outdir)
        if synth:
            cli.run_synth(ui, PROJECT_DIR, settings, output, environments=environments)
        against_label = display_url(target.location) + (f" {target.ref}" if target.ref else "")
        ui.step("diff", f"{output.name}/ against {against_label}")
        path = settings.get("MANIFESTS_PATH") or ""
        results = engine.diff_environments(
            [Slot.of(e, output, path) for e in environments],
            target.location,
            ref=target.ref,
            env=target.env,
            timeout=settings.seconds("NETWORK_TIMEOUT"),
            publish_branch=settings.get("MANIFESTS_BRANCH"),
        )
        failing = cli.report_diff(ui, settings, results, fmt, comment=comment, fail_on=codes)
    if failing or (exit_code and engine.has_changes(results)):
        raise Exit(code=1)


@task(
    iterable=["label", "env"],
    auto_shortflags=False,
    help={
        "synth": "synthesize first (--no-synth: publish the output directory as it is)",
        "outdir": "the synthesized output directory (default: `output:` in cdk8s.yaml, else dist)",
        "branch": "publish branch (default: MANIFESTS_BRANCH, else gitopskit/<project slug>)",
        "branch-per-commit": "one branch per source commit (gitopskit/<slug>-<short sha>), "
        "leaving earlier merge requests alone",
        "manifests-path": "subdirectory of the manifests repository to write (default: root)",
        "allow-plain-secrets": "publish Secrets that carry data or stringData anyway",
        "allow-empty": "publish an output with no objects, removing every object gitopskit "
        "owns in the manifests repository; also remove what it published for environments no "
        "longer declared in invoke.yaml (without --env)",
        "adopt": "take over existing files whose names the synthesized ones use",
        "merge": "local mode (no GitLab): then fast-forward the target branch to the publish "
        "branch, if nobody moved it",
        "label": "label for the merge request (repeatable; GitLab only)",
        "assignee": "user name to assign the merge request to (GitLab only)",
        "draft": "open the merge request as a draft (GitLab only)",
        "auto-merge": "merge automatically when the pipeline succeeds (GitLab only)",
        "dry-run": "print the diff and what would be pushed and opened; change nothing",
        "env": "only this environment (repeatable), on the branch <publish branch>-<name> "
        "with its own merge request (default: every environment, one merge request)",
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
    allow_empty: bool = False,
    adopt: bool = False,
    merge: bool = False,
    label: list[str] | None = None,
    assignee: str | None = None,
    draft: bool = False,
    auto_merge: bool = False,
    dry_run: bool = False,
    env: list[str] | None = None,
) -> None:
    """Push the manifests to the manifests repository and open or update one merge request."""
    from gitopskit import publish as publisher

    with cli.boundary() as ui:
        settings = cli.settings(c, MANIFESTS_PATH=manifests_path)
        options = publisher.Options(
            branch=branch,
            branch_per_commit=branch_per_commit,
            allow_plain_secrets=allow_plain_secrets,
            allow_empty=allow_empty,
            adopt=adopt,
            merge=merge,
            dry_run=dry_run,
            labels=list(label or []),
            assignee=assignee,
            draft=draft,
            auto_merge=auto_merge,
        )
        output = cli.output_dir(PROJECT_DIR, settings, outdir)
        environments = cli.environments(c, env)
        # Settings are checked (a missing token, say) before the charts even run.
        run = publisher.prepare(
            PROJECT_DIR, settings, options, ui, output,
            environments=environments if env else None,
            declared=cli.declared_environments(c),
        )  # fmt: skip
        if synth:
            cli.run_synth(ui, PROJECT_DIR, settings, output, environments=environments)
        result = run.run_slots(publisher.slots(run, environments, output))
        cli.report_publish(ui, result)


FLUX_HELP = {
    "git-url": "SSH URL Flux clones: git@host:group/repo.git or ssh://git@host:port/group/repo.git "
    "(default: GITOPSKIT_FLUX_GIT_URL, else the manifests project's ssh_url_to_repo)",
    "flux-version": "2 (default) or 1 (Flux v1 and its chart, end of life)",
    "installer": "how Flux 2 is installed: operator (default: the Flux Operator and one "
    "FluxInstance) or charts (the fluxcd-community flux2 and flux2-sync charts)",
    "namespace": "Flux's namespace (default: flux-system for 2, flux for 1)",
    "secret-name": "Secret holding the SSH key (default: flux-ssh)",
    "git-branch": "branch Flux follows (default: MANIFESTS_TARGET_BRANCH, else the project's "
    "default branch)",
    "git-path": "directory in the repository Flux applies (default: MANIFESTS_PATH)",
    "key-type": "ed25519 (default), ecdsa (P-384) or rsa (4096 bits)",
    "host-key-fingerprint": "pinned SHA256:… host key fingerprint (repeatable; gitlab.com's are "
    "built in); the scanned keys that match one go into known_hosts",
    "require-pinned-host-key": "refuse a git host with no pinned fingerprint instead of trusting "
    "it on first use",
    "context": "kube context (default: the environment's, else GITOPSKIT_KUBE_CONTEXT, else the "
    "current context)",
    "wait": "wait until Flux is ready: the FluxInstance, GitRepository and Kustomization (charts, "
    "Flux 1: the Deployments) (--no-wait: do not)",
    "dry-run": "print the plan and the generated values; change nothing anywhere (works without "
    "a cluster, network or token: unchecked steps say why)",
    "env": "the environment of invoke.yaml whose cluster this is: its context, its path synced, "
    "its name in the deploy key's title (flux-bootstrap: required when environments are "
    "declared, unless --git-path is given)",
    "migrate": "flux-bootstrap only: move a Flux installed with the community charts to the Flux "
    "Operator: every CRD and Flux object is kept, the releases are retired (helm's records "
    "only) once Flux is ready",
}




#: The Flux tasks' flags that set a setting (the others steer the run), by parameter name.
FLUX_FLAG_SETTINGS = {
    "git_url": "FLUX_GIT_URL",
    "flux_version": "FLUX_VERSION",
    "installer": "FLUX_INSTALLER",
    "namespace": "FLUX_NAMESPACE",
    "secret_name": "FLUX_SECRET_NAME",
    "git_branch": "MANIFESTS_TARGET_BRANCH",
    "git_path": "MANIFESTS_PATH",
    "key_type": "FLUX_KEY_TYPE",
    "context": "KUBE_CONTEXT",
}


def _flux_task(*, rotate: bool, doc: str, help: dict[str, str]) -> Task[Any]:
    """``flux-bootstrap`` or ``flux-rotate-key``: one set of parameters for both."""

    def flux(
        c: Context,
        git_url: str | None = None,
        flux_version: str | None = None,
        installer: str | None = None,
        namespace: str | None = None,
        secret_name: str | None = None,
        git_branch: str | None = None,
        git_path: str | None = None,
        key_type: str | None = None,
        host_key_fingerprint: list[str] | None = None,
        require_pinned_host_key: bool = False,
        context: str | None = None,
        wait: bool = True,
        dry_run: bool = False,
        migrate: bool = False,
        env: str | None = None,
    ) -> None:
        from gitopskit import flux as engine
        from gitopskit.errors import ConfigError

        given = {
            "git_url": git_url, "flux_version": flux_version, "installer": installer,
            "namespace": namespace, "secret_name": secret_name, "git_branch": git_branch,
            "git_path": git_path, "key_type": key_type, "context": context,
        }  # fmt: skip
        with cli.boundary() as ui:
            if rotate and migrate:
                raise ConfigError("--migrate is for flux-bootstrap, not flux-rotate-key")
            environment = cli.environments(c, [env])[0] if env else None
            declared = cli.declared_environments(c)
            if environment is None and declared and not rotate and not git_path:
                # Flux would apply every environment's directory to this one cluster.
                raise ConfigError(
                    "environments are declared in invoke.yaml ("
                    + ", ".join(str(e.name) for e in declared)
                    + "): each cluster's Flux syncs its own path",
                    hint="pass --env NAME (its context, its path); --git-path PATH to sync "
                    "another directory on purpose",
                )
            if environment is not None:
                path = cli.settings(c).get("MANIFESTS_PATH") or ""
                given["git_path"] = git_path or environment.repository_path(path)
                given["context"] = context or environment.context
            flags = {FLUX_FLAG_SETTINGS[name]: value for name, value in given.items()}
            engine.run(
                cli.settings(c, **flags),
                PROJECT_DIR / "flux",
                ui,
                rotate=rotate,
                fingerprints=host_key_fingerprint or [],
                require_pinned=require_pinned_host_key,
                wait=wait,
                dry_run=dry_run,
                migrate=migrate,
                environment=environment.name if environment is not None else None,
            )

    flux.__doc__ = doc
    name = "flux-rotate-key" if rotate else "flux-bootstrap"
    decorate = task(name=name, iterable=["host_key_fingerprint"], help=help, auto_shortflags=False)
    made: Task[Any] = decorate(flux)
    return made


flux_bootstrap = _flux_task(
    rotate=False,
    doc="Install Flux with an SSH deploy key; safe to run again (run with --dry-run first).",
    help=FLUX_HELP,
)
flux_rotate_key = _flux_task(
    rotate=True,
    doc="Replace Flux's SSH key with no gap (new deploy key, Secret, fetch, old key gone).",
    help=FLUX_HELP,
)
