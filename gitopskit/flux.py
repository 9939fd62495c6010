"""Bootstrap Flux (2, or the article's Flux 1) in a cluster, and rotate its deploy key.

``bootstrap`` runs the steps in order, each an aligned progress line: host key (scanned; the
keys matching a pin are kept), key pair (reused from the cluster's Secret when there is one),
Namespace and Secret (server-side apply), deploy key (read-only, on the manifests project in
GitLab), helm releases (by chart URL, owner proven first; a chart that needs another's CRDs waits
until they are established), wait for the Flux deployments, summary. Running it again is safe:
it reuses the key, adds no deploy key and rewrites no unchanged Secret.

``rotate_key`` replaces the key with no gap: new key, new deploy key, then the Secret gets the
new key together with an annotation naming the fingerprints of the keys being retired; restart
and wait; the recorded deploy keys are deleted; the annotation goes last. A run that fails in
between leaves the annotation, and the next ``flux-rotate-key`` or ``flux-bootstrap`` finishes
the rotation. Only deploy keys whose fingerprint was recorded there are ever deleted.

``--dry-run`` sends no write anywhere and prints the whole plan, secrets masked, even without a
cluster, network or token: a step that could not be checked says why ("cluster not reachable:
would create Namespace flux-system"). It fails only when the plan itself is incomplete (no git
URL or branch could be known).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitopskit import gitlab as gitlab_api
from gitopskit.config import Settings
from gitopskit.errors import ConfigError, GitLabError, GitopskitError, ToolNotFoundError
from gitopskit.helm import Chart, Helm, check_release_name, dump_values
from gitopskit.kube import (
    ClusterUnreachableError,
    Kubectl,
    NoKubeContextError,
    SecretState,
    namespace_manifest,
    secret_manifest,
)
from gitopskit.redact import MASK
from gitopskit.ssh import (
    KEY_TYPES,
    GitURL,
    HostKey,
    HostUnreachableError,
    KeyPair,
    canonical_public,
    fingerprint,
    generate_key,
    keyscan,
    known_hosts,
    parse_git_url,
    pins_for,
    public_key_of,
    scp_port_hint,
    verify_host_keys,
)
from gitopskit.ui import Progress

FLUX1_REPO = "https://charts.fluxcd.io"
FLUX2_REPO = "https://fluxcd-community.github.io/helm-charts"
#: The CRDs flux2-sync's GitRepository and Kustomization need (installed by the flux2 chart).
FLUX2_SYNC_CRDS = (
    "gitrepositories.source.toolkit.fluxcd.io",
    "kustomizations.kustomize.toolkit.fluxcd.io",
)
#: Annotation on the Secret while a rotation is in progress: the fingerprints of the keys being
#: retired, comma-separated. Fingerprints only, never key material.
RETIRING_ANNOTATION = "gitopskit/retiring-key-fingerprints"
_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")

DEPLOY_KEYS_PAGE = "Settings → Repository → Deploy keys"
MAINTAINER = "Maintainer"
UNKNOWN_URL = "<unknown: pass --git-url>"
UNKNOWN_BRANCH = "<unknown: pass --git-branch>"
SCANNED_HOSTS = "<the scanned host keys>"


@dataclass(frozen=True)
class Release:
    """One helm release: chart, base values file from ``flux/``, the computed values and the
    CRDs that must be established before it is installed."""

    name: str
    chart: Chart
    base_values: Path
    values: Mapping[str, Any]
    needs_crds: tuple[str, ...] = ()


@dataclass
class Options:
    """What to bootstrap, resolved from flags and settings (see :func:`resolve`).

    ``git_url`` and ``git_branch`` are None only in a dry run that could not learn them: the
    plan is then incomplete.
    """

    flux_version: int
    git_url: GitURL | None
    namespace: str
    secret_name: str
    git_branch: str | None
    git_path: str
    key_type: str = "ed25519"
    fingerprints: list[str] = field(default_factory=list)
    require_pinned: bool = False
    context: str | None = None
    wait: bool = True
    wait_timeout: float = 300
    network_timeout: float = 60
    dry_run: bool = False
    values_dir: Path = Path("flux")
    release_names: Mapping[str, str] = field(default_factory=dict)  # by setting name
    chart_versions: Mapping[str, str] = field(default_factory=dict)  # by setting name
    environment: str | None = None  # the environment whose cluster this is


@dataclass
class Result:
    """What a bootstrap or rotation did (or, in a dry run, would do)."""

    key_fingerprint: str = ""
    key_generated: bool = False
    public_key: str = ""
    deploy_key_id: int | None = None
    deploy_key_created: bool = False
    old_deploy_key_id: int | None = None
    retired: list[str] = field(default_factory=list)
    rotation_finished: bool = False
    host_fingerprints: list[str] = field(default_factory=list)
    host_pinned: bool = False
    secret_written: bool = False
    releases: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    dry_run: bool = False


@dataclass(frozen=True)
class GitLabTarget:
    """The manifests project in GitLab, for deploy keys."""

    url: str
    project: str
    token: str
    token_name: str
    ca_file: str | None
    timeout: float = 60.0


class DeployKeys:
    """Deploy keys of the manifests project. Only :meth:`add` and :meth:`delete` write."""

    def __init__(self, target: GitLabTarget) -> None:
        self.target = target
        self.gl = gitlab_api.connect(
            target.url, target.token, ca_file=target.ca_file, timeout=target.timeout
        )
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

    def _keys(self) -> list[Any]:
        with self._errors("list the deploy keys"):
            return list(self.project.keys.list(get_all=True))

    def find(self, public: str) -> Any | None:
        """The deploy key holding ``public`` (compared without comments), or None."""
        wanted = canonical_public(public)
        for key in self._keys():
            fields = str(key.key).split()
            if len(fields) >= 2 and f"{fields[0]} {fields[1]}" == wanted:
                return key
        return None

    def with_fingerprint(self, wanted: str) -> list[Any]:
        """The deploy keys whose public key has the fingerprint ``wanted``."""
        found = []
        for key in self._keys():
            try:
                if fingerprint(str(key.key)) == wanted:
                    found.append(key)
            except ConfigError:
                continue
        return found

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
        with self._errors(f"delete the deploy key {key_id}"):
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
            return GitLabTarget(
                url,
                project,
                token,
                name,
                settings.get("GITLAB_CA_FILE"),
                settings.seconds("NETWORK_TIMEOUT"),
            )
    raise ConfigError(
        "deploy keys need a token: neither GITLAB_TOKEN nor MANIFESTS_TOKEN is set",
        hint=f"set GITLAB_TOKEN to a token of a {MAINTAINER} of {project} (scope api)",
    )


@dataclass
class GitLabAccess:
    """How this run reaches GitLab: the deploy keys, or (in a dry run) why it cannot."""

    deploy_keys: DeployKeys | None = None
    project: str | None = None
    problem: str | None = None
    error: GitopskitError | None = None


def gitlab_access(settings: Settings, *, dry_run: bool) -> GitLabAccess:
    """The manifests project's deploy keys; a dry run carries on without a token.

    Raises:
        ConfigError: No token (unless a dry run).
    """
    try:
        target = gitlab_target(settings)
    except ConfigError as error:
        if not dry_run:
            raise
        return GitLabAccess(
            project=settings.get("MANIFESTS_PROJECT"), problem="no GitLab token", error=error
        )
    if target is None:
        return GitLabAccess()
    return GitLabAccess(DeployKeys(target), target.project)


def _project_defaults(access: GitLabAccess, dry_run: bool) -> tuple[str | None, str | None]:
    """The project's SSH URL and default branch; in a dry run (None, None) when unreadable."""
    if access.deploy_keys is None:
        return None, None
    try:
        project = access.deploy_keys.project
    except GitLabError as error:
        if not dry_run:
            raise
        access.problem = "GitLab not reachable"
        access.error = error
        return None, None
    return str(project.ssh_url_to_repo), str(project.default_branch)


def resolve(
    settings: Settings,
    *,
    values_dir: Path,
    access: GitLabAccess,
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
    if access.deploy_keys is not None and (not url_text or not branch):
        project_url, project_branch = _project_defaults(access, dry_run)
        url_text = url_text or project_url
        branch = branch or project_branch
    if not url_text and not dry_run:
        raise ConfigError(
            "no git URL for Flux",
            hint="pass --git-url git@host:group/repo.git, or set GITLAB_URL and "
            "MANIFESTS_PROJECT to use the manifests project's SSH URL",
        )
    if not branch and not dry_run:
        raise ConfigError(
            "no branch for Flux to follow",
            hint="pass --git-branch, or set MANIFESTS_TARGET_BRANCH",
        )
    return Options(
        flux_version=version,
        git_url=parse_git_url(url_text) if url_text else None,
        namespace=settings.get("FLUX_NAMESPACE") or ("flux-system" if version == 2 else "flux"),
        secret_name=settings.require("FLUX_SECRET_NAME"),
        git_branch=branch or None,
        git_path=(settings.get("MANIFESTS_PATH") or "").strip("/"),
        key_type=key_type,
        fingerprints=list(fingerprints),
        require_pinned=require_pinned,
        context=settings.get("KUBE_CONTEXT"),
        wait=wait,
        wait_timeout=settings.seconds("FLUX_WAIT_TIMEOUT"),
        network_timeout=settings.seconds("NETWORK_TIMEOUT"),
        dry_run=dry_run,
        values_dir=values_dir,
        release_names={
            n: check_release_name(settings.require(n))
            for n in ("FLUX1_RELEASE", "FLUX2_RELEASE", "FLUX2_SYNC_RELEASE")
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
    """The helm releases to install, in order, with the values gitopskit computes."""
    names, versions, base = options.release_names, options.chart_versions, options.values_dir
    url = options.git_url.ssh_url if options.git_url else UNKNOWN_URL
    branch = options.git_branch or UNKNOWN_BRANCH
    if options.flux_version == 1:
        chart = Chart(FLUX1_REPO, "flux", versions["FLUX1_CHART_VERSION"])
        values = {
            "git": {
                "url": url,
                "branch": branch,
                "path": options.git_path,
                "secretName": options.secret_name,
                # A read-only deploy key: fluxd must not try to push (it would never sync).
                "readonly": True,
            },
            "sync": {"state": "secret"},
            "ssh": {"known_hosts": hosts},
        }
        return [Release(names["FLUX1_RELEASE"], chart, base / "flux1-values.yaml", values)]
    controllers = Chart(FLUX2_REPO, "flux2", versions["FLUX2_CHART_VERSION"])
    sync = Chart(FLUX2_REPO, "flux2-sync", versions["FLUX2_SYNC_CHART_VERSION"])
    path = f"./{options.git_path}" if options.git_path else "./"
    sync_values = {
        "gitRepository": {
            "spec": {
                "url": url,
                "secretRef": {"name": options.secret_name},
                "ref": {"branch": branch},
            }
        },
        "kustomization": {"spec": {"path": path, "prune": True}},
        # The key lives in the Secret of step 4, not in helm's release data.
        "secret": {"create": False},
    }
    return [
        Release(names["FLUX2_RELEASE"], controllers, base / "flux2-values.yaml", {}),
        Release(
            names["FLUX2_SYNC_RELEASE"],
            sync,
            base / "flux2-sync-values.yaml",
            sync_values,
            needs_crds=FLUX2_SYNC_CRDS,
        ),
    ]


def retiring_fingerprints(secret: SecretState | None) -> list[str]:
    """The fingerprints a rotation in progress recorded on the Secret (malformed ones dropped)."""
    if secret is None:
        return []
    text = secret.annotations.get(RETIRING_ANNOTATION, "")
    return [fp for fp in (p.strip() for p in text.split(",")) if _FINGERPRINT.match(fp)]


def _command(args: Sequence[str]) -> str:
    return shlex.join(args)


class Bootstrap:
    """One bootstrap or rotation run.

    Args:
        options: What to do.
        access: The manifests project's deploy keys (or why GitLab cannot be used).
        progress: Where progress lines go.
        env: The environment kubectl and helm run with (default: this process's).
    """

    def __init__(
        self,
        options: Options,
        access: GitLabAccess,
        progress: Progress,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.options = options
        self.access = access
        self.deploy_keys = access.deploy_keys
        self.ui = progress
        self.kubectl = Kubectl(options.context, env, request_timeout=options.network_timeout)
        self.helm = Helm(options.context, env, network_timeout=options.network_timeout)
        self.result = Result(dry_run=options.dry_run)
        #: Why the cluster cannot be checked, in a dry run (None: it can).
        self.cluster_problem: str | None = None
        self.helm_problem: str | None = None
        self.context: str | None = None
        if options.git_url is None:
            self.result.missing.append("the git URL (pass --git-url)")
        if options.git_branch is None:
            self.result.missing.append("the branch (pass --git-branch)")

    # --- dry-run bookkeeping ------------------------------------------------------------------

    def unchecked(self, label: str, problem: str, would: str) -> None:
        """A dry-run step that could not be checked: say why, and what would be done."""
        self.ui.step(label, f"{problem}: {would}")
        if problem not in self.result.unchecked:
            self.result.unchecked.append(problem)

    def found_problem(self, problem: str, error: GitopskitError) -> str:
        """In a dry run, note once why something cannot be checked; returns ``problem``."""
        message = error.message
        reason = message if message.startswith(problem) else f"{problem}: {message}"
        self.ui.warn(f"{reason}; the dry run cannot check it")
        if error.hint:
            self.ui.block(f"hint: {error.hint}")
        return problem

    def plan(self, line: str) -> None:
        """A command or request the run would send."""
        self.result.plan.append(line)

    @contextmanager
    def _cluster_reads(self) -> Iterator[None]:
        """In a dry run, a cluster that cannot be read becomes :attr:`cluster_problem`."""
        try:
            yield
        except NoKubeContextError as error:
            if not self.options.dry_run:
                raise
            self.cluster_problem = self.found_problem("no kube context configured", error)
        except ClusterUnreachableError as error:
            if not self.options.dry_run:
                raise
            self.cluster_problem = self.found_problem("cluster not reachable", error)

    # --- steps --------------------------------------------------------------------------------

    def check_tools(self) -> None:
        """kubectl and helm must be installed before anything is done (a dry run plans
        without them)."""
        for tool, check in (("kubectl", self.kubectl.check), ("helm", self.helm.check)):
            try:
                check()
            except ToolNotFoundError:
                if not self.options.dry_run:
                    raise
                if tool == "kubectl":
                    self.cluster_problem = "kubectl is not installed"
                self.helm_problem = f"{tool} is not installed"

    def connect(self) -> None:
        """Step 1: the kube context and API server, from the kubeconfig."""
        if self.cluster_problem:
            return
        with self._cluster_reads():
            cluster = self.kubectl.cluster()
            self.helm.server = cluster.server
            self.context = cluster.context

    def host_keys(self) -> str:
        """Step 2: scan, keep the keys that match a pin, return known_hosts."""
        url = self.options.git_url
        if url is None:
            self.unchecked("host key", "git URL unknown", "would scan the git host's SSH keys")
            return SCANNED_HOSTS
        meant = scp_port_hint(url)
        if meant:
            self.ui.warn(
                f"{url.user}@{url.host}:{url.path} is the path {url.path!r} on port 22 in git's "
                f"scp syntax; for port {parse_git_url(meant).port} write {meant}"
            )
        pins = pins_for(url.host, self.options.fingerprints)
        try:
            keys: list[HostKey] = keyscan(url, timeout=self.options.network_timeout)
        except HostUnreachableError as error:
            if not self.options.dry_run:
                raise
            checked = f"checked against {len(pins)} pinned fingerprints" if pins else "unpinned"
            would = f"would scan {url.known_hosts_host} ({checked}) for known_hosts"
            self.unchecked("host key", self.found_problem("git host not reachable", error), would)
            return SCANNED_HOSTS
        return self._trusted_hosts(url, keys, pins)

    def _trusted_hosts(self, url: GitURL, keys: list[HostKey], pins: list[str]) -> str:
        checked = verify_host_keys(url, keys, pins, require_pinned=self.options.require_pinned)
        self.result.host_fingerprints = [f"{k.key_type} {k.fingerprint}" for k in checked.keys]
        self.result.host_pinned = checked.pinned
        types = ", ".join(k.key_type for k in checked.keys)
        if checked.pinned:
            self.ui.step("host key", f"{url.known_hosts_host}: {types} match the pinned keys")
            if checked.left_out:
                left = ", ".join(f"{k.key_type} {k.fingerprint}" for k in checked.left_out)
                self.ui.note(
                    f"left out of known_hosts (no pin): {left}; pin them too with "
                    "--host-key-fingerprint to keep them"
                )
        else:
            self.ui.warn(
                f"TRUST ON FIRST USE: {url.known_hosts_host} has no pinned fingerprint; "
                "check these out of band (pin them with --host-key-fingerprint):"
            )
            self.ui.block("\n".join(self.result.host_fingerprints))
            self.ui.step("host key", f"{url.known_hosts_host}: {types} trusted on first use")
        return known_hosts(url, checked.keys)

    def existing_secret(self) -> SecretState | None:
        """The Secret in the cluster, or None (also when, in a dry run, it cannot be read)."""
        if self.cluster_problem:
            return None
        with self._cluster_reads():
            return self.kubectl.get_secret(self.options.secret_name, self.options.namespace)
        return None

    @property
    def where(self) -> str:
        """``namespace/secret``."""
        return f"{self.options.namespace}/{self.options.secret_name}"

    def key_pair(self, existing: SecretState | None) -> KeyPair:
        """Step 3: the key from the existing Secret, else a new one."""
        if existing and existing.data.get("identity"):
            key = key_of(existing)
            self.ui.step("key", f"reusing the key in Secret {self.where} ({key.fingerprint})")
        else:
            key = generate_key(self.options.key_type)
            self.result.key_generated = True
            if self.cluster_problem:
                self.unchecked("key", self.cluster_problem, f"would reuse the key in Secret "
                               f"{self.where} if there is one, else generate a new "
                               f"{self.options.key_type} key")  # fmt: skip
            else:
                verb = "would generate (dry run, discarded)" if self.options.dry_run else (
                    "generated")  # fmt: skip
                self.ui.step("key", f"{verb} a new {self.options.key_type} key "
                             f"({key.fingerprint})")  # fmt: skip
        self.result.key_fingerprint = key.fingerprint
        self.result.public_key = key.public
        return key

    def write_secret(
        self,
        existing: SecretState | None,
        data: Mapping[str, str],
        retiring: Sequence[str] = (),
    ) -> None:
        """Step 4: Namespace and Secret by server-side apply, unless already as wanted.

        ``retiring`` (fingerprints) goes into the Secret's annotation in the same apply.
        """
        options = self.options
        annotations = {RETIRING_ANNOTATION: ",".join(retiring)} if retiring else {}
        if (
            existing is not None
            and existing.data == dict(data)
            and retiring_fingerprints(existing) == list(retiring)
        ):
            self.ui.step("secret", f"Secret {self.where} is up to date")
            return
        objects = [
            namespace_manifest(options.namespace),
            secret_manifest(options.secret_name, options.namespace, data, annotations),
        ]
        keys = ", ".join(f"{k}={MASK}" if k == "identity" else k for k in sorted(data))
        noted = f"; annotation {RETIRING_ANNOTATION}={annotations[RETIRING_ANNOTATION]}" if (
            annotations) else ""  # fmt: skip
        if options.dry_run:
            self.plan(
                _command(self.kubectl.args("apply", "--server-side",
                                           "--field-manager=gitopskit", "-f", "-"))
                + f"  <- Namespace {options.namespace}, Secret {self.where} ({keys}){noted}"
            )  # fmt: skip
            would = f"would create Namespace {options.namespace} and apply Secret {self.where}"
            if self.cluster_problem:
                self.unchecked("secret", self.cluster_problem, would)
            else:
                self.ui.step("secret", would)
            return
        self.kubectl.apply(objects)
        self.result.secret_written = True
        self.ui.step("secret", f"applied Namespace {options.namespace} and Secret {self.where} "
                     f"({keys}){noted}")  # fmt: skip

    def title(self) -> str:
        """The deploy key's title: cluster context and namespace."""
        context = self.context or self.options.context or "<context>"
        environment = f"{self.options.environment} " if self.options.environment else ""
        return f"flux {environment}{context}/{self.options.namespace}"

    def deploy_key(self, key: KeyPair) -> None:
        """Step 5: a read-only deploy key on the manifests project (or instructions)."""
        if self.deploy_keys is None and self.access.problem is None:
            self.ui.step("deploy", "GitLab is not configured: add this public key by hand")
            self.ui.block(
                f"{key.public}\nas a read-only deploy key (write access off) of the manifests "
                f"repository, in {DEPLOY_KEYS_PAGE}"
            )
            return
        project = self.access.project
        title = self.title()
        found = self._find_deploy_key(key, title)
        if found is not None:
            self.result.deploy_key_id = int(found.id)
            access = "read-write" if getattr(found, "can_push", False) else "read-only"
            self.ui.step("deploy", f"{project} already has it (id {found.id}, {access})")
            if access == "read-write":
                self.ui.warn(f"deploy key {found.id} can push; Flux needs read-only")
            return
        if self.options.dry_run:
            self.plan(f"POST {project} deploy key {title!r} ({key.fingerprint}, can_push=false)")
            if self.access.problem is None:
                self.ui.step("deploy", f"would add a read-only deploy key to {project}")
            return
        assert self.deploy_keys is not None
        self.result.deploy_key_id = self.deploy_keys.add(key.public, title)
        self.result.deploy_key_created = True
        self.ui.step(
            "deploy", f"added read-only {title!r} to {project} (id {self.result.deploy_key_id})"
        )

    def _find_deploy_key(self, key: KeyPair, title: str) -> Any | None:
        """The project's deploy key holding ``key``; in a dry run None when GitLab is out of
        reach (the step is then marked unchecked)."""
        would = f"would add a read-only deploy key {title!r} to {self.access.project} unless " \
            "it is there"  # fmt: skip
        if self.access.problem is None:
            assert self.deploy_keys is not None
            try:
                return self.deploy_keys.find(key.public)
            except GitLabError as error:
                if not self.options.dry_run:
                    raise
                self.access.problem, self.access.error = "GitLab not reachable", error
        if self.access.error is not None:
            self.found_problem(self.access.problem, self.access.error)
            self.access.error = None
        self.unchecked("deploy", self.access.problem, would)
        return None

    def install(self, hosts: str) -> None:
        """Step 6: ``helm upgrade --install`` of each release, by chart URL, owner proven
        first; a release that needs CRDs waits until they are established."""
        for release in releases(self.options, hosts):
            if not release.base_values.is_file():
                raise ConfigError(
                    f"base values file {release.base_values} is missing",
                    hint="run from the project directory; the flux/ values files are in git",
                )
            if self.options.dry_run:
                self._plan_release(release)
                continue
            if release.needs_crds:
                self.kubectl.wait_established(release.needs_crds, self.options.wait_timeout)
                self.ui.step("crds", f"established: {', '.join(release.needs_crds)}")
            installed = self.helm.upgrade_install(
                release.name, release.chart, self.options.namespace, release.base_values,
                release.values, wait_timeout=self.options.wait_timeout,
            )  # fmt: skip
            chart = release.chart
            self.result.releases.append(f"{release.name} ({chart.name} {chart.version})")
            verb = "installed" if installed else "upgraded"
            self.ui.step("helm", f"{release.name}: {chart} {verb}")

    def _plan_release(self, release: Release) -> None:
        """A dry run's helm step: owner checked when the cluster can be read, commands planned."""
        options = self.options
        self.result.values[release.name] = dump_values(release.values)
        if release.needs_crds:
            self.plan(_command(self.kubectl.wait_args(release.needs_crds, options.wait_timeout)))
        problem = self.cluster_problem or self.helm_problem
        would = f"would install or upgrade {release.name} ({release.chart})"
        if problem:
            self.unchecked("helm", problem, would + "; its owner is checked first")
        else:
            existing = self.helm.check_owner(release.name, release.chart, options.namespace)
            state = "upgrade" if existing else "install"
            self.ui.step("helm", f"would {state} {release.name} ({release.chart})")
        args = self.helm.upgrade_args(
            release.name, release.chart, options.namespace, release.base_values,
            f"<generated values for {release.name}>",
            timeout=self.helm.install_timeout(options.wait_timeout),
        )  # fmt: skip
        self.plan(_command(args))

    def wait(self, *, restart: bool = False) -> None:
        """Step 7: rollout status of the Flux deployments (after a restart, when rotating)."""
        options = self.options
        verb = "restart and wait for" if restart else "wait for"
        if options.dry_run:
            self.plan(f"{verb} the Deployments in {options.namespace}")
            if self.cluster_problem:
                self.unchecked("wait", self.cluster_problem,
                               f"would {verb} the Deployments in {options.namespace}")  # fmt: skip
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

    # --- rotation -----------------------------------------------------------------------------

    def finish_rotation(self, retiring: Sequence[str], current: KeyPair) -> None:
        """Restart and wait, delete the recorded deploy keys, then drop the annotation.

        Only deploy keys whose fingerprint is in ``retiring`` (as recorded on the Secret) are
        deleted; the current key never is. A failure leaves the annotation for the next run,
        and its message says so.
        """
        try:
            self._finish_rotation(retiring, current)
        except GitopskitError as error:
            resume = (
                f"the new key is in the Secret {self.where}, which records the rotation: run "
                "`invoke flux-rotate-key` (or flux-bootstrap) again to finish it"
            )
            error.hint = f"{error.hint}; {resume}" if error.hint else resume
            raise

    def _finish_rotation(self, retiring: Sequence[str], current: KeyPair) -> None:
        self.wait(restart=True)
        for wanted in retiring:
            if wanted == current.fingerprint:
                continue
            self._retire(wanted)
        if self.options.dry_run:
            self.plan(_command(self.kubectl.args(
                "annotate", "secret", self.options.secret_name, f"{RETIRING_ANNOTATION}-",
                "--namespace", self.options.namespace)))  # fmt: skip
            return
        self.kubectl.remove_annotation(
            "secret", self.options.secret_name, self.options.namespace, RETIRING_ANNOTATION
        )
        self.result.rotation_finished = True
        self.ui.step("rotation", f"done: the Secret {self.where} records no key to retire")

    def _retire(self, wanted: str) -> None:
        """Delete the project's deploy keys with fingerprint ``wanted`` (recorded as ours)."""
        if self.deploy_keys is None or self.access.problem:
            problem = self.access.problem or "GitLab is not configured"
            self.unchecked("deploy", problem, f"would delete the deploy key {wanted}")
            return
        found = self.deploy_keys.with_fingerprint(wanted)
        if not found:
            self.ui.note(f"no deploy key {wanted} on {self.access.project}: nothing to delete")
        for key in found:
            if self.options.dry_run:
                self.plan(f"DELETE deploy key {key.id} ({wanted}, the retired key)")
                continue
            self.deploy_keys.delete(int(key.id))
            self.result.old_deploy_key_id = int(key.id)
            self.ui.step("deploy", f"deleted the retired deploy key {key.id} ({wanted})")
        self.result.retired.append(wanted)

    def _resume(self, existing: SecretState, key: KeyPair) -> bool:
        """Finish a rotation recorded on the Secret; False when there is none."""
        retiring = retiring_fingerprints(existing)
        if not retiring:
            return False
        self.ui.step("rotation", f"finishing the rotation recorded on {self.where}: retiring "
                     f"{', '.join(retiring)} for {key.fingerprint}")  # fmt: skip
        self.finish_rotation(retiring, key)
        return True

    # --- the runs -----------------------------------------------------------------------------

    def bootstrap(self) -> Result:
        """Steps 1 to 7 (and the end of an interrupted rotation); the summary is
        :func:`report`."""
        self.check_tools()
        self.connect()
        hosts = self.host_keys()
        existing = self.existing_secret()
        key = self.key_pair(existing)
        retiring = retiring_fingerprints(existing)
        self.write_secret(existing, secret_data(self.options, key, hosts), retiring)
        self.deploy_key(key)
        self.install(hosts)
        if not self.options.wait:
            if retiring:
                self.ui.warn(f"a key rotation is recorded on {self.where} (retiring "
                             f"{', '.join(retiring)}): run again without --no-wait, or "
                             "flux-rotate-key, to finish it")  # fmt: skip
            return self.result
        if existing is not None and self._resume(existing, key):
            return self.result
        self.wait()
        return self.result

    def rotate(self) -> Result:
        """New key → new deploy key → Secret (with the retiring annotation) → restart and
        wait → recorded deploy keys deleted → annotation removed. Finishes a rotation that a
        failed run left instead of starting another."""
        if self.deploy_keys is None:
            raise ConfigError(
                "rotating the key needs GitLab, to add the new deploy key before the Secret "
                "changes and to delete the old one after",
                hint="set GITLAB_URL, MANIFESTS_PROJECT and GITLAB_TOKEN (a Maintainer's token)",
            )
        self.kubectl.check()
        self.connect()
        existing = self.existing_secret()
        if self.cluster_problem:
            raise ConfigError(
                f"{self.cluster_problem}: the Secret {self.where} whose key would be rotated "
                "cannot be read, so there is no plan to show"
            )
        if not existing or not existing.data.get("identity"):
            raise ConfigError(
                f"there is no Secret {self.where} with a key to rotate",
                hint="run `invoke flux-bootstrap` first",
            )
        current = key_of(existing)
        if retiring_fingerprints(existing):
            self.result.key_fingerprint = current.fingerprint
            self.result.public_key = current.public
            self.deploy_key(current)
            self._resume(existing, current)
            return self.result
        return self._rotate(existing, current)

    def _rotate(self, existing: SecretState, old: KeyPair) -> Result:
        options = self.options
        key = generate_key(options.key_type)
        self.result.key_generated = True
        self.result.key_fingerprint = key.fingerprint
        self.result.public_key = key.public
        verb = "would generate (dry run)" if options.dry_run else "generated"
        self.ui.step("key", f"{verb} a new {options.key_type} key ({key.fingerprint}); "
                     f"retiring {old.fingerprint}")  # fmt: skip
        self.deploy_key(key)
        data = dict(existing.data)
        data["identity"] = key.private
        if "identity.pub" in existing.data or options.flux_version == 2:
            data["identity.pub"] = key.public + "\n"
        try:
            self.write_secret(existing, data, [old.fingerprint])
        except GitopskitError:
            self._withdraw_new_deploy_key()
            raise
        self.finish_rotation([old.fingerprint], key)
        return self.result

    def _withdraw_new_deploy_key(self) -> None:
        """The Secret was not written: the deploy key just added (whose private key is now
        lost) is deleted again."""
        key_id = self.result.deploy_key_id
        if not self.result.deploy_key_created or key_id is None or self.deploy_keys is None:
            return
        try:
            self.deploy_keys.delete(key_id)
        except GitLabError as error:
            self.ui.warn(f"could not delete the new deploy key {key_id} again ({error.message}); "
                         f"delete it in {DEPLOY_KEYS_PAGE}")  # fmt: skip
            return
        self.ui.step("deploy", f"the Secret was not changed: deleted the new deploy key "
                     f"{key_id} again")  # fmt: skip


def key_of(secret: SecretState) -> KeyPair:
    """The key pair in a Flux Secret (the public key derived when only ``identity`` is there)."""
    private = secret.data["identity"]
    public = secret.data.get("identity.pub") or public_key_of(private)
    return KeyPair(private=private, public=canonical_public(public))


def report(ui: Progress, result: Result) -> None:
    """Step 8: the summary (and a dry run's plan and generated values).

    Raises:
        ConfigError: A dry run's plan is incomplete (after printing it).
    """
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
    environment: str | None = None,
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
    )
    options.environment = environment
    bootstrap = Bootstrap(options, access, progress)
    result = bootstrap.rotate() if rotate else bootstrap.bootstrap()
    report(progress, result)
    return result
