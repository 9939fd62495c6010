"""A manifests tree: its files, the ones gitopskit owns, and the Kubernetes objects in them.

``invoke diff`` and ``invoke publish`` read trees through this one module, so both decide the
same way:

- **Listing** never follows a symbolic link. A directory on disk is walked entry by entry
  (``lstat`` semantics); a git tree is listed with its modes. A symlink is never read: it is
  named in a note, and publish removes it (as a link, never its target) only when it owns it.
- **Ownership** has one rule, :func:`ownership`: the paths ``.gitopskit-files`` lists, read
  exactly as publish writes it (one path per ``\\n``); without an index (before the first
  publish), the top-level ``*.yaml``/``*.yml`` regular files, which publish adopts.
- **Objects** are parsed once: every document of every file and every item of a ``List``.
  Each is kept as canonical JSON text (sorted keys, typed values), which is compact, compares
  as a string, and is decoded again only to render a change. Whether it is a Secret carrying
  plain values is decided on the parsed object, here, for every object.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from gitopskit.errors import ManifestError
from gitopskit.git import Repo
from gitopskit.manifests import MANIFEST_SUFFIXES, describe, is_object, load_documents

INDEX_FILE = ".gitopskit-files"
DEFAULT_NAMESPACE = "default"
_INDEX_HEADER = (
    "# Files owned by `invoke publish` (gitopskit), relative to this directory.\n"
    "# Publish rewrites or removes exactly these; every other file here is left alone.\n"
)
_LISTED = 10

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


# --- paths ------------------------------------------------------------------------------------

#: Unicode categories no path of ours may hold: control and format characters, line and
#: paragraph separators, and surrogates (a file name that is not valid UTF-8).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def path_problem(path: str) -> str | None:
    """What makes ``path`` unfit to be an owned path (None: fit).

    An owned path is relative, has no ``.``/``..`` or empty components, holds no control or
    format character and no line or paragraph separator (so that one ``\\n`` line of the index
    is one path, however it is read), and does not start with ``#`` (an index comment).
    """
    if not path:
        return "an empty path"
    for char in path:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return f"the character U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"
    if path.startswith("#"):
        return "a name starting with #"
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return "a path that is not plainly inside the directory"
    return None


def check_path(path: str, where: str) -> str:
    """``path`` if :func:`path_problem` finds nothing wrong with it.

    Raises:
        ManifestError: It is unfit, naming ``where`` and why.
    """
    problem = path_problem(path)
    if problem is not None:
        raise ManifestError(f"{where}: {path!r} holds {problem}; gitopskit refuses such paths")
    return path


def subdir_path(subdir: str) -> str:
    """``MANIFESTS_PATH`` normalised: '' for the root, else ``a/b`` without slashes around.

    Raises:
        ManifestError: It leaves the repository or holds refused characters.
    """
    stripped = subdir.strip().strip("/")
    if stripped in ("", "."):
        return ""
    return check_path(PurePosixPath(stripped).as_posix(), "MANIFESTS_PATH")


def join(base: str, path: str) -> str:
    """``base/path``, or ``path`` when ``base`` is the root."""
    return f"{base}/{path}" if base else path


def listing_text(names: list[str], limit: int = _LISTED) -> str:
    """``a, b, c and 4 more``."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --- the ownership index ----------------------------------------------------------------------


def index_bytes(files: Iterable[str]) -> bytes:
    """The ownership index publish writes: a header, then one path per ``\\n`` line, sorted.

    Raises:
        ManifestError: A path :func:`path_problem` refuses.
    """
    paths = sorted({check_path(f, "synthesized file") for f in files})
    return (_INDEX_HEADER + "".join(f"{p}\n" for p in paths)).encode()


def parse_index(data: bytes, name: str = INDEX_FILE) -> list[str]:
    """The paths an ownership index lists, read exactly as :func:`index_bytes` writes them.

    Lines are split on ``\\n`` only; lines starting with ``#`` and empty lines are skipped; no
    other character is trimmed or interpreted.

    Raises:
        ManifestError: It is not UTF-8, or a line is not a path gitopskit could have written
            (a carriage return, another control character, ``..``), naming the line.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ManifestError(f"{name}: not UTF-8 text: {error.reason}") from None
    paths: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line or line.startswith("#"):
            continue
        paths.append(check_path(line, f"{name}:{number}"))
    return list(dict.fromkeys(paths))


# --- listings ---------------------------------------------------------------------------------


class Kind(Enum):
    """What a path in a tree is. Directories are not listed; their files are."""

    FILE = "file"
    LINK = "symbolic link"
    OTHER = "special file"


Listing = dict[str, Kind]


class Reader(Protocol):
    """A tree to read: a directory on disk or a commit's tree."""

    label: str
    listing: Listing

    def read(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """The content of each regular file of ``paths`` (relative to the tree's base)."""
        ...  # pragma: no cover


class DirectoryReader:
    """A directory on disk, read without following any symbolic link inside it.

    Hidden directories (``.git``) are not entered. Files are opened with ``O_NOFOLLOW``.

    Args:
        root: The directory the user named (it is taken as given).
        subdir: The manifests' directory inside it, every component checked not to be a link.
        label: Names the tree in messages.

    Raises:
        ManifestError: A component of ``subdir`` is a symbolic link or not a directory.
    """

    def __init__(self, root: Path, subdir: str = "", label: str | None = None) -> None:
        self.subdir = subdir_path(subdir)
        name = label if label is not None else str(root)
        self.label = join(name, self.subdir) if self.subdir else name
        self.base = root
        self.exists = root.is_dir()
        for part in self.subdir.split("/") if self.subdir else []:
            self.base = self.base / part
            try:
                mode = self.base.lstat().st_mode
            except FileNotFoundError:
                self.exists = False
                break
            if stat.S_ISLNK(mode):
                raise ManifestError(
                    f"{self.label}: {part} is a symbolic link; gitopskit never follows one"
                )
            if not stat.S_ISDIR(mode):
                raise ManifestError(f"{self.label}: {part} is not a directory")
        self.listing: Listing = list_directory(self.base) if self.exists else {}

    def read(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        for path in paths:
            yield path, read_regular_file(self.base / path, f"{self.label}/{path}")


class GitReader:
    """The tree of one commit, read with git's plumbing: nothing is checked out.

    Args:
        repo: The repository holding the commit.
        rev: The commit.
        subdir: The manifests' directory inside its tree; every component is checked not to be
            a symbolic link.
        label: Names the tree in messages.

    Raises:
        ManifestError: A component of ``subdir`` is a symbolic link or a file.
    """

    def __init__(self, repo: Repo, rev: str, subdir: str = "", label: str = "") -> None:
        self.repo = repo
        self.subdir = subdir_path(subdir)
        name = label or rev[:8]
        self.label = join(name, self.subdir) if self.subdir else name
        self.exists = True
        if self.subdir:
            parts = self.subdir.split("/")
            for prefix in ("/".join(parts[: i + 1]) for i in range(len(parts))):
                mode = repo.entry_mode(rev, prefix)
                if mode is None:
                    self.exists = False
                    break
                if mode == "120000":
                    raise ManifestError(
                        f"{self.label}: {prefix} is a symbolic link in the manifests repository; "
                        "gitopskit never follows one"
                    )
                if mode != "040000":
                    raise ManifestError(f"{self.label}: {prefix} is a file, not a directory")
        entries = repo.entries(rev, self.subdir) if self.exists else {}
        kinds = {"file": Kind.FILE, "link": Kind.LINK}
        self.listing: Listing = {p: kinds.get(k, Kind.OTHER) for p, (k, _) in entries.items()}
        self.blobs = {p: sha for p, (_, sha) in entries.items()}

    def read(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        wanted = [p for p in paths if self.listing.get(p) is Kind.FILE]
        yield from zip(wanted, self.repo.read_blobs(self.blobs[p] for p in wanted), strict=True)


def read_index(reader: Reader) -> bytes | None:
    """The ownership index of a tree, or None when it has none.

    Raises:
        ManifestError: The index is a symbolic link or a special file.
    """
    kind = reader.listing.get(INDEX_FILE)
    if kind is None:
        return None
    if kind is not Kind.FILE:
        raise ManifestError(
            f"{reader.label}/{INDEX_FILE} is a {kind.value}, not the file publish writes; "
            "gitopskit never follows or reads one",
            hint="remove it from the manifests repository",
        )
    for _, data in reader.read([INDEX_FILE]):
        return data
    return None  # pragma: no cover


def read_regular_file(path: Path, shown: str) -> bytes:
    """The bytes of a regular file, refusing a symbolic link or anything that is not a file.

    Raises:
        ManifestError: It cannot be read, is a link, or is not a regular file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        reason = "a symbolic link, never followed" if error.errno == errno.ELOOP else error.strerror
        raise ManifestError(f"{shown}: cannot read: {reason}") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise ManifestError(f"{shown}: not a regular file")
        return file.read()


def list_directory(base: Path) -> Listing:
    """Every non-directory entry under ``base`` by relative POSIX path; links are not followed
    and hidden directories are not entered."""
    found: Listing = {}

    def walk(directory: str, prefix: str) -> None:
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if entry.is_symlink():
                    found[rel] = Kind.LINK
                elif entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("."):
                        walk(entry.path, rel + "/")
                elif entry.is_file(follow_symlinks=False):
                    found[rel] = Kind.FILE
                else:
                    found[rel] = Kind.OTHER

    walk(str(base), "")
    return dict(sorted(found.items()))


def is_manifest_name(path: str) -> bool:
    """Whether a path names a manifest file (``*.yaml``/``*.yml``)."""
    return path.endswith(MANIFEST_SUFFIXES)


# --- ownership --------------------------------------------------------------------------------


@dataclass
class Ownership:
    """Which paths of a tree gitopskit owns, by the one rule of :func:`ownership`.

    Attributes:
        files: Regular files it owns: read, compared, replaced or removed.
        links: Symbolic links it owns: never read; publish removes them as links.
        indexed: Whether an index said so (False: the adoption rule of a first publish).
        adopted: The files adopted by the first publish (empty once indexed).
        notes: Things worth knowing: links, listed paths that are missing or directories.
    """

    files: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    indexed: bool = False
    adopted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def ownership(listing: Mapping[str, Kind], index: bytes | None, label: str) -> Ownership:
    """The paths of a tree gitopskit owns: one rule for diff and publish.

    With an index (``.gitopskit-files`` read by :func:`parse_index`): the regular files and
    symbolic links it lists. A listed path that is now a directory, a special file, or missing
    is not owned (noted). Without an index: the top-level ``*.yaml``/``*.yml`` regular files not
    starting with a dot, which the first publish adopts (``.gitlab-ci.yml``, nested folders and
    links are never adopted).

    Args:
        listing: The tree's entries (see :class:`Kind`).
        index: The index's bytes, or None when there is none.
        label: Names the tree in notes.

    Raises:
        ManifestError: The index is unreadable or lists a path gitopskit could not have written.
    """
    owned = Ownership(indexed=index is not None)
    if index is not None:
        listed = parse_index(index, f"{label}/{INDEX_FILE}")
        directories, others, missing = [], [], []
        for path in listed:
            kind = listing.get(path)
            if kind is Kind.FILE:
                owned.files.append(path)
            elif kind is Kind.LINK:
                owned.links.append(path)
            elif kind is Kind.OTHER:
                others.append(path)
            elif _is_directory(listing, path):
                directories.append(path)
            else:
                missing.append(path)
        if directories:
            owned.notes.append(
                f"{label}: listed in {INDEX_FILE} but now a directory, left alone: "
                + listing_text(directories)
            )
        if others:
            owned.notes.append(
                f"{label}: listed in {INDEX_FILE} but a special file, left alone: "
                + listing_text(others)
            )
        if missing:
            owned.notes.append(
                f"{label}: listed in {INDEX_FILE} but missing: {listing_text(missing)}"
            )
    else:
        for path, kind in listing.items():
            if "/" in path or path.startswith(".") or not is_manifest_name(path):
                continue
            if kind is Kind.FILE:
                owned.files.append(path)
        owned.adopted = list(owned.files)
    if owned.links:
        links = _plural(len(owned.links), "owned symbolic link")
        owned.notes.append(
            f"{label}: {links}, never read or followed (publish removes a link it owns as a "
            f"link): {listing_text(owned.links)}"
        )
    return owned


def _is_directory(listing: Mapping[str, Kind], path: str) -> bool:
    prefix = path + "/"
    return any(name.startswith(prefix) for name in listing)


def unmanaged_notes(listing: Mapping[str, Kind], owned: Ownership, label: str) -> list[str]:
    """Notes on the YAML files and symbolic links of a tree that gitopskit does not own."""
    mine = set(owned.files) | set(owned.links)
    yaml_files = [p for p, k in listing.items() if k is Kind.FILE and is_manifest_name(p)]
    unmanaged = [p for p in yaml_files if p not in mine and p != INDEX_FILE]
    links = [p for p, k in listing.items() if k is Kind.LINK and p not in mine]
    notes = []
    if unmanaged:
        notes.append(
            f"{label}: {_plural(len(unmanaged), 'YAML file')} not owned by gitopskit, not "
            f"compared and never changed: {listing_text(unmanaged)}"
        )
    if links:
        notes.append(
            f"{label}: {_plural(len(links), 'symbolic link')} never read or followed: "
            + listing_text(links)
        )
    return notes


# --- objects ----------------------------------------------------------------------------------


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


def _is_secret_kind(kind: str, group: str) -> bool:
    # Any case: a cluster refuses ``kind: secret``, but its values would be in git all the same.
    return kind.casefold() == "secret" and group == ""


def is_secret(identity: Identity) -> bool:
    """Whether an object is a core Secret, whose ``data``/``stringData`` values are masked."""
    return _is_secret_kind(identity.kind, identity.group)


def is_plain_secret(obj: Any) -> bool:
    """Whether a parsed object is a core ``v1`` Secret carrying ``data`` or ``stringData``."""
    return (
        is_object(obj)
        and _is_secret_kind(obj["kind"], api_group(obj["apiVersion"]))
        and bool(obj.get("data") or obj.get("stringData"))
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):  # !!binary: base64, as Kubernetes' YAML-to-JSON gives it
        return base64.b64encode(value).decode()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _string_keys(value: Any) -> Any:
    """Keys made strings, as Kubernetes' YAML-to-JSON conversion makes them."""
    if isinstance(value, dict):
        return {_key_text(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    return json.dumps(key, default=_jsonable) if key is None or isinstance(key, bool) else str(key)


def canonical(obj: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, typed (``true`` is not ``1``, ``1`` is not
    ``1.0``), so two objects mean the same exactly when their texts are equal."""
    options: dict[str, Any] = {
        "sort_keys": True,
        "separators": (",", ":"),
        "ensure_ascii": False,
        "default": _jsonable,
    }
    try:
        return json.dumps(obj, **options)
    except TypeError:  # keys of mixed types (1 and "a") cannot be sorted
        return json.dumps(_string_keys(obj), **options)


@dataclass(frozen=True, slots=True)
class Resource:
    """One object of a tree, kept as canonical JSON (see :func:`canonical`).

    Attributes:
        identity: Group, kind, namespace, name.
        text: The object as canonical JSON.
        api_version: Its ``apiVersion``.
        file: Its file, relative to the tree's base.
        line: The line its document starts on.
    """

    identity: Identity
    text: str
    api_version: str
    file: str
    line: int

    @property
    def data(self) -> dict[str, Any]:
        """The object, decoded anew from its text (for rendering a change)."""
        data: dict[str, Any] = json.loads(self.text)
        return data


@dataclass
class Tree:
    """The Kubernetes objects of a tree of manifests.

    Attributes:
        label: Names the tree in messages (``dist``, a URL and branch).
        resources: Every object, by identity.
        files: The files read, relative to the tree's base.
        plain_secrets: Secrets carrying plain ``data``/``stringData``, as ``namespace/name
            (file:line)``, whether or not they have a name.
        broken: Files that could not be parsed, when that was tolerated (see :func:`load`).
        notes: Things worth knowing (skipped documents, links, unowned files), for stderr.
    """

    label: str
    resources: dict[Identity, Resource] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    plain_secrets: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def object_count(self) -> int:
        """How many objects it holds."""
        return len(self.resources)


def _items(data: Any) -> Iterator[Any]:
    """The objects of one document: itself, or every item of a ``List`` (``*List`` kinds, with
    or without an ``apiVersion``: kustomize, which Flux applies with, expands them alike)."""
    if (
        isinstance(data, dict)
        and isinstance(data.get("kind"), str)
        and data["kind"].endswith("List")
        and isinstance(data.get("items"), list)
    ):
        for item in data["items"]:
            yield from _items(item)
    else:
        yield data


def load(
    reader: Reader,
    files: Iterable[str],
    *,
    default_namespace: str = DEFAULT_NAMESPACE,
    tolerate_broken: bool = False,
    tree: Tree | None = None,
) -> Tree:
    """Parse ``files`` of ``reader`` into a :class:`Tree`, streaming document by document.

    Args:
        reader: Where the files are.
        files: Which files, relative to the reader's base.
        default_namespace: The namespace of a namespaced object that names none.
        tolerate_broken: A file that is not valid YAML is noted in :attr:`Tree.broken` and
            holds no objects, instead of failing (publish replaces an owned file it cannot
            read).
        tree: Add to this tree instead of a new one.

    Raises:
        ManifestError: A file cannot be read or parsed (unless tolerated), or two objects
            have the same identity (both named).
    """
    tree = tree if tree is not None else Tree(reader.label)
    skipped: list[str] = []
    for rel, data in reader.read(files):
        tree.files.append(rel)
        shown = f"{reader.label}/{rel}"
        found: list[tuple[Identity, Resource]] = []
        try:
            for document in load_documents(data, shown):
                for obj in _items(document.data):
                    if is_plain_secret(obj):
                        where = describe(obj).split(" ", 2)[2]
                        tree.plain_secrets.append(f"{where} ({rel}:{document.line})")
                    if not is_object(obj):
                        skipped.append(f"{rel}:{document.line}")
                        continue
                    try:
                        ident = identity_of(obj, default_namespace)
                    except ValueError:
                        skipped.append(f"{rel}:{document.line} (no metadata.name)")
                        continue
                    text = canonical(obj)
                    found.append(
                        (ident, Resource(ident, text, str(obj["apiVersion"]), rel, document.line))
                    )
        except ManifestError as error:
            if not tolerate_broken:
                raise
            tree.broken.append(rel)
            tree.notes.append(
                f"{error.message} (a file gitopskit owns: not compared, and publish replaces it)"
            )
            continue
        for ident, resource in found:
            first = tree.resources.get(ident)
            if first is not None:
                raise ManifestError(
                    f"{ident} is defined twice in {tree.label}: "
                    f"{first.file}:{first.line} and {resource.file}:{resource.line}",
                    hint="an object is identified by API group, kind, namespace and name; "
                    "remove or rename one of them",
                )
            tree.resources[ident] = resource
    if skipped:
        what = _plural(len(skipped), "YAML document that is not a Kubernetes object",
                       "YAML documents that are not Kubernetes objects")  # fmt: skip
        tree.notes.append(f"{tree.label}: skipped {what}: {listing_text(skipped)}")
    return tree


# --- the two kinds of trees -------------------------------------------------------------------


@dataclass
class Output:
    """A synthesized output directory, listed and parsed once.

    Attributes:
        tree: Its objects (every ``*.yaml``/``*.yml`` file outside hidden directories).
        links: Symbolic links in it, which are never read.
        reader: The directory it was read from.
    """

    tree: Tree
    links: list[str]
    reader: DirectoryReader


def load_output(outdir: Path, label: str | None = None) -> Output:
    """Read a synthesized output directory (``dist/``): every manifest file, parsed once.

    Raises:
        ManifestError: A file name gitopskit refuses (control characters, line separators…),
            a YAML error, or an identity defined twice.
    """
    reader = DirectoryReader(outdir, label=label if label is not None else outdir.name)
    files = [p for p, k in reader.listing.items() if k is Kind.FILE and is_manifest_name(p)]
    for path in files:
        check_path(path, f"{reader.label}/{path}")
    links = [p for p, k in reader.listing.items() if k is Kind.LINK]
    tree = load(reader, files)
    if links:
        tree.notes.append(
            f"{reader.label}: {_plural(len(links), 'symbolic link')} not read: "
            + listing_text(links)
        )
    return Output(tree, links, reader)


def load_owned(
    reader: Reader,
    *,
    only: Iterable[str] | None = None,
    tolerate_broken: bool = False,
) -> tuple[Tree, Ownership]:
    """The objects of the files gitopskit owns in a manifests tree, with the ownership.

    Args:
        reader: The manifests tree (its base is ``MANIFESTS_PATH``).
        only: Parse just these owned files (publish skips files identical on both sides).
        tolerate_broken: See :func:`load`.

    Raises:
        ManifestError: The index is bad, or an owned file cannot be parsed (unless tolerated).
    """
    owned = ownership(reader.listing, read_index(reader), reader.label)
    tree = Tree(reader.label)
    tree.notes += owned.notes
    tree.notes += unmanaged_notes(reader.listing, owned, reader.label)
    wanted = owned.files if only is None else [f for f in owned.files if f in set(only)]
    load(reader, wanted, tolerate_broken=tolerate_broken, tree=tree)
    return tree, owned
