"""What one object's change means for the cluster: the fields that change, the risks, the images.

:func:`review` works on one object as decoded on each side (None where it is absent) and knows
nothing of files or formats; :mod:`gitopskit.diff` calls it for every object that is added,
removed or changed (never for unchanged ones, which are not decoded at all), and
:mod:`gitopskit.render` shows what it found.

Warnings have stable codes (:data:`CODES`) that ``invoke diff --fail-on`` matches; a code also
stands for the codes that extend it with a dash (``rbac`` matches ``rbac-grows`` and
``rbac-wildcard``, ``delete`` matches ``delete-namespace``). Secret ``data``/``stringData``
values never leave this module: changed fields of a Secret carry :data:`MASK` instead.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from gitopskit.errors import ConfigError
from gitopskit.rbac import RBAC_GROUP, growth
from gitopskit.tree import Identity, is_plain_secret, is_secret

MASK = "***"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: Flux's kustomize-controller annotations that change what happens to an object.
FLUX_PRUNE = "kustomize.toolkit.fluxcd.io/prune"
FLUX_FORCE = "kustomize.toolkit.fluxcd.io/force"

#: Every warning code, with what it means (docs/diff.md lists the same).
CODES: Final[dict[str, str]] = {
    "delete": "an object leaves the manifests: Flux prunes it from the cluster",
    "delete-namespace": "a Namespace leaves: Flux deletes it and every object in it",
    "delete-crd": "a CustomResourceDefinition leaves: every object of its kind goes with it",
    "immutable": "a field the API server refuses to change (or a shrinking storage request): "
    "the apply fails unless Flux re-creates the object",
    "rbac-grows": "a Role, ClusterRole or binding grants more: a new or widened rule, a new "
    "subject",
    "rbac-wildcard": "the same with a wildcard: * in verbs, resources or API groups, or a "
    "subject standing for every user or service account",
    "replicas-zero": "spec.replicas becomes 0: every pod of the object stops",
    "image-no-tag": "a container image with neither tag nor digest (runs whatever latest is)",
    "image-latest": "a container image tagged :latest",
    "image-digest-to-tag": "a container image pinned by digest now named by tag only",
    "plain-secret": "a Secret carrying plain data/stringData, which publish refuses",
}


class _Missing:
    """The value of a field that is not there."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True)
class Named:
    """A list item found by its ``name`` (``containers[name=web]``)."""

    name: str


Part = str | int | Named


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field that differs.

    Attributes:
        parts: The path: keys, list indices, and list items found by name.
        before: Its value before (:data:`MISSING` when absent).
        after: Its value after (:data:`MISSING` when absent).
    """

    parts: tuple[Part, ...]
    before: Any
    after: Any

    @property
    def path(self) -> str:
        """``spec.template.spec.containers[name=web].image``, ``metadata.labels["a.b/c"]``."""
        return path_text(self.parts)

    def to_json(self) -> dict[str, Any]:
        """``{path, before, after}``, an absent value as null."""
        return {
            "path": self.path,
            "before": _json_value(self.before),
            "after": _json_value(self.after),
        }


@dataclass(frozen=True, slots=True)
class ReviewWarning:
    """Something a reviewer should not miss.

    Attributes:
        code: One of :data:`CODES`.
        path: The field it is about ('' for the whole object).
        message: One line, without the object's name (the renderer names it).
    """

    code: str
    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        """``{code, path, message}``."""
        return {"code": self.code, "path": self.path, "message": self.message}


@dataclass(frozen=True, slots=True)
class ImageChange:
    """A container whose image changes.

    Attributes:
        container: The container's name (``name (init)`` for init containers).
        path: The field holding the image.
        before: The image before (None: a new container or object).
        after: The image after (None: the container goes).
    """

    container: str
    path: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Review:
    """What :func:`review` found about one object."""

    fields: tuple[FieldChange, ...] = ()
    warnings: tuple[ReviewWarning, ...] = ()
    images: tuple[ImageChange, ...] = ()


# --- codes for --fail-on ----------------------------------------------------------------------


def families() -> frozenset[str]:
    """Every code, and every prefix of one before a dash (``rbac``, ``image``)."""
    found = set(CODES)
    for code in CODES:
        parts = code.split("-")
        found.update("-".join(parts[:n]) for n in range(1, len(parts)))
    return frozenset(found)


def parse_codes(text: str) -> frozenset[str]:
    """The codes of ``--fail-on CODE[,CODE]``.

    Raises:
        ConfigError: A code that is neither a warning code nor a family of them.
    """
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - families())
    if unknown or not wanted:
        raise ConfigError(
            f"--fail-on: unknown warning code{'s' if len(unknown) > 1 else ''} "
            + (", ".join(unknown) if unknown else "(none given)"),
            hint="use one or more of: "
            + ", ".join(CODES)
            + " (a family such as rbac or image matches all of its codes)",
        )
    return frozenset(wanted)


def matches(code: str, wanted: Iterable[str]) -> bool:
    """Whether ``code`` is one of ``wanted`` or of a family in it."""
    return any(code == w or code.startswith(w + "-") for w in wanted)


# --- paths and values -------------------------------------------------------------------------

_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")


def path_text(parts: Iterable[Part]) -> str:
    """A field path as text (see :attr:`FieldChange.path`)."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, Named):
            out.append(f"[name={part.name}]")
        elif isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(out)


def _json_value(value: Any) -> Any:
    return None if value is MISSING else value


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict) or key not in obj:
            return MISSING
        obj = obj[key]
    return obj


def _same(a: Any, b: Any) -> bool:
    """Equal as Kubernetes sees it: ``true`` is not ``1``, ``1`` is not ``1.0``."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _names(items: list[Any]) -> list[str] | None:
    """The items' names when every item is a mapping with a distinct string ``name``."""
    names = [i.get("name") if isinstance(i, dict) else None for i in items]
    if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return names  # type: ignore[return-value]
    return None


def _insertion(short: list[Any], long: list[Any]) -> tuple[int, int] | None:
    """``(start, stop)`` when ``long`` is ``short`` with ``long[start:stop]`` inserted, else
    None (one run of items added at the end, the start or in between)."""
    if len(long) <= len(short):
        return None
    start = 0
    while start < len(short) and _same(short[start], long[start]):
        start += 1
    extra = len(long) - len(short)
    if all(_same(a, b) for a, b in zip(short[start:], long[start + extra :], strict=True)):
        return start, start + extra
    return None


def changed_fields(old: Any, new: Any, parts: tuple[Part, ...] = ()) -> list[FieldChange]:
    """The smallest fields in which ``old`` and ``new`` differ, in key order.

    Mappings are compared key by key; lists of items with distinct names (containers, env,
    volumes) item by item by name; other lists of the same length index by index; anything
    else as one value.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[FieldChange] = []
        for key in sorted(old.keys() | new.keys()):
            found += changed_fields(old.get(key, MISSING), new.get(key, MISSING), (*parts, key))
        return found
    if isinstance(old, list) and isinstance(new, list):
        old_names, new_names = _names(old), _names(new)
        if old_names is not None and new_names is not None and (old or new):
            before = dict(zip(old_names, old, strict=True))
            after = dict(zip(new_names, new, strict=True))
            found = []
            for name in [*old_names, *(n for n in new_names if n not in before)]:
                found += changed_fields(
                    before.get(name, MISSING), after.get(name, MISSING), (*parts, Named(name))
                )
            return found
        if len(old) == len(new):
            found = []
            for index, (a, b) in enumerate(zip(old, new, strict=True)):
                found += changed_fields(a, b, (*parts, index))
            return found
        inserted = _insertion(old, new)
        if inserted is not None:
            start, stop = inserted
            return [FieldChange((*parts, i), MISSING, new[i]) for i in range(start, stop)]
        removed = _insertion(new, old)
        if removed is not None:
            start, stop = removed
            return [FieldChange((*parts, i), old[i], MISSING) for i in range(start, stop)]
    if (old is MISSING and new is MISSING) or _same(old, new):
        return []
    return [FieldChange(parts, old, new)]


def _masked(parts: tuple[Part, ...], value: Any) -> Any:
    """A Secret's field value as it may be shown: data values and the last-applied copy masked."""
    if value is MISSING:
        return value
    if parts and parts[0] in ("data", "stringData"):
        if len(parts) == 1 and isinstance(value, dict):
            return {key: MASK for key in value}
        return MASK
    if parts[:2] == ("metadata", "annotations") and len(parts) > 2:
        return MASK if parts[2] == LAST_APPLIED else value
    if parts == ("metadata", "annotations") and isinstance(value, dict) and LAST_APPLIED in value:
        return {**value, LAST_APPLIED: MASK}
    if parts == ("metadata",) and isinstance(value, dict):
        annotations = value.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            return {**value, "annotations": {**annotations, LAST_APPLIED: MASK}}
    return value


def _how(present_before: bool, present_after: bool) -> str:
    if not present_before:
        return "added"
    return "changed" if present_after else "removed"


def secret_keys(fields: Iterable[FieldChange]) -> list[tuple[str, str]]:
    """``(key, added|removed|changed)`` for every Secret data key among ``fields``.

    ``data`` and ``stringData`` are one set of keys to the API server: a key that leaves one
    for the other is changed, not removed."""
    keys: dict[str, tuple[bool, bool]] = {}

    def seen(key: str, before: bool, after: bool) -> None:
        was, now = keys.get(key, (False, False))
        keys[key] = (was or before, now or after)

    for change in fields:
        parts = change.parts
        if not parts or parts[0] not in ("data", "stringData"):
            continue
        if len(parts) > 1:
            seen(str(parts[1]), change.before is not MISSING, change.after is not MISSING)
            continue
        before = change.before if isinstance(change.before, dict) else {}
        after = change.after if isinstance(change.after, dict) else {}
        for key in sorted(before.keys() | after.keys()):
            seen(key, key in before, key in after)
    return [(key, _how(before, after)) for key, (before, after) in keys.items()]


def scalar_text(value: Any) -> str | None:
    """A short scalar as shown in a title (``2``, ``nginx:1.27``, ``unset``), else None."""
    if value is MISSING:
        return "unset"
    if isinstance(value, dict | list):
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    if text == "":
        return '""'
    return text if len(text) <= 60 and "\n" not in text else None


# --- images -----------------------------------------------------------------------------------

_POD_SPECS: tuple[tuple[str, ...], ...] = (
    ("spec",),
    ("spec", "template", "spec"),
    ("spec", "jobTemplate", "spec", "template", "spec"),
)
_CONTAINER_LISTS = (
    ("initContainers", " (init)"),
    ("containers", ""),
    ("ephemeralContainers", " (ephemeral)"),
)


@functools.lru_cache(maxsize=1024)
def _image_path(keys: tuple[str, ...], section: str, part: Part) -> str:
    """One string per distinct path, however many objects share it."""
    return path_text((*keys, section, part, "image"))


def container_images(obj: Any) -> dict[str, tuple[str, str]]:
    """``{container: (path, image)}`` of the first pod spec found in an object: a Pod's
    ``spec``, a workload's ``spec.template.spec``, a CronJob's job template (also in custom
    resources shaped alike)."""
    found: dict[str, tuple[str, str]] = {}
    for keys in _POD_SPECS:
        spec = _dig(obj, *keys)
        if not isinstance(spec, dict) or not isinstance(spec.get("containers"), list):
            continue
        for section, suffix in _CONTAINER_LISTS:
            items = spec.get(section)
            items = items if isinstance(items, list) else []
            by_name = _names(items) is not None  # paths as changed_fields writes them
            for index, item in enumerate(items):
                if not isinstance(item, dict) or not isinstance(item.get("image"), str):
                    continue
                name = item.get("name")
                part: Part = Named(item["name"]) if by_name else index
                label = (name if isinstance(name, str) else f"#{index}") + suffix
                found[label] = (_image_path(keys, section, part), item["image"])
        break
    return found


def image_changes(old: Any, new: Any) -> list[ImageChange]:
    """Every container whose image differs between two objects (new, changed or gone)."""
    before = container_images(old) if old is not None else {}
    after = container_images(new) if new is not None else {}
    changes = []
    for name, (path, image) in after.items():
        previous = before.get(name)
        if previous is None or previous[1] != image:
            changes.append(ImageChange(name, path, previous[1] if previous else None, image))
    for name, (path, image) in before.items():
        if name not in after:
            changes.append(ImageChange(name, path, image, None))
    return changes


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``(name, tag, digest)``: a registry port is not a tag (``host:5000/app`` has none)."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest or None
    return name, None, digest or None


def _image_warnings(change: ImageChange) -> Iterator[ReviewWarning]:
    if change.after is None:
        return
    _, tag, digest = split_image(change.after)
    where = f"container {change.container}"
    if digest is None and tag is None:
        yield ReviewWarning(
            "image-no-tag",
            change.path,
            f"{where} runs {change.after} with no tag: whatever :latest is when a node pulls it",
        )
    elif digest is None and tag == "latest":
        yield ReviewWarning(
            "image-latest",
            change.path,
            f"{change.after} in {where}: :latest moves, so nodes may run different images",
        )
    if change.before is not None and digest is None and split_image(change.before)[2]:
        yield ReviewWarning(
            "image-digest-to-tag",
            change.path,
            f"{where}: {change.before} pinned by digest becomes {change.after}, a tag that can "
            "move",
        )


# --- deletions, immutable fields, replicas ----------------------------------------------------


def _deletion(identity: Identity, old: Mapping[str, Any]) -> ReviewWarning:
    annotations = _dig(old, "metadata", "annotations")
    if isinstance(annotations, dict) and annotations.get(FLUX_PRUNE) == "disabled":
        return ReviewWarning(
            "delete",
            "",
            f"leaves the manifests; {FLUX_PRUNE}: disabled, so Flux leaves it in "
            "the cluster, unmanaged",
        )
    if identity.group == "" and identity.kind == "Namespace":
        return ReviewWarning(
            "delete-namespace",
            "",
            "removed: Flux deletes the Namespace and every object in it, managed or not",
        )
    if identity.group == "apiextensions.k8s.io" and identity.kind == "CustomResourceDefinition":
        kind = _dig(old, "spec", "names", "kind")
        what = f"every {kind} object" if isinstance(kind, str) else "every object of its kind"
        return ReviewWarning(
            "delete-crd",
            "",
            f"removed: Flux deletes the CustomResourceDefinition and {what} in the cluster",
        )
    return ReviewWarning("delete", "", "removed: Flux prunes it from the cluster")


_SELECTOR = ("spec", "selector")
#: Fields the API server refuses to change, by (group, kind).
IMMUTABLE: Final[dict[tuple[str, str], tuple[tuple[str, ...], ...]]] = {
    ("apps", "Deployment"): (_SELECTOR,),
    ("apps", "ReplicaSet"): (_SELECTOR,),
    ("apps", "DaemonSet"): (_SELECTOR,),
    ("apps", "StatefulSet"): (
        _SELECTOR,
        ("spec", "volumeClaimTemplates"),
        ("spec", "serviceName"),
        ("spec", "podManagementPolicy"),
    ),
    ("batch", "Job"): (_SELECTOR, ("spec", "template")),
    ("", "Service"): (("spec", "clusterIP"), ("spec", "clusterIPs")),
    ("", "PersistentVolumeClaim"): (
        ("spec", "storageClassName"),
        ("spec", "accessModes"),
        ("spec", "volumeName"),
    ),
    (RBAC_GROUP, "RoleBinding"): (("roleRef",),),
    (RBAC_GROUP, "ClusterRoleBinding"): (("roleRef",),),
}
#: Fields that may be dropped from the manifest, or emptied, without a refusal: the server keeps
#: the value it allocated (``patchAllocatedValues`` of the Service storage).
_MAY_BE_DROPPED = frozenset({("spec", "clusterIP"), ("spec", "clusterIPs")})

_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|[KMGTPE]i|[kMGTPE]|[mun])?")
_SUFFIXES = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}  # fmt: skip


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity (``10Gi``, ``500M``, ``1e3``, ``2``) as a number, else None."""
    text = str(value).strip() if isinstance(value, str | int | float) else ""
    match = _QUANTITY.fullmatch(text)
    if match is None or isinstance(value, bool):
        return None
    number, suffix = match.groups()
    try:
        if suffix and suffix[0] in "eE":
            return Decimal(number + suffix)
        return Decimal(number) * _SUFFIXES[suffix or ""]
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return None


def _immutable(
    identity: Identity, old: Mapping[str, Any], new: Mapping[str, Any]
) -> Iterator[ReviewWarning]:
    annotations = _dig(new, "metadata", "annotations")
    forced = isinstance(annotations, dict) and annotations.get(FLUX_FORCE) == "enabled"
    outcome = (
        f"Flux re-creates the object ({FLUX_FORCE}: enabled)"
        if forced
        else f"Flux's apply fails until the object is re-created (or {FLUX_FORCE}: enabled)"
    )
    for keys in IMMUTABLE.get((identity.group, identity.kind), ()):
        before, after = _dig(old, *keys), _dig(new, *keys)
        if _same(before, after) or (after in (MISSING, "", []) and keys in _MAY_BE_DROPPED):
            continue
        shown = _before_after(before, after)
        yield ReviewWarning(
            "immutable",
            path_text(keys),
            f"{path_text(keys)} changes{shown}: the API server refuses this change; {outcome}",
        )
    if (identity.group, identity.kind) in (("", "ConfigMap"), ("", "Secret")):
        yield from _immutable_data(identity.kind, old, new, outcome)
    if (identity.group, identity.kind) == ("", "PersistentVolumeClaim"):
        keys = ("spec", "resources", "requests", "storage")
        before, after = _dig(old, *keys), _dig(new, *keys)
        small, large = quantity(after), quantity(before)
        if small is not None and large is not None and small < large:
            yield ReviewWarning(
                "immutable",
                path_text(keys),
                f"the storage request shrinks {before} → {after}: the API server refuses to "
                "shrink a claim",
            )


def _secret_type(obj: Mapping[str, Any]) -> Any:
    found = obj.get("type", MISSING)
    return "Opaque" if found in (MISSING, None, "") else found  # the API server's default


def _payload(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The data the API server keeps, as it keeps it: a Secret's ``stringData`` merged into its
    ``data`` (base64), a ConfigMap's ``data`` and ``binaryData``."""
    if kind == "ConfigMap":
        return {"data": obj.get("data") or {}, "binaryData": obj.get("binaryData") or {}}
    found, string_data = obj.get("data") or {}, obj.get("stringData") or {}
    data = dict(found) if isinstance(found, dict) else {"": found}
    if isinstance(string_data, dict):
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    return {"data": data}


def _immutable_data(
    kind: str, old: Mapping[str, Any], new: Mapping[str, Any], outcome: str
) -> Iterator[ReviewWarning]:
    """A Secret's ``type``, and the data of a ConfigMap or Secret marked ``immutable: true``:
    the API server refuses to change either (``field is immutable when `immutable` is set``)."""
    if kind == "Secret" and not _same(_secret_type(old), _secret_type(new)):
        shown = _before_after(_secret_type(old), _secret_type(new))
        message = f"type changes{shown}: the API server refuses this change; {outcome}"
        yield ReviewWarning("immutable", "type", message)
    if old.get("immutable") is not True:
        return
    if new.get("immutable") is not True:
        yield ReviewWarning(
            "immutable",
            "immutable",
            f"immutable: true is dropped: the API server refuses it for a {kind} marked "
            f"immutable; {outcome}",
        )
    before, after = _payload(kind, old), _payload(kind, new)
    for field in before:
        if not _same(before[field], after[field]):
            yield ReviewWarning(
                "immutable",
                field,
                f"{field} changes in a {kind} marked immutable: the API server refuses this "
                f"change; {outcome}",
            )


def _before_after(before: Any, after: Any) -> str:
    shown = scalar_text(before), scalar_text(after)
    return f" {shown[0]} → {shown[1]}" if None not in shown else ""


def _replicas(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[ReviewWarning]:
    before, after = _dig(old, "spec", "replicas"), _dig(new, "spec", "replicas")
    if type(after) is int and after == 0 and not (type(before) is int and before == 0):
        shown = "unset (1)" if before is MISSING else scalar_text(before)
        yield ReviewWarning(
            "replicas-zero",
            "spec.replicas",
            f"spec.replicas {shown} → 0: every pod of it stops",
        )


# --- one object -------------------------------------------------------------------------------


def plain_secret_warning() -> ReviewWarning:
    """The warning for a Secret carrying plain ``data``/``stringData``."""
    return ReviewWarning(
        "plain-secret",
        "",
        "carries plain data/stringData: publish refuses it (keep it encrypted with SOPS or "
        "Sealed Secrets, or external)",
    )


def review(identity: Identity, old: dict[str, Any] | None, new: dict[str, Any] | None) -> Review:
    """What changes in one object, and what a reviewer should not miss.

    Args:
        identity: The object's identity.
        old: The object before (None: it is added).
        new: The object after (None: it is removed).

    Returns:
        The changed fields (only when both sides exist; Secret values masked), the warnings,
        and the container images that change.
    """
    if new is None:
        return Review(warnings=(_deletion(identity, old or {}),))
    warnings: list[ReviewWarning] = []
    fields: list[FieldChange] = []
    if old is not None:
        fields = changed_fields(old, new)
        if is_secret(identity):
            fields = [
                FieldChange(f.parts, _masked(f.parts, f.before), _masked(f.parts, f.after))
                for f in fields
            ]
        warnings += _immutable(identity, old, new)
        warnings += _replicas(old, new)
    warnings += (ReviewWarning(*found) for found in growth(identity, old, new))
    images = image_changes(old, new)
    for image in images:
        warnings += _image_warnings(image)
    if is_plain_secret(new):
        warnings.append(plain_secret_warning())
    return Review(tuple(fields), tuple(warnings), tuple(images))
