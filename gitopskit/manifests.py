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
  therefore applied to what a full expansion would decode, counted on the node graph. Aliases
  are noticed while constructing, at no cost, and only the nodes they name are measured; the
  whole document is counted, in go-yaml's order, only when that is not enough to tell.
  An anchor whose value contains its own alias is refused as go-yaml refuses it.
- Nesting deeper than :data:`MAX_DEPTH` levels, which would otherwise end in a
  ``RecursionError`` in whatever walks the objects next.
- A key given twice in one mapping, which Kubernetes' strict decoding refuses (and PyYAML would
  silently resolve to the last one). Keys are compared as loaded, as go-yaml compares them:
  ``on`` and ``true`` are the same key. An explicit key next to a merge key (``<<``) that
  merges the same key is no duplicate: it wins.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import GeneratorType
from typing import Any

import yaml

from gitopskit.errors import ManifestError

MANIFEST_SUFFIXES = (".yaml", ".yml")
_TOP_LEVEL_KIND = re.compile(r"^kind:[ \t]*(\S+)[ \t]*$", re.MULTILINE)

#: How deep collections may nest in a document as loaded (aliases expanded, merge keys resolved;
#: the root mapping is level 1). Kubernetes objects stay far shallower: a Deployment's deepest
#: field is at level 12, and generated CustomResourceDefinitions, whose schemas take two levels
#: per nested field, a few dozen. Every consumer of loaded objects (comparison, JSON, YAML
#: rendering, schema validation) recurses up to three frames per level: at 128 levels they
#: need well under half of Python's recursion limit (tested with half of it already used).
MAX_DEPTH = 128

_MERGE_TAG = "tag:yaml.org,2002:merge"
_EXCESSIVE = "document contains excessive aliasing"

# go-yaml's bounds (decode.go, v2 and v3): up to 400,000 decoded nodes, 99% of them may come from
# alias expansion; from 4,000,000 on, 10%; linearly in between. Checked only beyond 100
# alias-driven and 1,000 decoded nodes in all.
_ALIAS_RATIO_RANGE_LOW = 400_000
_ALIAS_RATIO_RANGE_HIGH = 4_000_000
_ALIAS_RATIO_RANGE = float(_ALIAS_RATIO_RANGE_HIGH - _ALIAS_RATIO_RANGE_LOW)
# So go-yaml never refuses a document with at most this many alias-driven decodes: beyond 1,000
# decodes, over 99% of them would have to come from aliases.
_HARMLESS_ALIASING = 990


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


class _Graph:
    """A document's node graph as go-yaml decodes it, each node measured once.

    Attributes:
        sizes: Each node's expanded size: how many nodes go-yaml decodes for it, aliases
            expanded.
        depths: Each node's depth as loaded: 0 for a scalar, 1 for a collection of scalars,
            aliases expanded, merged mappings' entries counted as the merging mapping's own.
        parents: The node each collection node is written in (not those it is aliased in).
        decodes: How many nodes go-yaml decodes for the document measured (see
            :func:`excessive_aliasing`).
        aliases: How many of them come from alias expansion.
    """

    def __init__(self) -> None:
        self.sizes: dict[yaml.Node, int] = {}
        self.depths: dict[yaml.Node, int] = {}
        self.parents: dict[yaml.Node, yaml.Node] = {}
        self.decodes = 0
        self.aliases = 0

    def measure(self, root: yaml.Node, *, document: bool) -> None:
        """Measure ``root`` and the nodes under it, refusing what go-yaml refuses.

        go-yaml decodes a document node by node, every alias by decoding its anchor's node
        again, and applies :func:`excessive_aliasing` at each node. With ``document``, the same
        count is made here, in document order: each node's expanded size is computed once (a
        node is complete before any alias can refer to it), and an alias adds its node's
        expanded size at once. Within one expansion both counts grow together, so the ratio
        only rises and the allowed ratio only falls: testing at its end is testing at each of
        its nodes.

        The count follows go-yaml v2 (sigs.k8s.io/yaml): a merge key (``<<``) is not decoded,
        nor is the sequence of a ``<<: [*a, *b]``, but the mappings it merges are. go-yaml v2
        decodes those mappings last to first, and they are counted here first to last: the
        totals are the same, only where within such a list the ratio is tested differs.

        Args:
            root: A document's root node, or (without ``document``) any node of it.
            document: ``root`` is the document's: count as go-yaml decodes it. Otherwise only
                measure: a node first met under ``root`` counts as written there, even when it
                is an alias of a node outside.

        Raises:
            _Refused: Excessive aliasing (the line of the alias that tipped it: its key's, or
                its sequence's), or an anchor that contains its own alias (the anchor's line).
        """
        sizes = self.sizes
        depths = self.depths
        if root in sizes:
            return
        if not isinstance(root, yaml.CollectionNode):
            sizes[root] = 1
            depths[root] = 0
            return
        open_nodes: set[yaml.Node] = {root}
        decodes = 2  # the document node and its root
        aliases = 0
        # Frames: [node, children, next child, expanded size of the children so far, deepest
        # child so far, whether the node is a merge key's value]
        stack: list[list[Any]] = [[root, _children(root), 0, 0, 0, False]]
        while stack:
            frame = stack[-1]
            children = frame[1]
            index = frame[2]
            if index == len(children):
                stack.pop()
                node = frame[0]
                open_nodes.discard(node)
                size = sizes[node] = 1 + frame[3]
                depth = depths[node] = 1 + frame[4]
                if stack:
                    parent = stack[-1]
                    # go-yaml does not decode the sequence of the mappings a merge key merges.
                    unlisted = frame[5] and isinstance(node, yaml.SequenceNode)
                    parent[3] += size - 1 if unlisted else size
                    parent[4] = max(parent[4], _depth_within(node, depth, frame[5]))
                continue
            frame[2] = index + 1
            child, merge, where = children[index]
            size = sizes.get(child)
            if size is not None:  # an alias of a node defined earlier in the document
                frame[3] += 1 + size
                frame[4] = max(frame[4], _depth_within(child, depths[child], merge))
                if document:
                    decodes += 1 + size
                    aliases += size
                    if excessive_aliasing(decodes, aliases):
                        raise _Refused(where.start_mark.line + 1, _EXCESSIVE)
            elif child in open_nodes:
                raise _Refused(child.start_mark.line + 1, "anchor value contains itself")
            elif isinstance(child, yaml.CollectionNode):
                if not (merge and isinstance(child, yaml.SequenceNode)):
                    decodes += 1
                open_nodes.add(child)
                self.parents[child] = frame[0]
                stack.append([child, _children(child), 0, 0, 0, merge])
            else:
                decodes += 1
                sizes[child] = 1
                depths[child] = 0
                frame[3] += 1
            # Between aliases the ratio falls, but beyond 2,200,000 decoded nodes the allowed
            # ratio falls faster: go-yaml can refuse on a plain node too.
            if (
                document
                and decodes > _ALIAS_RATIO_RANGE_LOW
                and excessive_aliasing(decodes, aliases)
            ):
                raise _Refused(where.start_mark.line + 1, _EXCESSIVE)
        if document:
            self.decodes = decodes
            self.aliases = aliases


def _check_document(root: yaml.Node) -> None:
    """Refuse a document as go-yaml would, or for nesting deeper than :data:`MAX_DEPTH`.

    Raises:
        _Refused: Excessive aliasing, an anchor that contains itself, or too deep.
    """
    graph = _Graph()
    graph.measure(root, document=True)
    if graph.depths[root] > MAX_DEPTH:
        raise _Refused(_line_too_deep(root, graph), f"nesting deeper than {MAX_DEPTH} levels")


def _depth_within(child: yaml.Node, depth: int, merge: bool) -> int:
    """How deep ``child`` (of depth ``depth``) nests its parent's entries: as deep as itself,
    but a merged mapping's entries are its parent's own, and so are the mappings of a
    ``<<: [*a, *b]``."""
    if not merge:
        return depth
    return depth - 2 if isinstance(child, yaml.SequenceNode) else depth - 1


def _line_too_deep(root: yaml.Node, graph: _Graph) -> int:
    """The line of the first collection nested deeper than :data:`MAX_DEPTH`, on the way down
    to the deepest one; when that way goes through an alias, the line of the first alias."""
    depths = graph.depths
    node, level = root, 1
    alias_line = 0
    while level <= MAX_DEPTH:
        deepest: tuple[int, yaml.Node, bool, yaml.Node] | None = None
        for child, merge, where in _children(node):
            if isinstance(child, yaml.CollectionNode):
                within = _depth_within(child, depths[child], merge)
                if deepest is None or within > deepest[0]:
                    deepest = (within, child, merge, where)
        if deepest is None:
            break
        _, child, merge, where = deepest
        if merge and isinstance(child, yaml.SequenceNode):
            # <<: [*a, *b]: on to the deepest of the merged mappings, at the same level.
            if not alias_line and graph.parents.get(child) is not node:
                alias_line = where.start_mark.line + 1
            node, child = child, max(child.value, key=lambda mapping: depths.get(mapping, 0))
        if not alias_line and graph.parents.get(child) is not node:
            alias_line = where.start_mark.line + 1
        node = child
        if not merge:
            level += 1
    return alias_line or node.start_mark.line + 1


class KubeLoader(_require_libyaml()):  # type: ignore[misc]
    """CSafeLoader with timestamps kept as strings, as the Kubernetes API server keeps them.

    It refuses what Kubernetes would refuse and objects nested deeper than :data:`MAX_DEPTH`
    (see :meth:`construct_document`), and resolves merge keys (``<<``) as the merge-key
    specification and go-yaml have it: an explicit key wins over a merged one (also in a merged
    mapping), and the first mapping of a ``<<`` list over later ones; of two ``<<`` keys in one
    mapping, the later wins, as in go-yaml v2, which Kubernetes uses. (PyYAML 6.0's own
    resolution let later mappings of a list win, and merged keys of a merged mapping win over
    its explicit ones.) Merged mappings are copied, never changed, whatever their number or
    nesting.
    """

    # PyYAML's constructor state, which construct_document resets as PyYAML's does.
    state_generators: list[Iterator[Any]]
    constructed_objects: dict[yaml.Node, Any]
    recursive_objects: dict[yaml.Node, None]
    deep_construct: bool

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._merged: dict[yaml.Node, dict[Any, yaml.Node]] = {}
        self._document: yaml.Node | None = None
        self._level = 0  # the level of the collections being filled
        # Aliases met: the aliased node, and the level of the collection holding the alias.
        self._aliased: list[tuple[yaml.Node, int]] = []
        self._checked = False  # the document was measured whole (see _check_document)

    def construct_document(self, node: yaml.Node) -> Any:
        """Construct one document, one level of collections at a time (as PyYAML does), then
        refuse it if Kubernetes would, or if it nests deeper than :data:`MAX_DEPTH`.

        Aliases cost nothing to construct: an aliased node is constructed once and shared.
        Constructing first finds them at no cost, so that only a document that has some is
        measured. A merge key's entries, though, are resolved by copying, so a document with
        merge keys is measured before they are (see :meth:`fill_mapping`).

        Raises:
            _Refused: See :func:`_check_document`.
        """
        self._document = node
        self._aliased = []
        self._checked = False
        self._level = 0
        data = self.construct_object(node)
        level = 0
        while self.state_generators:
            level += 1
            if level > MAX_DEPTH:
                self._check()
            self._level = level
            generators = self.state_generators
            self.state_generators = []
            for generator in generators:
                for _ in generator:
                    pass
        if self._aliased and not self._checked:
            self._check_aliased()
        self.constructed_objects = {}
        self.recursive_objects = {}
        self.deep_construct = False
        self._merged = {}
        self._aliased = []
        self._document = None
        return data

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """PyYAML's, noting aliases, and without its bookkeeping for deep construction where
        there is none: a safe loader's collections are constructed as generators, so no node
        is constructed again before its object exists."""
        constructed = self.constructed_objects
        if node in constructed:
            self._aliased.append((node, self._level))
            return constructed[node]
        constructor = self.yaml_constructors.get(node.tag)
        if deep or self.deep_construct or constructor is None:
            return super().construct_object(node, deep)
        data = constructor(self, node)
        if isinstance(data, GeneratorType):
            generator = data
            data = next(generator)
            self.state_generators.append(generator)
        constructed[node] = data
        return data

    def _check(self) -> None:
        if not self._checked and self._document is not None:
            self._checked = True
            _check_document(self._document)

    def _check_aliased(self) -> None:
        """Measure the aliased nodes only; the whole document when that is not enough.

        Raises:
            _Refused: See :func:`_check_document`.
        """
        graph = _Graph()
        aliased = 0
        for node, level in self._aliased:
            graph.measure(node, document=False)
            # Measured from the alias, an alias within counts as written: one node short of
            # go-yaml's count for a node of at least one.
            aliased += 2 * graph.sizes[node]
            if aliased > _HARMLESS_ALIASING or level + graph.depths[node] > MAX_DEPTH:
                self._check()
                return

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        """A mapping's entries, merge keys resolved (also for ``!!set``)."""
        mapping: dict[Any, Any] = {}
        self.fill_mapping(mapping, node, deep)
        return mapping

    def fill_mapping(self, mapping: dict[Any, Any], node: yaml.Node, deep: bool = False) -> None:
        """Put a mapping node's entries into ``mapping``, merge keys resolved.

        Raises:
            yaml.constructor.ConstructorError: Not a mapping, an unhashable key, or a merge key
                whose value is not a mapping or a list of mappings.
        """
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping node, but found {_kind(node)}", node.start_mark
            )
        construct = self.construct_object
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._check()
                mapping.clear()
                for key, value in self._merged_entries(node).items():
                    mapping[key] = construct(value, deep)
                return
            key = construct(key_node, deep)
            if key.__class__ is not str:
                _check_hashable(key, node, key_node)
            mapping[key] = construct(value_node, deep)
        if len(mapping) != len(node.value):
            self._refuse_duplicate(node)

    def _refuse_duplicate(self, node: yaml.MappingNode) -> None:
        """Name the first key of ``node`` (constructed already) that repeats an earlier one.

        Raises:
            _Refused: Always.
        """
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.constructed_objects[key_node]
            if key in seen:
                raise _Refused(key_node.start_mark.line + 1, f"duplicate key {_shown_key(key)}")
            seen.add(key)

    def _merged_entries(self, node: yaml.MappingNode) -> dict[Any, yaml.Node]:
        """A mapping node's entries (key → value node) with its merge keys resolved.

        Merged mappings are resolved first, each once per document, without recursion: merge
        keys may be nested as deep as libyaml allows.
        """
        merged = self._merged
        pending: list[yaml.MappingNode] = [node]  # each merges the one after it
        while pending:
            current = pending[-1]
            source = next((s for s in self._merge_sources(current) if s not in merged), None)
            if source is None:
                merged[current] = self._resolve(current)
                pending.pop()
            elif source in pending:  # only when not measured first (see _check)
                raise _Refused(source.start_mark.line + 1, "anchor value contains itself")
            else:
                pending.append(source)
        return merged[node]

    def _merge_sources(self, node: yaml.MappingNode) -> list[yaml.MappingNode]:
        sources: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                continue
            if isinstance(value_node, yaml.MappingNode):
                sources.append(value_node)
            elif isinstance(value_node, yaml.SequenceNode):
                for subnode in value_node.value:
                    if not isinstance(subnode, yaml.MappingNode):
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"expected a mapping for merging, but found {_kind(subnode)}",
                            subnode.start_mark,
                        )
                    sources.append(subnode)
            else:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "expected a mapping or list of mappings for merging, "
                    f"but found {_kind(value_node)}",
                    value_node.start_mark,
                )
        return sources

    def _resolve(self, node: yaml.MappingNode) -> dict[Any, yaml.Node]:
        # Every merge source is resolved already (see _merged_entries).
        merged: dict[Any, yaml.Node] = {}
        explicit: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                entries: dict[Any, yaml.Node] = {}
                for source in sources:
                    for key, value in self._merged[source].items():
                        entries.setdefault(key, value)
                merged.update(entries)
                continue
            key = self.construct_object(key_node)
            _check_hashable(key, node, key_node)
            if key in explicit:
                raise _Refused(key_node.start_mark.line + 1, f"duplicate key {_shown_key(key)}")
            explicit[key] = value_node
        merged.update(explicit)
        return merged


def _check_hashable(key: Any, node: yaml.Node, key_node: yaml.Node) -> None:
    if not isinstance(key, Hashable):
        raise yaml.constructor.ConstructorError(
            "while constructing a mapping",
            node.start_mark,
            "found unhashable key",
            key_node.start_mark,
        )


def _shown_key(key: Any) -> str:
    """A key as messages show it: JSON, a long string cut short, nothing unprintable."""
    if isinstance(key, str):
        text = json.dumps(key if len(key) <= 40 else key[:40] + "…", ensure_ascii=False)
        return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)
    if key is None or isinstance(key, int | float):
        return json.dumps(key)
    shown = repr(key)
    return shown if len(shown) <= 40 else shown[:40] + "…"


def _kind(node: yaml.Node) -> str:
    """``scalar``, ``sequence`` or ``mapping``, as PyYAML names nodes in messages."""
    return str(getattr(node, "id", type(node).__name__))


def _construct_map(loader: KubeLoader, node: yaml.Node) -> Iterator[dict[Any, Any]]:
    # SafeConstructor's, without building the mapping twice.
    mapping: dict[Any, Any] = {}
    yield mapping
    loader.fill_mapping(mapping, node)


def _construct_str(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


KubeLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
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
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            data = loader.construct_document(node)
            del node
            if data is not None:
                yield Document(data, file, line)
    except _Refused as refused:
        raise ManifestError(f"{file}:{refused.line}: {refused.problem}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        if error.problem == "exceeded maximum nesting depth" and mark is not None:
            # libyaml's own limit, 1,000 levels: the same message as below it.
            too_deep = f"{file}:{mark.line + 1}: nesting deeper than {MAX_DEPTH} levels"
            raise ManifestError(too_deep) from None
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
