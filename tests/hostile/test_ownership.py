"""Issue 9 §2: which files gitopskit owns is one rule, read exactly as written, and publish
removes only regular files (or links, as links) that it owns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitopskit.errors import ManifestError
from gitopskit.tree import (
    INDEX_FILE,
    Kind,
    index_bytes,
    ownership,
    parse_index,
    path_problem,
)
from tests.fakes.gitlab import FakeGitLab
from tests.hostile.conftest import (
    BRANCH,
    PROJECT,
    Captured,
    configmap,
    do_publish,
    gitlab_env,
    invoke,
    merge,
    write_dist,
)

OTHER_TEAMS = {
    "team-b/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: b}\n",
    "flux-system/gotk-sync.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: flux}\n",
    ".gitlab-ci.yml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ci}\n",
    "README.md": "# manifests\n",
}
OURS = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: shop}\ndata: {a: '1'}\n"


def test_diff_before_the_first_publish_owns_what_publish_would_adopt(
    project_dir: Path, tmp_path: Path, captured: Captured
) -> None:
    """Today diff owned every YAML file recursively, dotfiles included, and announced that
    other teams' objects and Flux's own would be removed."""
    manifests = tmp_path / "manifests"
    for name, text in {**OTHER_TEAMS, "web.k8s.yaml": OURS}.items():
        (manifests / name).parent.mkdir(parents=True, exist_ok=True)
        (manifests / name).write_text(text)
    write_dist(project_dir / "dist", {"web.k8s.yaml": OURS})
    done = invoke(
        project_dir, "diff", "--no-synth", "--format", "json", "--against", str(manifests),
        captured=captured,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["summary"]["removed"] == 0, document
    assert document["summary"]["unchanged"] == 1
    assert "team-b/app.yaml" in done.stderr and "not owned" in done.stderr


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\r"])
def test_a_synthesized_path_with_a_line_separator_is_refused(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured, separator: str
) -> None:
    """A path holding U+2028 was written as one index line and read back as two: the next
    publish owned, and deleted, another team's file."""
    project = gitlab.add_project(PROJECT, initial_files=OTHER_TEAMS)
    dist = write_dist(
        tmp_path / "dist",
        {"web.k8s.yaml": OURS, f"x{separator}team-b/app.yaml": [configmap("x")]},
    )
    with pytest.raises(ManifestError, match=r"U\+[0-9A-F]{4}") as caught:
        do_publish(gitlab_env(gitlab), dist, captured)
    assert "team-b/app.yaml" in caught.value.message
    assert project.branches() == ["main"] and project.merge_requests == []


@pytest.mark.parametrize("line", ["web.k8s.yaml\u2028team-b/app.yaml", "team-b\r", "../x.yaml"])
def test_an_index_line_publish_could_not_have_written_is_refused(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured, line: str
) -> None:
    project = gitlab.add_project(
        PROJECT, initial_files={**OTHER_TEAMS, INDEX_FILE: f"# index\n{line}\n"}
    )
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": OURS})
    with pytest.raises(ManifestError, match=rf"{INDEX_FILE}:2"):
        do_publish(gitlab_env(gitlab), dist, captured)
    assert project.branches() == ["main"]
    assert project.read_file("main", "team-b/app.yaml") == OTHER_TEAMS["team-b/app.yaml"].encode()


@pytest.mark.parametrize("indexed", [False, True])
def test_a_directory_named_like_a_synthesized_file_is_never_removed(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured, indexed: bool
) -> None:
    """A hand-written ``web.k8s.yaml/inner.yaml`` was deleted to make room, without --adopt."""
    files = {**OTHER_TEAMS, "web.k8s.yaml/inner.yaml": OTHER_TEAMS["team-b/app.yaml"]}
    if indexed:  # an index from an earlier publish, when web.k8s.yaml was a file
        files[INDEX_FILE] = "web.k8s.yaml\n"
    project = gitlab.add_project(PROJECT, initial_files=files)
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": OURS})
    for adopt in (False, True):
        with pytest.raises(ManifestError, match=r"web\.k8s\.yaml is a directory there"):
            do_publish(gitlab_env(gitlab), dist, captured, adopt=adopt)
    assert project.branches() == ["main"]
    assert "web.k8s.yaml/inner.yaml" in project.list_files("main")


def test_a_file_where_a_synthesized_directory_goes_is_never_replaced(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    project = gitlab.add_project(PROJECT, initial_files={"apps": "hand-written\n"})
    dist = write_dist(tmp_path / "dist", {"apps/web.k8s.yaml": OURS})
    with pytest.raises(ManifestError, match="apps is a file there"):
        do_publish(gitlab_env(gitlab), dist, captured, adopt=True)
    assert project.read_file("main", "apps") == b"hand-written\n"


def test_the_first_publish_names_every_adopted_file(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    project = gitlab.add_project(
        PROJECT, initial_files={**OTHER_TEAMS, "old-a.yaml": OURS, "old-b.yml": "kind: X\n"}
    )
    dist = write_dist(tmp_path / "dist", {"web.k8s.yaml": OURS})
    run = do_publish(gitlab_env(gitlab), dist, captured)
    assert "adopting 2 top-level YAML files: old-a.yaml, old-b.yml" in run.output
    (mr,) = project.merge_requests
    assert "`old-a.yaml`, `old-b.yml`" in mr["description"]
    assert "First publish" in mr["description"]


def test_publishing_no_objects_over_owned_ones_needs_allow_empty(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured
) -> None:
    """An empty output (a chart set that failed to import quietly) would remove everything."""
    project = gitlab.add_project(PROJECT, initial_files=OTHER_TEAMS)
    dist = write_dist(
        tmp_path / "dist", {"a.k8s.yaml": [configmap("a"), configmap("b")], "c.k8s.yaml": OURS}
    )
    do_publish(gitlab_env(gitlab), dist, captured)
    merge(project)
    write_dist(dist, {"a.k8s.yaml": "---\n"})
    with pytest.raises(ManifestError, match="would remove all 3 objects") as caught:
        do_publish(gitlab_env(gitlab), dist, captured)
    assert "--allow-empty" in str(caught.value)
    assert BRANCH not in project.branches()
    run = do_publish(gitlab_env(gitlab), dist, captured, allow_empty=True)
    assert run.result.diff is not None and run.result.diff.summary["removed"] == 3
    assert "team-b/app.yaml" in project.list_files(BRANCH)


# --- properties of the one rule ---------------------------------------------------------------

_PATH_CHARS = st.characters(
    blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"), blacklist_characters="/"
)
_COMPONENT = st.text(_PATH_CHARS, min_size=1, max_size=8).filter(lambda c: c not in (".", ".."))
_PATHS = st.lists(_COMPONENT, min_size=1, max_size=3).map("/".join).filter(
    lambda p: not p.startswith("#")
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_PATHS, max_size=12))
def test_the_index_reads_back_exactly_what_was_written(paths: list[str]) -> None:
    assert parse_index(index_bytes(paths)) == sorted(set(paths))


@settings(max_examples=200, deadline=None)
@given(_PATHS, st.sampled_from(["\n", "\r", "\u2028", "\u2029", "\x85", "\x00", "\u202e"]), _PATHS)
def test_no_path_with_a_line_break_or_control_character_is_ever_written(
    before: str, bad: str, after: str
) -> None:
    path = f"{before}{bad}{after}"
    assert path_problem(path) is not None
    with pytest.raises(ManifestError):
        index_bytes([path])


_KINDS = st.sampled_from([Kind.FILE, Kind.LINK, Kind.OTHER])


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(_PATHS, _KINDS, max_size=12),
    st.none() | st.lists(_PATHS, max_size=8),
)
def test_only_listed_or_adopted_regular_files_and_links_are_owned(
    listing: dict[str, Kind], index: list[str] | None
) -> None:
    # A listing is a tree: no path is both a file and a directory.
    tree = {p: k for p, k in listing.items() if not any(o.startswith(p + "/") for o in listing)}
    owned = ownership(tree, None if index is None else index_bytes(index), "t")
    for path in owned.files:
        assert tree[path] is Kind.FILE
    for path in owned.links:
        assert tree[path] is Kind.LINK
    if index is None:
        assert owned.links == []
        assert all("/" not in p and p.endswith((".yaml", ".yml")) for p in owned.files)
        assert all(not p.startswith(".") for p in owned.files)
    else:
        assert set(owned.files) | set(owned.links) <= set(index)
