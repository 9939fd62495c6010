"""The change analysis: one test per warning (a case that warns and a near miss that does not),
field paths, Secret masking, images, and the codes of ``--fail-on``."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from gitopskit import review
from gitopskit.errors import ConfigError
from gitopskit.review import MASK, MISSING, Named
from gitopskit.tree import identity_of

Obj = dict[str, Any]


def obj(api_version: str, kind: str, name: str, namespace: str | None = "shop", **body: Any) -> Obj:
    metadata: Obj = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def deployment(
    image: str = "registry.example.com/api:1.0", replicas: int | None = 2, tier: str = "web"
) -> Obj:
    spec: Obj = {
        "selector": {"matchLabels": {"app": "api"}},
        "template": {
            "metadata": {"labels": {"app": "api", "tier": tier}},
            "spec": {"containers": [{"name": "api", "image": image}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return obj("apps/v1", "Deployment", "api", spec=spec)


def edit(base: Obj, *keys: str | int, value: Any = MISSING) -> Obj:
    """A deep copy of ``base`` with the field at ``keys`` set to ``value`` (removed: MISSING)."""
    out = copy.deepcopy(base)
    target: Any = out
    for key in keys[:-1]:
        target = target.setdefault(key, {}) if isinstance(key, str) else target[key]
    if value is MISSING:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return out


def codes(old: Obj | None, new: Obj | None) -> list[str]:
    either = new if new is not None else old
    assert either is not None
    found = review.review(identity_of(either), old, new)
    return [w.code for w in found.warnings]


def statefulset(**spec: Any) -> Obj:
    base: Obj = {
        "selector": {"matchLabels": {"app": "db"}},
        "serviceName": "db",
        "podManagementPolicy": "OrderedReady",
        "replicas": 3,
        "template": {"spec": {"containers": [{"name": "db", "image": "postgres:16.4"}]}},
        "volumeClaimTemplates": [
            {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
        ],
    }
    return obj("apps/v1", "StatefulSet", "db", spec={**base, **spec})


def pvc(**spec: Any) -> Obj:
    base: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "fast",
        "resources": {"requests": {"storage": "10Gi"}},
    }
    return obj("v1", "PersistentVolumeClaim", "data", spec={**base, **spec})


def service(**spec: Any) -> Obj:
    base: Obj = {"clusterIP": "10.0.0.10", "ports": [{"port": 80}], "selector": {"app": "api"}}
    return obj("v1", "Service", "api", spec={**base, **spec})


def job(image: str = "migrate:1.0", **spec: Any) -> Obj:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": image}]}}
    return obj("batch/v1", "Job", "migrate", spec={"template": template, **spec})


def cronjob(image: str) -> Obj:
    template = {"spec": {"containers": [{"name": "m", "image": image}]}}
    return obj(
        "batch/v1",
        "CronJob",
        "nightly",
        spec={"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
    )


RBAC = "rbac.authorization.k8s.io/v1"


def role(*rules: Obj, kind: str = "Role") -> Obj:
    namespace = "shop" if kind == "Role" else None
    return obj(RBAC, kind, "reader", namespace, rules=list(rules))


def rule(
    verbs: list[str],
    resources: list[str],
    groups: list[str] | None = None,
    names: list[str] | None = None,
) -> Obj:
    found: Obj = {
        "apiGroups": groups if groups is not None else [""],
        "resources": resources,
        "verbs": verbs,
    }
    if names:
        found["resourceNames"] = names
    return found


def binding(*subjects: Obj, role_name: str = "reader", kind: str = "RoleBinding") -> Obj:
    namespace = "shop" if kind == "RoleBinding" else None
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name}
    return obj(RBAC, kind, "readers", namespace, roleRef=ref, subjects=list(subjects))


def sa(name: str, namespace: str = "shop") -> Obj:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def group(name: str) -> Obj:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name}


def secret(**body: Any) -> Obj:
    return obj("v1", "Secret", "pay", **body)


DIGEST = "sha256:" + "ab" * 32
CM = obj("v1", "ConfigMap", "cfg", data={"a": "b"})
NAMESPACE = obj("v1", "Namespace", "legacy", None)
CRD = obj(
    "apiextensions.k8s.io/v1",
    "CustomResourceDefinition",
    "widgets.example.com",
    None,
    spec={"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}},
)
NOT_A_CRD = obj("example.com/v1", "CustomResourceDefinition", "w", None)
PRUNE_DISABLED = edit(
    obj("v1", "ConfigMap", "keep"), "metadata", "annotations", value={review.FLUX_PRUNE: "disabled"}
)

#: (code, old, new): each must warn exactly ``code`` among its warnings.
WARNS: dict[str, tuple[str, Obj | None, Obj | None]] = {
    "delete": ("delete", CM, None),
    "delete, prune disabled": ("delete", PRUNE_DISABLED, None),
    "delete-namespace": ("delete-namespace", NAMESPACE, None),
    "delete-crd": ("delete-crd", CRD, None),
    "immutable: Deployment selector": (
        "immutable",
        deployment(),
        edit(deployment(), "spec", "selector", "matchLabels", "tier", value="web"),
    ),
    "immutable: DaemonSet selector": (
        "immutable",
        obj("apps/v1", "DaemonSet", "agent", spec={"selector": {"matchLabels": {"a": "1"}}}),
        obj("apps/v1", "DaemonSet", "agent", spec={"selector": {"matchLabels": {"a": "2"}}}),
    ),
    "immutable: ReplicaSet selector": (
        "immutable",
        obj("apps/v1", "ReplicaSet", "rs", spec={"selector": {"matchLabels": {"a": "1"}}}),
        obj("apps/v1", "ReplicaSet", "rs", spec={"selector": {"matchExpressions": []}}),
    ),
    "immutable: StatefulSet selector": (
        "immutable",
        statefulset(),
        statefulset(selector={"matchLabels": {"app": "pg"}}),
    ),
    "immutable: StatefulSet volumeClaimTemplates": (
        "immutable",
        statefulset(),
        edit(
            statefulset(),
            "spec",
            "volumeClaimTemplates",
            0,
            "spec",
            "resources",
            "requests",
            "storage",
            value="2Gi",
        ),
    ),
    "immutable: StatefulSet serviceName": (
        "immutable",
        statefulset(),
        statefulset(serviceName="db-headless"),
    ),
    "immutable: StatefulSet podManagementPolicy": (
        "immutable",
        statefulset(),
        statefulset(podManagementPolicy="Parallel"),
    ),
    "immutable: Job template": ("immutable", job("migrate:1.0"), job("migrate:1.1")),
    "immutable: Service clusterIP": ("immutable", service(), service(clusterIP="10.0.0.11")),
    "immutable: Service clusterIPs": (
        "immutable",
        service(),
        service(clusterIPs=["10.0.0.10", "fd00::10"]),
    ),
    "immutable: Service clusterIP set where there was none": (
        "immutable",
        edit(service(), "spec", "clusterIP"),
        service(),
    ),
    "immutable: PVC storageClassName": ("immutable", pvc(), pvc(storageClassName="slow")),
    "immutable: PVC accessModes": ("immutable", pvc(), pvc(accessModes=["ReadWriteMany"])),
    "immutable: PVC volumeName": ("immutable", pvc(), pvc(volumeName="pv-1")),
    "immutable: PVC storage shrinks": (
        "immutable",
        pvc(),
        pvc(resources={"requests": {"storage": "5Gi"}}),
    ),
    "immutable: PVC storage shrinks across units": (
        "immutable",
        pvc(),
        pvc(resources={"requests": {"storage": "10G"}}),
    ),
    "immutable: RoleBinding roleRef": (
        "immutable",
        binding(sa("ci")),
        binding(sa("ci"), role_name="admin"),
    ),
    "immutable: data of an immutable ConfigMap": (
        "immutable",
        edit(CM, "immutable", value=True),
        edit(edit(CM, "immutable", value=True), "data", "a", value="c"),
    ),
    "immutable: an immutable ConfigMap made mutable": (
        "immutable",
        edit(CM, "immutable", value=True),
        edit(CM, "immutable", value=False),
    ),
    "immutable: a key added to an immutable Secret": (
        "immutable",
        secret(immutable=True, data={"k": "dmFsdWU="}),
        secret(immutable=True, data={"k": "dmFsdWU="}, stringData={"j": "x"}),
    ),
    "immutable: Secret type": (
        "immutable",
        secret(data={"k": "dmFsdWU="}),
        secret(type="kubernetes.io/basic-auth", data={"k": "dmFsdWU="}),
    ),
    "rbac-grows: a new verb": (
        "rbac-grows",
        role(rule(["get"], ["pods"])),
        role(rule(["get", "delete"], ["pods"])),
    ),
    "rbac-grows: a new resource": (
        "rbac-grows",
        role(rule(["get"], ["pods"])),
        role(rule(["get"], ["pods", "secrets"])),
    ),
    "rbac-grows: resourceNames dropped": (
        "rbac-grows",
        role(rule(["get"], ["secrets"], names=["tls"])),
        role(rule(["get"], ["secrets"])),
    ),
    "rbac-grows: a new Role": ("rbac-grows", None, role(rule(["get"], ["pods"]))),
    "rbac-grows: a ClusterRole's new URL": (
        "rbac-grows",
        role(kind="ClusterRole"),
        role({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}, kind="ClusterRole"),
    ),
    "rbac-grows: a new subject": ("rbac-grows", binding(sa("ci")), binding(sa("ci"), sa("bot"))),
    "rbac-grows: a new ClusterRoleBinding": (
        "rbac-grows",
        None,
        binding(sa("ci"), kind="ClusterRoleBinding"),
    ),
    "rbac-wildcard: verbs *": (
        "rbac-wildcard",
        role(rule(["get"], ["pods"])),
        role(rule(["*"], ["pods"])),
    ),
    "rbac-wildcard: resources * in every group": (
        "rbac-wildcard",
        None,
        role(rule(["get"], ["*"], groups=["*"]), kind="ClusterRole"),
    ),
    "rbac-wildcard: one subresource of every resource": (
        "rbac-wildcard",
        role(rule(["get"], ["pods"])),
        role(rule(["get"], ["pods", "*/scale"])),
    ),
    "rbac-wildcard: a URL prefix": (
        "rbac-wildcard",
        role(kind="ClusterRole"),
        role({"nonResourceURLs": ["/healthz*"], "verbs": ["get"]}, kind="ClusterRole"),
    ),
    "rbac-wildcard: every authenticated user": (
        "rbac-wildcard",
        binding(sa("ci")),
        binding(sa("ci"), group("system:authenticated")),
    ),
    "rbac-wildcard: every service account of a namespace": (
        "rbac-wildcard",
        binding(),
        binding(group("system:serviceaccounts:shop")),
    ),
    "replicas-zero": ("replicas-zero", deployment(replicas=3), deployment(replicas=0)),
    "replicas-zero from the default": (
        "replicas-zero",
        deployment(replicas=None),
        deployment(replicas=0),
    ),
    "image-no-tag": ("image-no-tag", deployment(), deployment(image="registry.example.com/api")),
    "image-no-tag behind a registry port": (
        "image-no-tag",
        deployment(),
        deployment(image="registry:5000/api"),
    ),
    "image-no-tag in a new object": ("image-no-tag", None, deployment(image="nginx")),
    "image-latest": ("image-latest", deployment(), deployment(image="nginx:latest")),
    "image-latest in a CronJob": (
        "image-latest",
        cronjob("migrate:1.0"),
        cronjob("migrate:latest"),
    ),
    "image-digest-to-tag": (
        "image-digest-to-tag",
        deployment(image=f"api@{DIGEST}"),
        deployment(image="api:1.1"),
    ),
    "plain-secret: data": ("plain-secret", None, secret(data={"k": "dmFsdWU="})),
    "plain-secret: stringData": (
        "plain-secret",
        secret(data={"k": "dmFsdWU="}),
        secret(stringData={"k": "value"}),
    ),
}

#: (code, old, new): near misses that must not warn ``code``.
NEAR_MISSES: dict[str, tuple[str, Obj | None, Obj | None]] = {
    "immutable: data of a mutable ConfigMap": ("immutable", CM, edit(CM, "data", "a", value="c")),
    "immutable: an immutable ConfigMap relabelled": (
        "immutable",
        edit(CM, "immutable", value=True),
        edit(edit(CM, "immutable", value=True), "metadata", "labels", value={"a": "b"}),
    ),
    "immutable: a ConfigMap made immutable": ("immutable", CM, edit(CM, "immutable", value=True)),
    "immutable: an immutable Secret's key moved to stringData, same value": (
        "immutable",
        secret(immutable=True, data={"k": "dmFsdWU="}),
        secret(immutable=True, stringData={"k": "value"}),
    ),
    "immutable: Secret type written out as the default": (
        "immutable",
        secret(data={"k": "dmFsdWU="}),
        secret(type="Opaque", data={"k": "dmFsdWU="}),
    ),
    "delete: a change": ("delete", CM, edit(CM, "data", "a", value="c")),
    "delete-namespace: a Namespace relabelled": (
        "delete-namespace",
        NAMESPACE,
        edit(NAMESPACE, "metadata", "labels", value={"a": "b"}),
    ),
    "delete-crd: a custom kind named so": ("delete-crd", NOT_A_CRD, None),
    "immutable: a Deployment's template labels": (
        "immutable",
        deployment(),
        deployment(tier="api"),
    ),
    "immutable: a StatefulSet's replicas and template": (
        "immutable",
        statefulset(),
        statefulset(
            replicas=5,
            template={"spec": {"containers": [{"name": "db", "image": "postgres:16.5"}]}},
        ),
    ),
    "immutable: a CronJob's job template": (
        "immutable",
        cronjob("migrate:1.0"),
        cronjob("migrate:1.1"),
    ),
    "immutable: a Job's ttl": ("immutable", job(), job(ttlSecondsAfterFinished=60)),
    "immutable: a Service's ports": ("immutable", service(), service(ports=[{"port": 8080}])),
    "immutable: a Service's clusterIP dropped": (
        "immutable",
        service(),
        edit(service(), "spec", "clusterIP"),
    ),
    "immutable: a Service's clusterIP emptied (the server keeps its value)": (
        "immutable",
        service(),
        service(clusterIP="", clusterIPs=[]),
    ),
    "immutable: PVC storage grows": (
        "immutable",
        pvc(),
        pvc(resources={"requests": {"storage": "20Gi"}}),
    ),
    "immutable: PVC storage the same in other units": (
        "immutable",
        pvc(resources={"requests": {"storage": "1Gi"}}),
        pvc(resources={"requests": {"storage": "1024Mi"}}),
    ),
    "immutable: a binding's subjects": ("immutable", binding(sa("ci")), binding(sa("bot"))),
    "rbac-grows: a verb removed": (
        "rbac-grows",
        role(rule(["get", "list"], ["pods"])),
        role(rule(["get"], ["pods"])),
    ),
    "rbac-grows: rules split and reordered": (
        "rbac-grows",
        role(rule(["get", "list"], ["pods", "services"])),
        role(rule(["list"], ["services", "pods"]), rule(["get"], ["services", "pods"])),
    ),
    "rbac-grows: resourceNames added": (
        "rbac-grows",
        role(rule(["get"], ["secrets"])),
        role(rule(["get"], ["secrets"], names=["tls"])),
    ),
    "rbac-grows: covered by an old wildcard": (
        "rbac-grows",
        role(rule(["*"], ["pods"])),
        role(rule(["delete"], ["pods"])),
    ),
    "rbac-grows: a subject removed": (
        "rbac-grows",
        binding(sa("ci"), sa("bot")),
        binding(sa("ci")),
    ),
    "rbac-grows: a Role relabelled": (
        "rbac-grows",
        role(rule(["get"], ["pods"])),
        edit(role(rule(["get"], ["pods"])), "metadata", "labels", value={"a": "b"}),
    ),
    "rbac-wildcard: an old wildcard kept": (
        "rbac-wildcard",
        role(rule(["*"], ["pods"])),
        edit(role(rule(["*"], ["pods"])), "metadata", "labels", value={"a": "b"}),
    ),
    "rbac-wildcard: pods/* is no pattern to the API server": (
        "rbac-wildcard",
        role(rule(["get"], ["pods"])),
        role(rule(["get"], ["pods", "pods/*"])),
    ),
    "rbac-grows: a subresource that */scale allowed": (
        "rbac-grows",
        role(rule(["get"], ["*/scale"])),
        role(rule(["get"], ["deployments/scale"])),
    ),
    "rbac-wildcard: a named group": (
        "rbac-wildcard",
        binding(),
        binding(group("system:masters-of-nothing")),
    ),
    "replicas-zero: scaled down, not to zero": (
        "replicas-zero",
        deployment(replicas=3),
        deployment(replicas=1),
    ),
    "replicas-zero: already zero": (
        "replicas-zero",
        deployment(replicas=0),
        deployment(replicas=0, tier="api"),
    ),
    "replicas-zero: a new object at zero": ("replicas-zero", None, deployment(replicas=0)),
    "image-no-tag: a tag": ("image-no-tag", deployment(), deployment(image="nginx:1.27")),
    "image-no-tag: a port and a tag": (
        "image-no-tag",
        deployment(),
        deployment(image="registry:5000/api:1.1"),
    ),
    "image-no-tag: a digest": ("image-no-tag", deployment(), deployment(image=f"api@{DIGEST}")),
    "image-latest: a tag that starts so": (
        "image-latest",
        deployment(),
        deployment(image="nginx:latest-alpine"),
    ),
    "image-latest: unchanged": (
        "image-latest",
        deployment(image="nginx:latest", replicas=1),
        deployment(image="nginx:latest", replicas=2),
    ),
    "image-digest-to-tag: still pinned": (
        "image-digest-to-tag",
        deployment(image=f"api@{DIGEST}"),
        deployment(image=f"api:1.1@sha256:{'cd' * 32}"),
    ),
    "plain-secret: no values": ("plain-secret", None, secret(type="kubernetes.io/tls")),
    "plain-secret: a ConfigMap": ("plain-secret", None, CM),
}


@pytest.mark.parametrize("case", WARNS, ids=list(WARNS))
def test_warns(case: str) -> None:
    code, old, new = WARNS[case]
    assert code in codes(old, new)


@pytest.mark.parametrize("case", NEAR_MISSES, ids=list(NEAR_MISSES))
def test_near_miss_does_not_warn(case: str) -> None:
    code, old, new = NEAR_MISSES[case]
    assert code not in codes(old, new)


def test_every_code_has_a_warning_and_a_near_miss() -> None:
    assert {code for code, _, _ in WARNS.values()} == set(review.CODES)
    assert {code for code, _, _ in NEAR_MISSES.values()} == set(review.CODES)


def warnings_of(old: Obj | None, new: Obj | None) -> list[review.ReviewWarning]:
    either = new if new is not None else old
    assert either is not None
    return list(review.review(identity_of(either), old, new).warnings)


def test_messages_say_what_happens() -> None:
    (crd,) = warnings_of(CRD, None)
    assert "every Widget object" in crd.message and crd.path == ""
    (kept,) = warnings_of(PRUNE_DISABLED, None)
    assert "prune: disabled" in kept.message and "leaves it in the cluster" in kept.message
    (selector,) = warnings_of(statefulset(), statefulset(selector={"matchLabels": {"a": "b"}}))
    assert selector.path == "spec.selector" and "refuses" in selector.message
    forced = edit(
        statefulset(serviceName="x"),
        "metadata",
        "annotations",
        value={review.FLUX_FORCE: "enabled"},
    )
    (recreated,) = warnings_of(statefulset(), forced)
    assert (
        "spec.serviceName changes db → x" in recreated.message and "re-creates" in recreated.message
    )
    (shrink,) = warnings_of(pvc(), pvc(resources={"requests": {"storage": "5Gi"}}))
    assert shrink.path == "spec.resources.requests.storage" and "10Gi → 5Gi" in shrink.message
    (zero,) = warnings_of(deployment(replicas=None), deployment(replicas=0))
    assert zero.message.startswith("spec.replicas unset (1) → 0")
    grows = warnings_of(
        role(rule(["get"], ["pods"])),
        role(rule(["get"], ["pods"]), rule(["create"], ["deployments"], ["apps"])),
    )
    assert [(w.path, w.message) for w in grows] == [
        ("rules[1]", "grants create on deployments.apps")
    ]
    (everyone,) = warnings_of(binding(), binding(group("system:unauthenticated")))
    assert "every anonymous request" in everyone.message and everyone.path == "subjects[0]"
    (image,) = warnings_of(deployment(), deployment(image="nginx:latest"))
    assert image.path == "spec.template.spec.containers[name=api].image"


def test_field_paths() -> None:
    old = deployment()
    new = edit(deployment(replicas=3), "metadata", "labels", value={"app.kubernetes.io/name": "x"})
    new["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "LOG", "value": "info"}]
    new["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "envoy:1"})
    new["spec"]["template"]["spec"]["args"] = ["--a"]
    found = review.review(identity_of(new), old, new).fields
    assert [(f.path, f.before, f.after) for f in found] == [
        ("metadata.labels", MISSING, {"app.kubernetes.io/name": "x"}),
        ("spec.replicas", 2, 3),
        ("spec.template.spec.args", MISSING, ["--a"]),
        (
            "spec.template.spec.containers[name=api].env",
            MISSING,
            [{"name": "LOG", "value": "info"}],
        ),
        (
            "spec.template.spec.containers[name=proxy]",
            MISSING,
            {"name": "proxy", "image": "envoy:1"},
        ),
    ]
    assert found[0].to_json() == {
        "path": "metadata.labels",
        "before": None,
        "after": {"app.kubernetes.io/name": "x"},
    }
    assert review.path_text(("metadata", "labels", "app.kubernetes.io/name")) == (
        'metadata.labels["app.kubernetes.io/name"]'
    )
    assert review.path_text(("spec", "ports", 0, "port")) == "spec.ports[0].port"
    assert review.path_text(("a", Named("x"))) == "a[name=x]"
    # Items inserted or removed in one run are fields of their own; other lists of different
    # lengths without names are one value; types count (true is not 1).
    assert [f.path for f in review.changed_fields({"a": [1, 2]}, {"a": [1, 2, 3]})] == ["a[2]"]
    assert [(f.path, f.before) for f in review.changed_fields({"a": [1, 2, 3]}, {"a": [1, 3]})] == [
        ("a[1]", 2)
    ]
    assert [f.path for f in review.changed_fields({"a": [1, 2]}, {"a": [3, 4, 5]})] == ["a"]
    assert review.changed_fields({"a": True}, {"a": 1}) != []
    assert review.changed_fields({"a": 1}, {"a": 1.0}) != []
    assert review.changed_fields({"a": [{"x": 1}]}, {"a": [{"x": 1}]}) == []


def test_secret_fields_are_masked() -> None:
    old = secret(data={"payment-api-key": "b2xk", "kept": "a2VwdA=="})
    old["metadata"]["annotations"] = {review.LAST_APPLIED: '{"data":{"k":"b2xk"}}'}
    new = secret(
        data={"payment-api-key": "bmV3", "kept": "a2VwdA=="},
        stringData={"token": "plain-value"},
        type="Opaque",
    )
    new["metadata"]["annotations"] = {review.LAST_APPLIED: '{"data":{"k":"bmV3"}}'}
    found = review.review(identity_of(new), old, new).fields
    assert [(f.path, f.before, f.after) for f in found] == [
        ("data.payment-api-key", MASK, MASK),
        (f'metadata.annotations["{review.LAST_APPLIED}"]', MASK, MASK),
        ("stringData", MISSING, {"token": MASK}),
        ("type", MISSING, "Opaque"),
    ]
    assert review.secret_keys(found) == [("payment-api-key", "changed"), ("token", "added")]
    for value in ("b2xk", "bmV3", "plain-value", "a2VwdA=="):
        assert value not in repr([f.to_json() for f in found])


def test_a_secret_key_that_moves_between_data_and_string_data_is_changed_not_removed() -> None:
    old = secret(stringData={"token": "plain-value", "gone": "x"})
    new = secret(data={"token": "cGxhaW4="}, stringData={"fresh": "y"})
    found = review.review(identity_of(new), old, new).fields
    assert sorted(review.secret_keys(found)) == [
        ("fresh", "added"),
        ("gone", "removed"),
        ("token", "changed"),
    ]


def test_images_of_every_pod_shape() -> None:
    pod = obj(
        "v1",
        "Pod",
        "p",
        spec={
            "initContainers": [{"name": "init", "image": "busybox:1.36"}],
            "containers": [{"name": "app", "image": "app:1"}, {"image": "nameless:1"}],
        },
    )
    assert review.container_images(pod) == {
        "init (init)": ("spec.initContainers[name=init].image", "busybox:1.36"),
        "app": ("spec.containers[0].image", "app:1"),
        "#1": ("spec.containers[1].image", "nameless:1"),
    }
    assert review.container_images(cronjob("m:1")) == {
        "m": ("spec.jobTemplate.spec.template.spec.containers[name=m].image", "m:1")
    }
    assert review.container_images(CM) == {}
    changes = review.image_changes(deployment(image="a:1"), deployment(image="a:2"))
    assert changes == [
        review.ImageChange("api", "spec.template.spec.containers[name=api].image", "a:1", "a:2")
    ]
    gone = review.image_changes(deployment(), None)
    assert [(c.before, c.after) for c in gone] == [("registry.example.com/api:1.0", None)]
    assert review.split_image("host:5000/a/b:1.2@sha256:x") == ("host:5000/a/b", "1.2", "sha256:x")


def test_quantities() -> None:
    assert review.quantity("10Gi") == 10 * 2**30
    assert review.quantity("500M") == 500 * 10**6
    assert review.quantity("1e3") == 1000
    assert review.quantity("1.5Ki") == Decimal(1536)
    assert review.quantity(3) == 3
    assert review.quantity("ten") is None and review.quantity(True) is None


def test_fail_on_codes_and_families() -> None:
    assert review.parse_codes("delete, rbac") == {"delete", "rbac"}
    assert review.matches("delete-namespace", {"delete"})
    assert review.matches("rbac-wildcard", {"rbac"}) and review.matches("image-latest", {"image"})
    assert not review.matches("image-latest", {"image-no-tag"})
    assert not review.matches("immutable", {"image"})
    with pytest.raises(ConfigError, match="unknown warning code deletion") as caught:
        review.parse_codes("deletion")
    assert caught.value.hint is not None and "rbac-grows" in caught.value.hint
    with pytest.raises(ConfigError, match="none given"):
        review.parse_codes(" , ")


def test_a_huge_rule_is_judged_quickly() -> None:
    """300 groups x 300 resources x 20 verbs would be 1.8 million combinations to compare."""
    import time

    groups = [f"g{i}.example.com" for i in range(300)]
    resources = [f"r{i}" for i in range(300)]
    verbs = [f"v{i}" for i in range(20)]
    huge = role(rule(verbs, resources, groups), kind="ClusterRole")
    relabelled = edit(huge, "metadata", "labels", value={"a": "b"})
    wider = role(rule([*verbs, "delete"], resources, groups), kind="ClusterRole")
    started = time.perf_counter()
    assert codes(huge, relabelled) == []  # the same rule: no growth
    (grown,) = warnings_of(huge, wider)
    assert time.perf_counter() - started < 2
    assert grown.code == "rbac-grows" and "and 15 more" in grown.message
