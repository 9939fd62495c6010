"""Hostile YAML: documents built to crash or stall whoever loads them (issue 9, section 6).

Each class is refused at load with a :class:`ManifestError` naming file and line, the way
Kubernetes' own YAML decoder (go-yaml, through sigs.k8s.io/yaml) refuses it, and never with a
traceback: ``invoke diff`` exits 2, synth and publish exit 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gitopskit import manifests
from gitopskit.errors import ManifestError
from gitopskit.manifests import (
    MAX_DEPTH,
    allowed_alias_ratio,
    excessive_aliasing,
    load_documents,
)
from tests.fakes.gitlab import FakeGitLab
from tests.hostile.conftest import PROJECT, Captured, gitlab_env, invoke, write_dist

REPO = Path(__file__).resolve().parents[2]


def billion_laughs(levels: int = 9, fan_out: int = 9) -> str:
    """The classic: each level a list of ``fan_out`` aliases of the level below."""
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: lol, namespace: shop}",
        "data:",
        '  l0: &l0 "lol"',
    ]
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*l{level - 1}"] * fan_out)
        lines.append(f"  l{level}: &l{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def load(text: str | bytes, name: str = "f.yaml") -> list[Any]:
    return [doc.data for doc in load_documents(text, name)]


# --- alias expansion -------------------------------------------------------------------------


def test_billion_laughs_is_refused_at_load_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(ManifestError, match=r"^lol\.k8s\.yaml:\d+: document contains excessive"):
        load(billion_laughs(), "lol.k8s.yaml")
    assert time.perf_counter() - started < 2


def test_the_alias_that_tips_the_ratio_is_named() -> None:
    with pytest.raises(ManifestError) as refused:
        load(billion_laughs(levels=5, fan_out=12), "lol.k8s.yaml")
    # go-yaml's count: 4,128 decoded nodes, 4,068 from aliases (0.986) when l4 begins, line 9;
    # its first alias of l3 adds 3,770 and 3,769: 7,837 of 7,898, 0.992 > 0.99.
    assert refused.value.message == "lol.k8s.yaml:9: document contains excessive aliasing"


def ratio_document(aliases: int, width: int = 200, plain: int = 0, plain_first: bool = True) -> str:
    """``x`` anchors a list of ``width`` scalars, ``y`` lists ``aliases`` aliases of it, and
    ``p`` (when ``plain``) holds ``plain`` more scalars, before or after ``y``.

    go-yaml decodes 1 (document) + 1 (root mapping) + 2 keys + (1 + width) for ``x``, 1 for
    ``y``'s list, ``aliases`` x (1 alias node + 1 + width expanded), and with ``p`` 1 key +
    1 list + ``plain``. Alias-driven: ``aliases`` x (1 + width).
    """
    x = f"x: &a [{', '.join(['0'] * width)}]\n"
    y = f"y: [{', '.join(['*a'] * aliases)}]\n"
    p = f"p: [{', '.join(['0'] * plain)}]\n" if plain else ""
    return x + (p + y if plain_first else y + p)


def test_ratio_boundary_is_go_yamls() -> None:
    # 199 aliases: 39,999 of 40,404 decoded nodes come from aliases, 0.98998: allowed.
    (doc,) = load(ratio_document(199))
    assert isinstance(doc, dict) and len(doc["y"]) == 199 and doc["y"][0] == [0] * 200
    # 200 aliases: 40,200 of 40,606, 0.99000(2) > 0.99: refused, as Kubernetes refuses it.
    with pytest.raises(ManifestError, match=r"^f\.yaml:2: document contains excessive aliasing$"):
        load(ratio_document(200))


def test_allowed_ratio_slides_down_for_large_documents() -> None:
    # 270,000 alias-driven of 300,000 decoded nodes (0.9) is allowed: 0.99 up to 400,000 ...
    (doc,) = load(ratio_document(270, width=999, plain=28_723))
    assert isinstance(doc, dict) and len(doc["y"]) == 270 and len(doc["p"]) == 28_723
    # ... 900,000 of 1,000,000 is not: the allowed ratio falls linearly to 0.10 at 4,000,000
    # and is 0.8417 at 1,000,000.
    with pytest.raises(ManifestError, match="excessive aliasing"):
        load(ratio_document(900, width=999, plain=98_093))


def test_aliasing_is_checked_as_the_document_is_decoded() -> None:
    # go-yaml checks at every decoded node: the same content is refused when the aliases come
    # before the plain part, since the ratio is then 270,000 / 271,275 = 0.9953.
    with pytest.raises(ManifestError, match="excessive aliasing"):
        load(ratio_document(270, width=999, plain=28_723, plain_first=False))


@pytest.mark.parametrize(
    ("decodes", "aliases", "excessive"),
    [
        (1_000, 999, False),  # checked only beyond 1,000 decodes ...
        (1_001, 100, False),  # ... and 100 alias-driven ones
        (1_001, 101, False),
        (1_001, 1_000, True),
        (400_000, 396_000, False),  # 0.99 exactly is allowed
        (400_000, 396_001, True),
        (2_200_000, 1_198_000, False),  # 0.99 - 0.89 * 1.8 / 3.6 = 0.545
        (2_200_000, 1_200_000, True),
        (4_000_000, 400_000, False),  # 0.10 from 4,000,000 decodes on
        (4_000_000, 400_001, True),
        (10_000_000, 1_000_000, False),
        (10_000_000, 1_000_001, True),
    ],
)
def test_go_yaml_rule(decodes: int, aliases: int, excessive: bool) -> None:
    assert excessive_aliasing(decodes, aliases) is excessive


def test_allowed_ratio_is_linear_between_the_bounds() -> None:
    assert allowed_alias_ratio(0) == allowed_alias_ratio(400_000) == 0.99
    assert allowed_alias_ratio(2_200_000) == pytest.approx(0.545)
    assert allowed_alias_ratio(4_000_000) == allowed_alias_ratio(10**9) == 0.10


def test_merge_key_bomb_is_refused() -> None:
    # Each level merges the one below twice: go-yaml decodes 2^levels mappings.
    lines = ["l0: &l0 {a: 1}"]
    lines += [f"l{i}: &l{i} {{<<: [*l{i - 1}, *l{i - 1}], k{i}: {i}}}" for i in range(1, 25)]
    started = time.perf_counter()
    with pytest.raises(ManifestError, match="excessive aliasing"):
        load("\n".join(lines) + "\n")
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [1, *a]\n",
        "a: &a {b: 1, c: [*a]}\n",
        "a: &a {b: 1, <<: *a}\n",
        "a: &a {b: {<<: *a}}\n",
    ],
    ids=["sequence", "mapping", "merge", "nested-merge"],
)
def test_an_anchor_that_contains_its_own_alias_is_refused(text: str) -> None:
    with pytest.raises(ManifestError, match=r"^f\.yaml:1: anchor value contains itself"):
        load(text)


QUIET = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: q}\ndata: {cron: "*/5 * * * *"}\n'


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text,
        lambda text: text.encode(),
        lambda text: ("# é ü ✓\n" + text).encode(),
        lambda text: text.encode("utf-16"),
        lambda text: text.replace("\n", "\r\n").encode(),
        lambda text: text.replace("\n", "\r"),
        lambda text: 'x: "\u2028"\n---\n' + text,
        lambda text: b'x: "\xc2\x85"\n---\n' + text.encode(),
    ],
    ids=["str", "utf-8", "non-ascii", "utf-16", "crlf", "cr", "line-separator", "nel"],
)
def test_aliases_are_found_whatever_the_encoding_and_line_breaks(encode: Any) -> None:
    stream = QUIET + "---\n" + billion_laughs() + "---\n" + QUIET
    with pytest.raises(ManifestError, match="excessive aliasing"):
        load(encode(stream), "lol.k8s.yaml")


def test_aliasing_below_go_yamls_limit_loads_as_written() -> None:
    plain = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: p}\n"
    small = "x: &a {k: v}\ny: *a\n"  # 3 alias-driven decodes: go-yaml cannot refuse it
    large = f"x: &a [{', '.join(['0'] * 600)}]\ny: *a\n"  # 601
    merge = "x: &a {k: v}\ny: {<<: *a}\n"
    docs = load("---\n".join([plain, QUIET, small, plain, large, merge]))
    assert docs[2] == {"x": {"k": "v"}, "y": {"k": "v"}} and len(docs[4]["y"]) == 600
    assert docs[5] == {"x": {"k": "v"}, "y": {"k": "v"}}


def test_ordinary_anchors_still_load() -> None:
    text = (
        "apiVersion: apps/v1\nkind: Deployment\n"
        "metadata: {name: web, labels: &labels {app: web, tier: front}}\n"
        "spec:\n  selector: {matchLabels: *labels}\n"
        "  template:\n    metadata: {labels: *labels}\n"
        "    spec:\n      containers:\n      - &c {name: web, image: web:1}\n"
        "      - {<<: *c, name: sidecar}\n"
    )
    (doc,) = load(text)
    assert isinstance(doc, dict)
    assert doc["spec"]["template"]["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert doc["spec"]["template"]["spec"]["containers"][1] == {"name": "sidecar", "image": "web:1"}


# --- nesting depth ---------------------------------------------------------------------------


def nested(depth: int, style: str) -> str:
    """A document whose root is the outermost of ``depth`` nested collections."""
    if style == "flow-sequence":
        return "[" * depth + "]" * depth + "\n"
    if style == "flow-mapping":
        return "{k: " * depth + "1" + "}" * depth + "\n"
    # Block mappings: line i holds the key of the mapping at depth i + 1.
    return "".join(" " * i + "k:\n" for i in range(depth - 1)) + " " * (depth - 1) + "k: 1\n"


STYLES = ["flow-sequence", "flow-mapping", "block-mapping"]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 350, 999, 1000, 5000])
def test_nesting_deeper_than_the_limit_is_refused(depth: int, style: str) -> None:
    # The line of the first collection too deep; from 1,000 levels libyaml stops at that one.
    line = 1 if style.startswith("flow") else MAX_DEPTH + 1 if depth < 1000 else 1000
    with pytest.raises(ManifestError) as refused:
        load(nested(depth, style), "deep.yaml")
    assert refused.value.message == f"deep.yaml:{line}: nesting deeper than {MAX_DEPTH} levels"


@pytest.mark.parametrize("style", STYLES)
def test_nesting_up_to_the_limit_loads(style: str) -> None:
    (doc,) = load(nested(MAX_DEPTH, style))
    for _ in range(MAX_DEPTH - 1):
        doc = doc[0] if isinstance(doc, list) else doc["k"]
    assert doc in ([], {"k": 1})


def chain(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


@pytest.mark.parametrize(
    "text",
    [
        # 65 levels under the root, and 65 more around the alias: 131.
        f"a: &a {chain(65)}\nb: {chain(65, '*a')}\n",
        # m's entries become c's own, one level deeper than m's: 3 + 126.
        f"m: &m {{k: {chain(126)}}}\nb: {{c: {{<<: [*m]}}}}\n",
        f"m: &m {{k: {chain(126)}}}\nb: {{c: {{<<: *m}}}}\n",
    ],
    ids=["alias", "merged-list", "merged-mapping"],
)
def test_aliases_cannot_nest_deeper_than_the_limit(text: str) -> None:
    # The line named is the alias's, not the anchor's (which on its own is not too deep).
    with pytest.raises(ManifestError) as refused:
        load(text)
    assert refused.value.message == f"f.yaml:2: nesting deeper than {MAX_DEPTH} levels"


def test_merged_mappings_at_the_limit_load() -> None:
    (doc,) = load(f"m: &m {{k: {chain(126)}}}\nb: {{<<: *m}}\n")
    assert doc["b"] == doc["m"]


def test_merge_keys_nested_in_the_text_do_not_nest_the_object() -> None:
    # 990 merge keys, each merging the next mapping in: one flat mapping once merged, which is
    # what the limit bounds. Resolving them must not recurse (today: RecursionError).
    text = "a: " + "{<<: " * 990 + "{x: 1}" + "}" * 990 + "\n"
    (doc,) = _with_frames(100, lambda: load(text))
    assert doc == {"a": {"x": 1}}


def deepest_allowed_object(kind: str = "ConfigMap") -> dict[str, Any]:
    """A Kubernetes object nested as deep as the loader allows (the root mapping is level 1)."""
    leaf: Any = {"k": "v"}
    for _ in range(MAX_DEPTH - 4):
        leaf = {"k": leaf}
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": "deep", "namespace": "shop"},
        "data": {"deep": [leaf]},
    }


def _with_frames(frames: int, action: Any) -> Any:
    """Run ``action`` with ``frames`` Python frames already on the stack."""
    if frames <= 0:
        return action()
    return _with_frames(frames - 1, action)


def test_every_consumer_handles_the_deepest_allowed_object(tmp_path: Path) -> None:
    from gitopskit import diff as engine
    from gitopskit import render

    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    text = yaml.safe_dump(deepest_allowed_object())
    (old / "deep.k8s.yaml").write_text(text)
    (new / "deep.k8s.yaml").write_text(text.replace("k: v", "k: w"))
    (doc,) = load_documents(text, "deep.k8s.yaml")
    reordered = dict(reversed(list(doc.data.items())))

    def consume() -> None:
        assert engine.same_object(doc.data, reordered)
        assert engine.to_yaml(doc.data).count("k:") == MAX_DEPTH - 3
        result = engine.diff_against(new, str(old))  # reading, comparing, the unified diff
        assert result.summary["changed"] == 1
        for fmt in render.FORMATS:
            assert "deep" in render.render(result, fmt, colour=False)

    # Whoever calls the loader's consumers may already be deep in the stack (tasks, invoke,
    # pytest): they must fit in well under half of Python's recursion limit.
    _with_frames(sys.getrecursionlimit() // 2, consume)


def deepest_allowed_crd() -> dict[str, Any]:
    """A CustomResourceDefinition whose schema nests as deep as the loader allows."""
    schema: dict[str, Any] = {"type": "string"}
    # The schema is at level 6 (spec, versions, the version, schema, openAPIV3Schema); each
    # object property adds 2 (properties, the property) and the leaf's type is a scalar.
    for _ in range((MAX_DEPTH - 6) // 2):
        schema = {"type": "object", "properties": {"a": schema}}
    version = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "foos.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Foo", "plural": "foos"},
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def test_schema_validation_handles_the_deepest_allowed_object() -> None:
    from gitopskit.validate import SchemaValidator

    (doc,) = load_documents(yaml.safe_dump(deepest_allowed_crd()), "crd.k8s.yaml")
    validator = SchemaValidator(None)
    report = _with_frames(sys.getrecursionlimit() // 2, lambda: validator.validate([doc]))
    assert report.validated == 1 and not report.problems


# --- duplicate keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n", 5, '"name"'),
        ("kind: A\napiVersion: v1\nkind: B\n", 3, '"kind"'),
        ("data: {a: 1, b: 2, a: 3}\n", 1, '"a"'),
        ("\"a\": 1\n'b': 2\na: 3\n", 3, '"a"'),
        ("on: 1\ntrue: 2\n", 2, "true"),  # YAML 1.1: both are the boolean true
        ("0x10: a\n16: b\n", 2, "16"),
        ("base: &b {x: 1}\nm: {<<: *b, y: 1,\n  y: 2}\n", 3, '"y"'),
        ("m: {<<: {x: 1, x: 2}}\n", 1, '"x"'),
        ("s: !!set {a, b, a}\n", 1, '"a"'),
        ("x: 1\n" + "k" * 100 + ": 1\n" + "k" * 100 + ": 2\n", 3, '"' + "k" * 40 + '…"'),
    ],
    ids=[
        "nested",
        "top-level",
        "flow",
        "quoted",
        "resolved",
        "int",
        "merging",
        "merged",
        "set",
        "long",
    ],
)
def test_duplicate_keys_are_refused(text: str, line: int, key: str) -> None:
    with pytest.raises(ManifestError) as refused:
        load(text, "web.k8s.yaml")
    assert refused.value.message == f"web.k8s.yaml:{line}: duplicate key {key}"


def test_keys_that_only_look_alike_are_no_duplicates() -> None:
    (doc,) = load("a: 1\nA: 2\n'1': 3\n1: 4\nx: {a: 5}\ny: {a: 6}\n")
    assert doc == {"a": 1, "A": 2, "1": 3, 1: 4, "x": {"a": 5}, "y": {"a": 6}}


# --- properties ------------------------------------------------------------------------------


def nested_text(kinds: list[str], flow: bool) -> str:
    """Collections nested as ``kinds`` says (``seq`` or ``map``, outermost first), around
    the scalar ``v``, in flow or block style."""
    if flow:
        opening = "".join("[" if kind == "seq" else "{k: " for kind in kinds)
        closing = "".join("]" if kind == "seq" else "}" for kind in reversed(kinds))
        return opening + "v" + closing + "\n"
    lines = [" " * i + ("-" if kind == "seq" else "k:") for i, kind in enumerate(kinds)]
    return "\n".join([*lines, " " * len(kinds) + "v"]) + "\n"


def depth_of(value: Any) -> int:
    depth = 0
    while isinstance(value, list | dict):
        value = value[0] if isinstance(value, list) else value["k"]
        depth += 1
    return depth


KINDS = st.sampled_from(["seq", "map"])


@settings(max_examples=60, deadline=None)
@given(st.lists(KINDS, min_size=1, max_size=MAX_DEPTH), st.booleans())
def test_any_nesting_up_to_the_limit_loads(kinds: list[str], flow: bool) -> None:
    (doc,) = load(nested_text(kinds, flow))
    assert depth_of(doc) == len(kinds)


@settings(max_examples=60, deadline=None)
@given(st.lists(KINDS, min_size=MAX_DEPTH + 1, max_size=1200), st.booleans())
def test_any_nesting_beyond_the_limit_is_a_manifest_error(kinds: list[str], flow: bool) -> None:
    with pytest.raises(ManifestError, match=f"nesting deeper than {MAX_DEPTH} levels$"):
        load(nested_text(kinds, flow))


class _GoYamlRefused(Exception):
    """What go-yaml's decoder would say: ``excessive`` aliasing or an anchor that ``contains``
    itself."""


class _Event:
    """A node of the event stream, aliases kept as such (as go-yaml's parser keeps them)."""

    def __init__(self, kind: str, merge: bool = False, target: _Event | None = None) -> None:
        self.kind = kind
        self.merge = merge
        self.target = target
        self.children: list[_Event] = []


def go_yaml_decode(text: str) -> tuple[int, int]:
    """A straightforward model of go-yaml v2's decoder (decode.go), to check the loader by:
    every alias expanded again, node by node, testing the ratio at each, as go-yaml does.

    It decodes the mappings of a ``<<`` list in document order, as the loader counts them (go-
    yaml v2 goes backwards: the totals are the same, only where the ratio is tested differs).

    Returns:
        How many nodes it decodes, and how many of them come from alias expansion.

    Raises:
        _GoYamlRefused: Where go-yaml would refuse the document.
    """
    anchors: dict[str, _Event] = {}
    stack = [_Event("document")]
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.AliasEvent):
            stack[-1].children.append(_Event("alias", target=anchors[str(event.anchor)]))
            continue
        if isinstance(event, yaml.ScalarEvent):
            node = _Event("scalar", merge=event.value == "<<" and event.implicit[0])
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            node = _Event("sequence" if isinstance(event, yaml.SequenceStartEvent) else "mapping")
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            stack.pop()
            continue
        else:
            continue
        if event.anchor is not None:
            anchors[event.anchor] = node
        stack[-1].children.append(node)
        if node.kind != "scalar":
            stack.append(node)
    counts = {"decodes": 0, "aliases": 0, "depth": 0}
    expanding: set[_Event] = set()

    def unmarshal(node: _Event) -> None:
        counts["decodes"] += 1
        if counts["depth"]:
            counts["aliases"] += 1
        if excessive_aliasing(counts["decodes"], counts["aliases"]):
            raise _GoYamlRefused("excessive")
        if node.kind == "alias":
            if node in expanding:
                raise _GoYamlRefused("contains")
            expanding.add(node)
            counts["depth"] += 1
            assert node.target is not None
            unmarshal(node.target)
            counts["depth"] -= 1
            expanding.discard(node)
        elif node.kind == "mapping":
            pairs = zip(node.children[::2], node.children[1::2], strict=True)
            for key, value in pairs:
                if not key.merge:
                    unmarshal(key)
                    unmarshal(value)
                elif value.kind == "sequence":
                    for merged in value.children:
                        unmarshal(merged)
                else:
                    unmarshal(value)
        else:
            for child in node.children:
                unmarshal(child)

    unmarshal(stack[0])
    return counts["decodes"], counts["aliases"]


@st.composite
def aliased_documents(draw: st.DrawFn) -> str:
    """A mapping of anchored collections holding scalars and aliases of earlier anchors (mostly
    the one just before, now and then their own), the mappings merging earlier mappings now and
    then, with a plain list of some length before or after them."""
    lines = []
    mappings: list[int] = []
    for i in range(draw(st.integers(1, 8))):
        if draw(st.integers(0, 20)) == 0:
            earlier = st.integers(0, i)  # their own too
        else:
            earlier = st.integers(0, i - 1) | st.just(i - 1)
        items = [
            f"*a{draw(earlier)}" if i and draw(st.integers(0, 3)) else "0"
            for _ in range(draw(st.integers(0, 12)))
        ]
        if draw(st.booleans()):
            lines.append(f"a{i}: &a{i} [{', '.join(items)}]")
            continue
        entries = [f"k{n}: {item}" for n, item in enumerate(items)]
        merge: bool = draw(st.booleans())
        if mappings and merge:
            merged = draw(st.lists(st.sampled_from(mappings), min_size=1, max_size=3))
            entries.insert(0, "<<: [" + ", ".join(f"*a{m}" for m in merged) + "]")
        lines.append(f"a{i}: &a{i} {{{', '.join(entries)}}}")
        mappings.append(i)
    plain = f"p: [{', '.join(['0'] * draw(st.integers(0, 400)))}]"
    lines.insert(draw(st.sampled_from([0, len(lines)])), plain)
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(aliased_documents())
def test_aliases_are_refused_exactly_when_go_yaml_refuses_them(text: str) -> None:
    try:
        counts = go_yaml_decode(text)
        verdict = "loads"
    except _GoYamlRefused as refused:
        verdict = str(refused)
    else:
        # The loader counts what go-yaml counts, node for node.
        graph = manifests._Graph()
        root = yaml.compose(text, Loader=yaml.CSafeLoader)
        assert root is not None
        graph.measure(root, document=True)
        assert (graph.decodes, graph.aliases) == counts
    started = time.perf_counter()
    try:
        load(text)
        outcome = "loads"
    except ManifestError as error:
        outcome = "excessive" if error.message.endswith("excessive aliasing") else "contains"
    assert time.perf_counter() - started < 5  # a guard against stalling, not a speed measure
    # Refused exactly when go-yaml refuses. When a document both contains itself and aliases
    # excessively, which of the two is found first depends on the order of the walk: go-yaml
    # may count past its limit on its way to the self-reference, and the other way round.
    assert (outcome == "loads") == (verdict == "loads"), (verdict, outcome, text)


def double_quoted(text: str) -> str:
    """``text`` as a YAML double-quoted scalar, every character but printable ASCII escaped."""
    return (
        '"'
        + "".join(c if " " <= c <= "~" and c not in '"\\' else f"\\U{ord(c):08x}" for c in text)
        + '"'
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(max_size=6), min_size=1, max_size=8, unique=True),
    st.integers(min_value=0),
    st.integers(min_value=0),
)
def test_a_repeated_key_is_named_with_its_line(keys: list[str], first: int, second: int) -> None:
    index = first % len(keys)
    repeated = keys[index]
    lines = [f"{double_quoted(key)}: {n}" for n, key in enumerate(keys)]
    at = index + 1 + second % (len(keys) - index)  # anywhere after the first
    lines.insert(at, f"{double_quoted(repeated)}: again")
    with pytest.raises(ManifestError) as refused:
        load("\n".join(lines) + "\n")
    where, _, shown = refused.value.message.partition(": duplicate key ")
    assert where == f"f.yaml:{at + 1}"
    # The key as JSON, escaped where it would not print.
    assert json.loads(shown) == repeated and shown.isprintable()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="[]{}:-,&*!|>'\"#?<= \n\tab01", max_size=60))
def test_any_text_loads_or_is_a_manifest_error(text: str) -> None:
    with contextlib.suppress(ManifestError):
        load(text)


# --- end to end: one message, the documented exit status, no traceback ------------------------


def _limit_memory() -> None:
    limit = 1 << 30  # 1 GiB: today's loader ran past 2.8 GB on a billion laughs
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@dataclass(frozen=True)
class Hostile:
    """A hostile manifest, the same object as the manifests repository holds it, and what the
    refusal names."""

    text: str
    held: str
    line: int
    problem: str


DEEP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata:\n" + "".join(
    " " * (n + 1) + "k:\n" for n in range(499)
)
HOSTILE = {
    # The billion laughs, on both sides.
    "aliasing": Hostile(
        billion_laughs(), billion_laughs(), 9, "document contains excessive aliasing"
    ),
    # A ConfigMap whose data nests 500 levels deep (level n on line n + 3), changed.
    "nesting": Hostile(
        DEEP + " " * 500 + "v\n", DEEP + " " * 500 + "w\n", MAX_DEPTH + 4, "nesting deeper than"
    ),
    "duplicate": Hostile(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a,\n  name: b}\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
        4,
        'duplicate key "name"',
    ),
}


def diff(project: Path, against: Path) -> subprocess.CompletedProcess[str]:
    """``invoke diff --no-synth --against AGAINST`` with 1 GiB of memory and 60 s at most."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MANIFESTS_", "GITOPSKIT_", "GITLAB_", "INVOKE_"))
    }
    environ.update(PYTHONPATH=str(REPO), NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "invoke", "diff", "--no-synth", "--against", str(against)],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
    )


@pytest.mark.parametrize("hostile", HOSTILE)
def test_diff_of_hostile_yaml_on_both_sides_exits_2(
    project_dir: Path, tmp_path: Path, hostile: str
) -> None:
    # A billion laughs on both sides ran past 120 s and 2.8 GB; 500 levels ended in a
    # RecursionError traceback and exit 1, which --exit-code documents as "differs".
    case = HOSTILE[hostile]
    against = write_dist(tmp_path / "manifests", {"app.k8s.yaml": case.held})
    write_dist(project_dir / "dist", {"app.k8s.yaml": case.text})
    done = diff(project_dir, against)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"dist/app.k8s.yaml:{case.line}: {case.problem}" in done.stderr


@pytest.mark.parametrize("hostile", HOSTILE)
def test_publish_refuses_hostile_yaml_and_exits_1(
    gitlab: FakeGitLab, project_dir: Path, captured: Captured, hostile: str
) -> None:
    case = HOSTILE[hostile]
    project = gitlab.add_project(PROJECT, initial_files={"app.k8s.yaml": case.held})
    write_dist(project_dir / "dist", {"app.k8s.yaml": case.text})
    done = invoke(project_dir, "publish", "--no-synth", captured=captured, env=gitlab_env(gitlab))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"app.k8s.yaml:{case.line}: {case.problem}" in done.stderr
    assert project.branches() == ["main"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_synth_refuses_hostile_yaml_from_the_app_and_exits_1(
    project_dir: Path, captured: Captured, hostile: str
) -> None:
    case = HOSTILE[hostile]
    (project_dir / "app.py").write_text(
        "import os, pathlib\n"
        "out = pathlib.Path(os.environ['CDK8S_OUTDIR'])\n"
        "out.mkdir(parents=True, exist_ok=True)\n"
        f"(out / 'app.k8s.yaml').write_text({case.text!r})\n"
    )
    done = invoke(project_dir, "synth", "--app", f"{sys.executable} app.py", captured=captured)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"app.k8s.yaml:{case.line}: {case.problem}" in done.stderr
    assert list((project_dir / "dist").iterdir()) == []
