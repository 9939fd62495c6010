"""Reading Kubernetes manifests the way Kubernetes reads them.

Kubernetes reads YAML 1.1 (``on``/``yes``/``no`` are booleans, ``0644`` is octal) and keeps
timestamps as strings. PyYAML's libyaml-backed ``CSafeLoader`` is YAML 1.1 by nature and the
fastest loader among our dependencies (see benchmarks/), so it is the one used, and its presence
is checked at run time rather than silently falling back to pure Python.

What Kubernetes refuses is refused here too, at load, as a :class:`ManifestError` naming file and
line, so that no later step (comparing, rendering, validating) can be made to stall on it:

- Excessive alias expansion ("billion laughs"), by go-yaml's own rule (see
  :func:`excessive_aliasing`). PyYAML shares an aliased object instead of copying it, so the
  blow-up would only come later, when the objects are walked, encoded or dumped; the rule is
  therefore applied to what a full expansion would decode, counted on the node graph.
  An anchor whose value contains its own alias is refused as go-yaml refuses it.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitopskit.errors import ManifestError

MANIFEST_SUFFIXES = (".yaml", ".yml")
_TOP_LEVEL_KIND = re.compile(r"^kind:[ \t]*(\S+)[ \t]*$", re.MULTILINE)

_MERGE_TAG = "tag:yaml.org,2002:merge"

# go-yaml's bounds (decode.go, v2 and v3): up to 400,000 decoded nodes, 99% of them may come from
# alias expansion; from 4,000,000 on, 10%; linearly in between. Checked only beyond 100
# alias-driven and 1,000 decoded nodes in all.
_ALIAS_RATIO_RANGE_LOW = 400_000
_ALIAS_RATIO_RANGE_HIGH = 4_000_000
_ALIAS_RATIO_RANGE = float(_ALIAS_RATIO_RANGE_HIGH - _ALIAS_RATIO_RANGE_LOW)


def _require_libyaml() -> type[yaml.CSafeLoader]:
    if not getattr(yaml, "__with_libyaml__", False):
        raise ManifestError(
            "PyYAML was installed without libyaml, so YAML would load in slow pure Python",
            hint="reinstall PyYAML from a wheel: pip install --force-reinstall PyYAML",
        )
    return yaml.CSafeLoader


def allowed_alias_ratio(decodes: int) -> float:
    """The share of decoded nodes that go-yaml lets come from alias expansion.

    0.99 up to 400,000 decoded nodes, falling linearly to 0.10 at 4,000,000, 0.10 beyond: small
    and medium documents may alias freely, very large ones only a little.

    Args:
        decodes: How many nodes have been decoded so far (aliases expanded).
    """
    if decodes <= _ALIAS_RATIO_RANGE_LOW:
        return 0.99
    if decodes >= _ALIAS_RATIO_RANGE_HIGH:
        return 0.10
    return 0.99 - 0.89 * (float(decodes - _ALIAS_RATIO_RANGE_LOW) / _ALIAS_RATIO_RANGE)


def excessive_aliasing(decodes: int, aliases: int) -> bool:
    """go-yaml's test, made at every node it decodes: "document contains excessive aliasing".

    Args:
        decodes: Nodes decoded so far, the document node and every alias node included, each
            node of an alias's expansion counted again at every expansion.
        aliases: How many of them were decoded inside an alias's expansion.
    """
    return aliases > 100 and decodes > 1000 and aliases / decodes > allowed_alias_ratio(decodes)


class _Refused(Exception):
    """A document Kubernetes would refuse: turned into a :class:`ManifestError` with its file."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


# A child of a node as go-yaml decodes it: the child, whether it is the value of a merge key
# (``<<``), and the node whose line names the place (a mapping's key, else the parent).
_Child = tuple[yaml.Node, bool, yaml.Node]


def _children(node: yaml.Node) -> list[_Child]:
    if isinstance(node, yaml.MappingNode):
        children: list[_Child] = []
        for key, value in node.value:
            if key.tag == _MERGE_TAG:
                children.append((value, True, key))
            else:
                children.append((key, False, key))
                children.append((value, False, key))
        return children
    if isinstance(node, yaml.SequenceNode):
        return [(child, False, node) for child in node.value]
    return []


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a document's aliasing the way go-yaml does, before anything is constructed.

    go-yaml decodes a document node by node, every alias by decoding its anchor's node again,
    and applies :func:`excessive_aliasing` at each node. The same count is made here on the
    node graph in one pass, in document order: each node's expanded size is computed once (a
    node is complete before any alias can refer to it), and an alias adds its node's expanded
    size at once. Within one expansion both counts grow together, so the ratio only rises and
    the allowed ratio only falls: testing at its end is testing at each of its nodes.

    The count follows go-yaml v2 (sigs.k8s.io/yaml): a merge key (``<<``) is not decoded, nor
    is the sequence of a ``<<: [*a, *b]``, but the mappings it merges are.

    Raises:
        _Refused: Excessive aliasing (the line of the alias that tipped it), or an anchor that
            contains its own alias (the anchor's line).
    """
    if not isinstance(root, yaml.CollectionNode):
        return
    expanded: dict[yaml.Node, int] = {}  # nodes complete: their size, aliases expanded
    open_nodes: set[yaml.Node] = {root}
    decodes = 2  # the document node and its root
    aliases = 0
    # Frames: [node, children, next child, expanded size of the children so far, merge value?]
    stack: list[list[Any]] = [[root, _children(root), 0, 0, False]]
    while stack:
        frame = stack[-1]
        children = frame[1]
        index = frame[2]
        if index == len(children):
            stack.pop()
            node = frame[0]
            open_nodes.discard(node)
            size = expanded[node] = 1 + frame[3]
            if stack:
                # go-yaml does not decode the sequence holding the mappings a merge key merges.
                unlisted = frame[4] and isinstance(node, yaml.SequenceNode)
                stack[-1][3] += size - 1 if unlisted else size
            continue
        frame[2] = index + 1
        child, merge, where = children[index]
        size = expanded.get(child)
        if size is not None:  # an alias of a node defined earlier in the document
            decodes += 1 + size
            aliases += size
            frame[3] += 1 + size
            if excessive_aliasing(decodes, aliases):
                raise _Refused(where.start_mark.line + 1, "document contains excessive aliasing")
        elif child in open_nodes:
            raise _Refused(child.start_mark.line + 1, "anchor value contains itself")
        elif isinstance(child, yaml.CollectionNode):
            if not (merge and isinstance(child, yaml.SequenceNode)):
                decodes += 1
            open_nodes.add(child)
            stack.append([child, _children(child), 0, 0, merge])
        else:
            decodes += 1
            expanded[child] = 1
            frame[3] += 1
        # Between aliases the ratio falls, but beyond 2,200,000 decoded nodes the allowed ratio
        # falls faster: go-yaml can refuse on a plain node too.
        if decodes > _ALIAS_RATIO_RANGE_LOW and excessive_aliasing(decodes, aliases):
            raise _Refused(where.start_mark.line + 1, "document contains excessive aliasing")


class _AliasLines:
    """Which documents of a stream can hold an alias: only those spanning a line with a ``*``.

    An alias is written ``*name``. Finding no ``*`` in a document's lines spares it the alias
    count, which is the common case: a ``*`` anywhere only costs that count for the documents
    whose lines hold one.
    """

    def __init__(self, text: str | bytes) -> None:
        self._lines: list[int] = []  # 0-based, as libyaml counts them
        self._everywhere = False
        if isinstance(text, bytes):
            at = text.find(b"*")
            if at >= 0:
                self._scan_bytes(text, at)
        else:
            at = text.find("*")
            if at >= 0:
                self._scan_str(text, at)

    def _scan_bytes(self, text: bytes, at: int) -> None:
        # libyaml also breaks lines at a lone CR, NEL, LS and PS, and reads UTF-16 after a BOM:
        # line numbers counted by LF would not be its own, so every document is counted.
        if (
            text.startswith((b"\xff\xfe", b"\xfe\xff"))
            or text.count(b"\r") != text.count(b"\r\n")
            or b"\xc2\x85" in text
            or b"\xe2\x80\xa8" in text
            or b"\xe2\x80\xa9" in text
        ):
            self._everywhere = True
            return
        line = text.count(b"\n", 0, at)
        while True:
            self._lines.append(line)
            end = text.find(b"\n", at)
            at = text.find(b"*", end + 1) if end >= 0 else -1
            if at < 0:
                return
            line += 1 + text.count(b"\n", end + 1, at)

    def _scan_str(self, text: str, at: int) -> None:
        if (
            text.count("\r") != text.count("\r\n")
            or "\x85" in text
            or "\u2028" in text
            or "\u2029" in text
        ):
            self._everywhere = True
            return
        line = text.count("\n", 0, at)
        while True:
            self._lines.append(line)
            end = text.find("\n", at)
            at = text.find("*", end + 1) if end >= 0 else -1
            if at < 0:
                return
            line += 1 + text.count("\n", end + 1, at)

    def within(self, node: yaml.Node) -> bool:
        """Whether a ``*`` is on a line of ``node`` (a document's root node)."""
        if self._everywhere:
            return True
        index = bisect_left(self._lines, node.start_mark.line)
        return index < len(self._lines) and self._lines[index] <= node.end_mark.line


class KubeLoader(_require_libyaml()):  # type: ignore[misc]
    """CSafeLoader with timestamps kept as strings, as the Kubernetes API server keeps them."""


def _construct_str(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


KubeLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_str)
KubeLoader.add_constructor("tag:yaml.org,2002:value", _construct_str)


@dataclass(frozen=True)
class Document:
    """One YAML document of a file.

    Attributes:
        data: What the document holds.
        file: The file's path as shown to the user.
        line: The 1-based line where the document starts.
    """

    data: Any
    file: str
    line: int

    @property
    def is_object(self) -> bool:
        """Whether it looks like a Kubernetes object (see :func:`is_object`)."""
        return is_object(self.data)

    def describe(self) -> str:
        """``apiVersion kind namespace/name`` for messages."""
        return describe(self.data)


def is_object(data: Any) -> bool:
    """Whether ``data`` looks like a Kubernetes object: a mapping with apiVersion and kind."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("apiVersion"), str)
        and isinstance(data.get("kind"), str)
    )


def describe(obj: dict[str, Any]) -> str:
    """Name an object in messages: ``apps/v1 Deployment shop/web``."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name", "<no name>")
    namespace = metadata.get("namespace")
    where = f"{namespace}/{name}" if namespace else str(name)
    return f"{obj.get('apiVersion', '?')} {obj.get('kind', '?')} {where}"


def load_documents(text: str | bytes, file: str) -> Iterator[Document]:
    """Parse every document of a YAML stream, empty ones skipped.

    Args:
        text: The YAML.
        file: The name to show in messages.

    Documents are read one at a time: nothing of a document but its :class:`Document` is kept
    once it is yielded.

    Raises:
        ManifestError: A syntax error, or a document Kubernetes would refuse (excessive
            aliasing, an anchor that contains itself), naming the file and line.
    """
    loader = KubeLoader(text)
    alias_lines = _AliasLines(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            if alias_lines.within(node):
                _check_aliases(node)
            data = loader.construct_document(node)
            del node
            if data is not None:
                yield Document(data, file, line)
    except _Refused as refused:
        raise ManifestError(f"{file}:{refused.line}: {refused.problem}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        problem = error.problem or error.context or "invalid YAML"
        raise ManifestError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as error:
        raise ManifestError(f"{file}: YAML error: {error}") from None
    finally:
        loader.dispose()


def load_file(path: Path, display: str | None = None) -> list[Document]:
    """Every non-empty document of one file.

    Raises:
        ManifestError: The file cannot be read or parsed.
    """
    name = display or str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ManifestError(f"{name}: cannot read: {error.strerror}") from None
    return list(load_documents(data, name))


def manifest_files(root: Path) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` file under ``root``, sorted, hidden directories skipped."""
    found = [
        path
        for path in root.rglob("*")
        if path.suffix in MANIFEST_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts[:-1])
    ]
    return sorted(found)


def count_kinds(files: Iterable[Path]) -> Counter[str]:
    """Objects per kind without parsing: a top-level ``kind:`` starts at column 0, where no
    nested or block-scalar line can. For counts only; anything that needs the objects parses."""
    kinds: Counter[str] = Counter()
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        kinds.update(m.group(1).strip("'\"") for m in _TOP_LEVEL_KIND.finditer(text))
    return kinds
