"""kubectl, through the one program helper.

Objects are written only with server-side apply (``kubectl apply --server-side
--field-manager=gitopskit -f -``), the manifest on stdin: client-side apply would copy a Secret,
private key included, into the ``last-applied-configuration`` annotation.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from gitopskit._run import run, which
from gitopskit.errors import KubeError
from gitopskit.redact import add_secret

FIELD_MANAGER = "gitopskit"
TIMEOUT = 60

Obj = dict[str, Any]


class Kubectl:
    """kubectl for one kube context.

    Args:
        context: The kubeconfig context (None: the current one).
        env: The environment kubectl runs with (default: this process's).
    """

    def __init__(self, context: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self.context = context or None
        self.env = env

    def check(self) -> None:
        """Raise :class:`~gitopskit.errors.ToolNotFoundError` naming kubectl when it is missing."""
        which("kubectl", path=self.env.get("PATH") if self.env else None)

    def args(self, *args: str) -> list[str]:
        """The argv of a kubectl command (``--context`` first when set)."""
        context = ["--context", self.context] if self.context else []
        return ["kubectl", *context, *args]

    def _run(
        self, *args: str, stdin: str | None = None, timeout: float = TIMEOUT, what: str
    ) -> str:
        return run(
            self.args(*args), stdin=stdin, env=self.env, error=KubeError, timeout=timeout, what=what
        ).stdout

    def current_context(self) -> str:
        """The context kubectl uses: ``--context``, else the kubeconfig's current one."""
        if self.context:
            return self.context
        out = self._run("config", "current-context", what="kubectl config current-context")
        return out.strip()

    def get_json(self, kind: str, name: str, namespace: str) -> Obj | None:
        """One object as JSON, or None when absent."""
        out = self._run(
            "get", kind, name, "--namespace", namespace, "--ignore-not-found", "--output", "json",
            what=f"kubectl get {kind} {namespace}/{name}",
        )  # fmt: skip
        if not out.strip():
            return None
        data: Obj = json.loads(out)
        return data

    def get_secret(self, name: str, namespace: str) -> dict[str, str] | None:
        """A Secret's data, decoded (values registered for redaction), or None when absent."""
        secret = self.get_json("secret", name, namespace)
        if secret is None:
            return None
        data: dict[str, str] = {}
        for key, value in (secret.get("data") or {}).items():
            text = base64.b64decode(value).decode("utf-8", "replace")
            if key == "identity":
                add_secret(text)
            data[key] = text
        return data

    def apply(self, objects: Sequence[Obj]) -> None:
        """Server-side apply ``objects``, the manifest on stdin."""
        manifest = "".join("---\n" + json.dumps(obj) + "\n" for obj in objects)
        names = ", ".join(describe(obj) for obj in objects)
        self._run(
            "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-",
            stdin=manifest, what=f"kubectl apply of {names}",
        )  # fmt: skip

    def deployments(self, namespace: str) -> list[str]:
        """Names of the Deployments in ``namespace``."""
        out = self._run(
            "get", "deployments", "--namespace", namespace, "--output", "json",
            what=f"kubectl get deployments -n {namespace}",
        )  # fmt: skip
        items = json.loads(out).get("items") or []
        return sorted(item["metadata"]["name"] for item in items)

    def rollout_status(self, deployment: str, namespace: str, timeout: int) -> None:
        """Wait until ``deployment`` has rolled out, for at most ``timeout`` seconds."""
        self._run(
            "rollout", "status", f"deployment/{deployment}", "--namespace", namespace,
            f"--timeout={timeout}s",
            timeout=timeout + 30, what=f"kubectl rollout status deployment/{deployment}",
        )  # fmt: skip

    def rollout_restart(self, deployment: str, namespace: str) -> None:
        """Restart ``deployment``'s pods (rolling)."""
        self._run(
            "rollout", "restart", f"deployment/{deployment}", "--namespace", namespace,
            what=f"kubectl rollout restart deployment/{deployment}",
        )  # fmt: skip


def describe(obj: Obj) -> str:
    """``Kind namespace/name`` of an object."""
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def namespace_manifest(name: str) -> Obj:
    """A Namespace."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def secret_manifest(name: str, namespace: str, data: Mapping[str, str]) -> Obj:
    """An Opaque Secret holding ``data`` (plain text, base64-encoded here)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "gitopskit"},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())},
    }
