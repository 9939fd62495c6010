"""The steps every installer shares: host keys, key pair, Secret, deploy key, and the key
rotation around them (the step that varies, installing Flux, is the installer's).

``Bootstrap.bootstrap`` runs them in order, each an aligned progress line: kube context, what
is installed already (the installer's preflight, read-only), host key (scanned; the keys
matching a pin are kept), key pair (reused from the cluster's Secret when there is one),
Namespace and Secret (server-side apply), deploy key (read-only, on the manifests project in
GitLab), install, wait until ready. Running it again is safe: it reuses the key, adds no deploy
key and rewrites nothing unchanged.

``Bootstrap.rotate`` replaces the key with no gap: new key, new deploy key, then the Secret gets
the new key together with an annotation naming the fingerprints of the keys being retired;
Flux is made to use the new key and waited for (the installer knows how); the recorded deploy
keys are deleted; the annotation goes last. A run that fails in between leaves the annotation,
and the next ``flux-rotate-key`` or ``flux-bootstrap`` finishes the rotation. Only deploy keys
whose fingerprint was recorded there are ever deleted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from gitopskit.errors import ConfigError, GitLabError, GitopskitError
from gitopskit.flux.charts import CommunityCharts, Flux1
from gitopskit.flux.deploy_keys import DEPLOY_KEYS_PAGE, GitLabAccess
from gitopskit.flux.detect import installed
from gitopskit.flux.installer import Installer
from gitopskit.flux.operator import FluxOperator
from gitopskit.flux.options import FLUX1, Options
from gitopskit.flux.session import Result, Session, command
from gitopskit.kube import SecretState, namespace_manifest, secret_manifest
from gitopskit.redact import MASK
from gitopskit.ssh import (
    GitURL,
    HostKey,
    HostUnreachableError,
    KeyPair,
    canonical_public,
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

#: Annotation on the Secret while a rotation is in progress: the fingerprints of the keys being
#: retired, comma-separated. Fingerprints only, never key material.
RETIRING_ANNOTATION = "gitopskit/retiring-key-fingerprints"
_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
SCANNED_HOSTS = "<the scanned host keys>"
#: The installer of each ``--installer`` value (``flux1``: Flux 1).
INSTALLERS: dict[str, type[Installer]] = {
    "operator": FluxOperator,
    "charts": CommunityCharts,
    "flux1": Flux1,
}


def choose(session: Session) -> Installer:
    """The installer the options name: the one way this run installs Flux."""
    return INSTALLERS[session.options.installer](session)


def retiring_fingerprints(secret: SecretState | None) -> list[str]:
    """The fingerprints a rotation in progress recorded on the Secret (malformed ones dropped)."""
    if secret is None:
        return []
    text = secret.annotations.get(RETIRING_ANNOTATION, "")
    return [fp for fp in (p.strip() for p in text.split(",")) if _FINGERPRINT.match(fp)]


class Bootstrap(Session):
    """One bootstrap or rotation run: the shared steps, and the installer chosen once.

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
        super().__init__(options, access, progress, env)
        self.installer: Installer = choose(self)

    # --- steps --------------------------------------------------------------------------------

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
            pinned = f"{len(pins)} pinned fingerprint{'s' if len(pins) != 1 else ''}"
            checked = f"checked against {pinned}" if pins else "unpinned"
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
        with self.cluster_reads():
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
                command(self.kubectl.args("apply", "--server-side",
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
        """The deploy key's title: the environment, the cluster's context and the namespace."""
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
        self.installer.reload()
        for wanted in retiring:
            if wanted == current.fingerprint:
                continue
            self._retire(wanted)
        if self.options.dry_run:
            self.plan(command(self.kubectl.args(
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
        :func:`gitopskit.flux.report`."""
        self.check_tools()
        self.connect()
        self.installer.preflight()
        hosts = self.host_keys()
        existing = self.existing_secret()
        key = self.key_pair(existing)
        retiring = retiring_fingerprints(existing)
        self.write_secret(existing, self.installer.secret_data(key, hosts), retiring)
        self.deploy_key(key)
        self.installer.install(hosts)
        if not self.options.wait:
            if retiring:
                self.ui.warn(f"a key rotation is recorded on {self.where} (retiring "
                             f"{', '.join(retiring)}): run again without --no-wait, or "
                             "flux-rotate-key, to finish it")  # fmt: skip
            return self.result
        if existing is None or not self._resume(existing, key):
            self.installer.wait(secret_changed=self.result.secret_written)
        self.installer.after_ready()
        return self.result

    def _installed(self) -> None:
        """For a rotation: the installer of what the cluster runs (a FluxInstance, or the
        community charts), whatever --installer says."""
        if self.options.installer == FLUX1:
            return
        with self.cluster_reads():
            found = installed(self)
        if found is not None and found != self.options.installer:
            self.ui.note(f"Flux in {self.options.namespace} is installed with the {found} "
                         "installer: rotating for that")  # fmt: skip
            self.options.installer = found
            self.installer = choose(self)

    def rotate(self) -> Result:
        """New key → new deploy key → Secret (with the retiring annotation) → Flux made to use
        it, and waited for → recorded deploy keys deleted → annotation removed. Finishes a
        rotation that a failed run left instead of starting another."""
        if self.deploy_keys is None:
            raise ConfigError(
                "rotating the key needs GitLab, to add the new deploy key before the Secret "
                "changes and to delete the old one after",
                hint="set GITLAB_URL, MANIFESTS_PROJECT and GITLAB_TOKEN (a Maintainer's token)",
            )
        self.kubectl.check()
        self.connect()
        existing = self.existing_secret()
        if not self.cluster_problem:
            self._installed()
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
