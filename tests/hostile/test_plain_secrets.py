"""Issue 9 §4: a Secret carrying plain values is found on the parsed objects, whatever its form,
refused by publish and masked by diff in every format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitopskit import diff, render
from gitopskit.errors import ManifestError
from gitopskit.tree import DirectoryReader, Tree, load_output, load_owned
from tests.fakes.gitlab import FakeGitLab
from tests.hostile.conftest import PROJECT, Captured, do_publish, gitlab_env, invoke, write_dist

VALUE = "cGxhaW4tcGFzc3dvcmQtdmFsdWU="  # base64 of a password
PLAIN = "plain-password-value-42"

FORMS = {
    "in a List (cdk8s emits those)": (
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: Secret\n  metadata: {name: db, namespace: shop}\n"
        f"  data: {{password: {VALUE}}}\n"
    ),
    "in a nested List": (
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: SecretList\n  items:\n"
        "  - apiVersion: v1\n    kind: Secret\n    metadata: {name: db, namespace: shop}\n"
        f"    stringData: {{password: {PLAIN}}}\n"
    ),
    "kind with a comment": (
        "apiVersion: v1\nkind: Secret  # comment\nmetadata: {name: db, namespace: shop}\n"
        f"data: {{password: {VALUE}}}\n"
    ),
    "flow style": (
        "{apiVersion: v1, kind: Secret, metadata: {name: db, namespace: shop}, "
        f"stringData: {{password: {PLAIN}}}}}\n"
    ),
    "JSON": json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "shop"},
            "data": {"password": VALUE},
        }
    )
    + "\n",
    "quoted key": (
        '"apiVersion": "v1"\n"kind": "Secret"\nmetadata: {name: db, namespace: shop}\n'
        f'"data": {{"password": "{VALUE}"}}\n'
    ),
    "escaped in a double-quoted scalar": (
        'apiVersion: v1\nkind: "Secr\\x65t"\nmetadata: {name: db, namespace: shop}\n'
        f"data: {{password: {VALUE}}}\n"
    ),
    "in a List without apiVersion (kustomize expands it all the same)": (
        "kind: List\nitems:\n"
        "- apiVersion: v1\n  kind: Secret\n  metadata: {name: db, namespace: shop}\n"
        f"  data: {{password: {VALUE}}}\n"
    ),
    "kind from a merge key": (
        "apiVersion: v1\n<<: {kind: Secret, metadata: {name: db, namespace: shop}}\n"
        f"stringData: {{password: {PLAIN}}}\n"
    ),
    "tagged": (
        "!!map {apiVersion: !!str v1, kind: !!str Secret, metadata: {name: db, namespace: shop},"
        f" data: !!map {{password: {VALUE}}}}}\n"
    ),
    "kind in lower case (refused by the cluster, but the values would be in git)": (
        "apiVersion: v1\nkind: secret\nmetadata: {name: db, namespace: shop}\n"
        f"data: {{password: {VALUE}}}\n"
    ),
    "indented after a document marker": (
        "--- \n  apiVersion: v1\n  kind: Secret\n  metadata: {name: db, namespace: shop}\n"
        f"  stringData: {{password: {PLAIN}}}\n"
    ),
}


@pytest.mark.parametrize("form", FORMS, ids=list(FORMS))
def test_publish_refuses_a_plain_secret_in_any_form(
    gitlab: FakeGitLab, tmp_path: Path, captured: Captured, form: str
) -> None:
    project = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    dist = write_dist(tmp_path / "dist", {"app.k8s.yaml": FORMS[form]})
    with pytest.raises(ManifestError, match=r"refusing to publish plain Secrets: shop/db"):
        do_publish(gitlab_env(gitlab), dist, captured)
    assert project.branches() == ["main"]


def _diff(tmp_path: Path, old: str | None, new: str) -> diff.DiffResult:
    old_dir = tmp_path / "old"
    old_dir.mkdir(exist_ok=True)
    if old is not None:
        (old_dir / "app.k8s.yaml").write_text(old)
    new_tree = load_output(write_dist(tmp_path / "new", {"app.k8s.yaml": new})).tree
    return diff.compare(load_owned(DirectoryReader(old_dir, label="old"))[0], new_tree)


def _outputs(result: diff.DiffResult) -> list[str]:
    return [
        render.render_text(result),
        render.render_text(result, colour=True),
        render.render_markdown(result),
        render.render_markdown(result, limit=900),
        render.render_json(result),
    ]


@pytest.mark.parametrize("form", FORMS, ids=list(FORMS))
def test_diff_masks_a_secret_in_any_form(tmp_path: Path, form: str) -> None:
    added = _diff(tmp_path, None, FORMS[form])
    assert [r.identity.kind.casefold() for r in added.resources] == ["secret"]
    changed = _diff(tmp_path, FORMS[form].replace(VALUE, "b3RoZXI=").replace(PLAIN, "o"),
                    FORMS[form])  # fmt: skip
    for result in (added, changed):
        for text in _outputs(result):
            assert VALUE not in text and PLAIN not in text and "***" in text
    # The changed fields name the key, never a value, in JSON and in the titles.
    (resource,) = json.loads(render.render_json(changed))["resources"]
    (field,) = resource["fields"]
    assert field["path"].endswith(".password") and field["before"] == field["after"] == "***"
    assert [w["code"] for w in resource["warnings"]] == ["plain-secret"]
    assert "Secret key password changed" in render.title(changed.resources[0])


def test_invoke_diff_masks_a_secret_inside_a_list(
    project_dir: Path, tmp_path: Path, captured: Captured
) -> None:
    against = tmp_path / "manifests"
    against.mkdir()
    write_dist(project_dir / "dist", {"app.k8s.yaml": FORMS["in a List (cdk8s emits those)"]})
    for fmt in ("text", "markdown", "json"):
        done = invoke(
            project_dir, "diff", "--no-synth", "--format", fmt, "--against", str(against),
            captured=captured,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert VALUE not in done.stdout + done.stderr


_SECRET_WORDS = st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=4).map(
    lambda text: f"s3cr3t-{text}"
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=_SECRET_WORDS,
    section=st.sampled_from(["data", "stringData"]),
    style=st.sampled_from(["block", "flow", "json", "list", "canonical"]),
    extra_docs=st.integers(min_value=0, max_value=3),
)
def test_every_plain_secret_is_found_and_masked_whatever_its_dump(
    tmp_path_factory: pytest.TempPathFactory, value: str, section: str, style: str,
    extra_docs: int,
) -> None:  # fmt: skip
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "n"},
        section: {"key": value},
    }
    others = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}}
        for i in range(extra_docs)
    ]
    documents: list[object] = [*others, secret]
    if style == "list":
        documents = [{"apiVersion": "v1", "kind": "List", "items": documents}]
    if style == "json":
        text = "\n---\n".join(json.dumps(d) for d in documents)
    else:
        text = yaml.dump_all(
            documents, default_flow_style=style == "flow", canonical=style == "canonical"
        )
    root = tmp_path_factory.mktemp("secret")
    output = load_output(write_dist(root / "dist", {"s.k8s.yaml": text}))
    (found,) = output.tree.plain_secrets
    assert found.startswith("n/s (s.k8s.yaml:")
    result = diff.compare(Tree("old"), output.tree)
    for rendered in _outputs(result):
        assert value not in rendered
