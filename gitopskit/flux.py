"""Bootstrap Flux (2, or the article's Flux 1) in a cluster, and rotate its deploy key.

``bootstrap`` runs the seven steps in order, each an aligned progress line: host key (scanned,
checked against pinned fingerprints), key pair (reused from the cluster's Secret when there is
one), Namespace and Secret (server-side apply), deploy key (read-only, on the manifests project
in GitLab), helm releases, wait for the Flux deployments, summary. Running it again is safe: it
reuses the key, adds no deploy key and rewrites no unchanged Secret. ``--dry-run`` sends no
write anywhere and prints the plan with secrets masked. ``rotate_key`` replaces the key with no
gap: new key, new deploy key, Secret, restart and wait, then the old deploy key goes.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitopskit import gitlab as gitlab_api
from gitopskit.config import Settings
from gitopskit.errors import ConfigError, GitLabError
from gitopskit.helm import Chart, Helm, dump_values
from gitopskit.kube import Kubectl, namespace_manifest, secret_manifest
from gitopskit.redact import MASK
from gitopskit.ssh import (
    KEY_TYPES,
    GitURL,
    HostKey,
    KeyPair,
    canonical_public,
    generate_key,
    keyscan,
    known_hosts,
    parse_git_url,
    pins_for,
    public_key_of,
    verify_host_keys,
)
from gitopskit.ui import Progress

FLUX1_REPO = ("fluxcd", "https://charts.fluxcd.io")
FLUX2_REPO = ("fluxcd-community", "https://fluxcd-community.github.io/helm-charts")

DEPLOY_KEYS_PAGE = "Settings → Repository → Deploy keys"
MAINTAINER = "Maintainer"


@dataclass(frozen=True)
class Release:
    """One helm release: chart, base values file from ``flux/`` and the computed values."""

    name: str
    chart: Chart
    base_values: Path
    values: Mapping[str, Any]


@dataclass
class Options:
    """What to bootstrap, resolved from flags and settings (see :func:`resolve`)."""

    flux_version: int
    git_url: GitURL
    namespace: str
    secret_name: str
    git_branch: str
    git_path: str
    key_type: str = "ed25519"
    fingerprints: list[str] = field(default_factory=list)
    require_pinned: bool = False
    context: str | None = None
    wait: bool = True
    wait_timeout: int = 300
    dry_run: bool = False
    values_dir: Path = Path("flux")
    release_names: Mapping[str, str] = field(default_factory=dict)  # by setting name
    chart_versions: Mapping[str, str] = field(default_factory=dict)  # by setting name


@dataclass
class Result:
    """What a bootstrap or rotation did (or, in a dry run, would do)."""

    key_fingerprint: str = ""
    key_generated: bool = False
    public_key: str = ""
    deploy_key_id: int | None = None
    deploy_key_created: bool = False
    old_deploy_key_id: int | None = None
    host_fingerprints: list[str] = field(default_factory=list)
    host_pinned: bool = False
    secret_written: bool = False
    releases: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False


@dataclass(frozen=True)
class GitLabTarget:
    """The manifests project in GitLab, for deploy keys."""

    url: str
    project: str
    token: str
    token_name: str
    ca_file: str | None


class DeployKeys:
    """Deploy keys of the manifests project. Only :meth:`add` and :meth:`delete` write."""

    def __init__(self, target: GitLabTarget) -> None:
        self.target = target
        self.gl = gitlab_api.connect(target.url, target.token, ca_file=target.ca_file)
        self._project: Any = None

    def _errors(self, action: str) -> Any:
        return gitlab_api.errors(action, token_name=self.target.token_name, role=MAINTAINER)

    @property
    def project(self) -> Any:
        """The project (one GET, cached)."""
        if self._project is None:
            with self._errors(f"read the project {self.target.project}"):
                self._project = self.gl.projects.get(self.target.project)
        return self._project

    def find(self, public: str) -> Any | None:
        """The deploy key holding ``public`` (compared without comments), or None."""
        wanted = canonical_public(public)
        with self._errors("list the deploy keys"):
            keys = self.project.keys.list(get_all=True)
        for key in keys:
            fields = str(key.key).split()
            if len(fields) >= 2 and f"{fields[0]} {fields[1]}" == wanted:
                return key
        return None

    def add(self, public: str, title: str) -> int:
        """Add ``public`` as a read-only deploy key; returns its id."""
        try:
            with self._errors("add the deploy key"):
                key = self.project.keys.create(
                    {"title": title, "key": canonical_public(public), "can_push": False}
                )
        except GitLabError as error:
            if "already been taken" in error.message:
                raise GitLabError(
                    "GitLab already holds this public key as a deploy key of another project "
                    "(with another comment), so it cannot be added again",
                    response_code=error.response_code,
                    hint=f"enable the existing key on {self.target.project} under "
                    f"{DEPLOY_KEYS_PAGE} (read-only), then run again",
                ) from None
            raise
        return int(key.id)

    def delete(self, key_id: int) -> None:
        """Remove deploy key ``key_id`` from the project."""
        with self._errors("delete the old deploy key"):
            self.project.keys.delete(key_id)


def gitlab_target(settings: Settings) -> GitLabTarget | None:
    """The manifests project for deploy keys, when GITLAB_URL and MANIFESTS_PROJECT are set.

    Raises:
        ConfigError: GitLab is configured but neither GITLAB_TOKEN nor MANIFESTS_TOKEN is set.
    """
    url = settings.get("GITLAB_URL")
    project = settings.get("MANIFESTS_PROJECT")
    if not url or not project:
        return None
    for name in ("GITLAB_TOKEN", "MANIFESTS_TOKEN"):
        token = settings.token(name)
        if token:
            return GitLabTarget(url, project, token, name, settings.get("GITLAB_CA_FILE"))
    raise ConfigError(
        "deploy keys need a token: neither GITLAB_TOKEN nor MANIFESTS_TOKEN is set",
        hint=f"set GITLAB_TOKEN to a token of a {MAINTAINER} of {project} (scope api)",
    )


def resolve(
    settings: Settings,
    *,
    values_dir: Path,
    deploy_keys: DeployKeys | None,
    fingerprints: Sequence[str] = (),
    require_pinned: bool = False,
    wait: bool = True,
    dry_run: bool = False,
) -> Options:
    """Options from the settings (flags already in ``settings``); may read the GitLab project.

    Raises:
        ConfigError: A bad or missing value (malformed git URL, Flux version, key type…).
    """
    version_text = settings.require("FLUX_VERSION")
    if version_text not in ("1", "2"):
        raise ConfigError(f"--flux-version must be 1 or 2, not {version_text!r}")
    version = int(version_text)
    key_type = settings.require("FLUX_KEY_TYPE")
    if key_type not in KEY_TYPES:
        raise ConfigError(f"--key-type must be one of {', '.join(KEY_TYPES)}, not {key_type!r}")
    url_text = settings.get("FLUX_GIT_URL")
    if url_text:
        parse_git_url(url_text)
    branch = settings.get("MANIFESTS_TARGET_BRANCH")
    if deploy_keys is not None and (not url_text or not branch):
        project = deploy_keys.project
        url_text = url_text or project.ssh_url_to_repo
        branch = branch or project.default_branch
    if not url_text:
        raise ConfigError(
            "no git URL for Flux",
            hint="pass --git-url git@host:group/repo.git, or set GITLAB_URL and "
            "MANIFESTS_PROJECT to use the manifests project's SSH URL",
        )
    if not branch:
        raise ConfigError(
            "no branch for Flux to follow",
            hint="pass --git-branch, or set MANIFESTS_TARGET_BRANCH",
        )
    timeout_text = settings.require("FLUX_WAIT_TIMEOUT")
    if not timeout_text.isdigit():
        raise ConfigError(f"GITOPSKIT_FLUX_WAIT_TIMEOUT must be seconds, not {timeout_text!r}")
    return Options(
        flux_version=version,
        git_url=parse_git_url(url_text),
        namespace=settings.get("FLUX_NAMESPACE") or ("flux-system" if version == 2 else "flux"),
        secret_name=settings.require("FLUX_SECRET_NAME"),
        git_branch=branch,
        git_path=(settings.get("MANIFESTS_PATH") or "").strip("/"),
        key_type=key_type,
        fingerprints=list(fingerprints),
        require_pinned=require_pinned,
        context=settings.get("KUBE_CONTEXT"),
        wait=wait,
        wait_timeout=int(timeout_text),
        dry_run=dry_run,
        values_dir=values_dir,
        release_names={
            n: settings.require(n) for n in ("FLUX1_RELEASE", "FLUX2_RELEASE", "FLUX2_SYNC_RELEASE")
        },
        chart_versions={
            n: settings.require(n)
            for n in ("FLUX1_CHART_VERSION", "FLUX2_CHART_VERSION", "FLUX2_SYNC_CHART_VERSION")
        },
    )


def secret_data(options: Options, key: KeyPair, hosts: str) -> dict[str, str]:
    """The Secret's keys: Flux 1 ``identity``; Flux 2 ``identity``, ``identity.pub``,
    ``known_hosts``."""
    if options.flux_version == 1:
        return {"identity": key.private}
    return {"identity": key.private, "identity.pub": key.public + "\n", "known_hosts": hosts}


def releases(options: Options, hosts: str) -> list[Release]:
    """The helm releases to install, with the values gitopskit computes."""
    names, versions, base = options.release_names, options.chart_versions, options.values_dir
    if options.flux_version == 1:
        chart = Chart(*FLUX1_REPO, "flux", versions["FLUX1_CHART_VERSION"])
        values = {
            "git": {
                "url": options.git_url.ssh_url,
                "branch": options.git_branch,
                "path": options.git_path,
                "secretName": options.secret_name,
                # A read-only deploy key: fluxd must not try to push (it would never sync).
                "readonly": True,
            },
            "sync": {"state": "secret"},
            "ssh": {"known_hosts": hosts},
        }
        return [Release(names["FLUX1_RELEASE"], chart, base / "flux1-values.yaml", values)]
    controllers = Chart(*FLUX2_REPO, "flux2", versions["FLUX2_CHART_VERSION"])
    sync = Chart(*FLUX2_REPO, "flux2-sync", versions["FLUX2_SYNC_CHART_VERSION"])
    path = f"./{options.git_path}" if options.git_path else "./"
    sync_values = {
        "gitRepository": {
            "spec": {
                "url": options.git_url.ssh_url,
                "secretRef": {"name": options.secret_name},
                "ref": {"branch": options.git_branch},
            }
        },
        "kustomization": {"spec": {"path": path, "prune": True}},
        # The key lives in the Secret of step 3, not in helm's release data.
        "secret": {"create": False},
    }
    return [
        Release(names["FLUX2_RELEASE"], controllers, base / "flux2-values.yaml", {}),
        Release(
            names["FLUX2_SYNC_RELEASE"],
            sync,
            base / "flux2-sync-values.yaml",
            sync_values,
        ),
    ]


def _command(args: Sequence[str]) -> str:
    return shlex.join(args)


class Bootstrap:
    """One bootstrap or rotation run.

    Args:
        options: What to do.
        deploy_keys: The manifests project's deploy keys (None: GitLab not configured).
        progress: Where progress lines go.
        env: The environment kubectl and helm run with (default: this process's).
    """

    def __init__(
        self,
        options: Options,
        deploy_keys: DeployKeys | None,
        progress: Progress,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.options = options
        self.deploy_keys = deploy_keys
        self.ui = progress
        self.kubectl = Kubectl(options.context, env)
        self.helm = Helm(options.context, env)
        self.result = Result(dry_run=options.dry_run)

    # --- steps --------------------------------------------------------------------------------

    def check_tools(self) -> None:
        """kubectl (and helm, unless a dry run) must be installed before anything is done."""
        self.kubectl.check()
        if not self.options.dry_run:
            self.helm.check()

    def host_keys(self) -> str:
        """Step 1: scan, verify against pins, return known_hosts."""
        url = self.options.git_url
        keys: list[HostKey] = keyscan(url)
        pins = pins_for(url.host, self.options.fingerprints)
        pinned = verify_host_keys(url, keys, pins, require_pinned=self.options.require_pinned)
        self.result.host_fingerprints = [f"{k.key_type} {k.fingerprint}" for k in keys]
        self.result.host_pinned = pinned
        types = ", ".join(k.key_type for k in keys)
        if pinned:
            self.ui.step("host key", f"{url.known_hosts_host}: {types} match the pinned keys")
        else:
            self.ui.warn(
                f"TRUST ON FIRST USE: {url.known_hosts_host} has no pinned fingerprint; "
                "check these out of band (pin them with --host-key-fingerprint):"
            )
            self.ui.block("\n".join(self.result.host_fingerprints))
            self.ui.step("host key", f"{url.known_hosts_host}: {types} trusted on first use")
        return known_hosts(url, keys)

    def existing_secret(self) -> dict[str, str] | None:
        """The Secret's data in the cluster, or None."""
        return self.kubectl.get_secret(self.options.secret_name, self.options.namespace)

    def key_pair(self, existing: Mapping[str, str] | None) -> KeyPair:
        """Step 2: the key from the existing Secret, else a new one."""
        where = f"{self.options.namespace}/{self.options.secret_name}"
        if existing and existing.get("identity"):
            private = existing["identity"]
            public = existing.get("identity.pub") or public_key_of(private)
            key = KeyPair(private=private, public=canonical_public(public))
            self.ui.step("key", f"reusing the key in Secret {where} ({key.fingerprint})")
        else:
            key = generate_key(self.options.key_type)
            self.result.key_generated = True
            verb = "would generate (dry run, discarded)" if self.options.dry_run else "generated"
            self.ui.step("key", f"{verb} a new {self.options.key_type} key ({key.fingerprint})")
        self.result.key_fingerprint = key.fingerprint
        self.result.public_key = key.public
        return key

    def write_secret(self, existing: Mapping[str, str] | None, data: Mapping[str, str]) -> None:
        """Step 3: Namespace and Secret by server-side apply, unless already as wanted."""
        options = self.options
        where = f"{options.namespace}/{options.secret_name}"
        if existing is not None and dict(existing) == dict(data):
            self.ui.step("secret", f"Secret {where} is up to date")
            return
        objects = [
            namespace_manifest(options.namespace),
            secret_manifest(options.secret_name, options.namespace, data),
        ]
        keys = ", ".join(f"{k}={MASK}" if k == "identity" else k for k in sorted(data))
        if options.dry_run:
            self.result.plan.append(
                _command(self.kubectl.args("apply", "--server-side",
                                           "--field-manager=gitopskit", "-f", "-"))
                + f"  <- Namespace {options.namespace}, Secret {where} ({keys})"
            )  # fmt: skip
            self.ui.step("secret", f"would apply Namespace {options.namespace} and Secret {where}")
            return
        self.kubectl.apply(objects)
        self.result.secret_written = True
        self.ui.step("secret", f"applied Namespace {options.namespace} and Secret {where} ({keys})")

    def title(self) -> str:
        """The deploy key's title: cluster context and namespace."""
        context = self.kubectl.current_context()
        return f"flux {context}/{self.options.namespace}"

    def deploy_key(self, key: KeyPair) -> None:
        """Step 4: a read-only deploy key on the manifests project (or instructions)."""
        if self.deploy_keys is None:
            self.ui.step("deploy key", "GitLab is not configured: add this public key by hand")
            self.ui.block(
                f"{key.public}\nas a read-only deploy key (write access off) of the manifests "
                f"repository, in {DEPLOY_KEYS_PAGE}"
            )
            return
        project = self.deploy_keys.target.project
        found = self.deploy_keys.find(key.public)
        if found is not None:
            self.result.deploy_key_id = int(found.id)
            access = "read-write" if getattr(found, "can_push", False) else "read-only"
            self.ui.step("deploy key", f"{project} already has it (id {found.id}, {access})")
            if access == "read-write":
                self.ui.warn(f"deploy key {found.id} can push; Flux needs read-only")
            return
        title = self.title()
        if self.options.dry_run:
            self.result.plan.append(
                f"POST {project} deploy key {title!r} ({key.fingerprint}, can_push=false)"
            )
            self.ui.step("deploy key", f"would add a read-only deploy key to {project}")
            return
        self.result.deploy_key_id = self.deploy_keys.add(key.public, title)
        self.result.deploy_key_created = True
        self.ui.step(
            "deploy key", f"added read-only {title!r} to {project} (id {self.result.deploy_key_id})"
        )

    def install(self, hosts: str) -> None:
        """Step 5: helm repo add and helm upgrade --install for each release."""
        added: set[str] = set()
        for release in releases(self.options, hosts):
            chart = release.chart
            if not release.base_values.is_file():
                raise ConfigError(
                    f"base values file {release.base_values} is missing",
                    hint="run from the project directory; the flux/ values files are in git",
                )
            self.result.values[release.name] = dump_values(release.values)
            if self.options.dry_run:
                if chart.repo_name not in added:
                    self.result.plan.append(_command(self.helm.repo_add_args(chart)))
                args = self.helm.upgrade_args(
                    release.name, chart, self.options.namespace, release.base_values,
                    f"<generated values for {release.name}>",
                )  # fmt: skip
                self.result.plan.append(_command(args))
                added.add(chart.repo_name)
                continue
            if chart.repo_name not in added:
                self.helm.repo_add(chart)
                added.add(chart.repo_name)
            self.helm.upgrade_install(
                release.name, chart, self.options.namespace, release.base_values, release.values
            )
            self.result.releases.append(f"{release.name} ({chart.ref} {chart.version})")
            self.ui.step("helm", f"{release.name}: {chart.ref} {chart.version} installed")

    def wait(self, *, restart: bool = False) -> None:
        """Step 6: rollout status of the Flux deployments (after a restart, when rotating)."""
        options = self.options
        if options.dry_run:
            verb = "restart and wait for" if restart else "wait for"
            self.result.plan.append(f"{verb} the Deployments in {options.namespace}")
            return
        names = self.kubectl.deployments(options.namespace)
        if not names:
            self.ui.warn(f"no Deployments in {options.namespace} to wait for")
            return
        for name in names:
            if restart:
                self.kubectl.rollout_restart(name, options.namespace)
        for name in names:
            self.kubectl.rollout_status(name, options.namespace, options.wait_timeout)
        done = "restarted and ready" if restart else "ready"
        self.ui.step("wait", f"{len(names)} Deployments {done}: {', '.join(names)}")

    # --- the runs -----------------------------------------------------------------------------

    def bootstrap(self) -> Result:
        """Steps 1 to 6; the summary is :func:`report`."""
        self.check_tools()
        hosts = self.host_keys()
        existing = self.existing_secret()
        key = self.key_pair(existing)
        self.write_secret(existing, secret_data(self.options, key, hosts))
        self.deploy_key(key)
        self.install(hosts)
        if self.options.wait:
            self.wait()
        return self.result

    def rotate(self) -> Result:
        """New key → new deploy key → Secret → restart and wait → old deploy key deleted."""
        options = self.options
        where = f"{options.namespace}/{options.secret_name}"
        if self.deploy_keys is None:
            raise ConfigError(
                "rotating the key needs GitLab, to add the new deploy key before the Secret "
                "changes and to delete the old one after",
                hint="set GITLAB_URL, MANIFESTS_PROJECT and GITLAB_TOKEN (a Maintainer's token)",
            )
        self.kubectl.check()
        existing = self.existing_secret()
        if not existing or not existing.get("identity"):
            raise ConfigError(
                f"there is no Secret {where} with a key to rotate",
                hint="run `invoke flux-bootstrap` first",
            )
        old_public = canonical_public(existing.get("identity.pub") or public_key_of(
            existing["identity"]))  # fmt: skip
        old = self.deploy_keys.find(old_public)
        self.result.old_deploy_key_id = int(old.id) if old is not None else None
        key = generate_key(options.key_type)
        self.result.key_generated = True
        self.result.key_fingerprint = key.fingerprint
        self.result.public_key = key.public
        verb = "would generate (dry run)" if options.dry_run else "generated"
        self.ui.step("key", f"{verb} a new {options.key_type} key ({key.fingerprint})")
        self.deploy_key(key)
        data = dict(existing)
        data["identity"] = key.private
        if "identity.pub" in existing or options.flux_version == 2:
            data["identity.pub"] = key.public + "\n"
        self.write_secret(existing, data)
        self.wait(restart=True)
        if old is None:
            self.ui.warn("the old key was not a deploy key of the project: nothing to delete")
        elif options.dry_run:
            self.result.plan.append(f"DELETE deploy key {old.id} (the old key)")
        else:
            self.deploy_keys.delete(int(old.id))
            self.ui.step("deploy key", f"deleted the old deploy key {old.id}")
        return self.result


def report(ui: Progress, result: Result) -> None:
    """Step 7: the summary (and a dry run's plan and generated values)."""
    if result.dry_run:
        for line in result.plan:
            ui.step("would", line)
        for name, text in result.values.items():
            ui.step("values", f"generated values for {name}:")
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
) -> Result:
    """Bootstrap Flux (or rotate its key) and print the summary: what the tasks do.

    Args:
        settings: This run's settings (flags included).
        values_dir: The directory of the base helm values files (``flux/``).
        progress: Where the steps and the summary go.
        rotate: Replace the key instead of bootstrapping.
        fingerprints: Pinned host key fingerprints (``SHA256:…``).
        require_pinned: Refuse a host with no pinned fingerprint.
        wait: Wait for the Flux deployments.
        dry_run: Print the plan; write nothing anywhere.

    Raises:
        GitopskitError: Any expected failure; a re-run finishes what was left.
    """
    target = gitlab_target(settings)
    deploy_keys = DeployKeys(target) if target else None
    options = resolve(
        settings,
        values_dir=values_dir,
        deploy_keys=deploy_keys,
        fingerprints=fingerprints,
        require_pinned=require_pinned,
        wait=wait,
        dry_run=dry_run,
    )
    bootstrap = Bootstrap(options, deploy_keys, progress)
    result = bootstrap.rotate() if rotate else bootstrap.bootstrap()
    report(progress, result)
    return result
