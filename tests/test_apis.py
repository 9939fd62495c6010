"""Removed, deprecated and misspelt built-in APIs, row by row of the table.

Each expected message below is written out by hand from Kubernetes' Deprecated API Migration
Guide (https://kubernetes.io/docs/reference/using-api/deprecation-guide/), not derived from the
table it checks; a row added to the table without a line here fails
``test_every_row_of_the_table_is_tested``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitopskit.apis import RETIRED
from gitopskit.manifests import Document
from gitopskit.validate import Report, SchemaValidator

FLOW = "flowcontrol.apiserver.k8s.io"
GONE = "removed in Kubernetes"
PSA = "use Pod Security Admission (pod-security.kubernetes.io labels on namespaces)"
INGRESS_NOTE = " (pathType is required; backends are service.name and service.port)"

# apiVersion, kind, the error at Kubernetes 1.34.
REMOVED_AT_1_34 = [
    (f"{FLOW}/v1beta3", "FlowSchema", f"{GONE} 1.32; use {FLOW}/v1"),
    (f"{FLOW}/v1beta3", "PriorityLevelConfiguration", f"{GONE} 1.32; use {FLOW}/v1"),
    (f"{FLOW}/v1beta2", "FlowSchema", f"{GONE} 1.29; use {FLOW}/v1"),
    (f"{FLOW}/v1beta2", "PriorityLevelConfiguration", f"{GONE} 1.29; use {FLOW}/v1"),
    ("storage.k8s.io/v1beta1", "CSIStorageCapacity", f"{GONE} 1.27; use storage.k8s.io/v1"),
    (f"{FLOW}/v1beta1", "FlowSchema", f"{GONE} 1.26; use {FLOW}/v1"),
    (f"{FLOW}/v1beta1", "PriorityLevelConfiguration", f"{GONE} 1.26; use {FLOW}/v1"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler", f"{GONE} 1.26; use autoscaling/v2"),
    ("batch/v1beta1", "CronJob", f"{GONE} 1.25; use batch/v1"),
    ("discovery.k8s.io/v1beta1", "EndpointSlice", f"{GONE} 1.25; use discovery.k8s.io/v1"),
    ("events.k8s.io/v1beta1", "Event", f"{GONE} 1.25; use events.k8s.io/v1"),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler", f"{GONE} 1.25; use autoscaling/v2"),
    ("policy/v1beta1", "PodDisruptionBudget", f"{GONE} 1.25; use policy/v1"),
    ("policy/v1beta1", "PodSecurityPolicy", f"{GONE} 1.25; {PSA}"),
    ("node.k8s.io/v1beta1", "RuntimeClass", f"{GONE} 1.25; use node.k8s.io/v1"),
    (
        "admissionregistration.k8s.io/v1beta1",
        "MutatingWebhookConfiguration",
        f"{GONE} 1.22; use admissionregistration.k8s.io/v1",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingWebhookConfiguration",
        f"{GONE} 1.22; use admissionregistration.k8s.io/v1",
    ),
    (
        "apiextensions.k8s.io/v1beta1",
        "CustomResourceDefinition",
        f"{GONE} 1.22; use apiextensions.k8s.io/v1 "
        "(spec.versions[*].schema.openAPIV3Schema is required)",
    ),
    ("apiregistration.k8s.io/v1beta1", "APIService", f"{GONE} 1.22; use apiregistration.k8s.io/v1"),
    ("authentication.k8s.io/v1beta1", "TokenReview", f"{GONE} 1.22; use authentication.k8s.io/v1"),
    *[
        ("authorization.k8s.io/v1beta1", kind, f"{GONE} 1.22; use authorization.k8s.io/v1")
        for kind in (
            "LocalSubjectAccessReview",
            "SelfSubjectAccessReview",
            "SubjectAccessReview",
            "SelfSubjectRulesReview",
        )
    ],
    (
        "certificates.k8s.io/v1beta1",
        "CertificateSigningRequest",
        f"{GONE} 1.22; use certificates.k8s.io/v1",
    ),
    ("coordination.k8s.io/v1beta1", "Lease", f"{GONE} 1.22; use coordination.k8s.io/v1"),
    ("extensions/v1beta1", "Ingress", f"{GONE} 1.22; use networking.k8s.io/v1" + INGRESS_NOTE),
    (
        "networking.k8s.io/v1beta1",
        "Ingress",
        f"{GONE} 1.22; use networking.k8s.io/v1" + INGRESS_NOTE,
    ),
    ("networking.k8s.io/v1beta1", "IngressClass", f"{GONE} 1.22; use networking.k8s.io/v1"),
    *[
        (
            "rbac.authorization.k8s.io/v1beta1",
            kind,
            f"{GONE} 1.22; use rbac.authorization.k8s.io/v1",
        )
        for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    ],
    ("scheduling.k8s.io/v1beta1", "PriorityClass", f"{GONE} 1.22; use scheduling.k8s.io/v1"),
    *[
        ("storage.k8s.io/v1beta1", kind, f"{GONE} 1.22; use storage.k8s.io/v1")
        for kind in ("CSIDriver", "CSINode", "StorageClass", "VolumeAttachment")
    ],
    ("extensions/v1beta1", "NetworkPolicy", f"{GONE} 1.16; use networking.k8s.io/v1"),
    ("extensions/v1beta1", "DaemonSet", f"{GONE} 1.16; use apps/v1"),
    ("apps/v1beta2", "DaemonSet", f"{GONE} 1.16; use apps/v1"),
    ("extensions/v1beta1", "Deployment", f"{GONE} 1.16; use apps/v1"),
    ("apps/v1beta1", "Deployment", f"{GONE} 1.16; use apps/v1"),
    ("apps/v1beta2", "Deployment", f"{GONE} 1.16; use apps/v1"),
    ("apps/v1beta1", "StatefulSet", f"{GONE} 1.16; use apps/v1"),
    ("apps/v1beta2", "StatefulSet", f"{GONE} 1.16; use apps/v1"),
    ("extensions/v1beta1", "ReplicaSet", f"{GONE} 1.16; use apps/v1"),
    ("apps/v1beta1", "ReplicaSet", f"{GONE} 1.16; use apps/v1"),
    ("apps/v1beta2", "ReplicaSet", f"{GONE} 1.16; use apps/v1"),
    (
        "extensions/v1beta1",
        "PodSecurityPolicy",
        f"{GONE} 1.16; its replacement policy/v1beta1 was removed in 1.25 too: {PSA}",
    ),
]

# Deprecated, served, no removal scheduled: a warning at 1.34.
DEPRECATED_AT_1_34 = [
    (
        "v1",
        "Endpoints",
        "deprecated since Kubernetes 1.33, no removal scheduled; "
        "use discovery.k8s.io/v1 EndpointSlice",
    ),
    (
        "v1",
        "ComponentStatus",
        "deprecated since Kubernetes 1.19, no removal scheduled (it is read-only)",
    ),
]


def obj(api_version: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "shop"},
        **fields,
    }


def check(data: dict[str, Any], tmp_path: Path, version: str = "1.34", **options: Any) -> Report:
    validator = SchemaValidator(version, **options)  # the test session's cache
    return validator.validate([Document(data, "app.k8s.yaml", 3)])


def test_every_row_of_the_table_is_tested() -> None:
    in_table = {(v, k) for row in RETIRED for v in row.api_versions for k in row.kinds}
    tested = {(v, k) for v, k, _ in REMOVED_AT_1_34 + DEPRECATED_AT_1_34}
    assert in_table == tested


@pytest.mark.parametrize(("api_version", "kind", "message"), REMOVED_AT_1_34)
def test_a_removed_api_is_an_error_naming_the_release_and_the_replacement(
    api_version: str, kind: str, message: str, tmp_path: Path
) -> None:
    report = check(obj(api_version, kind), tmp_path)
    (problem,) = report.problems
    assert str(problem) == f"app.k8s.yaml:3: {api_version} {kind} shop/x: {message}"
    assert report.validated == 0
    assert not report.not_validated
    assert not report.warnings


@pytest.mark.parametrize(("api_version", "kind", "message"), DEPRECATED_AT_1_34)
def test_a_deprecated_served_api_is_a_warning(
    api_version: str, kind: str, message: str, tmp_path: Path
) -> None:
    report = check(obj(api_version, kind), tmp_path)
    assert not report.problems
    (warning,) = report.warnings
    assert str(warning) == f"app.k8s.yaml:3: {api_version} {kind} shop/x: {message}"
    assert report.validated == 1  # ... and validated as well


@pytest.mark.parametrize(
    ("version", "api_version", "kind", "expected"),
    [
        # Removed from 1.25 on; at 1.25 it is an error already.
        ("1.25", "batch/v1beta1", "CronJob", "error: removed in Kubernetes 1.25; use batch/v1"),
        # Still served at 1.25, autoscaling/v2 too: deprecated, with the release that removes it.
        (
            "1.25",
            "autoscaling/v2beta2",
            "HorizontalPodAutoscaler",
            "warning: deprecated: Kubernetes 1.26 removes it; use autoscaling/v2",
        ),
        # At 1.25 nothing replaces v1beta2 yet (v1beta3 came in 1.26): neither.
        ("1.25", f"{FLOW}/v1beta2", "FlowSchema", None),
        (
            "1.26",
            f"{FLOW}/v1beta2",
            "FlowSchema",
            f"warning: deprecated: Kubernetes 1.29 removes it; use {FLOW}/v1beta3",
        ),
        (
            "1.28",
            f"{FLOW}/v1beta1",
            "FlowSchema",
            f"error: removed in Kubernetes 1.26; use {FLOW}/v1beta3",
        ),
        (
            "1.29",
            f"{FLOW}/v1beta3",
            "FlowSchema",
            f"warning: deprecated: Kubernetes 1.32 removes it; use {FLOW}/v1",
        ),
        (
            "1.26",
            "storage.k8s.io/v1beta1",
            "CSIStorageCapacity",
            "warning: deprecated: Kubernetes 1.27 removes it; use storage.k8s.io/v1",
        ),
        ("1.32", "v1", "Endpoints", None),
    ],
)
def test_the_verdict_depends_on_the_target_version(
    version: str, api_version: str, kind: str, expected: str | None, tmp_path: Path
) -> None:
    report = check(obj(api_version, kind, spec={}), tmp_path, version)
    # Only what is said of the object as a whole (a served one is validated too: spec: {}
    # lacks required fields).
    found = [f"error: {p.message}" for p in report.problems if not p.path]
    found += [f"warning: {w.message}" for w in report.warnings if not w.path]
    assert found == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("api_version", "kind", "message"),
    [
        ("app/v1", "Deployment", "no such API; did you mean apps/v1?"),
        ("v1", "Deployment", "no such API; did you mean apps/v1?"),
        ("apps/v2", "StatefulSet", "no such API; did you mean apps/v1?"),
        ("autoscaling/v3", "HorizontalPodAutoscaler", "no such API; did you mean autoscaling/v2?"),
        ("networking.k8s.io/v2", "Ingress", "no such API; did you mean networking.k8s.io/v1?"),
        ("apps/v1", "Deploymnet", "no such kind in apps; did you mean apps/v1 Deployment?"),
        ("v1", "ConfigMaps", "no such kind in the core group (v1); did you mean v1 ConfigMap?"),
        ("apps/v1", "Widget", "no such kind in apps"),
        (
            "app/v1",
            "Widget",
            "no such API: app is not a Kubernetes API group "
            "(and a custom resource's group contains a dot)",
        ),
    ],
)
def test_a_built_in_kind_or_group_under_an_api_that_never_existed(
    api_version: str, kind: str, message: str, tmp_path: Path
) -> None:
    report = check(obj(api_version, kind), tmp_path)
    (problem,) = report.problems
    assert str(problem) == f"app.k8s.yaml:3: {api_version} {kind} shop/x: {message}"


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("apps.example.com/v1", "Deployment"),  # a dotted group may be a CRD's
        ("example.com/v1", "Widget"),
        ("v1", "List"),  # kubectl's client-side list
    ],
)
def test_what_may_be_a_custom_resource_is_not_validated_not_refused(
    api_version: str, kind: str, tmp_path: Path
) -> None:
    report = check(obj(api_version, kind), tmp_path)
    assert not report.problems
    assert report.not_validated == {f"{kind} ({api_version})": 1}
