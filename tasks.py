"""gitopskit's tasks: cdk8s charts → YAML → manifests repository → Flux.

    invoke synth             charts/ → validated, deterministic YAML in dist/
    invoke diff              what would change, resource by resource (--comment: on the MR)
    invoke publish           push dist/ to the manifests repository; keep one merge request
    invoke flux-bootstrap    once, by an operator: key, Secret, deploy key, the Flux Operator
    invoke flux-rotate-key   replace Flux's SSH key with no gap

Each task is thin: options, settings (flag, then environment, then invoke.yaml, then default),
one call into the ``gitopskit`` library, a summary on stderr and the result on stdout.
Exit status: 0 success, 1 failure (``diff``: 1 means "differs" with --exit-code, 2 failure);
130 / 143 when interrupted by SIGINT / SIGTERM.
"""

from __future__ import annotations

# First, before the imports that take time: from here on, Ctrl-C or SIGTERM while invoke is
# still starting ends it with one line "interrupted" (no traceback), until a task's boundary
# takes over.
from gitopskit import interrupts

interrupts.install_quiet_exit()

from pathlib import Path  # noqa: E402

from invoke.context import Context  # noqa: E402
from invoke.exceptions import Exit  # noqa: E402
from invoke.tasks import task  # noqa: E402

from gitopskit import cli  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parent


@task(
    help={
        "app": "command that runs the cdk8s app (default: `app:` in cdk8s.yaml)",
        "outdir": "output directory, replaced in one step on success (default: dist); "
        "refused unless synth owns it (missing, empty, or holding only what synth wrote)",
        "validate": "validate every object against the Kubernetes schema (--no-validate: skip)",
        "kubernetes-version": "Kubernetes version of the schema (default: cdk8s-plus's)",
        "dry-run": "run and validate, but leave the output directory as it is",
    }
)
def synth(
    c: Context,
    app: str | None = None,
    outdir: str | None = None,
    validate: bool = True,
    kubernetes_version: str | None = None,
    dry_run: bool = False,
) -> None:
    """Synthesize the cdk8s app in charts/ into validated YAML."""
    with cli.boundary() as ui:
        settings = cli.settings(c)
        cli.run_synth(
            ui,
            PROJECT_DIR,
            settings,
            Path(settings.require("OUTDIR", outdir)),
            app=app,
            validate=validate,
            kubernetes_version=kubernetes_version,
            dry_run=dry_run,
        )


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
    from gitopskit.against import resolve_against
    from gitopskit.git import display_url

    with cli.boundary(exit_code=2) as ui:
        settings = cli.settings(c, MANIFESTS_PATH=manifests_path)
        fmt = engine.check_format(format)
        target = resolve_against(settings, against, ref)
        for warning in target.warnings:
            ui.warn(warning)
        output = PROJECT_DIR / settings.require("OUTDIR", outdir)
        if synth:
            cli.run_synth(ui, PROJECT_DIR, settings, output)
        against_label = display_url(target.location) + (f" {target.ref}" if target.ref else "")
        ui.step("diff", f"{output.name}/ against {against_label}")
        result = engine.diff_against(
            output,
            target.location,
            ref=target.ref,
            subdir=settings.get("MANIFESTS_PATH") or "",
            env=target.env,
            timeout=settings.seconds("NETWORK_TIMEOUT"),
            publish_branch=settings.get("MANIFESTS_BRANCH"),
        )
        cli.report_diff(ui, settings, result, fmt, comment=comment, against=against_label)
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
        "allow-empty": "publish an output with no objects, removing every object gitopskit "
        "owns in the manifests repository",
        "adopt": "take over existing files whose names the synthesized ones use",
        "merge": "local mode (no GitLab): then fast-forward the target branch to the publish "
        "branch, if nobody moved it",
        "label": "label for the merge request (repeatable; GitLab only)",
        "assignee": "user name to assign the merge request to (GitLab only)",
        "draft": "open the merge request as a draft (GitLab only)",
        "auto-merge": "merge automatically when the pipeline succeeds (GitLab only)",
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
    allow_empty: bool = False,
    adopt: bool = False,
    merge: bool = False,
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
            allow_empty=allow_empty,
            adopt=adopt,
            merge=merge,
            dry_run=dry_run,
            labels=list(label or []),
            assignee=assignee,
            draft=draft,
            auto_merge=auto_merge,
        )
        output = PROJECT_DIR / settings.require("OUTDIR", outdir)
        # Settings are checked (a missing token, say) before the charts even run.
        run = publisher.prepare(PROJECT_DIR, settings, options, ui, output)
        if synth:
            cli.run_synth(ui, PROJECT_DIR, settings, output)
        result = run.run(output)
        cli.report_publish(ui, result)


FLUX_HELP = {
    "git-url": "SSH URL Flux clones: git@host:group/repo.git or ssh://git@host:port/group/repo.git "
    "(default: FLUX_GIT_URL, else the manifests project's ssh_url_to_repo)",
    "flux-version": "2 (default) or 1 (the article's Flux v1 chart, end of life)",
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
    "context": "kube context (default: KUBE_CONTEXT, else the current context)",
    "wait": "wait until Flux is ready: the FluxInstance, GitRepository and Kustomization (charts, "
    "Flux 1: the Deployments) (--no-wait: do not)",
    "dry-run": "print the plan and the generated values; change nothing anywhere (works without "
    "a cluster, network or token: unchecked steps say why)",
}


FLUX_BOOTSTRAP_HELP = {
    **FLUX_HELP,
    "migrate": "move a Flux installed with the community charts to the Flux Operator: every CRD "
    "and Flux object is kept, the releases are retired (helm's records only) once Flux is ready",
}


def _flux_run(
    c: Context,
    *,
    rotate: bool,
    git_url: str | None,
    flux_version: str | None,
    installer: str | None,
    namespace: str | None,
    secret_name: str | None,
    git_branch: str | None,
    git_path: str | None,
    key_type: str | None,
    host_key_fingerprint: list[str] | None,
    require_pinned_host_key: bool,
    context: str | None,
    wait: bool,
    dry_run: bool,
    migrate: bool = False,
) -> None:
    from gitopskit import flux

    with cli.boundary() as ui:
        settings = cli.settings(
            c,
            FLUX_GIT_URL=git_url,
            FLUX_VERSION=flux_version,
            FLUX_INSTALLER=installer,
            FLUX_NAMESPACE=namespace,
            FLUX_SECRET_NAME=secret_name,
            MANIFESTS_TARGET_BRANCH=git_branch,
            MANIFESTS_PATH=git_path,
            FLUX_KEY_TYPE=key_type,
            KUBE_CONTEXT=context,
        )
        flux.run(
            settings,
            PROJECT_DIR / "flux",
            ui,
            rotate=rotate,
            fingerprints=host_key_fingerprint or [],
            require_pinned=require_pinned_host_key,
            wait=wait,
            dry_run=dry_run,
            migrate=migrate,
        )


@task(iterable=["host_key_fingerprint"], help=FLUX_BOOTSTRAP_HELP, auto_shortflags=False)
def flux_bootstrap(
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
) -> None:
    """Install Flux with an SSH deploy key; safe to run again (run with --dry-run first)."""
    _flux_run(c, rotate=False, **{k: v for k, v in locals().items() if k != "c"})


@task(iterable=["host_key_fingerprint"], help=FLUX_HELP, auto_shortflags=False)
def flux_rotate_key(
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
) -> None:
    """Replace Flux's SSH key with no gap: new deploy key, Secret, Flux refetches, old key
    removed."""
    _flux_run(c, rotate=True, **{k: v for k, v in locals().items() if k != "c"})
