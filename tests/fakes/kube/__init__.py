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

Layout: ``_model`` (``Resource`` and the built-in resources, ``RecordedRequest``, watch events,
API errors as ``Status``), ``_crds`` (``crd_manifest``, the resource a CRD defines, structural
schemas), ``_protobuf`` (the bodies ``kubectl create`` sends), ``_tables`` (server-side
printing), ``_server`` (the HTTP server, ``FakeKube``: lifecycle, client config, test helpers,
dispatch), ``_base`` (the state the mixins share, resource lookup, reads), and the mixins of
``FakeKube``: ``_discovery`` (discovery and OpenAPI), ``_storage`` (defaults, status, CRD
schemas, resource versions, events), ``_watch`` (selectors, list, watch), ``_objects``
(requests on objects: create, update, delete, apply and merge patches), ``_controllers``
(controller callbacks and their writes).
"""

from tests.fakes.kube._crds import crd_manifest, validate_structural
from tests.fakes.kube._model import RecordedRequest, Resource
from tests.fakes.kube._server import FakeKube

__all__ = ["FakeKube", "RecordedRequest", "Resource", "crd_manifest", "validate_structural"]
