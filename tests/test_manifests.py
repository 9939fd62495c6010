"""Loading manifests as Kubernetes reads them: YAML 1.1, libyaml, lines in errors."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gitopskit.diff import to_yaml
from gitopskit.errors import ManifestError
from gitopskit.manifests import KubeLoader, load_documents, manifest_files


def test_loader_is_libyaml() -> None:
    assert KubeLoader.__mro__[1].__name__ == "CSafeLoader"


def test_yaml_1_1_semantics_and_string_timestamps() -> None:
    (doc,) = load_documents("a: on\nb: 0644\nc: 2024-01-01\nd: 'on'\n", "f.yaml")
    assert doc.data == {"a": True, "b": 420, "c": "2024-01-01", "d": "on"}


def test_documents_know_their_lines_and_empty_ones_are_skipped() -> None:
    docs = list(load_documents("kind: A\n---\n---\n# c\napiVersion: v1\nkind: B\n", "f.yaml"))
    assert [(d.line, d.data["kind"]) for d in docs] == [(1, "A"), (5, "B")]
    assert docs[1].is_object and not docs[0].is_object


def test_syntax_error_names_file_and_line() -> None:
    with pytest.raises(ManifestError, match=r"bad.yaml:3:\d+: YAML syntax error"):
        list(load_documents("a: 1\nb: 2\n c: 3\nd: 4\n", "bad.yaml"))


def test_manifest_files_recursive_sorted_hidden_skipped(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "sub/c.yaml", ".git/x.yaml", "README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x: 1\n")
    found = [p.relative_to(tmp_path).as_posix() for p in manifest_files(tmp_path)]
    assert found == ["a.yml", "b.yaml", "sub/c.yaml"]


MERGES = """\
base: &base {name: base, image: web:1, port: 80}
extra: &extra {name: extra, env: prod, port: 81}
explicit: {<<: *base, name: mine}
listed: {<<: [*base, *extra]}
twice: {<<: [*extra, *extra], x: 1}
later: {<<: *base, y: 2, <<: *extra}
inline: {<<: {<<: {a: 1, b: 1}, b: 2}, c: 3}
diamond: &d {<<: [&a {<<: *base, a: 1}, *base], d: 1}
again: {<<: [*a, *d]}
"""


def test_merge_keys_resolve_as_go_yaml_does() -> None:
    (doc,) = load_documents(MERGES, "m.yaml")
    data = doc.data
    base = {"name": "base", "image": "web:1", "port": 80}
    # An explicit key wins over a merged one, and is no duplicate.
    assert data["explicit"] == {**base, "name": "mine"}
    # The first mapping of a list wins over later ones.
    assert data["listed"] == {"name": "base", "image": "web:1", "port": 80, "env": "prod"}
    assert data["twice"] == {"name": "extra", "env": "prod", "port": 81, "x": 1}
    # A later merge key wins over an earlier one (go-yaml v2 merges each where it stands).
    assert data["later"] == {"name": "extra", "image": "web:1", "port": 81, "env": "prod", "y": 2}
    assert data["inline"] == {"a": 1, "b": 2, "c": 3}
    assert data["diamond"] == {**base, "a": 1, "d": 1}
    assert data["again"] == {**base, "a": 1, "d": 1}
    # Merging copies entries, never the mappings merged.
    assert data["base"] == base


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: {<<: 1}\n", "expected a mapping or list of mappings for merging, but found scalar"),
        ("a: {<<: [{b: 1}, 2]}\n", "expected a mapping for merging, but found scalar"),
        ("a: {[1]: 2}\n", "found unhashable key"),
    ],
)
def test_bad_merges_and_keys_name_file_and_line(text: str, problem: str) -> None:
    with pytest.raises(ManifestError, match=rf"^m\.yaml:1:\d+: YAML syntax error: {problem}$"):
        list(load_documents(text, "m.yaml"))


# --- properties ---------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["on", "yes", "0644", "1_000", "2024-01-01", "<<", "=", "~", "", "y"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=24,
)


def typed(value: Any) -> Any:
    """``value`` with every scalar paired with its type: ``True`` is not ``1``, nor ``1.0``."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


@settings(max_examples=150)
@given(VALUES)
def test_what_pyyaml_dumps_loads_back_the_same(value: Any) -> None:
    text = yaml.safe_dump(value, sort_keys=False)
    (doc,) = load_documents(text, "v.yaml") if value is not None else [None]
    assert typed(doc.data if doc is not None else None) == typed(value)


@settings(max_examples=150)
@given(st.lists(VALUES, min_size=1, max_size=3))
def test_what_diff_shows_loads_back_the_same(values: list[Any]) -> None:
    # diff's to_yaml quotes for a YAML 1.1 reader; documents are read one by one.
    text = "---\n".join(to_yaml(v) for v in values)
    docs = [d.data for d in load_documents(text, "v.yaml")]
    assert [typed(d) for d in docs] == [typed(v) for v in values if v is not None]


def _peak_while_reading(stream: str) -> int:
    tracemalloc.start()
    try:
        for document in load_documents(stream, "f.yaml"):
            del document
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_documents_are_read_one_at_a_time() -> None:
    # Six documents in a stream cost about what one does: once a document is yielded, the loader
    # holds none of its nodes (which take some 100 times the text they were read from).
    document = "items:\n" + "".join(f"- {{k: v{i}, n: {i}}}\n" for i in range(1000))
    one = _peak_while_reading(document)
    six = "---\n".join([document] * 6)
    assert _peak_while_reading(six) < 1.5 * one + 2 * len(six)


def test_a_later_documents_error_comes_when_it_is_read() -> None:
    docs = load_documents("a: [1]\n---\nb: {c: 2}\n---\n[unclosed\n", "f.yaml")
    assert next(docs).data == {"a": [1]}
    assert next(docs).data == {"b": {"c": 2}}
    with pytest.raises(ManifestError, match=r"^f\.yaml:6:1: YAML syntax error"):
        next(docs)
