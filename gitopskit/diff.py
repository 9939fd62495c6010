"""What would change in the cluster, resource by resource.

A library first: ``invoke diff``, ``invoke publish`` and the merge-request comment call it.
:func:`load_tree` reads a tree of manifests (every YAML file, the files listed in its
``.gitopskit-files`` index, or an explicit file set), :func:`compare` matches two trees by
identity (API group, kind, namespace, name: files are only containers), and the renderers turn
the result into text, markdown or JSON.

Objects are compared as loaded with YAML 1.1 semantics (see :mod:`gitopskit.manifests`), so
whitespace, key order and quoting never count as changes. YAML is rendered only for resources
that differ, with sorted keys, and never written back to a user's file. Secret ``data`` and
``stringData`` values never reach any output: only key names, and whether each was added,
removed or changed.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from gitopskit import git
from gitopskit.config import Settings
from gitopskit.errors import ConfigError, ManifestError
from gitopskit.manifests import Document, is_object, load_file, manifest_files

INDEX_FILE = ".gitopskit-files"
DEFAULT_NAMESPACE = "default"
GITLAB_NOTE_LIMIT = 1_000_000
MASK = "***"

#: Core cluster-scoped kinds; any other kind is taken as namespaced.
CLUSTER_SCOPED_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("node.k8s.io", "RuntimeClass"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("resource.k8s.io", "DeviceClass"),
        ("resource.k8s.io", "ResourceSlice"),
    }
)

Change = Literal["added", "removed", "changed", "moved", "unchanged"]
CHANGES: tuple[Change, ...] = ("added", "removed", "changed", "moved", "unchanged")
Format = Literal["text", "markdown", "json"]
FORMATS: tuple[Format, ...] = ("text", "markdown", "json")


@dataclass(frozen=True, order=True)
class Identity:
    """What makes a resource itself, whatever file it is in.

    Attributes:
        namespace: Empty for cluster-scoped kinds.
        kind: The kind.
        name: ``metadata.name``.
        group: The API group, empty for the core group (``v1``).
    """

    namespace: str
    kind: str
    name: str
    group: str

    @property
    def cluster_scoped(self) -> bool:
        """Whether the kind has no namespace."""
        return not self.namespace

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind} {self.namespace}/{self.name}" if self.namespace else f"{kind} {self.name}"


def api_group(api_version: str) -> str:
    """The group of an ``apiVersion``: ``apps/v1`` → ``apps``, ``v1`` → ``""``."""
    group, slash, _ = api_version.rpartition("/")
    return group if slash else ""


def is_cluster_scoped(group: str, kind: str) -> bool:
    """Whether a kind is one of the built-in cluster-scoped kinds."""
    return (group, kind) in CLUSTER_SCOPED_KINDS


def identity_of(obj: Mapping[str, Any], default_namespace: str = DEFAULT_NAMESPACE) -> Identity:
    """The identity of a Kubernetes object (a mapping with ``apiVersion``, ``kind``, a name).

    Raises:
        ValueError: It has no ``metadata.name``.
    """
    group = api_group(obj["apiVersion"])
    kind = obj["kind"]
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError("no metadata.name")
    if is_cluster_scoped(group, kind):
        namespace = ""
    else:
        given = metadata.get("namespace") if isinstance(metadata, dict) else None
        namespace = str(given) if given else default_namespace
    return Identity(namespace, kind, name, group)


@dataclass(frozen=True)
class Resource:
    """One object of a tree.

    Attributes:
        identity: Group, kind, namespace, name.
        data: The object as loaded.
        file: Its file, relative to the tree's root.
        line: The line its document starts on.
    """

    identity: Identity
    data: dict[str, Any]
    file: str
    line: int

    @property
    def api_version(self) -> str:
        """The object's ``apiVersion``."""
        return str(self.data["apiVersion"])


@dataclass
class Tree:
    """The Kubernetes objects of a tree of manifests.

    Attributes:
        label: Names the tree in messages (``dist``, a URL and branch).
        resources: Every object, by identity.
        files: The files read, relative to the root.
        notes: Things worth knowing (skipped documents, unmanaged files), for stderr.
    """

    label: str
    resources: dict[Identity, Resource] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _relative(path: str, where: str) -> str:
    pure = PurePosixPath(path.strip())
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise ManifestError(f"{where}: {path!r} is not a path inside the manifests directory")
    return pure.as_posix()


def read_index(path: Path) -> list[str]:
    """The files listed in an ownership index file (see :func:`parse_index`).

    Raises:
        ManifestError: It cannot be read, or lists a path outside its directory.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path}: cannot read the ownership index: {error}") from None
    return parse_index(text, path.name)


def parse_index(text: str, name: str = INDEX_FILE) -> list[str]:
    """The files an ownership index lists: one path a line; ``#`` lines and blanks skipped.

    Raises:
        ManifestError: It lists a path outside its directory.
    """
    files = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = "" if raw.lstrip().startswith("#") else raw.strip()
        if line:
            files.append(_relative(line, f"{name}:{number}"))
    return list(dict.fromkeys(files))


def _listing(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _select_files(base: Path, files: Iterable[str] | None, tree: Tree) -> list[str]:
    if files is not None:
        return sorted(dict.fromkeys(_relative(f, tree.label) for f in files))
    on_disk = [p.relative_to(base).as_posix() for p in manifest_files(base)]
    index = base / INDEX_FILE
    if not index.is_file():
        return on_disk
    listed = read_index(index)
    listed_set = set(listed)
    unmanaged = [f for f in on_disk if f not in listed_set]
    if unmanaged:
        tree.notes.append(
            f"{tree.label}: {len(unmanaged)} YAML file{'s' if len(unmanaged) != 1 else ''} not "
            f"listed in {INDEX_FILE} {'are' if len(unmanaged) != 1 else 'is'} not managed by "
            f"gitopskit and not compared: {_listing(unmanaged)}"
        )
    missing = [f for f in listed if not (base / f).is_file()]
    if missing:
        tree.notes.append(f"{tree.label}: listed in {INDEX_FILE} but missing: {_listing(missing)}")
    return sorted(f for f in listed if f not in set(missing))


def _objects(documents: list[Document]) -> Iterator[tuple[Document, dict[str, Any]]]:
    for doc in documents:
        data = doc.data
        if doc.is_object and data["kind"].endswith("List") and isinstance(data.get("items"), list):
            for item in data["items"]:
                yield doc, item
        else:
            yield doc, data


def load_tree(
    root: Path,
    *,
    files: Iterable[str] | None = None,
    subdir: str = "",
    label: str | None = None,
    default_namespace: str = DEFAULT_NAMESPACE,
) -> Tree:
    """Read the Kubernetes objects of a tree of manifests.

    Which files: ``files`` when given; else, when ``root/subdir`` holds ``.gitopskit-files``,
    exactly the files it lists (other YAML there is noted as not managed); else every
    ``*.yaml``/``*.yml`` file under ``root/subdir``, hidden directories skipped.

    Args:
        root: The tree (a checkout, ``dist/``).
        files: An explicit file set, relative to ``root/subdir``.
        subdir: The manifests' directory inside ``root`` (``MANIFESTS_PATH``). When it does not
            exist the tree is empty, with a note.
        label: Names the tree in messages (default: ``root``).
        default_namespace: The namespace of a namespaced object that names none.

    Returns:
        The objects by identity, file paths relative to ``root/subdir``.

    Raises:
        ManifestError: A YAML syntax error (file and line), an unreadable file, two objects with
            the same identity (both files named), or an explicitly given file that is missing.
    """
    subpath = _relative(subdir, "MANIFESTS_PATH") if subdir.strip("/. ") else ""
    base = root / subpath if subpath else root
    name = label if label is not None else str(root)
    tree = Tree(label=f"{name}/{subpath}" if subpath else name)
    if not base.is_dir():
        tree.notes.append(f"{tree.label}: no such directory, so it holds no objects")
        return tree
    tree.files = _select_files(base, files, tree)
    skipped: list[str] = []
    for rel in tree.files:
        shown = f"{tree.label}/{rel}"
        path = base / rel
        if files is not None and not path.is_file():
            raise ManifestError(f"{shown}: no such file")
        for doc, obj in _objects(load_file(path, shown)):
            if not is_object(obj):
                skipped.append(f"{rel}:{doc.line}")
                continue
            try:
                ident = identity_of(obj, default_namespace)
            except ValueError:
                skipped.append(f"{rel}:{doc.line} (no metadata.name)")
                continue
            first = tree.resources.get(ident)
            if first is not None:
                raise ManifestError(
                    f"{ident} is defined twice in {tree.label}: "
                    f"{first.file}:{first.line} and {rel}:{doc.line}",
                    hint="an object is identified by API group, kind, namespace and name; "
                    "remove or rename one of them",
                )
            tree.resources[ident] = Resource(ident, obj, rel, doc.line)
    if skipped:
        what = (
            f"{len(skipped)} YAML documents that are not Kubernetes objects"
            if len(skipped) != 1
            else "1 YAML document that is not a Kubernetes object"
        )
        tree.notes.append(f"{tree.label}: skipped {what}: {_listing(skipped)}")
    return tree


# --- comparing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceChange:
    """One resource in the result.

    Attributes:
        change: added, removed, changed, moved or unchanged.
        identity: Group, kind, namespace, name.
        api_version: The new object's ``apiVersion`` (the old one's when removed).
        file: Its file in the new tree (the old tree's when removed).
        from_file: Its file in the old tree, when it moved (also for a changed resource).
        diff: A unified diff of its YAML, Secret values masked; empty when unchanged or moved.
    """

    change: Change
    identity: Identity
    api_version: str
    file: str
    from_file: str | None = None
    diff: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON form: change, apiVersion, kind, namespace, name, file, [from_file], diff."""
        out: dict[str, Any] = {
            "change": self.change,
            "apiVersion": self.api_version,
            "kind": self.identity.kind,
            "namespace": self.identity.namespace or None,
            "name": self.identity.name,
            "file": self.file,
        }
        if self.from_file is not None:
            out["from_file"] = self.from_file
        out["diff"] = self.diff
        return out


@dataclass
class DiffResult:
    """What changes between two trees.

    Attributes:
        summary: How many resources are added, removed, changed, unchanged, moved.
        resources: Every resource that is not unchanged, in identity order.
        notes: The trees' notes, for stderr.
    """

    summary: dict[str, int]
    resources: list[ResourceChange]
    notes: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """Whether anything is added, removed, changed or moved (``--exit-code``)."""
        return bool(self.resources)

    def summary_line(self) -> str:
        """``1 added, 0 removed, 2 changed, 0 moved, 10 unchanged``."""
        return ", ".join(
            f"{self.summary[k]} {k}" for k in ("added", "removed", "changed", "moved", "unchanged")
        )


_TYPED_TEXT = json.JSONEncoder(default=repr).encode


def _strictly_equal(a: Any, b: Any) -> bool:
    """Equal with types: ``==`` takes ``True == 1 == 1.0``; Kubernetes does not."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_strictly_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_strictly_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def same_object(a: Any, b: Any) -> bool:
    """Whether two loaded objects mean the same, key order aside.

    ``==`` first (C speed; it already tells most changes); equal values then get a type check
    through their JSON text (``true`` is not ``1``), and only when that differs, because key
    order differs, a walk.
    """
    if a != b:
        return False
    try:
        if _TYPED_TEXT(a) == _TYPED_TEXT(b):
            return True
    except (TypeError, ValueError, RecursionError):
        pass
    return _strictly_equal(a, b)


class _Dumper(yaml.CSafeDumper):
    """Quotes every string that a YAML 1.1 reader (Kubernetes' go-yaml) could take otherwise."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
_Dumper.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^0o[0-7_]+$"), ["0"])


def to_yaml(obj: Any) -> str:
    """YAML with sorted keys, YAML 1.1-safe quoting (``"on"``, ``"0644"``), for display only."""
    return yaml.dump(
        obj,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,
    )


def is_secret(identity: Identity) -> bool:
    """Whether an object's ``data``/``stringData`` values must be masked."""
    return identity.kind == "Secret" and identity.group == ""


_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _masked_values(values: Any, other: Any, marker: str) -> Any:
    if not isinstance(values, dict):
        return MASK if values is not None else None
    others = other if isinstance(other, dict) else {}
    masked = {}
    for key, value in values.items():
        differs = key in others and not same_object(value, others[key])
        masked[key] = f"{MASK} ({marker})" if differs else MASK
    return masked


def mask_secret(obj: dict[str, Any], other: dict[str, Any] | None, marker: str) -> dict[str, Any]:
    """A copy of a Secret with its values masked, as ``kubectl diff`` does.

    A key whose value differs from ``other``'s reads ``*** (before)``/``*** (after)``
    (``marker``), so that a unified diff shows which keys were added, removed or changed and
    never a value. The ``last-applied-configuration`` annotation, a copy of the whole object,
    is masked too.

    Args:
        obj: The Secret.
        other: The same Secret on the other side, or None.
        marker: ``before`` or ``after``.
    """
    masked = dict(obj)
    for section in ("data", "stringData"):
        if section in obj:
            theirs = other.get(section) if other is not None else None
            masked[section] = _masked_values(obj[section], theirs, marker)
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if (
        isinstance(metadata, dict)
        and isinstance(annotations, dict)
        and _LAST_APPLIED in annotations
    ):
        masked["metadata"] = {**metadata, "annotations": {**annotations, _LAST_APPLIED: MASK}}
    return masked


def unified(old: Resource | None, new: Resource | None) -> str:
    """A unified diff of one resource's YAML (keys sorted, Secret values masked).

    Args:
        old: The resource before (None when added).
        new: The resource after (None when removed).
    """
    old_data = old.data if old else None
    new_data = new.data if new else None
    either = new or old
    if either is not None and is_secret(either.identity):
        if old is not None:
            old_data = mask_secret(old.data, new.data if new else None, "before")
        if new is not None:
            new_data = mask_secret(new.data, old.data if old else None, "after")
    before = to_yaml(old_data).splitlines(keepends=True) if old_data is not None else []
    after = to_yaml(new_data).splitlines(keepends=True) if new_data is not None else []
    lines = difflib.unified_diff(
        before,
        after,
        fromfile=f"a/{old.file}" if old else "/dev/null",
        tofile=f"b/{new.file}" if new else "/dev/null",
        n=3,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def compare(old: Tree, new: Tree) -> DiffResult:
    """Match two trees by identity and tell what happens to each resource.

    Args:
        old: What is there now (the manifests repository).
        new: What would be there (the synthesized output).

    Returns:
        The counts, every resource that is not unchanged (with its diff), and both trees' notes.
    """
    counts: Counter[str] = Counter({change: 0 for change in CHANGES})
    changes: list[ResourceChange] = []
    for ident in sorted(old.resources.keys() | new.resources.keys()):
        before = old.resources.get(ident)
        after = new.resources.get(ident)
        if before is None and after is not None:
            change = ResourceChange(
                "added", ident, after.api_version, after.file, diff=unified(None, after)
            )
        elif after is None and before is not None:
            change = ResourceChange(
                "removed", ident, before.api_version, before.file, diff=unified(before, None)
            )
        else:
            assert before is not None and after is not None
            moved_from = before.file if before.file != after.file else None
            text = "" if same_object(before.data, after.data) else unified(before, after)
            if text:
                kind: Change = "changed"
            else:
                kind = "moved" if moved_from else "unchanged"
            if kind == "unchanged":
                counts["unchanged"] += 1
                continue
            change = ResourceChange(kind, ident, after.api_version, after.file, moved_from, text)
        counts[change.change] += 1
        changes.append(change)
    summary = {k: counts[k] for k in ("added", "removed", "changed", "unchanged", "moved")}
    return DiffResult(summary, changes, [*old.notes, *new.notes])


def diff_against(
    new_root: Path,
    against: str,
    *,
    ref: str | None = None,
    subdir: str = "",
    new_files: Iterable[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> DiffResult:
    """Compare a directory of manifests (``dist/``) with a manifests tree, wherever it is.

    Args:
        new_root: The new manifests (the synthesized output).
        against: A directory compared as it stands, or a git URL (``://``, ``user@host:path``,
            a bare repository) fetched shallowly into a temporary directory.
        ref: The branch of a git URL (its default branch when None).
        subdir: The manifests' directory inside ``against`` (``MANIFESTS_PATH``).
        new_files: An explicit file set for the new side (all its YAML by default).
        extra_env: Added to git's environment (auth).

    Raises:
        ConfigError: ``against`` is neither, or ``ref`` is given with a plain directory.
        GitError: The fetch failed.
        ManifestError: Either tree cannot be read.
    """
    if not new_root.is_dir():
        raise ConfigError(
            f"{new_root} does not exist", hint="run invoke synth first, or drop --no-synth"
        )
    kind = git.classify(against)
    if kind is git.SourceKind.DIRECTORY and ref:
        raise ConfigError(
            f"--ref {ref} names a branch, but {against} is a plain directory, "
            "compared as it stands on disk",
            hint=f"drop --ref, or give a git URL such as file://{Path(against).resolve()}",
        )
    new = load_tree(new_root, files=new_files, label=new_root.name)
    with ExitStack() as stack:
        if kind is git.SourceKind.GIT:
            root = stack.enter_context(git.temporary_clone(against, ref=ref, extra_env=extra_env))
            label = git.display_url(against) + (f"@{ref}" if ref else "")
        else:
            root = Path(against).expanduser()
            label = against.rstrip("/") or against
        old = load_tree(root, subdir=subdir, label=label)
    return compare(old, new)


@dataclass(frozen=True)
class Against:
    """What ``invoke diff`` compares with.

    Attributes:
        location: A directory, or a git URL.
        ref: The branch (None: a directory, or the remote's default branch).
        env: git's environment for a git URL (a read token as a header, a CA file).
    """

    location: str
    ref: str | None
    env: dict[str, str] | None = None


def resolve_against(settings: Settings, against: str | None, ref: str | None) -> Against:
    """What ``invoke diff`` compares with: ``--against`` and ``--ref``, else the configured
    manifests repository (``MANIFESTS_GIT_URL``, else the GitLab project ``MANIFESTS_PROJECT``
    on ``GITLAB_URL``) and its target branch.

    A token reaches git for an HTTP(S) URL on the GitLab host: ``MANIFESTS_READ_TOKEN`` (a
    ``read_repository`` token, which merge-request pipelines can have), else ``MANIFESTS_TOKEN``.

    Args:
        settings: This run's settings.
        against: ``--against``, or None.
        ref: ``--ref``, or None.

    Raises:
        ConfigError: Neither ``--against`` nor a manifests repository is configured.
    """
    if against:
        location, branch = against, ref
    else:
        configured = settings.get("MANIFESTS_GIT_URL")
        project = settings.get("MANIFESTS_PROJECT")
        gitlab_url = settings.get("GITLAB_URL")
        if not configured and project and gitlab_url:
            # GitLab's http_url_to_repo, without an API call (which would need the api scope).
            configured = f"{gitlab_url.rstrip('/')}/{project.strip('/')}.git"
        if not configured:
            raise ConfigError(
                "nothing to compare with: give --against PATH_OR_GIT_URL, or configure the "
                "manifests repository (MANIFESTS_GIT_URL, or GITLAB_URL and MANIFESTS_PROJECT)",
                hint="set the environment variable MANIFESTS_GIT_URL or "
                "gitopskit.manifests_git_url in invoke.yaml",
            )
        location, branch = configured, settings.get("MANIFESTS_TARGET_BRANCH", ref)
    token = settings.token("MANIFESTS_READ_TOKEN") or settings.token("MANIFESTS_TOKEN")
    env = None
    if git.is_http_url(location) and _same_host(location, settings.get("GITLAB_URL")):
        env = git.git_environment(location, token, ca_file=settings.get("GITLAB_CA_FILE"))
    return Against(location, branch, env)


def _same_host(url: str, gitlab_url: str | None) -> bool:
    """Tokens go only to the configured GitLab (or anywhere, when no GitLab is configured)."""
    if not gitlab_url:
        return True
    return urlsplit(url).netloc.rsplit("@", 1)[-1] == urlsplit(gitlab_url).netloc


def check_format(fmt: str) -> Format:
    """``fmt`` if it is text, markdown or json.

    Raises:
        ConfigError: Any other format.
    """
    for known in FORMATS:
        if fmt == known:
            return known
    raise ConfigError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")


# --- rendering --------------------------------------------------------------------------------

_SIGN = {"added": "+", "removed": "-", "changed": "~", "moved": ">", "unchanged": " "}
_ANSI = {"+": "32", "-": "31", "@": "36", "header": "1"}


def _title(change: ResourceChange) -> str:
    ident = change.identity
    name = f"{ident.namespace}/{ident.name}" if ident.namespace else ident.name
    where = f"{change.from_file} → {change.file}" if change.from_file else change.file
    return f"{change.change} {change.api_version} {ident.kind} {name} ({where})"


def render_text(result: DiffResult, colour: bool = False) -> str:
    """Plain or ANSI-coloured text: one header and unified diff per resource, then the counts."""

    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if colour else text

    out: list[str] = []
    for change in result.resources:
        out.append(paint(f"{_SIGN[change.change]} {_title(change)}", _ANSI["header"]) + "\n")
        for line in change.diff.splitlines():
            if line.startswith(("+++", "---")):
                out.append(paint(line, _ANSI["header"]) + "\n")
            elif line[:1] in ("+", "-", "@"):
                out.append(paint(line, _ANSI[line[0]]) + "\n")
            else:
                out.append(line + "\n")
        out.append("\n")
    out.append(("no changes: " if not result.has_changes else "") + result.summary_line() + "\n")
    return "".join(out)


def render_json(result: DiffResult) -> str:
    """One JSON document: ``{"summary": {...}, "resources": [...]}``."""
    document = {
        "summary": result.summary,
        "resources": [change.to_json() for change in result.resources],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    return "`" * (longest + 1)


def _section(change: ResourceChange, diff: str, note: str = "") -> str:
    title = html.escape(_title(change))
    if not change.diff:
        return f"<details><summary>{title}</summary>\n\nOnly the file changed.\n\n</details>\n\n"
    fence = _fence(diff)
    return (
        f"<details><summary>{title}</summary>\n\n{fence}diff\n{diff}{fence}\n{note}\n</details>\n\n"
    )


def _cut(diff: str, size: int) -> tuple[str, str]:
    """The first ``size`` characters of a diff, at a line end, and a note on what was left."""
    kept = diff[:size]
    kept = kept[: kept.rfind("\n") + 1]
    total = diff.count("\n")
    shown = kept.count("\n")
    return kept, f"\n**Truncated**: {shown} of {total} lines shown.\n"


def render_markdown(result: DiffResult, limit: int = GITLAB_NOTE_LIMIT) -> str:
    """Markdown for a merge request: a table of counts, one collapsible section per resource.

    Kept under ``limit`` characters (GitLab's note limit) by cutting the longest diffs first,
    each with a visible note, and as a last resort leaving resources out, saying how many.
    """
    rows = "| " + " | ".join(k for k in result.summary) + " |\n"
    rows += "|" + "---:|" * len(result.summary) + "\n"
    rows += "| " + " | ".join(str(v) for v in result.summary.values()) + " |\n"
    head = f"### Manifest diff\n\n{rows}\n"
    if not result.has_changes:
        return head + "No changes.\n"
    full = [_section(c, c.diff) for c in result.resources]
    if len(head) + sum(len(s) for s in full) <= limit:
        return head + "".join(full)

    warning = (
        "> **Note**: this diff is longer than the comment limit; the longest resource diffs are "
        "truncated and marked.\n\n"
    )
    overhead = [len(s) - len(c.diff) + 80 for s, c in zip(full, result.resources, strict=True)]
    budget = limit - len(head) - len(warning) - 200
    # The largest per-diff size cap that fits: binary search over 0..longest.
    low, high = 0, max(len(c.diff) for c in result.resources)
    while low < high:
        mid = (low + high + 1) // 2
        need = sum(
            o + min(len(c.diff), mid) for o, c in zip(overhead, result.resources, strict=True)
        )
        if need <= budget:
            low = mid
        else:
            high = mid - 1
    sections: list[str] = []
    used = len(head) + len(warning)
    for index, change in enumerate(result.resources):
        if len(change.diff) > low:
            kept, note = _cut(change.diff, low)
            section = _section(change, kept, note)
        else:
            section = full[index]
        left = len(result.resources) - index
        tail = f"\n**{left} more resources not shown** (the comment limit).\n"
        if used + len(section) + len(tail) + 100 > limit:
            sections.append(tail)
            break
        sections.append(section)
        used += len(section)
    return head + warning + "".join(sections)


def render(result: DiffResult, fmt: str, *, colour: bool = False) -> str:
    """Render in ``fmt`` (text, markdown, json).

    Raises:
        ConfigError: An unknown format.
    """
    if fmt == "text":
        return render_text(result, colour)
    if fmt == "markdown":
        return render_markdown(result)
    if check_format(fmt) == "json":
        return render_json(result)
    raise AssertionError(fmt)  # pragma: no cover
