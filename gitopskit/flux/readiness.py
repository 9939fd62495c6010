"""Waiting, bounded, until Flux's own objects say they are Ready.

An object is ready when its ``Ready`` condition is ``True`` at its current generation (the
condition's ``observedGeneration``, else the status's) and, when a reconcile was requested
(``reconcile.fluxcd.io/requestedAt``), once ``status.lastHandledReconcileAt`` shows it was
handled. Not ready in time: :class:`FluxNotReadyError` quoting the most specific failing
condition (the GitRepository's before the Kustomization's before the FluxInstance's: a
known_hosts or authentication error is the commonest bootstrap failure), with its remedy; an
object that is merely not there or not done yet is quoted only when none failed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitopskit.errors import GitopskitError
from gitopskit.flux.deploy_keys import DEPLOY_KEYS_PAGE
from gitopskit.kube import Kubectl, UnknownKindError
from gitopskit.ui import Progress

Obj = dict[str, Any]

#: The annotation that asks a Flux controller to reconcile now (its value: a timestamp).
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
#: Seconds between two looks, growing to the last one.
POLL = (0.25, 0.5, 1.0, 2.0)


class FluxNotReadyError(GitopskitError):
    """Flux did not become ready within the wait timeout."""


@dataclass(frozen=True)
class Target:
    """One Flux object to wait for."""

    kind: str
    resource: str  # the kubectl resource, fully qualified
    name: str

    @property
    def ref(self) -> str:
        """``resource/name`` for kubectl."""
        return f"{self.resource}/{self.name}"


def instance_target(name: str = "flux") -> Target:
    """The FluxInstance."""
    return Target("FluxInstance", "fluxinstances.fluxcd.controlplane.io", name)


def source_target(name: str) -> Target:
    """The sync's GitRepository."""
    return Target("GitRepository", "gitrepositories.source.toolkit.fluxcd.io", name)


def kustomization_target(name: str) -> Target:
    """The sync's Kustomization."""
    return Target("Kustomization", "kustomizations.kustomize.toolkit.fluxcd.io", name)


@dataclass(frozen=True)
class State:
    """What an object's status says; ``failed`` when a condition says it failed (``Ready``
    False, or ``Stalled``), not merely that it is not there or not done yet."""

    ready: bool
    message: str
    failed: bool = False


def _conditions(obj: Obj) -> dict[str, Obj]:
    status = obj.get("status") or {}
    return {str(c.get("type")): c for c in status.get("conditions") or []}


def state_of(obj: Obj | None, handled: str | None = None) -> State:
    """Whether ``obj`` is ready and, if not, why (its failing condition's message)."""
    if obj is None:
        return State(False, "not created yet")
    status = obj.get("status") or {}
    conditions = _conditions(obj)
    ready = conditions.get("Ready")
    generation = (obj.get("metadata") or {}).get("generation")
    if ready is None:
        return State(False, "not reconciled yet")
    message = str(ready.get("message") or ready.get("reason") or "")
    observed = ready.get("observedGeneration", status.get("observedGeneration"))
    if generation is not None and observed is not None and observed < generation:
        return State(False, f"generation {generation} not reconciled yet (last: {message})")
    if handled is not None and status.get("lastHandledReconcileAt") != handled:
        return State(False, f"the reconcile requested at {handled} not handled yet")
    stalled = conditions.get("Stalled")
    if stalled is not None and stalled.get("status") == "True":
        return State(False, str(stalled.get("message") or message), failed=True)
    if ready.get("status") == "True":
        return State(True, message)
    return State(False, message or "not ready", failed=ready.get("status") == "False")


def remedy(message: str, *, secret: str, public_key_fingerprint: str = "") -> str | None:
    """What to do about a failing condition's message, when it is a known one."""
    lowered = message.lower()
    if "knownhosts" in lowered or "host key" in lowered:
        return (
            f"the known_hosts in the Secret {secret} does not hold the git host's current key: "
            "check the host's fingerprints out of band, then run `invoke flux-bootstrap` again "
            "with --host-key-fingerprint SHA256:… to rescan and pin them"
        )
    if (
        "unable to authenticate" in lowered
        or "permission denied" in lowered
        or ("publickey" in lowered)
    ):
        key = f" ({public_key_fingerprint})" if public_key_fingerprint else ""
        return (
            f"the git host refuses the key in the Secret {secret}{key}: it must be a deploy key of "
            f"the manifests project ({DEPLOY_KEYS_PAGE}); add it there, or replace the key with "
            "`invoke flux-rotate-key`"
        )
    if "secret" in lowered and "not found" in lowered:
        return f"the Secret {secret} is missing: run `invoke flux-bootstrap` again"
    return None


def now_token() -> str:
    """A reconcile request's value: the current time, RFC 3339 with nanoseconds."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def wait_ready(
    kubectl: Kubectl,
    namespace: str,
    targets: Sequence[Target],
    *,
    timeout: float,
    ui: Progress,
    handled: Mapping[str, str] | None = None,
    secret: str = "",
    key_fingerprint: str = "",
    seen: Mapping[str, Obj] | None = None,
) -> dict[str, Obj]:
    """Wait until every target is ready, for at most ``timeout`` seconds in all.

    Args:
        kubectl: Reads the objects (one ``kubectl get`` per look).
        namespace: Where they are.
        targets: Most specific first: its failure is the one reported.
        timeout: Seconds to wait in all.
        ui: Where a change of what is awaited is noted.
        handled: Reconcile requests that must have been handled, by target kind.
        secret: ``namespace/name`` of the Secret, for remedies.
        key_fingerprint: The key's fingerprint, for remedies.
        seen: The targets as just read (by :func:`look`): the first look, saving a request.

    Returns:
        The objects, by kind, once all are ready.

    Raises:
        FluxNotReadyError: Not all ready in time; the message quotes the failing condition.
    """
    requests = dict(handled or {})
    deadline = time.monotonic() + timeout
    polls = iter(POLL)
    said = ""
    while True:
        found = dict(seen) if seen is not None else look(kubectl, namespace, targets)
        seen = None
        states = [(t, state_of(found.get(t.kind), requests.get(t.kind))) for t in targets]
        waiting = [(t, s) for t, s in states if not s.ready]
        if not waiting:
            return found
        # The most specific failure; else the first not ready yet. A GitRepository the
        # operator has not made is no reason: the FluxInstance that failed to make it is.
        target, state = next(((t, s) for t, s in waiting if s.failed), waiting[0])
        note = f"{target.kind} {namespace}/{target.name}: {state.message}"
        if note != said:
            ui.note(f"waiting for {note}")
            said = note
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FluxNotReadyError(
                f"Flux is not ready after {timeout:g}s: {target.kind} {namespace}/{target.name}: "
                f"{state.message}",
                hint=_hint(state.message, secret, key_fingerprint),
            )
        time.sleep(min(next(polls, POLL[-1]), remaining))


def _hint(message: str, secret: str, key_fingerprint: str) -> str:
    known = remedy(message, secret=secret, public_key_fingerprint=key_fingerprint)
    rerun = (
        "everything else is in place: once fixed, `invoke flux-bootstrap` (or "
        "GITOPSKIT_FLUX_WAIT_TIMEOUT for a longer wait) finishes without changing anything else"
    )
    return f"{known}; {rerun}" if known else rerun


def look(kubectl: Kubectl, namespace: str, targets: Sequence[Target]) -> dict[str, Obj]:
    """The targets that exist, by kind; a kind not served yet (the operator has not installed
    Flux's CRDs) counts as absent."""
    try:
        objects = kubectl.get_objects(namespace, [t.ref for t in targets])
    except UnknownKindError:
        objects = []
        for target in targets:
            try:
                objects += kubectl.get_objects(namespace, [target.ref])
            except UnknownKindError:
                continue
    return {str(o.get("kind")): o for o in objects}
