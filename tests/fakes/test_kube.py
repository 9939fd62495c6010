"""The fake API server, driven by the real kubectl and by plain HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.conftest import Kubectl
from tests.fakes.kube import FakeKube, crd_manifest

NS_AND_SECRET = """\
apiVersion: v1
kind: Namespace
metadata:
  name: flux-system
---
apiVersion: v1
kind: Secret
metadata:
  name: flux-system
  namespace: flux-system
stringData:
  identity: {key}
  known_hosts: host ssh-ed25519 AAAA
"""

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        },
    },
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def http_json(
    kube: FakeKube, method: str, path: str, body: Any = None, content_type: str = "application/json"
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(kube.url + path, data=data, method=method)
    req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# ---------------------------------------------------------------- real kubectl


def test_server_side_apply_creates_then_updates(kube: FakeKube, kubectl: Kubectl) -> None:
    args = ("apply", "--server-side", "--field-manager=gitopskit", "-f", "-")
    first = kubectl(*args, input=NS_AND_SECRET.format(key="one"))
    assert first.returncode == 0, first.stderr
    assert "secret/flux-system serverside-applied" in first.stdout
    secret = kube.get("Secret", "flux-system", "flux-system")
    assert secret is not None
    assert secret["data"]["identity"] == b64("one")
    assert secret["type"] == "Opaque"
    assert "stringData" not in secret
    assert kube.get("ns", "flux-system")["status"]["phase"] == "Active"  # type: ignore[index]

    second = kubectl(*args, input=NS_AND_SECRET.format(key="two"))
    assert second.returncode == 0, second.stderr
    secret2 = kube.get("Secret", "flux-system", "flux-system")
    assert secret2 is not None
    assert secret2["data"]["identity"] == b64("two")
    assert secret2["metadata"]["uid"] == secret["metadata"]["uid"]
    assert int(secret2["metadata"]["resourceVersion"]) > int(secret["metadata"]["resourceVersion"])
    assert "annotations" not in secret2["metadata"]  # no last-applied-configuration

    patches = [r for r in kube.writes() if r.path.endswith("/secrets/flux-system")]
    assert [r.status for r in patches] == [201, 200]
    assert all(r.method == "PATCH" for r in patches)
    assert all(r.content_type == "application/apply-patch+yaml" for r in patches)
    assert patches[0].query["fieldManager"] == "gitopskit"
    assert patches[0].query["force"] == "false"
    assert patches[1].json()["stringData"]["identity"] == "two"


def test_get_json_jsonpath_and_delete(kube: FakeKube, kubectl: Kubectl) -> None:
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "default"},
            "stringData": {"k": "v"},
        }
    )
    got = kubectl("get", "secret", "s", "-o", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["data"] == {"k": b64("v")}
    path = kubectl("get", "secret", "s", "-o", "jsonpath={.data.k}")
    assert path.stdout == b64("v")

    deleted = kubectl("delete", "secret", "s")
    assert deleted.returncode == 0, deleted.stderr
    assert 'secret "s" deleted' in deleted.stdout
    assert kube.get("Secret", "s") is None
    assert kube.writes()[-1].json() == {"propagationPolicy": "Background"}

    missing = kubectl("get", "secret", "s")
    assert missing.returncode == 1
    assert 'secrets "s" not found' in missing.stderr


def test_kubectl_create_sends_protobuf_the_fake_decodes(kube: FakeKube, kubectl: Kubectl) -> None:
    assert kubectl("create", "namespace", "team").returncode == 0
    res = kubectl(
        "create", "secret", "generic", "s", "-n", "team",
        "--from-literal=identity=key", "--from-literal=known_hosts=h",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert kube.writes()[-1].content_type == "application/vnd.kubernetes.protobuf"
    secret = kube.get("Secret", "s", "team")
    assert secret is not None
    assert secret["data"] == {"identity": b64("key"), "known_hosts": b64("h")}
    again = kubectl("create", "namespace", "team")
    assert again.returncode == 1
    assert "AlreadyExists" in again.stderr


def test_get_prints_table_columns(kube: FakeKube, kubectl: Kubectl) -> None:
    kube.put(DEPLOYMENT)
    res = kubectl("get", "deployments")
    assert res.returncode == 0, res.stderr
    header, row = res.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert row.split()[:4] == ["web", "2/2", "2", "2"]


def test_apply_into_missing_namespace_fails(kubectl: Kubectl) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: nope}\n"
    res = kubectl("apply", "--server-side", "-f", "-", input=doc)
    assert res.returncode == 1
    assert 'namespaces "nope" not found' in res.stderr


def test_rollout_status_ready_and_timeout(kube: FakeKube, kubectl: Kubectl) -> None:
    kube.put(DEPLOYMENT)
    ok = kubectl("rollout", "status", "deployment/web", "--timeout=5s")
    assert ok.returncode == 0, ok.stderr
    assert 'deployment "web" successfully rolled out' in ok.stdout
    assert any(r.query.get("watch") == "true" for r in kube.requests)

    kube.auto_ready = False
    kube.put({**DEPLOYMENT, "metadata": {"name": "slow", "namespace": "default"}})
    started = time.monotonic()
    late = kubectl("rollout", "status", "deployment/slow", "--timeout=2s")
    assert late.returncode == 1
    assert "timed out waiting for the condition" in late.stderr
    assert time.monotonic() - started < 10


def test_rollout_status_sees_mark_ready_through_watch(kube: FakeKube, kubectl: Kubectl) -> None:
    kube.auto_ready = False
    kube.put(DEPLOYMENT)
    timer = threading.Timer(1.0, kube.mark_ready, args=("web", "default"))
    timer.start()
    try:
        res = kubectl("rollout", "status", "deployment/web", "--timeout=10s")
    finally:
        timer.join()
    assert res.returncode == 0, res.stderr
    assert "successfully rolled out" in res.stdout


def test_rollout_restart_bumps_generation(kube: FakeKube, kubectl: Kubectl) -> None:
    kube.put({**DEPLOYMENT, "metadata": {"name": "web", "namespace": "apps"}})
    before = kube.get("deploy", "web", "apps")
    assert before is not None
    assert before["metadata"]["generation"] == 1
    res = kubectl("rollout", "restart", "deployment/web", "-n", "apps")
    assert res.returncode == 0, res.stderr
    after = kube.get("deploy", "web", "apps")
    assert after is not None
    assert after["metadata"]["generation"] == 2
    annotations = after["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    assert after["status"]["observedGeneration"] == 2  # auto_ready
    assert kube.writes()[-1].content_type == "application/strategic-merge-patch+json"


def test_fail_next_makes_kubectl_fail(kube: FakeKube, kubectl: Kubectl) -> None:
    kube.fail_next("PATCH", r"/secrets/", 500)
    doc = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n"
    res = kubectl("apply", "--server-side", "-f", "-", input=doc)
    assert res.returncode != 0
    assert "InternalError" in res.stderr
    assert kube.get("Secret", "s") is None
    again = kubectl("apply", "--server-side", "-f", "-", input=doc)  # only once
    assert again.returncode == 0, again.stderr
    assert kube.get("Secret", "s") is not None


# ---------------------------------------------------------------- plain HTTP


def test_create_conflict_and_missing_namespace(kube: FakeKube) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    code, obj = http_json(kube, "POST", "/api/v1/namespaces/default/configmaps", cm)
    assert code == 201
    assert obj["metadata"]["namespace"] == "default"
    assert obj["metadata"]["uid"]
    code, status = http_json(kube, "POST", "/api/v1/namespaces/default/configmaps", cm)
    assert (code, status["kind"], status["reason"]) == (409, "Status", "AlreadyExists")
    code, status = http_json(kube, "POST", "/api/v1/namespaces/nope/configmaps", cm)
    assert (code, status["reason"]) == (404, "NotFound")
    assert status["message"] == 'namespaces "nope" not found'


def test_list_with_selectors_and_fail_next_status(kube: FakeKube) -> None:
    for name, team in (("a", "x"), ("b", "y")):
        kube.put(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "default", "labels": {"team": team}},
            }
        )
    code, lst = http_json(
        kube, "GET", "/api/v1/namespaces/default/configmaps?labelSelector=team%3Dy"
    )
    assert [i["metadata"]["name"] for i in lst["items"]] == ["b"]
    code, lst = http_json(kube, "GET", "/api/v1/configmaps?fieldSelector=metadata.name%3Da")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a"]
    assert lst["kind"] == "ConfigMapList"

    kube.fail_next("GET", r"^/api/v1/configmaps$", 403, times=2)
    for _ in range(2):
        code, status = http_json(kube, "GET", "/api/v1/configmaps")
        assert (code, status["reason"]) == (403, "Forbidden")
    code, _ = http_json(kube, "GET", "/api/v1/configmaps")
    assert code == 200


def test_merge_patch_and_put(kube: FakeKube) -> None:
    kube.put(DEPLOYMENT)
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    code, obj = http_json(
        kube, "PATCH", path, {"metadata": {"labels": {"a": "b"}}}, "application/merge-patch+json"
    )
    assert code == 200
    assert obj["metadata"]["generation"] == 1  # metadata only
    obj["spec"]["replicas"] = 3
    code, obj = http_json(kube, "PUT", path, obj)
    assert code == 200
    assert obj["metadata"]["generation"] == 2
    assert obj["status"]["availableReplicas"] == 3
    obj["metadata"]["resourceVersion"] = "1"
    code, status = http_json(kube, "PUT", path, obj)
    assert (code, status["reason"]) == (409, "Conflict")


def test_watch_streams_chunked_events(kube: FakeKube) -> None:
    conn = http.client.HTTPConnection(kube.url.removeprefix("http://"), timeout=10)
    conn.request("GET", "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=5")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    kube.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}})
    kube.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}})
    kube.put(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}, "data": {"a": "1"}}
    )
    kube.delete("cm", "w")
    events = [json.loads(resp.readline()) for _ in range(3)]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]  # no-op put: no event
    assert events[1]["object"]["data"] == {"a": "1"}
    conn.close()


def test_stop_ends_watches_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    kube = FakeKube().start()
    conn = http.client.HTTPConnection(kube.url.removeprefix("http://"), timeout=10)
    conn.request("GET", "/api/v1/namespaces?watch=true")
    resp = conn.getresponse()
    assert json.loads(resp.readline())["type"] == "ADDED"
    idle = http.client.HTTPConnection(kube.url.removeprefix("http://"), timeout=10)
    idle.request("GET", "/version")
    assert json.loads(idle.getresponse().read())["minor"] == "32"  # kept alive, idle
    started = time.monotonic()
    kube.stop()
    assert time.monotonic() - started < 3
    assert set(threading.enumerate()) <= before
    conn.close()
    idle.close()


def test_keep_alive_serves_many_requests_on_one_connection(kube: FakeKube) -> None:
    conn = http.client.HTTPConnection(kube.url.removeprefix("http://"), timeout=10)
    for _ in range(3):
        conn.request("DELETE", "/api/v1/namespaces/default/secrets/x", body=b'{"a": 1}')
        resp = conn.getresponse()
        assert resp.status == 404
        resp.read()
    conn.request("GET", "/api/v1")
    names = [r["name"] for r in json.loads(conn.getresponse().read())["resources"]]
    assert {"namespaces", "secrets", "configmaps", "services", "serviceaccounts"} <= set(names)
    conn.close()


@pytest.mark.parametrize("kind", ["Deployment", "deploy", "deployments", "deployments.apps"])
def test_kind_aliases(kube: FakeKube, kind: str) -> None:
    kube.put(DEPLOYMENT)
    assert kube.get(kind, "web") is not None


# ---------------------------------------------------------------- CustomResourceDefinitions

GITREPO_CRD = yaml.safe_dump(
    crd_manifest("source.toolkit.fluxcd.io", "v1", "GitRepository", "gitrepositories",
                 short_names=("gitrepo",))
)  # fmt: skip
GITREPO = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: sync, namespace: default}
spec: {url: "ssh://git@host/x/y.git", interval: 1m}
"""


def test_a_crd_serves_its_kind_once_established(kube: FakeKube, kubectl: Kubectl) -> None:
    kube.crd_establish_delay = 1.0
    unknown = kubectl("get", "gitrepositories", "-A")
    assert unknown.returncode == 1
    assert 'the server doesn\'t have a resource type "gitrepositories"' in unknown.stderr
    created = kubectl("apply", "--server-side", "-f", "-", input=GITREPO_CRD)
    assert created.returncode == 0, created.stderr
    early = kubectl("apply", "--server-side", "-f", "-", input=GITREPO)
    assert early.returncode == 1, "not served before it is established"
    started = time.monotonic()
    waited = kubectl("wait", "--for", "condition=established", "--timeout=10s",
                     "crd/gitrepositories.source.toolkit.fluxcd.io")  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    assert "condition met" in waited.stdout
    assert 0.3 < time.monotonic() - started < 8
    applied = kubectl("apply", "--server-side", "-f", "-", input=GITREPO)
    assert applied.returncode == 0, applied.stderr
    listed = kubectl("get", "gitrepo", "-A", "-o", "name")
    assert listed.stdout.strip() == "gitrepository.source.toolkit.fluxcd.io/sync"
    assert kube.get("GitRepository", "sync", "default") is not None
    deleted = kubectl("delete", "crd", "gitrepositories.source.toolkit.fluxcd.io")
    assert deleted.returncode == 0, deleted.stderr
    with pytest.raises(KeyError):
        kube.get("GitRepository", "sync", "default")  # the kind is gone with its CRD
    assert not [key for key in kube.objects if key[1] == "gitrepositories"], "and its objects"


def test_wait_for_a_missing_or_slow_crd_fails(kube: FakeKube, kubectl: Kubectl) -> None:
    missing = kubectl("wait", "--for", "condition=established", "--timeout=2s",
                      "crd/kustomizations.kustomize.toolkit.fluxcd.io")  # fmt: skip
    assert missing.returncode == 1
    assert "NotFound" in missing.stderr or "not found" in missing.stderr
    kube.crd_establish_delay = 30
    kube.put(crd_manifest("kustomize.toolkit.fluxcd.io", "v1", "Kustomization", "kustomizations"))
    late = kubectl("wait", "--for", "condition=established", "--timeout=1s",
                   "crd/kustomizations.kustomize.toolkit.fluxcd.io")  # fmt: skip
    assert late.returncode == 1
    assert "timed out" in late.stderr


# ---------------------------------------------------------------- schemas, status, controllers

FLUXINSTANCE_SCHEMA = yaml.safe_load(
    (Path(__file__).parent / "fluxinstance_v1_schema.yaml").read_text()
)


def fluxinstance(**spec: Any) -> str:
    body = {
        "distribution": {"version": "2.9.x", "registry": "ghcr.io/fluxcd"},
        "sync": {"kind": "GitRepository", "url": "ssh://git@h/x.git", "ref": "refs/heads/main",
                 "path": "./"},
        **spec,
    }  # fmt: skip
    meta = {"name": "flux", "namespace": "default"}
    return json.dumps(
        {"apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxInstance", "metadata": meta,
         "spec": body}
    )  # fmt: skip


def test_a_structural_schema_is_enforced_and_defaulted(kube: FakeKube, kubectl: Kubectl) -> None:
    kube.put(crd_manifest("fluxcd.controlplane.io", "v1", "FluxInstance", "fluxinstances",
                          schema=FLUXINSTANCE_SCHEMA))  # fmt: skip
    bad = kubectl("apply", "--server-side", "-f", "-", input=fluxinstance(
        distribution={"version": "2.9.x"},
        cluster={"type": "k8s"},
        sync={"kind": "GitRepository", "url": "ssh://git@h/x.git", "ref": "refs/heads/main",
              "path": "./", "interval": "1 minute"},
    ))  # fmt: skip
    assert bad.returncode == 1
    assert 'The FluxInstance "flux" is invalid' in bad.stderr
    assert "spec.distribution.registry: Required value" in bad.stderr
    assert 'spec.cluster.type: Unsupported value: "k8s": supported values: "kubernetes"' in (
        bad.stderr
    )
    assert "spec.sync.interval in body should match" in bad.stderr
    unknown = kubectl("apply", "--server-side", "-f", "-", input=fluxinstance(replicas=2))
    assert unknown.returncode == 1
    assert ".spec.replicas: field not declared in schema" in unknown.stderr
    assert kube.get("FluxInstance", "flux", "default") is None

    good = kubectl("apply", "--server-side", "-f", "-", input=fluxinstance())
    assert good.returncode == 0, good.stderr
    spec = (kube.get("FluxInstance", "flux", "default") or {})["spec"]
    assert spec["wait"] is True and spec["sync"]["interval"] == "1m", "defaults filled in"
    assert "cluster" not in spec, "an absent object gets no defaults"


def test_status_is_a_subresource_a_test_can_set(kube: FakeKube, kubectl: Kubectl) -> None:
    kube.put(yaml.safe_load(GITREPO_CRD))
    applied = kubectl("apply", "--server-side", "-f", "-", input=GITREPO)
    assert applied.returncode == 0, applied.stderr
    before = kube.get("GitRepository", "sync", "default") or {}
    failing = kube.set_condition(
        "GitRepository", "sync", "default", status="False", reason="GitOperationFailed",
        message="ssh: handshake failed: knownhosts: key mismatch",
    )  # fmt: skip
    assert int(failing["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert failing["metadata"]["generation"] == before["metadata"]["generation"]
    [ready] = failing["status"]["conditions"]
    assert (ready["type"], ready["status"], ready["observedGeneration"]) == ("Ready", "False", 1)

    # A spec write cannot change the status; it moves the generation on.
    with_status = yaml.safe_load(GITREPO)
    with_status["spec"]["interval"] = "5m"
    with_status["status"] = {"conditions": []}
    again = kubectl("apply", "--server-side", "-f", "-", input=json.dumps(with_status))
    assert again.returncode == 0, again.stderr
    stored = kube.get("GitRepository", "sync", "default") or {}
    assert stored["metadata"]["generation"] == 2
    assert stored["status"]["conditions"][0]["message"].endswith("key mismatch")

    # kubectl wait watches until the condition holds at the current generation.
    waited: list[subprocess.CompletedProcess[str]] = []
    waiter = threading.Thread(
        target=lambda: waited.append(
            kubectl(
                "wait",
                "--for=condition=Ready",
                "--timeout=20s",
                "gitrepository/sync",
                "-n",
                "default",
            )
        )
    )
    waiter.start()  # fmt: skip
    time.sleep(0.5)
    kube.set_condition("GitRepository", "sync", "default", message="stored artifact")
    waiter.join()
    assert waited[0].returncode == 0, waited[0].stderr
    assert "condition met" in waited[0].stdout


def test_controllers_see_changes_after_the_write(kube: FakeKube, kubectl: Kubectl) -> None:
    seen: list[tuple[str, str]] = []

    def controller(event: str, obj: dict[str, Any]) -> None:
        seen.append((event, obj["metadata"]["name"]))
        if event == "ADDED" and obj["metadata"]["name"] == "ping":
            kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "pong", "namespace": "default"},
                        "data": {"from": "controller"}}, manager="pinger")  # fmt: skip
        if obj["metadata"]["name"] == "boom":
            raise RuntimeError("controller bug")

    kube.add_controller(controller)
    made = kubectl("create", "configmap", "ping", "-n", "default")
    assert made.returncode == 0, made.stderr
    kube.settle()
    pong = kube.get("ConfigMap", "pong", "default")
    assert pong is not None and pong["data"] == {"from": "controller"}
    assert [f["manager"] for f in pong["metadata"]["managedFields"]] == ["pinger"]
    assert ("ADDED", "ping") in seen and ("ADDED", "pong") in seen
    assert not [r for r in kube.requests if "pong" in r.path], "controllers write in-process"
    kube.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "boom"}})
    kube.settle()
    assert "controller bug" in kube.controller_errors[-1]
