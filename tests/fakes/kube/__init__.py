"""A fake Kubernetes API server good enough for the real ``kubectl`` (1.32).

It is a real HTTP/1.1 server (keep-alive, chunked watch streams) on ``127.0.0.1`` at a
random port, plain HTTP. State lives in memory; every request is recorded.

Usage::

    with FakeKube() as kube:
        env = {**os.environ, **kube.env(tmp_path), "HOME": str(tmp_path)}
        subprocess.run(["kubectl", "apply", "--server-side", "-f", "-"], env=env, ...)
        assert kube.get("Secret", "x", "ns")["data"]["k"] == "dg=="

Public API (``FakeKube``):

- ``FakeKube()``; ``start()`` / ``stop()`` or ``with FakeKube() as kube``; ``stop()`` ends
  watch streams, closes kept-alive connections and joins every server thread.
- ``url`` -- ``http://127.0.0.1:PORT`` (valid after ``start()``).
- ``write_kubeconfig(path, *, context="fake", namespace=None) -> Path`` -- a kubeconfig with
  cluster ``server: url`` and a user with a token.
- ``env(tmp_path) -> dict[str, str]`` -- ``KUBECONFIG`` (written to ``tmp_path/kubeconfig``) and
  ``KUBECACHEDIR`` (``tmp_path/kubecache``) to merge into ``os.environ``. Set ``HOME`` yourself.
- ``objects`` -- ``{(group_version, plural, namespace_or_None, name): object}``, e.g.
  ``("apps/v1", "deployments", "flux-system", "source-controller")``. Read it under no lock;
  prefer the helpers.
- ``get(kind, name, namespace=None) -> dict | None`` -- ``kind`` is a Kind, plural, singular or
  short name, case-insensitive (``"Deployment"``, ``"deploy"``, ``"secrets"``); a namespaced
  kind with ``namespace=None`` looks in ``"default"``. Returns a deep copy.
- ``list_objects(kind, namespace=None) -> list[dict]`` -- all namespaces when ``namespace`` is None.
- ``put(obj) -> dict`` -- seed or replace an object directly (server defaults applied, watch
  event emitted, namespace existence NOT checked).
- ``delete(kind, name, namespace=None) -> bool``.
- ``requests: list[RecordedRequest]`` (``method, path, query: dict[str, str], content_type,
  body: bytes, headers, status`` -- the code answered; ``.json()`` parses the body as JSON or
  YAML) and ``writes()`` -- the POST/PUT/PATCH/DELETE ones. ``clear_requests()`` empties the list.
- ``fail_next(method, path_regex, status, *, times=1)`` -- the next ``times`` requests whose
  method equals ``method`` (``"*"`` for any) and whose path matches ``re.search(path_regex)``
  get a ``Status`` error with that code (reason derived from the code).
- ``auto_ready = True`` -- Deployments become ready on every create/update. With ``False``
  they are observed but unavailable until ``mark_ready(name, namespace)``;
  ``mark_unready(name, namespace)`` does the opposite.
- ``crd_establish_delay = 0.0`` -- seconds after its creation a CustomResourceDefinition gets
  ``Established=True`` (``NamesAccepted`` at once); its kind is served only from then on.
- ``crd_manifest(group, version, kind, plural, *, short_names=(), namespaced=True,
  schema=None, annotations=None)`` (module function) -- a CRD to ``put`` or apply, with a
  status subresource; ``schema`` (its ``openAPIV3Schema``, default: anything) is enforced as a
  structural schema: on every write over HTTP its defaults are filled in, a wrong type, enum
  value, pattern, length or a missing required field is a 422 naming each field, and an unknown
  field is a 400 with ``fieldValidation=Strict`` (what ``kubectl apply`` sends), else dropped.
- ``set_status(kind, name, namespace, status)`` and ``set_condition(kind, name, namespace, *,
  type="Ready", status="True", reason="Succeeded", message="", **status_fields)`` -- write the
  status subresource (new resourceVersion, a watch event, the generation unchanged; the
  condition's ``observedGeneration`` is the object's generation). Spec writes never change a
  status, and a status write never the spec.
- ``add_controller(callback)`` -- ``callback(event_type, obj)`` runs for every change stored
  afterwards, on one background thread, after the write was answered (as a controller's watch);
  it writes with ``apply(obj, *, manager)`` (in-process server-side apply) and the status
  helpers. ``settle(timeout=10)`` waits until every change has been handled;
  ``controller_errors`` holds the tracebacks of callbacks that raised.

Served: ``/version`` (1.32, so the kubectl dispatcher runs its built-in 1.32), old-style
discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/apps/v1``,
``/apis/apiextensions.k8s.io/v1`` and one per established CRD), ``/openapi/v3`` with
per-group documents declaring the ``fieldValidation`` parameter (so server-side field
validation is used, no client-side schema needed), ``/openapi/v2`` 404. Resources:
namespaces, secrets, configmaps, services, serviceaccounts, deployments,
customresourcedefinitions, and the kinds of established CRDs (as a real API server: a kind
whose CRD is missing or not yet established is 404 and absent from discovery; deleting a CRD
deletes its objects). Verbs: get, list (``fieldSelector`` on metadata.name/namespace,
``labelSelector``), watch (chunked JSON lines), create (POST: JSON, or the protobuf that
``kubectl create namespace|secret|configmap|serviceaccount`` sends; other protobuf gets 415),
update (PUT), delete, patch (``application/apply-patch+yaml`` server-side apply,
``merge-patch+json``, ``strategic-merge-patch+json`` treated as a merge patch that merges
lists of named items by name). ``dryRun=All`` is honoured on writes. Server-side apply is a
recursive merge (lists replaced); ownership and conflicts are not modelled. ``kubectl get``
gets a server-side Table (Deployment READY/UP-TO-DATE/AVAILABLE, Secret TYPE/DATA, ...).
"""

from __future__ import annotations

import contextlib
import copy
import json
import queue
import re
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.fakes.kube._controllers import _Controllers
from tests.fakes.kube._crds import crd_manifest, validate_structural
from tests.fakes.kube._discovery import _Discovery
from tests.fakes.kube._model import (
    Key,
    Obj,
    RecordedRequest,
    Resource,
    _Event,
    _FailRule,
    _KubeError,
    _status,
)
from tests.fakes.kube._objects import _ObjectsAPI

__all__ = ["FakeKube", "RecordedRequest", "Resource", "crd_manifest", "validate_structural"]


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    fake: FakeKube

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients going away (or stop() cutting connections) is normal here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._track(self.connection, add=False)

    current: RecordedRequest | None = None

    def send_response(self, code: int, message: str | None = None) -> None:
        if self.current is not None:
            self.current.status = code
        super().send_response(code, message)

    def _dispatch(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeKube(_ObjectsAPI, _Discovery, _Controllers):
    """In-memory Kubernetes API server for tests; see the module docstring."""

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.requests: list[RecordedRequest] = []
        self.auto_ready: bool = True
        self.crd_establish_delay: float = 0.0
        self._timers: list[threading.Timer] = []
        self.url: str = ""
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._rv = 0
        self._events: list[_Event] = []
        self._event_rvs: list[int] = []
        self._fail_rules: list[_FailRule] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        #: Callbacks run for every stored change, on a thread of their own (see add_controller).
        self._controllers: list[Callable[[str, Obj], None]] = []
        self._changes: queue.Queue[tuple[str, Obj] | None] = queue.Queue()
        self._unhandled = 0
        self._controller_thread: threading.Thread | None = None
        #: Tracebacks of controller callbacks that raised (a test asserts it stays empty).
        self.controller_errors: list[str] = []
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeKube:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-kube"
        )
        self._thread.start()
        self._controller_thread = threading.Thread(target=self._run_controllers,
                                                   name="fake-kube-controllers")  # fmt: skip
        self._controller_thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
            timer.join()
        server.shutdown()
        thread.join()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the handler threads
        self._server = self._thread = None
        if self._controller_thread is not None:
            self._changes.put(None)
            self._controller_thread.join()
            self._controller_thread = None

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # ------------------------------------------------------------------ client config
    def write_kubeconfig(
        self, path: Path, *, context: str = "fake", namespace: str | None = None
    ) -> Path:
        ctx: Obj = {"cluster": "fake", "user": "fake"}
        if namespace:
            ctx["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
            "preferences": {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def env(self, tmp_path: Path) -> dict[str, str]:
        kubeconfig = self.write_kubeconfig(Path(tmp_path) / "kubeconfig")
        cache = Path(tmp_path) / "kubecache"
        cache.mkdir(parents=True, exist_ok=True)
        return {"KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache)}

    # ------------------------------------------------------------------ test helpers
    def put(self, obj: Obj) -> Obj:
        res = self.resource_for(obj["kind"])
        meta = obj.get("metadata") or {}
        key = self._key(res, meta["name"], meta.get("namespace"))
        with self._lock:
            return self._store(res, key, copy.deepcopy(obj), self.objects.get(key))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        res = self.resource_for(kind)
        with self._lock:
            key = self._key(res, name, namespace)
            if key not in self.objects:
                return False
            self._remove(key)
            return True

    def mark_ready(self, name: str, namespace: str | None = None, *, ready: bool = True) -> Obj:
        res = self.resource_for("Deployment")
        with self._lock:
            key = self._key(res, name, namespace)
            if key not in self.objects:
                raise KeyError(f"no deployment {namespace}/{name}")
            obj = copy.deepcopy(self.objects[key])
            obj["status"] = self._deployment_status(obj, ready=ready)
            return self._commit(key, obj, "MODIFIED")

    def mark_unready(self, name: str, namespace: str | None = None) -> Obj:
        return self.mark_ready(name, namespace, ready=False)

    def writes(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def fail_next(self, method: str, path_regex: str, status: int, *, times: int = 1) -> None:
        with self._lock:
            self._fail_rules.append(
                _FailRule(method.upper(), re.compile(path_regex), status, times)
            )

    # ------------------------------------------------------------------ HTTP
    def _handle(self, h: _Handler) -> None:
        url = urlsplit(h.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body = self._read_body(h)
        req = RecordedRequest(
            method=h.command,
            path=path,
            query=query,
            content_type=(h.headers.get("Content-Type") or "").split(";")[0].strip(),
            body=body,
            headers={k: v for k, v in h.headers.items()},
        )
        h.current = req
        with self._lock:
            self.requests.append(req)
            rule = next(
                (
                    r
                    for r in self._fail_rules
                    if r.method in ("*", h.command) and r.path_regex.search(path)
                ),
                None,
            )
            if rule is not None:
                rule.times -= 1
                if rule.times <= 0:
                    self._fail_rules.remove(rule)
        if rule is not None:
            self._send_json(
                h, rule.status, _status(rule.status, f"injected failure ({rule.status})")
            )
            return
        try:
            result = self._route(h, req)
        except _KubeError as e:
            self._send_json(h, e.code, _status(e.code, e.message, e.details, e.reason))
            return
        except Exception as e:  # a bug in the fake: answer like an apiserver would
            self._send_json(h, 500, _status(500, f"fake kube error: {e!r}"))
            return
        if result is not None:
            code, payload = result
            self._send_json(h, code, payload)

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
            return b"".join(chunks)
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    @staticmethod
    def _send_json(h: _Handler, code: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        try:
            h.send_response(code)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.send_header("Cache-Control", "no-cache, private")
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data)
            h.wfile.flush()
        except OSError:
            h.close_connection = True

    def _route(self, h: _Handler, req: RecordedRequest) -> tuple[int, Any] | None:
        path, method = req.path, req.method
        if path in ("/version", "/openapi/v3", "/api", "/apis") or path.startswith("/openapi/"):
            if method not in ("GET", "HEAD"):
                raise _KubeError(405, f"the server does not allow this method on {path}")
            return 200, self._static(path, h)
        if path in ("/healthz", "/readyz", "/livez"):
            return 200, "ok"
        for base in {r.base_path for r in self.resources()}:
            if path == base:
                return 200, self._resource_list(self.resources(), base)
            if path.startswith(base + "/"):
                return self._resource_request(h, req, base, path[len(base) + 1 :].split("/"))
        raise _KubeError(404, "the server could not find the requested resource")
