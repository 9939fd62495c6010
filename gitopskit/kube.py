"""kubectl, through the one program helper.

Objects are written only with server-side apply (``kubectl apply --server-side
--field-manager=gitopskit -f -``), the manifest on stdin: client-side apply would copy a Secret,
private key included, into the ``last-applied-configuration`` annotation.

Every command that talks to the API server carries ``--request-timeout`` (the network timeout,
``GITOPSKIT_NETWORK_TIMEOUT``) and runs under a process timeout. Before the first such command
the kube context is read from the kubeconfig (a local read): with none configured the error is
one line naming ``--context`` and ``KUBECONFIG``, not kubectl's retries against localhost:8080.
A server that refuses, cannot be resolved or does not answer is a
:class:`ClusterUnreachableError` naming the command, the server and the cause.
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitopskit._context_tool import NETWORK_TIMEOUT, ContextTool
from gitopskit._run import run
from gitopskit.errors import KubeError
from gitopskit.redact import add_secret

FIELD_MANAGER = "gitopskit"

Obj = dict[str, Any]

_CONTEXT_HINT = (
    "pass --context NAME (or set GITOPSKIT_KUBE_CONTEXT), or set KUBECONFIG to a kubeconfig "
    "whose current context is the cluster"
)
_TIMED_OUT = "timed out"
#: Pieces of kubectl's (client-go's) error output, and the cause they mean.
_NETWORK_CAUSES = (
    ("no such host", "name resolution failed"),
    ("server misbehaving", "name resolution failed"),
    ("connection refused", "connection refused"),
    ("was refused", "connection refused"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network is unreachable"),
    ("Client.Timeout exceeded", _TIMED_OUT),
    ("context deadline exceeded", _TIMED_OUT),
    ("i/o timeout", _TIMED_OUT),
    ("TLS handshake timeout", _TIMED_OUT),
    ("connection reset by peer", "connection reset"),
    ("Unable to connect to the server", "unable to connect"),
)


class NoKubeContextError(KubeError):
    """No kube context is configured, or the one asked for is not in the kubeconfig."""


class ClusterUnreachableError(KubeError):
    """The Kubernetes API server refused, could not be resolved, or did not answer in time."""


class UnknownKindError(KubeError):
    """The API server serves no such kind (its CustomResourceDefinition is not installed)."""


@dataclass(frozen=True)
class Cluster:
    """The kube context kubectl uses and its API server, from the kubeconfig."""

    context: str
    server: str


@dataclass(frozen=True)
class SecretState:
    """A Secret as read: its data (decoded) and its annotations."""

    data: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)


def duration(seconds: float) -> str:
    """Seconds as a Go duration (``60s``, ``0.5s``), for ``--request-timeout`` and ``--timeout``."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


class Kubectl(ContextTool):
    """kubectl for one kube context.

    Args:
        context: The kubeconfig context (None: the current one).
        env: The environment kubectl runs with (default: this process's).
        request_timeout: Seconds any single request to the API server may take.
    """

    program = "kubectl"
    context_flag = "--context"

    def __init__(
        self,
        context: str | None = None,
        env: Mapping[str, str] | None = None,
        *,
        request_timeout: float = NETWORK_TIMEOUT,
    ) -> None:
        super().__init__(context, env, network_timeout=request_timeout)
        self._cluster: Cluster | None = None

    @property
    def request_timeout(self) -> float:
        """Seconds any single request to the API server may take (``--request-timeout``)."""
        return self.network_timeout

    def args(self, *args: str) -> list[str]:
        """The argv of a kubectl command that talks to the API server."""
        timeout = f"--request-timeout={duration(self.request_timeout)}"
        return ["kubectl", *self.context_args(), timeout, *args]

    @property
    def process_timeout(self) -> float:
        """Seconds a kubectl command may run (discovery and the request, each bounded)."""
        return 2 * self.request_timeout + 5

    # --- the kubeconfig -----------------------------------------------------------------------

    def cluster(self) -> Cluster:
        """The context and API server kubectl will use, read from the kubeconfig (no network).

        Raises:
            NoKubeContextError: No context is configured, or ``context`` is not in the kubeconfig.
            KubeError: The kubeconfig cannot be read.
        """
        if self._cluster is None:
            self._cluster = self._read_cluster()
        return self._cluster

    def _read_cluster(self) -> Cluster:
        # This kubectl's dispatcher asks the server's /version even here: --request-timeout
        # bounds that too.
        args = self.args("config", "view", "--minify", "--output", "json")
        try:
            out = run(args, env=self.env, error=KubeError, timeout=self.process_timeout,
                      what="kubectl config view").stdout  # fmt: skip
        except KubeError as error:
            if self.context and "context" in error.message:
                raise self._unknown_context() from None
            if "current-context" in error.message:
                raise NoKubeContextError(
                    f"no kube context configured ({self._kubeconfig_text()})", hint=_CONTEXT_HINT
                ) from None
            raise
        config: Obj = json.loads(out or "{}")
        contexts = config.get("contexts") or []
        clusters = config.get("clusters") or []
        if not contexts or not clusters:
            raise NoKubeContextError(
                f"no kube context configured ({self._kubeconfig_text()})", hint=_CONTEXT_HINT
            )
        server = str((clusters[0].get("cluster") or {}).get("server") or "")
        return Cluster(context=str(contexts[0].get("name")), server=server)

    def _kubeconfig_text(self) -> str:
        environ = self.env if self.env is not None else os.environ
        listed = environ.get("KUBECONFIG")
        if listed:
            paths = [Path(p) for p in listed.split(os.pathsep) if p]
            missing = not any(p.is_file() for p in paths)
            return f"KUBECONFIG={listed} " + ("does not exist" if missing else "names no context")
        home = environ.get("HOME")
        default = Path(home) / ".kube" / "config" if home else None
        if default is None or not default.is_file():
            return "KUBECONFIG is not set and there is no ~/.kube/config"
        return "~/.kube/config has no current context"

    def _unknown_context(self) -> NoKubeContextError:
        known = run(
            ["kubectl", f"--request-timeout={duration(self.request_timeout)}",
             "config", "get-contexts", "--output", "name"],
            env=self.env, error=KubeError, timeout=self.process_timeout, ok_codes=(0, 1),
            what="kubectl config get-contexts",
        ).stdout.split()  # fmt: skip
        hint = f"known contexts: {', '.join(known)}" if known else _CONTEXT_HINT
        return NoKubeContextError(
            f"kube context {self.context!r} is not in the kubeconfig ({self._kubeconfig_text()})"
            if not known
            else f"kube context {self.context!r} is not in the kubeconfig",
            hint=hint,
        )

    def current_context(self) -> str:
        """The context kubectl uses: ``--context``, else the kubeconfig's current one."""
        return self.cluster().context

    # --- commands against the API server ------------------------------------------------------

    def _run(
        self, *args: str, stdin: str | None = None, wait: float = 0, what: str
    ) -> str:
        cluster = self.cluster()
        timeout = wait + self.process_timeout
        started = time.monotonic()
        try:
            return run(
                self.args(*args), stdin=stdin, env=self.env, error=KubeError, timeout=timeout,
                what=what,
            ).stdout  # fmt: skip
        except KubeError as error:
            if error.returncode is None and time.monotonic() - started >= timeout * 0.99:
                raise self._unreachable(what, cluster, _TIMED_OUT, timeout) from None
            cause = network_cause(error.message)
            if cause is not None:
                raise self._unreachable(what, cluster, cause, self.request_timeout) from None
            raise

    def _unreachable(
        self, what: str, cluster: Cluster, cause: str, seconds: float
    ) -> ClusterUnreachableError:
        where = f"the Kubernetes API server at {cluster.server} (context {cluster.context})"
        if cause == _TIMED_OUT:
            message = f"{what}: {where} did not answer within {math.ceil(seconds)}s"
        else:
            message = f"{what}: cannot reach {where}: {cause}"
        return ClusterUnreachableError(
            message,
            hint="check that the cluster is up and that --context or KUBECONFIG name it; "
            f"GITOPSKIT_NETWORK_TIMEOUT bounds each request (now {self.request_timeout:g}s)",
        )

    def get_json(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """One object as JSON, or None when absent."""
        where = ["--namespace", namespace] if namespace else []
        shown = f"{namespace}/{name}" if namespace else name
        out = self._run(
            "get", kind, name, *where, "--ignore-not-found", "--output", "json",
            what=f"kubectl get {kind} {shown}",
        )  # fmt: skip
        if not out.strip():
            return None
        data: Obj = json.loads(out)
        return data

    def get_objects(self, namespace: str, refs: Sequence[str]) -> list[Obj]:
        """The objects ``refs`` (``kind/name``, kinds fully qualified) that exist, in one request
        per kind.

        Raises:
            UnknownKindError: One of the kinds is not served (its CRD is missing).
        """
        try:
            out = self._run(
                "get", *refs, "--namespace", namespace, "--ignore-not-found", "--output", "json",
                what=f"kubectl get {' '.join(refs)} -n {namespace}",
            )  # fmt: skip
        except KubeError as error:
            if "doesn't have a resource type" in error.message:
                raise UnknownKindError(error.message, returncode=error.returncode) from None
            raise
        if not out.strip():
            return []
        data: Obj = json.loads(out)
        if str(data.get("kind", "")).endswith("List"):
            return list(data.get("items") or [])
        return [data]

    def names(
        self, kind: str, namespace: str, *, selector: str, field_selector: str | None = None
    ) -> list[str]:
        """Names of the objects of ``kind`` in ``namespace`` matching the label ``selector``
        (and ``field_selector``)."""
        fields = ["--field-selector", field_selector] if field_selector else []
        out = self._run(
            "get", kind, "--namespace", namespace, "--selector", selector, *fields,
            "--output", "json", what=f"kubectl get {kind} -n {namespace} -l {selector}",
        )  # fmt: skip
        items = json.loads(out or "{}").get("items") or []
        return sorted(str(item["metadata"]["name"]) for item in items)

    def delete(self, kind: str, names: Sequence[str], namespace: str) -> None:
        """Delete the named objects (those already gone are no error)."""
        if names:
            self._run(
                "delete", kind, *names, "--namespace", namespace, "--ignore-not-found",
                "--wait=false", what=f"kubectl delete {kind} -n {namespace}",
            )  # fmt: skip

    def annotate(self, kind: str, name: str, namespace: str, key: str, value: str) -> None:
        """Set one annotation (replacing its value)."""
        self._run(
            "annotate", kind, name, f"{key}={value}", "--overwrite", "--namespace", namespace,
            f"--field-manager={FIELD_MANAGER}",
            what=f"kubectl annotate {kind} {namespace}/{name}",
        )  # fmt: skip

    def get_secret(self, name: str, namespace: str) -> SecretState | None:
        """A Secret's data, decoded (``identity`` registered for redaction), and annotations;
        None when absent."""
        secret = self.get_json("secret", name, namespace)
        if secret is None:
            return None
        data: dict[str, str] = {}
        for key, value in (secret.get("data") or {}).items():
            text = base64.b64decode(value).decode("utf-8", "replace")
            if key == "identity":
                add_secret(text)
            data[key] = text
        annotations = (secret.get("metadata") or {}).get("annotations") or {}
        return SecretState(data, {str(k): str(v) for k, v in annotations.items()})

    def apply(self, objects: Sequence[Obj]) -> None:
        """Server-side apply ``objects``, the manifest on stdin."""
        manifest = "".join("---\n" + json.dumps(obj) + "\n" for obj in objects)
        names = ", ".join(describe(obj) for obj in objects)
        self._run(
            "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-",
            stdin=manifest, what=f"kubectl apply of {names}",
        )  # fmt: skip

    def remove_annotation(self, kind: str, name: str, namespace: str, key: str) -> None:
        """Remove one annotation (nothing happens when it is not there)."""
        self._run(
            "annotate", kind, name, f"{key}-", "--namespace", namespace,
            f"--field-manager={FIELD_MANAGER}",
            what=f"kubectl annotate {kind} {namespace}/{name}",
        )  # fmt: skip

    def deployments(self, namespace: str) -> list[str]:
        """Names of the Deployments in ``namespace``."""
        out = self._run(
            "get", "deployments", "--namespace", namespace, "--output", "json",
            what=f"kubectl get deployments -n {namespace}",
        )  # fmt: skip
        items = json.loads(out).get("items") or []
        return sorted(item["metadata"]["name"] for item in items)

    def rollout_status(self, deployment: str, namespace: str, timeout: float) -> None:
        """Wait until ``deployment`` has rolled out, for at most ``timeout`` seconds."""
        self._run(
            "rollout", "status", f"deployment/{deployment}", "--namespace", namespace,
            f"--timeout={duration(timeout)}",
            wait=timeout, what=f"kubectl rollout status deployment/{deployment}",
        )  # fmt: skip

    def rollout_restart(self, deployment: str, namespace: str) -> None:
        """Restart ``deployment``'s pods (rolling)."""
        self._run(
            "rollout", "restart", f"deployment/{deployment}", "--namespace", namespace,
            what=f"kubectl rollout restart deployment/{deployment}",
        )  # fmt: skip

    def wait_args(self, crds: Sequence[str], timeout: float) -> list[str]:
        """The argv that waits for CustomResourceDefinitions to be established."""
        return self.args(*_wait_established(crds, timeout))

    def wait_established(self, crds: Sequence[str], timeout: float) -> None:
        """Wait until every CustomResourceDefinition in ``crds`` is established.

        Raises:
            KubeError: One is missing or not established within ``timeout`` seconds.
        """
        self._run(
            *_wait_established(crds, timeout),
            wait=timeout, what=f"kubectl wait for the CRDs {', '.join(crds)}",
        )  # fmt: skip


def _wait_established(crds: Sequence[str], timeout: float) -> list[str]:
    return [
        "wait", "--for", "condition=established", f"--timeout={duration(timeout)}",
        *(f"crd/{name}" for name in crds),
    ]  # fmt: skip


def network_cause(output: str) -> str | None:
    """What kept kubectl from the API server, read from its error output; None if not that."""
    for needle, cause in _NETWORK_CAUSES:
        if needle in output:
            return cause
    return None


def describe(obj: Obj) -> str:
    """``Kind namespace/name`` of an object."""
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def namespace_manifest(name: str) -> Obj:
    """A Namespace."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def secret_manifest(
    name: str,
    namespace: str,
    data: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    """An Opaque Secret holding ``data`` (plain text, base64-encoded here)."""
    metadata: Obj = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "gitopskit"},
    }
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())},
    }
