"""Built-in Kubernetes APIs that are gone, going, or never were.

:data:`RETIRED` is the table, kept as data: each row an apiVersion (or several) and kinds that a
Kubernetes release stopped serving, and what to use instead. It follows Kubernetes' "Deprecated
API Migration Guide" (https://kubernetes.io/docs/reference/using-api/deprecation-guide/, section
"Removed APIs by release", v1.16 to v1.32), plus the deprecations without a removal that the API
server announces with a warning (``v1 Endpoints``, KEP-4974; ``v1 ComponentStatus``).

For a target Kubernetes version, :func:`retirement` says whether an object's API is removed (an
error naming the release that removed it and the replacement) or deprecated but still served (a
warning naming the release that removes it), and :func:`no_such_api` whether an apiVersion/kind
is a built-in kind under a group/version that never existed (an error with a suggestion).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Retired:
    """One row of the table.

    Attributes:
        api_versions: The retired group/versions.
        kinds: Their kinds concerned.
        removed_in: The first release that no longer serves them; None when no removal is
            scheduled (deprecated only).
        use: Replacements, preferred first: an apiVersion (same kind) or ``apiVersion Kind``.
            The first one the target version serves is named.
        deprecated_in: For a row without removal: the release that deprecated it.
        note: Said when no replacement is served by the target (there is none, say), or what
            else changes.
    """

    api_versions: tuple[str, ...]
    kinds: tuple[str, ...]
    removed_in: str | None
    use: tuple[str, ...] = ()
    deprecated_in: str | None = None
    note: str = ""


_APPS_BETAS = ("extensions/v1beta1", "apps/v1beta1", "apps/v1beta2")
_PSA = "use Pod Security Admission (pod-security.kubernetes.io labels on namespaces)"

# Kubernetes' Deprecated API Migration Guide, "Removed APIs by release":
# https://kubernetes.io/docs/reference/using-api/deprecation-guide/
RETIRED: tuple[Retired, ...] = (
    # v1.32
    Retired(
        ("flowcontrol.apiserver.k8s.io/v1beta3",),
        ("FlowSchema", "PriorityLevelConfiguration"),
        "1.32",
        ("flowcontrol.apiserver.k8s.io/v1",),
    ),
    # v1.29
    Retired(
        ("flowcontrol.apiserver.k8s.io/v1beta2",),
        ("FlowSchema", "PriorityLevelConfiguration"),
        "1.29",
        ("flowcontrol.apiserver.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1beta3"),
    ),
    # v1.27
    Retired(("storage.k8s.io/v1beta1",), ("CSIStorageCapacity",), "1.27", ("storage.k8s.io/v1",)),
    # v1.26
    Retired(
        ("flowcontrol.apiserver.k8s.io/v1beta1",),
        ("FlowSchema", "PriorityLevelConfiguration"),
        "1.26",
        (
            "flowcontrol.apiserver.k8s.io/v1",
            "flowcontrol.apiserver.k8s.io/v1beta3",
            "flowcontrol.apiserver.k8s.io/v1beta2",
        ),
    ),
    Retired(("autoscaling/v2beta2",), ("HorizontalPodAutoscaler",), "1.26", ("autoscaling/v2",)),
    # v1.25
    Retired(("batch/v1beta1",), ("CronJob",), "1.25", ("batch/v1",)),
    Retired(("discovery.k8s.io/v1beta1",), ("EndpointSlice",), "1.25", ("discovery.k8s.io/v1",)),
    Retired(("events.k8s.io/v1beta1",), ("Event",), "1.25", ("events.k8s.io/v1",)),
    Retired(("autoscaling/v2beta1",), ("HorizontalPodAutoscaler",), "1.25", ("autoscaling/v2",)),
    Retired(("policy/v1beta1",), ("PodDisruptionBudget",), "1.25", ("policy/v1",)),
    Retired(("policy/v1beta1",), ("PodSecurityPolicy",), "1.25", note=_PSA),
    Retired(("node.k8s.io/v1beta1",), ("RuntimeClass",), "1.25", ("node.k8s.io/v1",)),
    # v1.22
    Retired(
        ("admissionregistration.k8s.io/v1beta1",),
        ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"),
        "1.22",
        ("admissionregistration.k8s.io/v1",),
    ),
    Retired(
        ("apiextensions.k8s.io/v1beta1",),
        ("CustomResourceDefinition",),
        "1.22",
        ("apiextensions.k8s.io/v1",),
        note="spec.versions[*].schema.openAPIV3Schema is required",
    ),
    Retired(
        ("apiregistration.k8s.io/v1beta1",), ("APIService",), "1.22", ("apiregistration.k8s.io/v1",)
    ),
    Retired(
        ("authentication.k8s.io/v1beta1",), ("TokenReview",), "1.22", ("authentication.k8s.io/v1",)
    ),
    Retired(
        ("authorization.k8s.io/v1beta1",),
        (
            "LocalSubjectAccessReview",
            "SelfSubjectAccessReview",
            "SubjectAccessReview",
            "SelfSubjectRulesReview",
        ),
        "1.22",
        ("authorization.k8s.io/v1",),
    ),
    Retired(
        ("certificates.k8s.io/v1beta1",),
        ("CertificateSigningRequest",),
        "1.22",
        ("certificates.k8s.io/v1",),
    ),
    Retired(("coordination.k8s.io/v1beta1",), ("Lease",), "1.22", ("coordination.k8s.io/v1",)),
    Retired(
        ("extensions/v1beta1", "networking.k8s.io/v1beta1"),
        ("Ingress",),
        "1.22",
        ("networking.k8s.io/v1",),
        note="pathType is required; backends are service.name and service.port",
    ),
    Retired(("networking.k8s.io/v1beta1",), ("IngressClass",), "1.22", ("networking.k8s.io/v1",)),
    Retired(
        ("rbac.authorization.k8s.io/v1beta1",),
        ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"),
        "1.22",
        ("rbac.authorization.k8s.io/v1",),
    ),
    Retired(("scheduling.k8s.io/v1beta1",), ("PriorityClass",), "1.22", ("scheduling.k8s.io/v1",)),
    Retired(
        ("storage.k8s.io/v1beta1",),
        ("CSIDriver", "CSINode", "StorageClass", "VolumeAttachment"),
        "1.22",
        ("storage.k8s.io/v1",),
    ),
    # v1.16
    Retired(("extensions/v1beta1",), ("NetworkPolicy",), "1.16", ("networking.k8s.io/v1",)),
    Retired(("extensions/v1beta1", "apps/v1beta2"), ("DaemonSet",), "1.16", ("apps/v1",)),
    Retired(_APPS_BETAS, ("Deployment",), "1.16", ("apps/v1",)),
    Retired(("apps/v1beta1", "apps/v1beta2"), ("StatefulSet",), "1.16", ("apps/v1",)),
    Retired(_APPS_BETAS, ("ReplicaSet",), "1.16", ("apps/v1",)),
    Retired(
        ("extensions/v1beta1",),
        ("PodSecurityPolicy",),
        "1.16",
        ("policy/v1beta1",),
        note="its replacement policy/v1beta1 was removed in 1.25 too: " + _PSA,
    ),
    # Deprecated, still served, no removal scheduled: the API server warns on every write.
    Retired(
        ("v1",),
        ("Endpoints",),
        None,
        ("discovery.k8s.io/v1 EndpointSlice",),
        deprecated_in="1.33",
    ),
    Retired(("v1",), ("ComponentStatus",), None, deprecated_in="1.19", note="it is read-only"),
)

_BY_API: dict[tuple[str, str], Retired] = {
    (api_version, kind): row
    for row in RETIRED
    for api_version in row.api_versions
    for kind in row.kinds
}

Served = Callable[[str, str], bool]
"""Whether the target version serves an apiVersion and kind."""


@dataclass(frozen=True)
class Verdict:
    """What the table says about one object's API at the target version.

    Attributes:
        error: The API is not served (an error), else it is deprecated (a warning).
        message: For the person at the terminal.
    """

    error: bool
    message: str


def minor_key(version: str) -> tuple[int, int]:
    """``"1.25"`` → ``(1, 25)``, for comparing releases."""
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def retirement(api_version: str, kind: str, target: str, served: Served) -> Verdict | None:
    """The table's verdict on ``api_version``/``kind`` at Kubernetes ``target`` (``"1.34"``).

    Args:
        api_version: The object's apiVersion.
        kind: Its kind.
        target: The target Kubernetes minor version.
        served: Whether the target serves an apiVersion/kind (its schema knows it).

    Returns:
        An error when ``target`` no longer serves it; a warning when it is deprecated there
        (a replacement is served, and a later release removes it or none is scheduled); None
        when the table does not list it, or it is not deprecated yet at ``target``.
    """
    row = _BY_API.get((api_version, kind))
    if row is None:
        return None
    replacement = _replacement(row, kind, served)
    if row.removed_in is None:
        assert row.deprecated_in is not None
        if minor_key(target) < minor_key(row.deprecated_in):
            return None
        use = f"; use {replacement}" if replacement else ""
        note = f" ({row.note})" if row.note else ""
        return Verdict(
            False,
            f"deprecated since Kubernetes {row.deprecated_in}, no removal scheduled{use}{note}",
        )
    if minor_key(target) >= minor_key(row.removed_in):
        if replacement:
            note = f" ({row.note})" if row.note else ""
            return Verdict(True, f"removed in Kubernetes {row.removed_in}; use {replacement}{note}")
        return Verdict(True, f"removed in Kubernetes {row.removed_in}; {row.note}")
    if replacement is None:
        return None  # nothing replaces it yet at the target: not deprecated there
    return Verdict(False, f"deprecated: Kubernetes {row.removed_in} removes it; use {replacement}")


def _replacement(row: Retired, kind: str, served: Served) -> str | None:
    for use in row.use:
        api_version, _, other_kind = use.partition(" ")
        if served(api_version, other_kind or kind):
            return use
    return None


def api_group(api_version: str) -> str:
    """The group of an apiVersion: ``apps/v1`` → ``apps``, ``v1`` → ``""`` (the core group)."""
    return api_version.rpartition("/")[0]


def no_such_api(api_version: str, kind: str, served: Mapping[str, Iterable[str]]) -> str | None:
    """Why ``api_version``/``kind`` cannot be a Kubernetes API, if it cannot: a built-in kind or
    group under a group/version that does not exist, with a suggestion.

    A group without a dot that is not built in cannot be a custom resource's either (a
    CustomResourceDefinition's group must contain a dot): ``app/v1`` is a typo. Other groups
    may belong to CRDs: None, whatever the kind.

    Args:
        api_version: The object's apiVersion.
        kind: Its kind.
        served: The apiVersions the target serves, by kind.

    Returns:
        ``"no such API; did you mean apps/v1?"`` and the like, or None.
    """
    group = api_group(api_version)
    groups = {api_group(v) for versions in served.values() for v in versions}
    groups |= {api_group(v) for row in RETIRED for v in row.api_versions}
    if (group not in groups and "." in group) or kind.endswith("List"):
        return None
    versions = list(served.get(kind, ()))
    if versions:
        guess = difflib.get_close_matches(api_version, versions, n=1, cutoff=0) or versions
        return f"no such API; did you mean {guess[0]}?"
    if group in groups:
        in_group = [k for k, vs in served.items() if any(api_group(v) == group for v in vs)]
        near = difflib.get_close_matches(kind, in_group, n=1, cutoff=0.6)
        where = f"{group}" if group else "the core group (v1)"
        if near:
            served_at = sorted(v for v in served[near[0]] if api_group(v) == group)
            return f"no such kind in {where}; did you mean {served_at[-1]} {near[0]}?"
        return f"no such kind in {where}"
    return (
        f"no such API: {group} is not a Kubernetes API group "
        "(and a custom resource's group contains a dot)"
    )
