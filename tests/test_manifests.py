"""Loading manifests as Kubernetes reads them: YAML 1.1, libyaml, lines in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

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
