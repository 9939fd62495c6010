"""Flux's controllers for FakeKube: the Flux Operator, source-controller, kustomize-controller.

``FakeFlux(kube)`` registers one controller callback (:meth:`FakeKube.add_controller`) that
behaves as these do, as far as gitopskit can tell from the API server:

- **The operator** (acts in a namespace where a Deployment of the ``flux-operator`` chart
  runs): a FluxInstance whose generation it has not handled (or whose
  ``reconcile.fluxcd.io/requestedAt`` is new) is reconciled: its
  ``spec.distribution.version`` is resolved against the Flux versions operator v0.58.1 bundles
  (:data:`BUNDLED_FLUX`; none matching is ``Ready=False`` naming the version); the Flux CRDs and
  one Deployment per component (default: source, kustomize, helm, notification) are applied
  (field manager ``flux-operator``); with ``spec.sync`` a GitRepository (``ref.name`` the sync's
  ref, ``secretRef`` its pullSecret, its interval) and a Kustomization (``prune: true``, 10m,
  the sync's path) named ``spec.sync.name`` or after the namespace are applied, as the
  operator's templates do. The instance is ``Ready=Unknown`` (Reconciling) until both are Ready
  at their generation, then ``Ready=True`` with ``lastAppliedRevision`` ``v<version>@sha256:…``
  (with ``spec.wait: false`` at once).
- **source-controller** (where a ``source-controller`` Deployment exists): a GitRepository at a
  new generation or with a new ``reconcile.fluxcd.io/requestedAt`` is fetched for real: ``git
  ls-remote`` of its URL and ref over SSH with the ``identity`` and ``known_hosts`` of its
  ``secretRef`` (strict host key checking). Success: ``Ready=True``, ``artifact.revision``
  ``<ref>@sha1:<commit>``. Failure: ``Ready=False`` (``GitOperationFailed``) with the message
  source-controller writes (``failed to checkout and determine revision: unable to list remote
  for '<url>': ssh: handshake failed: knownhosts: key mismatch``, ``… ssh: unable to
  authenticate, attempted methods [none publickey], no supported methods remain``). It never
  watches Secrets: after a key change, only a requested reconcile (or a spec change) refetches.
  :attr:`FakeFlux.source_failure`, when set, is the failure of every fetch instead.
- **kustomize-controller** (where a ``kustomize-controller`` Deployment exists): a Kustomization
  is ``Ready=True`` at its GitRepository's revision (``Applied revision: …``) once that is
  Ready, else ``Ready=False`` (``ArtifactFailed``).

Secrets' private keys go to a 0600 file in a private temporary directory, removed after each
fetch; nothing is printed.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.fakes.kube import FakeKube, crd_manifest
from tests.fakes.sshd import ssh_git_env

Obj = dict[str, Any]

#: The Flux versions whose manifests operator v0.58.1 carries (its config/data/flux, 2.8 and 2.9).
BUNDLED_FLUX = ("2.8.3", "2.8.5", "2.8.6", "2.8.7", "2.8.8",
                "2.9.0", "2.9.1", "2.9.2", "2.9.3", "2.9.4")  # fmt: skip
DEFAULT_COMPONENTS = (
    "source-controller", "kustomize-controller", "helm-controller", "notification-controller"
)  # fmt: skip
#: The Flux CRDs the operator applies: group, kind, plural, short name.
FLUX_CRDS = (
    ("source.toolkit.fluxcd.io", "GitRepository", "gitrepositories", "gitrepo"),
    ("source.toolkit.fluxcd.io", "HelmRepository", "helmrepositories", "helmrepo"),
    ("source.toolkit.fluxcd.io", "OCIRepository", "ocirepositories", "ocirepo"),
    ("kustomize.toolkit.fluxcd.io", "Kustomization", "kustomizations", "ks"),
    ("helm.toolkit.fluxcd.io", "HelmRelease", "helmreleases", "hr"),
)
REQUESTED = "reconcile.fluxcd.io/requestedAt"
#: ``kubectl get`` columns of Flux's kinds, as Flux's CRDs declare them.
PRINTER_COLUMNS = [
    ("Ready", '.status.conditions[?(@.type=="Ready")].status'),
    ("Status", '.status.conditions[?(@.type=="Ready")].message'),
]
MANAGER = "flux-operator"


def _conditions(obj: Obj | None) -> dict[str, Obj]:
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}


def is_ready(obj: Obj | None) -> bool:
    """Ready=True, observed at the object's current generation."""
    if obj is None:
        return False
    ready = _conditions(obj).get("Ready") or {}
    generation = obj["metadata"].get("generation", 1)
    return ready.get("status") == "True" and ready.get("observedGeneration") == generation


def resolve_version(wanted: str) -> str | None:
    """The newest bundled Flux version matching ``wanted`` (exact, ``2.9.x``, ``2.x``, ``*``, or
    comparators such as ``>=2.8.0 <3.0.0``); None when none does."""
    text = wanted.strip().lstrip("v")
    candidates = sorted(BUNDLED_FLUX, key=_parse, reverse=True)
    for version in candidates:
        if _matches(version, text):
            return version
    return None


def _parse(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _matches(version: str, wanted: str) -> bool:
    if wanted in ("*", "x", ""):
        return True
    comparators = re.findall(r"(>=|<=|>|<|=)?\s*v?([0-9][0-9.xX*]*)", wanted.replace(",", " "))
    if not comparators:
        return False
    for op, spec in comparators:
        parts = spec.split(".")
        fixed = [p for p in parts if p not in ("x", "X", "*")]
        if not op and len(fixed) < 3:  # an x-range: the fixed parts must agree
            if _parse(version)[: len(fixed)] != tuple(int(p) for p in fixed):
                return False
            continue
        target = tuple(int(p) for p in [*fixed, "0", "0", "0"][:3])
        current = _parse(version)
        ok = {
            "": current == target, "=": current == target, ">=": current >= target,
            "<=": current <= target, ">": current > target, "<": current < target,
        }[op]  # fmt: skip
        if not ok:
            return False
    return True


def _ssh_error(stderr: str) -> str:
    """What go-git (source-controller) says for what OpenSSH said."""
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or "Host key verification" in stderr:
        if "No " in stderr and "host key is known" in stderr:
            return "ssh: handshake failed: knownhosts: key is unknown"
        return "ssh: handshake failed: knownhosts: key mismatch"
    if "Permission denied" in stderr:
        return ("ssh: handshake failed: ssh: unable to authenticate, attempted methods "
                "[none publickey], no supported methods remain")  # fmt: skip
    if "Connection refused" in stderr:
        return "dial tcp: connect: connection refused"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


class FakeFlux:
    """The Flux Operator, source-controller and kustomize-controller for one FakeKube.

    Args:
        kube: The API server to watch and write.
        git_timeout: Seconds one ``git ls-remote`` may take.
    """

    def __init__(self, kube: FakeKube, *, git_timeout: float = 15.0) -> None:
        self.kube = kube
        self.git_timeout = git_timeout
        #: When set, every GitRepository fetch fails with this message.
        self.source_failure: str | None = None
        #: ``(kind, namespace/name)`` of every reconciliation, in order.
        self.reconciled: list[tuple[str, str]] = []
        kube.add_controller(self._on_change)

    # --- dispatch -----------------------------------------------------------------------------

    def _on_change(self, event: str, obj: Obj) -> None:
        kind = obj.get("kind")
        meta = obj["metadata"]
        ns = meta.get("namespace")
        if event == "DELETED":
            return
        if kind == "FluxInstance":
            if self._operator_runs(ns) and self._pending(obj, status_generation=False):
                self._reconcile_instance(obj)
        elif kind == "GitRepository":
            if self._controller_runs("source-controller", ns) and self._pending(obj):
                self._reconcile_source(obj)
            self._follow_source(obj)
        elif kind == "Kustomization":
            if self._controller_runs("kustomize-controller", ns):
                self._reconcile_kustomization(obj)
            self._update_instances(ns)
        elif kind == "Deployment":
            self._controller_started(meta["name"], ns)

    def _deployments(self, namespace: str | None) -> list[Obj]:
        return self.kube.list_objects("Deployment", namespace) if namespace else []

    def _operator_runs(self, namespace: str | None) -> bool:
        return any(
            (d["metadata"].get("labels") or {}).get("helm.sh/chart", "").startswith(
                "flux-operator-")
            for d in self._deployments(namespace)
        )  # fmt: skip

    def _controller_runs(self, name: str, namespace: str | None) -> bool:
        return any(d["metadata"]["name"] == name for d in self._deployments(namespace))

    @staticmethod
    def _pending(obj: Obj, *, status_generation: bool = True) -> bool:
        """Not yet reconciled at this generation, or a reconcile was requested since."""
        status = obj.get("status") or {}
        generation = obj["metadata"].get("generation", 1)
        if status_generation:
            observed = status.get("observedGeneration")
        else:
            observed = (_conditions(obj).get("Ready") or {}).get("observedGeneration")
        requested = (obj["metadata"].get("annotations") or {}).get(REQUESTED)
        handled = status.get("lastHandledReconcileAt")
        return observed != generation or (requested is not None and requested != handled)

    def _controller_started(self, name: str, namespace: str | None) -> None:
        """A controller that just started picks up what is waiting for it."""
        kinds = {"source-controller": "GitRepository", "kustomize-controller": "Kustomization"}
        if name in kinds:
            for obj in self.kube.list_objects(kinds[name], namespace):
                if self._pending(obj):
                    self._on_change("MODIFIED", obj)
        elif self._operator_runs(namespace):
            for obj in self.kube.list_objects("FluxInstance", namespace) if self._has_kind(
                    "FluxInstance") else []:  # fmt: skip
                if self._pending(obj, status_generation=False):
                    self._reconcile_instance(obj)

    def _has_kind(self, kind: str) -> bool:
        try:
            self.kube.resource_for(kind)
        except KeyError:
            return False
        return True

    def _set_status(self, obj: Obj, status: Obj) -> None:
        """Write ``status`` unless it says what the object's status already says."""
        current = self.kube.get(obj["kind"], obj["metadata"]["name"],
                                obj["metadata"].get("namespace"))  # fmt: skip
        if current is None:
            return

        def comparable(s: Obj) -> Obj:
            s = copy.deepcopy(s)
            for c in s.get("conditions") or []:
                c.pop("lastTransitionTime", None)
            return s

        if comparable(current.get("status") or {}) == comparable(status):
            return
        old = _conditions(current)
        for condition in status.get("conditions") or []:
            before = old.get(condition["type"])
            same = before is not None and before.get("status") == condition["status"]
            condition["lastTransitionTime"] = (
                before["lastTransitionTime"] if same and before else _now()
            )
        self.kube.set_status(obj["kind"], obj["metadata"]["name"],
                             obj["metadata"].get("namespace"), status)  # fmt: skip

    # --- the operator -------------------------------------------------------------------------

    def _reconcile_instance(self, fi: Obj) -> None:
        meta = fi["metadata"]
        ns = meta["namespace"]
        self.reconciled.append(("FluxInstance", f"{ns}/{meta['name']}"))
        spec = fi.get("spec") or {}
        generation = meta.get("generation", 1)
        status: Obj = copy.deepcopy(fi.get("status") or {})
        requested = (meta.get("annotations") or {}).get(REQUESTED)
        if requested:
            status["lastHandledReconcileAt"] = requested
        wanted = str((spec.get("distribution") or {}).get("version", ""))
        version = resolve_version(wanted)
        digest = hashlib.sha256(repr(sorted(str(spec).split())).encode()).hexdigest()
        if meta["name"] != "flux" or version is None:
            message = (f"no Flux version matching '{wanted}' in the operator's distribution"
                       if version is None else "the FluxInstance must be named flux")  # fmt: skip
            status["conditions"] = [
                _condition("Ready", "False", "ArtifactFailed", message, generation),
                _condition("Stalled", "True", "ArtifactFailed", message, generation),
            ]
            self._set_status(fi, status)
            return
        revision = f"v{version}@sha256:{digest}"
        status["lastAttemptedRevision"] = revision
        self._install(ns, spec, version)
        status["components"] = [
            {"name": c, "repository": f"ghcr.io/fluxcd/{c}", "tag": f"v{version}"}
            for c in spec.get("components") or DEFAULT_COMPONENTS
        ]
        status["conditions"] = [
            _condition("Reconciling", "True", "Progressing", "Reconciliation in progress",
                       generation),
            _condition("Ready", "Unknown", "Progressing", "Reconciliation in progress",
                       generation),
        ]  # fmt: skip
        self._set_status(fi, status)
        self._update_instances(ns)

    def _install(self, ns: str, spec: Obj, version: str) -> None:
        labels = {"app.kubernetes.io/part-of": "flux", "app.kubernetes.io/version": f"v{version}",
                  "fluxcd.controlplane.io/name": "flux",
                  "fluxcd.controlplane.io/namespace": ns}  # fmt: skip
        for group, kind, plural, short in FLUX_CRDS:
            crd = crd_manifest(group, "v1", kind, plural, short_names=(short,),
                               printer_columns=PRINTER_COLUMNS)  # fmt: skip
            crd["metadata"]["labels"] = dict(labels)
            self.kube.apply(crd, manager=MANAGER)
        for component in spec.get("components") or DEFAULT_COMPONENTS:
            selector = {"app": component}
            self.kube.apply({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": component, "namespace": ns, "labels": dict(labels)},
                "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                         "template": {"metadata": {"labels": selector}, "spec": {"containers": [
                             {"name": "manager",
                              "image": f"ghcr.io/fluxcd/{component}:v{version}"}]}}},
            }, manager=MANAGER)  # fmt: skip
        sync = spec.get("sync")
        if not sync:
            return
        name = sync.get("name") or ns
        source: Obj = {"interval": sync.get("interval", "1m"), "url": sync["url"]}
        if sync["kind"] == "GitRepository":
            source["ref"] = {"name": sync["ref"]}
        if sync.get("pullSecret"):
            source["secretRef"] = {"name": sync["pullSecret"]}
        meta = {"name": name, "namespace": ns, "labels": dict(labels)}
        self.kube.apply({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": sync["kind"],
                         "metadata": dict(meta), "spec": source}, manager=MANAGER)  # fmt: skip
        self.kube.apply({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": dict(meta),
            "spec": {"interval": "10m0s", "path": sync["path"], "prune": True,
                     "sourceRef": {"kind": sync["kind"], "name": name}},
        }, manager=MANAGER)  # fmt: skip

    def _update_instances(self, ns: str | None) -> None:
        """A FluxInstance is Ready once its sync objects are (or at once without wait)."""
        if ns is None or not self._has_kind("FluxInstance"):
            return
        for fi in self.kube.list_objects("FluxInstance", ns):
            status = copy.deepcopy(fi.get("status") or {})
            conditions = _conditions(fi)
            reconciling = conditions.get("Reconciling", {}).get("status") == "True"
            if not reconciling and conditions.get("Ready", {}).get("status") != "True":
                continue  # failed: only a new reconciliation changes that
            spec = fi.get("spec") or {}
            sync = spec.get("sync")
            generation = fi["metadata"].get("generation", 1)
            waiting = []
            if sync and spec.get("wait", True):
                name = sync.get("name") or ns
                for kind in (sync["kind"], "Kustomization"):
                    if not is_ready(self.kube.get(kind, name, ns)):
                        waiting.append(f"{kind}/{ns}/{name}")
            if waiting:
                status["conditions"] = [
                    _condition("Reconciling", "True", "Progressing",
                               "Reconciliation in progress", generation),
                    _condition("Ready", "Unknown", "Progressing", "Reconciliation in progress",
                               generation),
                ]  # fmt: skip
            else:
                status["conditions"] = [
                    _condition("Ready", "True", "ReconciliationSucceeded",
                               "Reconciliation finished in 1s", generation),
                ]  # fmt: skip
                status["lastAppliedRevision"] = status.get("lastAttemptedRevision", "")
            self._set_status(fi, status)

    # --- source-controller --------------------------------------------------------------------

    def _reconcile_source(self, repo: Obj) -> None:
        meta = repo["metadata"]
        ns = meta["namespace"]
        self.reconciled.append(("GitRepository", f"{ns}/{meta['name']}"))
        spec = repo.get("spec") or {}
        ref = spec.get("ref") or {}
        refname = ref.get("name") or f"refs/heads/{ref.get('branch', 'master')}"
        shown_ref = ref.get("name") or ref.get("branch", "master")
        status: Obj = copy.deepcopy(repo.get("status") or {})
        status["observedGeneration"] = meta.get("generation", 1)
        requested = (meta.get("annotations") or {}).get(REQUESTED)
        if requested:
            status["lastHandledReconcileAt"] = requested
        ok, result = self._fetch(spec, ns, refname)
        generation = meta.get("generation", 1)
        if ok:
            revision = f"{shown_ref}@sha1:{result}"
            status["artifact"] = {"revision": revision, "path": f"gitrepository/{ns}/x.tar.gz"}
            status["conditions"] = [_condition(
                "Ready", "True", "Succeeded", f"stored artifact for revision '{revision}'",
                generation)]  # fmt: skip
        else:
            status["conditions"] = [
                _condition("Ready", "False", "GitOperationFailed", result, generation),
                _condition("FetchFailed", "True", "GitOperationFailed", result, generation),
            ]
        self._set_status(repo, status)

    def _fetch(self, spec: Obj, ns: str, refname: str) -> tuple[bool, str]:
        """``(True, commit)`` or ``(False, source-controller's message)``."""
        url = str(spec.get("url", ""))
        if self.source_failure is not None:
            return False, self.source_failure
        name = (spec.get("secretRef") or {}).get("name")
        secret = self.kube.get("Secret", name, ns) if name else None
        if name and secret is None:
            return False, f"failed to get secret '{ns}/{name}': secrets \"{name}\" not found"
        encoded = (secret or {}).get("data") or {}
        data = {k: base64.b64decode(v).decode() for k, v in encoded.items()}
        with tempfile.TemporaryDirectory(prefix="fake-source-") as tmp:
            identity, hosts = Path(tmp) / "identity", Path(tmp) / "known_hosts"
            identity.touch(mode=0o600)
            identity.write_text(data.get("identity", ""))
            hosts.write_text(data.get("known_hosts", ""))
            try:
                done = subprocess.run(
                    ["git", "ls-remote", url, refname], env=ssh_git_env(identity, hosts),
                    capture_output=True, text=True, timeout=self.git_timeout,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                return False, f"failed to checkout and determine revision: unable to list " \
                    f"remote for '{url}': context deadline exceeded"  # fmt: skip
        if done.returncode != 0:
            return False, (f"failed to checkout and determine revision: unable to list remote "
                           f"for '{url}': {_ssh_error(done.stderr)}")  # fmt: skip
        commit = next((line.split()[0] for line in done.stdout.splitlines()
                       if line.split()[1:] == [refname]), None)  # fmt: skip
        if commit is None:
            return False, f"unable to resolve ref '{refname}' to a specific commit"
        return True, commit

    # --- kustomize-controller -----------------------------------------------------------------

    def _follow_source(self, repo: Obj) -> None:
        ns = repo["metadata"].get("namespace")
        if not self._has_kind("Kustomization"):
            return
        for ks in self.kube.list_objects("Kustomization", ns):
            ref = (ks.get("spec") or {}).get("sourceRef") or {}
            if ref.get("name") == repo["metadata"]["name"] and self._controller_runs(
                    "kustomize-controller", ns):  # fmt: skip
                self._reconcile_kustomization(ks)
        self._update_instances(ns)

    def _reconcile_kustomization(self, ks: Obj) -> None:
        meta = ks["metadata"]
        ns = meta["namespace"]
        ref = (ks.get("spec") or {}).get("sourceRef") or {}
        source = self.kube.get(ref.get("kind", "GitRepository"), ref.get("name", ""), ns)
        generation = meta.get("generation", 1)
        status: Obj = copy.deepcopy(ks.get("status") or {})
        status["observedGeneration"] = generation
        requested = (meta.get("annotations") or {}).get(REQUESTED)
        if requested:
            status["lastHandledReconcileAt"] = requested
        revision = ((source or {}).get("status") or {}).get("artifact", {}).get("revision")
        if is_ready(source) and revision:
            status["lastAppliedRevision"] = status["lastAttemptedRevision"] = revision
            status["conditions"] = [
                _condition(
                    "Ready",
                    "True",
                    "ReconciliationSucceeded",
                    f"Applied revision: {revision}",
                    generation,
                )
            ]
        else:
            status["conditions"] = [_condition("Ready", "False", "ArtifactFailed",
                                               "Source artifact not found, retrying in 30s",
                                               generation)]  # fmt: skip
        before = ks.get("status") or {}
        if before.get("conditions") != status["conditions"] or before != status:
            self.reconciled.append(("Kustomization", f"{ns}/{meta['name']}"))
        self._set_status(ks, status)


def _condition(type_: str, status: str, reason: str, message: str, generation: int) -> Obj:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": _now()}  # fmt: skip


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
