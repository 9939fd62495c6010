"""The diff engine: reading, matching, masking, the unified diff of each object."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from gitopskit import diff, git, render, tree
from gitopskit.against import resolve_against
from gitopskit.config import Settings
from gitopskit.errors import ConfigError, ManifestError
from gitopskit.tree import DirectoryReader, Identity, load_output, load_owned

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: {replicas}
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27
"""

SECRET_VALUES = ("c2VjcmV0LW9uZQ==", "c2VjcmV0LXR3bw==", "plain-text-secret", "b2xkLXZhbHVl")


def write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def manifests_tree(root: Path, subdir: str = "", label: str = "repo") -> tree.Tree:
    """The files gitopskit owns in a manifests directory, as diff reads them."""
    return load_owned(DirectoryReader(root, subdir, label=label))[0]


def run(tmp_path: Path, old: dict[str, str], new: dict[str, str]) -> diff.DiffResult:
    index = "".join(f"{name}\n" for name in old).encode()
    old_root = write(tmp_path / "old", old)
    (old_root / tree.INDEX_FILE).write_bytes(index)
    new_tree = load_output(write(tmp_path / "new", new), label="new").tree
    return diff.compare(manifests_tree(old_root, label="old"), new_tree)


def changes(result: diff.DiffResult) -> dict[str, str]:
    return {r.identity.name: r.change for r in result.resources}


def test_identity_and_scope() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "namespace": "x"}}
    assert tree.identity_of(ns) == Identity("", "Namespace", "shop", "")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "r"},
    }
    assert tree.identity_of(role).cluster_scoped
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert tree.identity_of(cm) == Identity("default", "ConfigMap", "c", "")
    crd_obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert tree.identity_of(crd_obj).namespace == "default"
    assert tree.api_group("apps/v1") == "apps"


def test_every_change_type(tmp_path: Path) -> None:
    old = {
        "a.yaml": DEPLOYMENT.format(replicas=1)
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: gone}\n",
        "b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mover}\ndata: {k: v}\n",
        "c.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\ndata: {k: v}\n",
    }
    new = {
        "a.yaml": DEPLOYMENT.format(replicas=3)
        + "---\napiVersion: v1\nkind: Service\nmetadata: {name: fresh, namespace: shop}\n",
        "moved/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mover}\ndata: {k: v}\n",
        "c.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\ndata: {k: v}\n",
    }
    result = run(tmp_path, old, new)
    assert changes(result) == {
        "web": "changed",
        "gone": "removed",
        "fresh": "added",
        "mover": "moved",
    }
    assert result.summary == {"added": 1, "removed": 1, "changed": 1, "unchanged": 1, "moved": 1}
    assert list(result.summary) == ["removed", "changed", "added", "moved", "unchanged"]
    assert result.summary_line() == (
        "1 to delete (Flux prunes them), 1 to change, 1 to add, 1 moved, 1 unchanged"
    )
    assert result.has_changes
    by_name = {r.identity.name: r for r in result.resources}
    assert "-  replicas: 1\n+  replicas: 3\n" in by_name["web"].diff
    assert by_name["web"].diff.startswith("@@ Deployment shop/web @@\n")  # no ---/+++ headers
    assert (by_name["web"].lines_added, by_name["web"].lines_removed) == (1, 1)
    assert [(f.path, f.before, f.after) for f in by_name["web"].fields] == [("spec.replicas", 1, 3)]
    assert by_name["mover"].from_file == "b.yaml" and by_name["mover"].file == "moved/b.yaml"
    assert all(line.startswith(("+", "@")) for line in by_name["fresh"].diff.splitlines()[1:])
    assert "-kind: ConfigMap" in by_name["gone"].diff
    document = json.loads(render.render_json(result))
    assert document["summary"]["moved"] == 1
    moved = next(r for r in document["resources"] if r["change"] == "moved")
    assert moved["from_file"] == "b.yaml" and moved["file"] == "moved/b.yaml"
    assert set(document["resources"][0]) >= {
        "change",
        "apiVersion",
        "kind",
        "namespace",
        "name",
        "file",
        "fields",
        "warnings",
        "diff",
    }


def test_reordered_and_requoted_file_is_unchanged(tmp_path: Path) -> None:
    new = """\
    kind: Deployment
    spec:
      template: {spec: {containers: [{image: "nginx:1.27", name: web}]}}
      replicas: 1
    metadata: {namespace: shop, name: 'web'}
    apiVersion: "apps/v1"
    """
    result = run(tmp_path, {"a.yaml": DEPLOYMENT.format(replicas=1)}, {"a.yaml": new})
    assert result.resources == [] and result.summary["unchanged"] == 1
    assert not result.has_changes
    assert "no changes" in render.render_text(result)


def test_yaml_1_1_semantics(tmp_path: Path) -> None:
    base = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\nx: {value}\n"
    old = {
        "a.yaml": base.format(name="octal", value="0644")
        + "---\n"
        + base.format(name="bool", value='"on"')
        + "---\n"
        + base.format(name="int", value="1")
    }
    new = {
        "a.yaml": base.format(name="octal", value="420")
        + "---\n"
        + base.format(name="bool", value="on")
        + "---\n"
        + base.format(name="int", value="true")
    }
    result = run(tmp_path, old, new)
    assert changes(result) == {"bool": "changed", "int": "changed"}
    bool_diff = next(r.diff for r in result.resources if r.identity.name == "bool")
    assert "-x: 'on'\n+x: true\n" in bool_diff


def test_dumped_yaml_is_yaml_1_1_safe() -> None:
    text = diff.to_yaml({"a": "on", "b": "0644", "c": "y", "d": "1e3", "e": "0o17", "f": "no"})
    assert text == "a: 'on'\nb: '0644'\nc: 'y'\nd: '1e3'\ne: '0o17'\nf: 'no'\n"


def secret(name: str, data: str, string_data: str = "") -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ndata: {data}\n{string_data}"


def test_secret_values_never_appear_in_any_format(tmp_path: Path) -> None:
    one, two, plain, old_value = SECRET_VALUES
    old = {
        "s.yaml": secret("creds", f"{{kept: {one}, changed: {old_value}, dropped: {one}}}")
        + "---\n"
        + secret("old", f"{{k: {two}}}")
    }
    new = {
        "s.yaml": secret(
            "creds",
            f"{{kept: {one}, changed: {two}, new: {two}}}",
            f"stringData: {{token: {plain}}}\n",
        )
        + "---\n"
        + secret("fresh", f"{{k: {one}}}", f"stringData: {{p: {plain}}}\n")
    }
    result = run(tmp_path, old, new)
    assert changes(result) == {"creds": "changed", "old": "removed", "fresh": "added"}
    creds = next(r.diff for r in result.resources if r.identity.name == "creds")
    assert "-  changed: '*** (before)'\n" in creds and "+  changed: '*** (after)'\n" in creds
    assert "-  dropped: '***'\n" in creds and "+  new: '***'\n" in creds
    assert "+  token: '***'\n" in creds and "  kept: '***'\n" in creds
    outputs = [
        render.render_text(result, colour=False),
        render.render_text(result, colour=True),
        render.render_markdown(result),
        render.render_markdown(result, limit=600),
        render.render_json(result),
    ]
    for output in outputs:
        for value in SECRET_VALUES:
            assert value not in output


def test_secret_value_change_alone_is_a_change(tmp_path: Path) -> None:
    one, two, *_ = SECRET_VALUES
    result = run(
        tmp_path, {"s.yaml": secret("s", f"{{k: {one}}}")}, {"s.yaml": secret("s", f"{{k: {two}}}")}
    )
    assert changes(result) == {"s": "changed"}
    assert one not in result.resources[0].diff and two not in result.resources[0].diff


def test_duplicate_identity_names_both_files(tmp_path: Path) -> None:
    write(
        tmp_path, {"a.yaml": DEPLOYMENT.format(replicas=1), "b.yaml": DEPLOYMENT.format(replicas=2)}
    )
    with pytest.raises(ManifestError) as caught:
        load_output(tmp_path, label="tree")
    assert "a.yaml:1" in caught.value.message and "b.yaml:1" in caught.value.message
    assert "Deployment" in caught.value.message


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n"})
    with pytest.raises(ManifestError, match=r"tree/bad\.yaml:\d+"):
        load_output(tmp_path, label="tree")


def test_non_kubernetes_yaml_is_skipped_with_a_note(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "values.yaml": "replicas: 3\n",
            "a.yaml": DEPLOYMENT.format(replicas=1) + "---\n- just\n- a list\n",
        },
    )
    found = manifests_tree(tmp_path, label="tree")
    assert len(found.resources) == 1
    assert len(found.notes) == 1
    assert "skipped 2 YAML documents" in found.notes[0]
    assert "values.yaml:1" in found.notes[0] and "a.yaml:14" in found.notes[0]


def test_ownership_index(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "apps/web.yaml": DEPLOYMENT.format(replicas=1),
            "hand-written.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine}\n",
            "apps/.gitopskit-files": "# written by gitopskit publish\nweb.yaml\n\ngone.yaml\n",
        },
    )
    found = manifests_tree(tmp_path, subdir="apps")
    assert [i.name for i in found.resources] == ["web"]
    assert found.files == ["web.yaml"]
    assert any("missing: gone.yaml" in n for n in found.notes)
    # An index at the root: the hand-written file is noted, never removed.
    (tmp_path / ".gitopskit-files").write_text("apps/web.yaml\n")
    old = manifests_tree(tmp_path)
    assert any("not owned" in n and "hand-written.yaml" in n for n in old.notes)
    dist = write(tmp_path / "dist", {"apps/web.yaml": DEPLOYMENT.format(replicas=1)})
    assert not diff.compare(old, load_output(dist).tree).has_changes


def test_index_rejects_paths_outside(tmp_path: Path) -> None:
    write(tmp_path, {".gitopskit-files": "../etc/passwd\n"})
    with pytest.raises(ManifestError, match="not plainly inside"):
        manifests_tree(tmp_path)


def test_missing_subdir_is_an_empty_tree(tmp_path: Path) -> None:
    reader = DirectoryReader(tmp_path, "clusters/prod", label="repo")
    assert reader.listing == {} and not reader.exists
    assert manifests_tree(tmp_path, subdir="clusters/prod").resources == {}


def test_against_a_directory_and_ref_error(tmp_path: Path) -> None:
    new = write(tmp_path / "dist", {"a.yaml": DEPLOYMENT.format(replicas=2)})
    old = write(tmp_path / "repo", {"k8s/a.yaml": DEPLOYMENT.format(replicas=1)})
    result = diff.diff_against(new, str(old), subdir="/k8s/")
    assert changes(result) == {"web": "changed"}
    assert result.target == diff.Target(str(old), None, "k8s")
    with pytest.raises(ConfigError, match="plain directory"):
        diff.diff_against(new, str(old), ref="main")
    with pytest.raises(ConfigError, match="does not exist"):
        diff.diff_against(tmp_path / "nope", str(old))


def test_resolve_against_and_format() -> None:
    empty = Settings(environ={})
    with pytest.raises(ConfigError, match=r"--against.*MANIFESTS_GIT_URL"):
        resolve_against(empty, None, None)
    configured = Settings(
        environ={"MANIFESTS_GIT_URL": "https://h/g/r.git", "MANIFESTS_TARGET_BRANCH": "prod"}
    )
    resolved = resolve_against(configured, None, None)
    assert (resolved.location, resolved.ref) == ("https://h/g/r.git", "prod")
    explicit = resolve_against(configured, "dir", None)
    assert (explicit.location, explicit.ref) == ("dir", None)
    assert explicit.env is not None and git.TOKEN_VARIABLE not in explicit.env
    gitlab = Settings(
        {},
        {
            "GITLAB_URL": "https://gl.example",
            "MANIFESTS_PROJECT": "ops/k8s",
            "MANIFESTS_READ_TOKEN": "glpat-read-only-token-1",
        },
    )
    from_gitlab = resolve_against(gitlab, None, None)
    assert from_gitlab.location == "https://gl.example/ops/k8s.git"
    assert from_gitlab.env is not None
    assert from_gitlab.env[git.TOKEN_VARIABLE] == "glpat-read-only-token-1"
    keys = [v for k, v in from_gitlab.env.items() if k.startswith("GIT_CONFIG_KEY")]
    assert "credential.https://gl.example/.helper" in keys
    with pytest.raises(ConfigError, match="unknown format"):
        render.check_format("yaml")


def test_plain_secrets_warn_whether_or_not_they_change(tmp_path: Path) -> None:
    one, two, *_ = SECRET_VALUES
    same = secret("same", f"{{k: {one}}}")
    nameless = f"apiVersion: v1\nkind: Secret\nmetadata: {{namespace: shop}}\ndata: {{k: {two}}}\n"
    old = {"s.yaml": same, "t.yaml": secret("moving", f"{{k: {one}}}")}
    new = {
        "s.yaml": same + "---\n" + secret("changing", f"{{k: {two}}}") + "---\n" + nameless,
        "u.yaml": secret("moving", f"{{k: {one}}}"),
    }
    result = run(tmp_path, old, new)
    assert changes(result) == {"changing": "added", "moving": "moved"}
    flagged = [(f.label, f.warning.code) for f in result.warnings]
    assert flagged == [
        ("Secret default/changing", "plain-secret"),  # on the resource, as it is reported
        ("Secret default/moving", "plain-secret"),  # unchanged or moved: still refused
        ("Secret default/same", "plain-secret"),
        ("Secret shop/<no name> (s.yaml:11)", "plain-secret"),
    ]
    document = json.loads(render.render_json(result))
    assert document["warnings"][-1]["kind"] == "Secret"
    assert document["warnings"][-1]["name"] is None
    assert all(value not in json.dumps(document) for value in SECRET_VALUES)
