"""A recording fake ``helm`` (3.16) executable for tests.

``install_fake_helm(bin_dir, log_path, *, kube_url=None) -> Path`` writes an executable
``bin_dir/helm`` (a Python script run by the current interpreter) and returns its path. Put
``bin_dir`` first on ``PATH``. Every invocation appends one JSON line to ``log_path``::

    {"argv": [...], "values": {"<path given to -f/--values>": "<content at call time>"},
     "modes": {"<path>": [<file mode>, <its directory's mode>]},
     "env": {"KUBECONFIG": ..., "HELM_...": ...}}

``read_helm_log(log_path) -> list[HelmCall]`` parses that log. State (repositories and releases)
lives in ``state_path(log_path)`` (``<log>.state.json`` beside the log);
``read_helm_state(log_path) -> dict`` returns ``{"repos": {name: url}, "releases":
{"ns/name": release}}``.

Subcommands, answered like helm 3: ``version [--short]``, ``repo add [--force-update] NAME
URL``, ``repo update [NAME...]``, ``repo list``, ``upgrade [--install] RELEASE CHART`` and
``install RELEASE CHART`` (``-n/--namespace``, ``--version``, ``--repo URL``, ``-f/--values``
repeated, ``--set*``, ``--create-namespace``, ``--wait``, ``--timeout``, ``--kube-context``,
...), ``status RELEASE [-o json]``, ``list [-A] [--all] [--filter REGEX] [-o json]`` (without
``--all`` only deployed and failed releases, as helm), ``get values RELEASE``, ``uninstall
RELEASE``. Charts: ``REPO/NAME`` needs ``repo add`` first (``Error: repo REPO not found``);
``NAME --repo URL`` never touches the repositories (a ``REPO/NAME`` with ``--repo`` is not found);
``oci://HOST/PATH/NAME`` references (anything shorter is an invalid reference) and local paths
are accepted; the chart's name is the reference's last segment. Each release records ``chart``
(``name-version``), ``chart_ref``, ``repo``, ``status``, the user-supplied ``values`` and the
objects it made.

Releases are stored as helm's default driver stores them when ``kube_url`` is given: one Secret
per revision in the release's namespace, ``sh.helm.release.v1.<name>.v<revision>``, type
``helm.sh/release.v1``, labels ``owner=helm``, ``name``, ``status`` (an upgrade marks the
previous revision ``superseded``) and ``version``, ``data.release`` the release as
base64(gzip(JSON)); ``list``, ``status``, ``get values`` and ``uninstall`` read them there, so
deleting them makes helm forget a release and leaves its objects alone. Without ``kube_url``
releases live in the state file.

With ``kube_url`` (a ``FakeKube.url``), installs talk to the fake API server by server-side
apply (field manager ``helm``): the namespace must exist unless ``--create-namespace``; like helm,
every object's kind must be served (discovery) before anything is created, else ``resource
mapping not found ... ensure CRDs are installed first`` and no release is recorded; an object
the API server refuses stops the install with ``INSTALLATION FAILED: failed to create
resource``, leaving the objects created so far and the release with status ``failed``. Charts:
``*/flux2`` creates the CustomResourceDefinitions GitRepository, HelmRepository, Kustomization
and HelmRelease, then Deployments ``source-controller``, ``kustomize-controller``,
``helm-controller`` and ``notification-controller``; ``*/flux`` (Flux v1) creates Deployment
``<release>``; ``*/flux2-sync`` creates a GitRepository and a Kustomization named after the
release from the merged values (``gitRepository.spec``, ``kustomization.spec``), plus a Secret
when ``secret.create`` is true; the ``flux2`` chart's CRDs carry ``crds.annotations``, as
the community chart's do. ``*/flux-operator`` (``oci://ghcr.io/controlplaneio-fluxcd/charts/
flux-operator``) creates the FluxInstance CRD (annotated ``helm.sh/resource-policy: keep``, with
the schema of ``fluxinstance_v1_schema.yaml``, enforced by FakeKube; left out with
``installCRDs: false``), a ServiceAccount and a Deployment named after the release.
``uninstall`` deletes what the install created (a CRD's objects go with it) except the objects
annotated ``helm.sh/resource-policy: keep``, which it lists as kept, as helm does.

Fault injection: environment ``FAKE_HELM_FAIL`` is a comma-separated list of subcommands
(``upgrade``, ``install``, ``repo``, ``uninstall``, ...) that exit 1 with an ``Error:`` line;
``FAKE_HELM_STALL`` lists subcommands that hang (after being logged) until killed.
"""

from __future__ import annotations

import base64
import gzip
import json
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TypedDict

__all__ = ["HelmCall", "install_fake_helm", "read_helm_log", "read_helm_state", "state_path"]

#: The FluxInstance schema the fake flux-operator chart's CRD carries (ours, not the operator's).
FLUXINSTANCE_SCHEMA = Path(__file__).with_name("fluxinstance_v1_schema.yaml")


def state_path(log_path: Path) -> Path:
    log_path = Path(log_path)
    return log_path.with_name(log_path.name + ".state.json")


class HelmCall(TypedDict):
    """One line of the log: one invocation of the fake helm (written by ``record``)."""

    argv: list[str]
    #: The content of each ``-f``/``--values`` file at call time; None when it was unreadable.
    values: dict[str, str | None]
    #: Each values file's mode and its directory's.
    modes: dict[str, list[int]]
    env: dict[str, str]


def read_helm_log(log_path: Path) -> list[HelmCall]:
    path = Path(log_path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_helm_state(log_path: Path) -> dict[str, Any]:
    """``{"repos": {name: url}, "releases": {"ns/name": release}}``: with a cluster, the
    releases are read from helm's release Secrets in it (the latest revision of each)."""
    path = state_path(log_path)
    if not path.exists():
        return {"repos": {}, "releases": {}}
    data: dict[str, Any] = json.loads(path.read_text())
    kube_url = data.pop("kube_url", None)
    if kube_url:
        data["releases"] = _cluster_releases(kube_url)
    return data


def _cluster_releases(kube_url: str) -> dict[str, Any]:
    query = urllib.parse.urlencode({"labelSelector": "owner=helm"})
    with urllib.request.urlopen(f"{kube_url}/api/v1/secrets?{query}", timeout=10) as response:
        items = json.loads(response.read())["items"]
    latest: dict[str, Any] = {}
    for item in items:
        if item.get("type") != "helm.sh/release.v1":
            continue
        packed = base64.b64decode(base64.b64decode(item["data"]["release"]))
        release = json.loads(gzip.decompress(packed))
        key = f"{release['namespace']}/{release['name']}"
        if key not in latest or release["revision"] > latest[key]["revision"]:
            latest[key] = release
    return latest


def install_fake_helm(bin_dir: Path, log_path: Path, *, kube_url: str | None = None) -> Path:
    bin_dir = Path(bin_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path).resolve()
    config = {
        "log": str(log_path),
        "state": str(state_path(log_path)),
        "kube_url": kube_url,
        "fluxinstance_schema": str(FLUXINSTANCE_SCHEMA),
    }
    state = state_path(log_path)
    if not state.exists():
        state.write_text(json.dumps({"repos": {}, "releases": {}, "kube_url": kube_url}))
    script = bin_dir / "helm"
    script.write_text(f"#!{sys.executable}\nCONFIG = {json.dumps(config)!r}\n" + _SCRIPT)
    script.chmod(0o755)
    return script


_SCRIPT = r"""
import base64
import contextlib
import datetime
import fcntl
import gzip
import json
import os
import re
import stat
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

CONFIG = json.loads(CONFIG)
VALUE_FLAGS = {
    "-n", "--namespace", "--kube-context", "--kubeconfig", "--version", "-f", "--values",
    "--set", "--set-string", "--set-file", "--set-json", "--timeout", "-o", "--output",
    "--repo", "--username", "--password", "--description", "--post-renderer",
    "--registry-config", "--repository-config", "--repository-cache", "--kube-apiserver",
    "--kube-token", "--max", "--revision", "--ca-file", "--cert-file", "--key-file",
    "--filter", "--cascade",
}
SHORT_VERSION = "v3.16.2+g13654a5"


class HelmError(Exception):
    pass


def parse(argv):
    pos, flags = [], {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            pos.extend(argv[i + 1:])
            break
        if a.startswith("-") and a != "-":
            name, eq, value = a.partition("=")
            if name in VALUE_FLAGS:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise HelmError(f'flag needs an argument: {name}')
                    value = argv[i]
                flags.setdefault(name, []).append(value)
            else:
                flags.setdefault(name, []).append(value if eq else "true")
        else:
            pos.append(a)
        i += 1
    return pos, flags


def flag(flags, *names, default=None):
    for n in names:
        if n in flags:
            return flags[n][-1]
    return default


def values_files(flags):
    return [v for n in ("-f", "--values") for v in flags.get(n, [])]


@contextlib.contextmanager
def state():
    path = CONFIG["state"]
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path) as fh:
                data = json.load(fh)
        except FileNotFoundError:
            data = {"repos": {}, "releases": {}}
        yield data
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(tmp, path)


def kube(method, path, body=None, content_type="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(CONFIG["kube_url"] + path, data=data, method=method)
    req.add_header("Content-Type", content_type)
    req.add_header("Accept", "application/json")
    req.add_header("User-Agent", "Helm/3.16.2")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


PLURALS = {"Namespace": "namespaces", "Secret": "secrets", "Deployment": "deployments",
           "ServiceAccount": "serviceaccounts",
           "CustomResourceDefinition": "customresourcedefinitions"}
KEEP = "helm.sh/resource-policy"
# The CRDs the flux2 chart templates (a subset): group, kind, plural, short name.
FLUX_CRDS = (
    ("source.toolkit.fluxcd.io", "GitRepository", "gitrepositories", "gitrepo"),
    ("source.toolkit.fluxcd.io", "HelmRepository", "helmrepositories", "helmrepo"),
    ("kustomize.toolkit.fluxcd.io", "Kustomization", "kustomizations", "ks"),
    ("helm.toolkit.fluxcd.io", "HelmRelease", "helmreleases", "hr"),
)
PLURALS.update({kind: plural for _, kind, plural, _ in FLUX_CRDS})


def api_path(obj):
    gv, kind = obj["apiVersion"], obj["kind"]
    base = f"/apis/{gv}" if "/" in gv else f"/api/{gv}"
    ns = obj["metadata"].get("namespace")
    prefix = f"{base}/namespaces/{ns}" if ns else base
    return f"{prefix}/{PLURALS[kind]}/{obj['metadata']['name']}"


class CreateError(HelmError):
    pass


def apply(obj):
    code, out = kube("PATCH", api_path(obj) + "?fieldManager=helm&force=true", obj,
                     "application/apply-patch+yaml")
    if code >= 300:
        raise CreateError(f"failed to create resource: {(out or {}).get('message', code)}")


def check_mappings(objs, word, release_word):
    # helm builds every object of the manifest before creating any: a kind the API server does
    # not serve (a CRD not installed or not established yet) fails the whole release.
    served = {}
    for obj in objs:
        gv, kind = obj["apiVersion"], obj["kind"]
        if gv not in served:
            code, out = kube("GET", f"/apis/{gv}" if "/" in gv else f"/api/{gv}")
            listed = (out or {}).get("resources", []) if code == 200 else []
            served[gv] = {r.get("kind") for r in listed}
        if kind not in served[gv]:
            meta = obj["metadata"]
            raise HelmError(
                f"{word} FAILED: unable to build kubernetes objects from {release_word} manifest: "
                f'resource mapping not found for name: "{meta["name"]}" namespace: '
                f'"{meta.get("namespace", "")}" from "": no matches for kind "{kind}" in '
                f'version "{gv}"\nensure CRDs are installed first')


def crd(group, kind, plural, short, release, chart, annotations=None, schema=None):
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "annotations": dict(annotations or {}),
                     "labels": {
            "app.kubernetes.io/instance": release, "app.kubernetes.io/managed-by": "Helm",
            "helm.sh/chart": chart}},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                           "singular": kind.lower(), "shortNames": [short]},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": schema or {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}},
                               "additionalPrinterColumns": [
                                   {"name": "Ready", "type": "string", "jsonPath":
                                    '.status.conditions[?(@.type=="Ready")].status'},
                                   {"name": "Status", "type": "string", "jsonPath":
                                    '.status.conditions[?(@.type=="Ready")].message'}]}]},
    }


def merge(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(a.get(k), v)
        return out
    return b


def deployment(name, ns, release, chart):
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": release}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {
            **labels, "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": chart},
            "annotations": {"meta.helm.sh/release-name": release,
                            "meta.helm.sh/release-namespace": ns}},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "manager", "image": f"fake.local/{name}:latest"}]}}},
    }


def manifests(release, ns, chart_name, chart_label, values):
    if chart_name == "flux-operator":
        # The chart annotates its CRDs with the keep policy; installCRDs: false leaves them out.
        schema = yaml.safe_load(open(CONFIG["fluxinstance_schema"]).read())
        objs = []
        if values.get("installCRDs", True):
            objs.append(crd("fluxcd.controlplane.io", "FluxInstance", "fluxinstances", "fi",
                            release, chart_label, {KEEP: "keep"}, schema))
        meta = {"name": release, "namespace": ns}
        return objs + [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
                       deployment(release, ns, release, chart_label)]
    if chart_name == "flux2":
        annotations = (values.get("crds") or {}).get("annotations") or {}
        crds = [crd(*spec, release, chart_label, annotations) for spec in FLUX_CRDS]
        return crds + [deployment(n, ns, release, chart_label) for n in (
            "source-controller", "kustomize-controller", "helm-controller",
            "notification-controller")]
    if chart_name == "flux":
        return [deployment(release, ns, release, chart_label)]
    if chart_name == "flux2-sync":
        meta = {"name": release, "namespace": ns}
        git_spec = merge({"interval": "5m", "ref": {"branch": "master"}},
                         (values.get("gitRepository") or {}).get("spec") or {})
        ks_spec = merge({"interval": "5m", "prune": True,
                         "sourceRef": {"kind": "GitRepository", "name": release}},
                        (values.get("kustomization") or {}).get("spec") or {})
        objs = [
            {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
             "metadata": dict(meta), "spec": git_spec},
            {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
             "metadata": dict(meta), "spec": ks_spec},
        ]
        secret = values.get("secret") or {}
        if secret.get("create"):
            data = {k: base64.b64encode(str(v).encode()).decode()
                    for k, v in (secret.get("data") or {}).items()}
            objs.insert(0, {"apiVersion": "v1", "kind": "Secret", "metadata": dict(meta),
                            "type": "Opaque", "data": data})
        return objs
    return []


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def release_text(rel):
    when = datetime.datetime.fromisoformat(rel["updated"]).strftime("%a %b %e %H:%M:%S %Y")
    return (f"NAME: {rel['name']}\nLAST DEPLOYED: {when}\nNAMESPACE: {rel['namespace']}\n"
            f"STATUS: {rel['status']}\nREVISION: {rel['revision']}\nTEST SUITE: None\n")


def check_fail(cmd):
    wanted = {w.strip() for w in os.environ.get("FAKE_HELM_FAIL", "").split(",") if w.strip()}
    return cmd in wanted


def chart_source(chart, flags, repos):
    # The repository a chart comes from: --repo URL, oci://, a local path or an added repo.
    repo_url = flag(flags, "--repo")
    if repo_url is not None:
        if "/" in chart:
            raise HelmError(f'chart "{chart}" not found in {repo_url} repository')
        return repo_url
    if chart.startswith("oci://"):
        if not re.match(r"^oci://[^/]+/[^/].*[^/]$", chart):
            raise HelmError(f"invalid OCI reference: {chart}")
        return chart
    if chart.startswith(("/", "./", "../")) or os.path.exists(chart):
        return chart
    if "/" in chart:
        repo = chart.split("/", 1)[0]
        if repo not in repos:
            raise HelmError(f"repo {repo} not found")
        return repos[repo]
    raise HelmError(f"non-absolute URLs should be in form of repo_name/path_to_chart, got: {chart}")


def merged_values(flags):
    values = {}
    for path in values_files(flags):
        values = merge(values, yaml.safe_load(open(path).read()) or {})
    for s in flags.get("--set", []) + flags.get("--set-string", []):
        for item in s.split(","):
            k, _, v = item.partition("=")
            cur = values
            parts = k.split(".")
            for p in parts[:-1]:
                cur = cur.setdefault(p, {})
            cur[parts[-1]] = v
    return values


def create_all(ns, flags, objs):
    # Create the objects in order; returns (paths created, the error that stopped it).
    created = []
    code, _ = kube("GET", f"/api/v1/namespaces/{ns}")
    if code == 404:
        if flag(flags, "--create-namespace") != "true":
            raise HelmError(f'create: failed to create: namespaces "{ns}" not found')
        apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for obj in objs:
        try:
            apply(obj)
        except CreateError as error:
            return created, error
        created.append(api_path(obj))
    return created, None


class FileReleases:
    # Releases in the state file (helm's memory driver, for tests without a cluster).

    def __init__(self, st):
        self.st = st

    def get(self, ns, name):
        return self.st["releases"].get(f"{ns}/{name}")

    def put(self, rel, previous):
        self.st["releases"][f"{rel['namespace']}/{rel['name']}"] = rel

    def delete(self, ns, name):
        return self.st["releases"].pop(f"{ns}/{name}", None)

    def all(self, ns=None):
        return [r for r in self.st["releases"].values() if ns is None or r["namespace"] == ns]


class ClusterReleases:
    # Releases as helm's default (secret) driver keeps them: one Secret per revision,
    # sh.helm.release.v1.<name>.v<revision>, type helm.sh/release.v1, labelled owner=helm,
    # name, status and version; data.release is base64(gzip(json)).

    @staticmethod
    def _secret(rel):
        packed = base64.b64encode(gzip.compress(json.dumps(rel).encode())).decode()
        return {
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.{rel['name']}.v{rel['revision']}",
                         "namespace": rel["namespace"],
                         "labels": {"name": rel["name"], "owner": "helm",
                                    "status": rel["status"], "version": str(rel["revision"])}},
            "data": {"release": base64.b64encode(packed.encode()).decode()},
        }

    def _list(self, ns, name=None):
        selector = "owner=helm" + (f",name={name}" if name else "")
        where = f"/api/v1/namespaces/{ns}/secrets" if ns else "/api/v1/secrets"
        code, out = kube("GET", f"{where}?" + urllib.parse.urlencode({"labelSelector": selector}))
        if code != 200:
            raise HelmError(f"list: failed to list release secrets: {(out or {}).get('message')}")
        found = []
        for item in out.get("items") or []:
            if item.get("type") != "helm.sh/release.v1":
                continue
            packed = base64.b64decode(base64.b64decode(item["data"]["release"]))
            found.append((item["metadata"]["name"], json.loads(gzip.decompress(packed))))
        return found

    def _latest(self, found):
        latest = {}
        for _, rel in found:
            key = (rel["namespace"], rel["name"])
            if key not in latest or rel["revision"] > latest[key]["revision"]:
                latest[key] = rel
        return latest

    def get(self, ns, name):
        return self._latest(self._list(ns, name)).get((ns, name))

    def put(self, rel, previous):
        apply(self._secret(rel))
        if previous is not None and previous.get("status") == "deployed":
            apply(self._secret({**previous, "status": "superseded"}))

    def delete(self, ns, name):
        found = self._list(ns, name)
        for secret, _ in found:
            kube("DELETE", f"/api/v1/namespaces/{ns}/secrets/{secret}",
                 {"propagationPolicy": "Background"})
        return self._latest(found).get((ns, name))

    def all(self, ns=None):
        return list(self._latest(self._list(ns)).values())


def releases_of(st):
    return ClusterReleases() if CONFIG["kube_url"] else FileReleases(st)


def kept(obj):
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(KEEP) == "keep"


def cmd_upgrade(pos, flags, install_only=False):
    if len(pos) != 2:
        raise HelmError(f'"helm {"install" if install_only else "upgrade"}" requires 2 '
                        "arguments")
    release, chart = pos
    ns = flag(flags, "-n", "--namespace", default=os.environ.get("HELM_NAMESPACE") or "default")
    install = install_only or flag(flags, "--install", "-i") == "true"
    failure = None
    with state() as st:
        source = chart_source(chart, flags, st["repos"])
        store = releases_of(st)
        existing = store.get(ns, release)
        if install_only and existing:
            raise HelmError("INSTALLATION FAILED: cannot re-use a name that is still in use")
        if existing is None and not install:
            raise HelmError(f'UPGRADE FAILED: "{release}" has no deployed releases')
        op = "upgrade" if existing else "install"
        word = "UPGRADE" if op == "upgrade" else "INSTALLATION"
        if check_fail("upgrade" if not install_only else "install") or (
                op == "install" and check_fail("install")):
            raise HelmError(f"{word} FAILED: fake failure injected by FAKE_HELM_FAIL")
        values = merged_values(flags)
        chart_name = chart.rstrip("/").rsplit("/", 1)[-1]
        version = flag(flags, "--version", default="0.1.0")
        chart_label = f"{chart_name}-{version}"
        created, keep = [], []
        if CONFIG["kube_url"]:
            objs = manifests(release, ns, chart_name, chart_label, values)
            check_mappings(objs, word, "new release" if existing else "release")
            created, failure = create_all(ns, flags, objs)
            keep = [api_path(o) for o in objs if kept(o)]
        rel = {
            "name": release, "namespace": ns, "revision": (existing or {}).get("revision", 0) + 1,
            "status": "failed" if failure else "deployed", "chart": chart_label,
            "chart_ref": chart, "repo": source, "app_version": version,
            "updated": now().isoformat(), "values": values,
            "objects": sorted(set(created) | set((existing or {}).get("objects", []))),
            "kept": keep,
        }
        store.put(rel, existing)
    if failure is not None:
        raise HelmError(f"{word} FAILED: {failure}")
    if op == "install" and not install_only:
        print(f'Release "{release}" does not exist. Installing it now.')
    elif op == "upgrade":
        print(f'Release "{release}" has been upgraded. Happy Helming!')
    sys.stdout.write(release_text(rel))


def main(argv):
    pos, flags = parse(argv)
    if flag(flags, "-h", "--help") == "true":
        print("The Kubernetes package manager (fake)")
        return 0
    if not pos:
        raise HelmError('unknown command "" for "helm"')
    cmd, args = pos[0], pos[1:]
    for path in values_files(flags):
        if not os.path.exists(path):
            raise HelmError(f"open {path}: no such file or directory")
    if cmd != "version" and check_fail(cmd) and cmd not in ("upgrade", "install"):
        raise HelmError(f"{cmd}: fake failure injected by FAKE_HELM_FAIL")
    ns = flag(flags, "-n", "--namespace", default=os.environ.get("HELM_NAMESPACE") or "default")
    output = flag(flags, "-o", "--output", default="table")
    if cmd == "version":
        if flag(flags, "--short") == "true":
            print(SHORT_VERSION)
        else:
            print('version.BuildInfo{Version:"v3.16.2", '
                  'GitCommit:"13654a52f7c70a143b1dd51416d633e1071faffb", '
                  'GitTreeState:"clean", GoVersion:"go1.22.7"}')
        return 0
    if cmd == "repo":
        sub = args[0] if args else ""
        with state() as st:
            repos = st["repos"]
            if sub == "add":
                if len(args) != 3:
                    raise HelmError('"helm repo add" requires 2 arguments')
                name, url = args[1], args[2]
                if name in repos and repos[name] == url:
                    print(f'"{name}" already exists with the same configuration, skipping')
                    return 0
                if name in repos and flag(flags, "--force-update") != "true":
                    raise HelmError(f"repository name ({name}) already exists, please specify "
                                    "a different name")
                repos[name] = url
                print(f'"{name}" has been added to your repositories')
                return 0
            if sub in ("update", "up"):
                names = args[1:] or list(repos)
                if not repos:
                    raise HelmError("no repositories found. You must add one before updating")
                missing = [n for n in names if n not in repos]
                if missing:
                    raise HelmError("no repositories found matching the provided name. "
                                    "Verify if the repo exists")
                print("Hang tight while we grab the latest from your chart repositories...")
                for n in names:
                    print(f'...Successfully got an update from the "{n}" chart repository')
                print("Update Complete. \u2388Happy Helming!\u2388")
                return 0
            if sub in ("list", "ls"):
                if not repos:
                    raise HelmError("no repositories to show")
                if output == "json":
                    print(json.dumps([{"name": n, "url": u} for n, u in repos.items()]))
                else:
                    print("NAME\tURL")
                    for n, u in repos.items():
                        print(f"{n}\t{u}")
                return 0
            if sub in ("remove", "rm"):
                for n in args[1:]:
                    if repos.pop(n, None) is None:
                        raise HelmError(f'no repo named "{n}" found')
                    print(f'"{n}" has been removed from your repositories')
                return 0
        raise HelmError(f'unknown command "{sub}" for "helm repo"')
    if cmd in ("upgrade", "install"):
        cmd_upgrade(args, flags, install_only=cmd == "install")
        return 0
    if cmd == "status":
        with state() as st:
            rel = releases_of(st).get(ns, args[0]) if args else None
        if rel is None:
            raise HelmError("release: not found")
        if output == "json":
            print(json.dumps({"name": rel["name"], "namespace": rel["namespace"],
                              "version": rel["revision"],
                              "info": {"status": rel["status"], "last_deployed": rel["updated"]},
                              "config": rel["values"]}))
        else:
            sys.stdout.write(release_text(rel))
        return 0
    if cmd in ("list", "ls"):
        pattern = re.compile(flag(flags, "--filter", default="") or "")
        shown = None if flag(flags, "--all", "-a") == "true" else ("deployed", "failed")
        everywhere = flag(flags, "-A", "--all-namespaces") == "true"
        with state() as st:
            rels = [r for r in releases_of(st).all(None if everywhere else ns)
                    if pattern.search(r["name"]) and (shown is None or r["status"] in shown)]
        rows = [{"name": r["name"], "namespace": r["namespace"], "revision": str(r["revision"]),
                 "updated": r["updated"], "status": r["status"], "chart": r["chart"],
                 "app_version": r["app_version"]} for r in sorted(rels, key=lambda r: r["name"])]
        if output == "json":
            print(json.dumps(rows))
        elif output == "yaml":
            sys.stdout.write(yaml.safe_dump(rows))
        else:
            print("NAME\tNAMESPACE\tREVISION\tUPDATED\tSTATUS\tCHART\tAPP VERSION")
            for r in rows:
                print("\t".join(r.values()))
        return 0
    if cmd == "get" and args[:1] == ["values"] and len(args) == 2:
        with state() as st:
            rel = releases_of(st).get(ns, args[1])
        if rel is None:
            raise HelmError("release: not found")
        if output == "json":
            print(json.dumps(rel["values"]))
        else:
            sys.stdout.write("USER-SUPPLIED VALUES:\n" + yaml.safe_dump(rel["values"] or None))
        return 0
    if cmd in ("uninstall", "delete", "del", "un"):
        with state() as st:
            store = releases_of(st)
            for name in args:
                rel = store.get(ns, name)
                if rel is None:
                    raise HelmError(f"uninstall: Release not loaded: {name}: release: not found")
                # Like helm: what the release's manifest marks helm.sh/resource-policy: keep
                # stays; everything else it made is deleted, a CRD with all its objects.
                kept_paths = [p for p in rel.get("objects", []) if p in rel.get("kept", [])]
                if CONFIG["kube_url"]:
                    for path in rel.get("objects", []):
                        if path not in kept_paths:
                            kube("DELETE", path, {"propagationPolicy": "Background"})
                store.delete(ns, name)
                if kept_paths:
                    print("These resources were kept due to the resource policy:")
                    for path in kept_paths:
                        kind = next(k for k, v in PLURALS.items() if v == path.split("/")[-2])
                        print(f"[{kind}] {path.rsplit('/', 1)[-1]}")
                    print()
                print(f'release "{name}" uninstalled')
        return 0
    raise HelmError(f'unknown command "{cmd}" for "helm"')


def record(argv):
    values, modes = {}, {}
    for i, a in enumerate(argv):
        path = None
        if a in ("-f", "--values") and i + 1 < len(argv):
            path = argv[i + 1]
        elif a.startswith(("--values=", "-f=")):
            path = a.split("=", 1)[1]
        if path is not None:
            try:
                with open(path) as fh:
                    values[path] = fh.read()
                modes[path] = [stat.S_IMODE(os.stat(p).st_mode)
                               for p in (path, os.path.dirname(os.path.abspath(path)))]
            except OSError:
                values[path] = None
    env = {k: v for k, v in os.environ.items()
           if k == "KUBECONFIG" or k.startswith("HELM_") or k == "FAKE_HELM_FAIL"}
    line = json.dumps({"argv": argv, "values": values, "modes": modes, "env": env})
    with open(CONFIG["log"], "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line + "\n")


if __name__ == "__main__":
    argv = sys.argv[1:]
    record(argv)
    stalled = {w.strip() for w in os.environ.get("FAKE_HELM_STALL", "").split(",")}
    if argv and argv[0] in stalled:
        time.sleep(3600)
    try:
        sys.exit(main(argv))
    except HelmError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)
"""
