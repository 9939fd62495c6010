"""The renderers on a realistic review: the markdown parsed as GitLab would (CommonMark with GFM
tables, by markdown-it-py), the order of everything, titles, truncation, JSON and text."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from gitopskit import diff, render, tree
from gitopskit.diff import DiffResult, ResourceChange, Target
from gitopskit.review import ImageChange, ReviewWarning
from gitopskit.tree import DirectoryReader, Identity, load_output, load_owned

Obj = dict[str, Any]
DIGEST = "sha256:" + "0f" * 32
SECRET_OLD, SECRET_NEW, KEPT = "b2xkLXBheW1lbnQta2V5", "bmV3LXBheW1lbnQta2V5", "a2VwdC12YWx1ZQ=="
HOSTILE = "x ``` y | z <details> </summary> **b** [l](u) &amp;"


def meta(name: str, namespace: str | None = "shop", **extra: Any) -> Obj:
    found: Obj = {"name": name, **extra}
    if namespace:
        found["namespace"] = namespace
    return found


def workload(name: str, image: str, replicas: int, kind: str = "Deployment") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": meta(name),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": name, "image": image, "ports": [{"containerPort": 8080}]}
                    ]
                },
            },
        },
    }


def old_objects() -> list[Obj]:
    """The manifests repository today: a shop with an API, a worker, a database."""
    api = workload("api", f"registry.example.com/shop/api@{DIGEST}", 2)
    big = {f"key{i:03d}": f"value-{i}" for i in range(300)}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": meta("legacy", None)},
        api,
        workload("worker", "registry.example.com/shop/worker:3.1", 2),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("api"),
            "spec": {
                "clusterIP": "10.96.0.20",
                "ports": [{"port": 80, "targetPort": 8080}],
                "selector": {"app": "api"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta("payment"),
            "data": {"payment-api-key": SECRET_OLD, "kept": KEPT},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta("shop-reader", None),
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("settings"),
            "data": {"mode": "fast"},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("big"), "data": big},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("tricky"),
            "data": {"text": "plain"},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("flags"), "data": {"a": "1"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("same"), "data": {"b": "2"}},
    ]


def new_objects() -> list[Obj]:
    """What the charts make now: every kind of review item at once."""
    objects = {f"{o['kind']}/{o['metadata']['name']}": o for o in old_objects()}
    del objects["Namespace/legacy"]
    api = copy.deepcopy(objects["Deployment/api"])
    api["spec"]["replicas"] = 3
    api["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.com/shop/api:2.4"
    objects["Deployment/api"] = api
    worker = workload("worker", "registry.example.com/shop/worker:latest", 0)
    objects["Deployment/worker"] = worker
    objects["Service/api"]["spec"]["clusterIP"] = "10.96.0.21"
    objects["Secret/payment"]["data"]["payment-api-key"] = SECRET_NEW
    objects["ClusterRole/shop-reader"]["rules"].append(
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    )
    objects["ConfigMap/flags"]["metadata"]["labels"] = {"team": "shop"}
    big = objects["ConfigMap/big"]["data"]
    for i in range(150, 250):
        big[f"key{i:03d}"] = f"changed-{i}"
    objects["ConfigMap/tricky"]["data"]["text"] = HOSTILE
    objects["Deployment/web"] = workload("web", "nginx", 2)
    return list(objects.values())


def write_tree(root: Path, objects: list[Obj], moved: str | None = None) -> Path:
    """One file per object (``<kind>-<name>.yaml``), ``moved`` put in ``moved/``."""
    root.mkdir(parents=True)
    for o in objects:
        name = f"{o['kind'].lower()}-{o['metadata']['name']}.yaml"
        if o["metadata"]["name"] == moved:
            name = f"moved/{name}"
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(yaml.safe_dump(o))
    return root


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> DiffResult:
    root = tmp_path_factory.mktemp("scenario")
    old_root = write_tree(root / "old", old_objects())
    (old_root / tree.INDEX_FILE).write_text(
        "".join(f"{p.name}\n" for p in sorted(old_root.glob("*.yaml")))
    )
    new_root = write_tree(root / "new", new_objects(), moved="settings")
    old = load_owned(DirectoryReader(old_root, label="manifests"))[0]
    target = Target("ops/k8s-manifests", "main", "clusters/prod")
    return diff.compare(old, load_output(new_root).tree, target=target)


def parser() -> MarkdownIt:
    """CommonMark with GFM tables, as GitLab reads a note."""
    return MarkdownIt("commonmark").enable("table")


def text_of(tokens: list[Token]) -> str:
    """The text of inline tokens as rendered (code spans included, markup dropped)."""
    out = []
    for token in tokens:
        for child in token.children or []:
            if child.type in ("text", "code_inline"):
                out.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                out.append("\n")
    return "".join(out)


def details(tokens: list[Token]) -> list[tuple[str, list[Token]]]:
    """Every ``<details>`` section: its summary (HTML-unescaped) and the tokens inside."""
    found = []
    opened: tuple[str, list[Token]] | None = None
    for token in tokens:
        if token.type == "html_block" and token.content.startswith("<details><summary>"):
            assert opened is None, "a <details> opened inside another"
            summary = re.fullmatch(r"<details><summary>(.*)</summary>\n", token.content)
            assert summary is not None, token.content
            import html

            opened = (html.unescape(summary.group(1)), [])
        elif token.type == "html_block" and token.content == "</details>\n":
            assert opened is not None, "a </details> with no <details>"
            found.append(opened)
            opened = None
        elif opened is not None:
            opened[1].append(token)
    assert opened is None, "a <details> never closed"
    return found


def test_markdown_structure_is_intact(scenario: DiffResult) -> None:
    markdown = render.render_markdown(scenario)
    tokens = parser().parse(markdown)
    inline = [t for t in tokens if t.type == "inline"]
    assert tokens[0].type == "heading_open" and inline[0].content == "Manifest diff"
    # The plan line, deletions first and bold, then the target.
    plan = inline[1]
    assert text_of([plan]) == (
        "1 to delete (Flux prunes them), 8 to change, 1 to add, 1 moved, 1 unchanged"
    )
    marks = [(c.type, c.content) for c in plan.children or [] if c.type != "text" or c.content]
    assert marks[:3] == [
        ("strong_open", ""),
        ("text", "1 to delete (Flux prunes them)"),
        ("strong_close", ""),
    ]
    assert text_of([inline[2]]) == ("Target: ops/k8s-manifests, branch main, path clusters/prod")
    # The warnings: one list item each, naming the object.
    items = [t for t in tokens if t.type == "list_item_open"]
    warnings = scenario.warnings
    lines = [text_of([t]) for t in inline if text_of([t]).startswith("⚠ ")]
    assert len(lines) == len(warnings) and len(items) >= len(warnings)
    # Escaped as markdown, each reads back exactly (``*``, ``[name=api]``, ``_`` stay text).
    assert lines == [f"⚠ {f.warning.code} {f.label}: {f.warning.message}" for f in warnings]
    assert [(f.warning.code, f.label) for f in warnings] == [
        ("delete-namespace", "Namespace legacy"),
        ("rbac-wildcard", "ClusterRole shop-reader"),
        ("image-digest-to-tag", "Deployment shop/api"),
        ("replicas-zero", "Deployment shop/worker"),
        ("image-latest", "Deployment shop/worker"),
        ("plain-secret", "Secret shop/payment"),
        ("immutable", "Service shop/api"),
        ("image-no-tag", "Deployment shop/web"),
    ]
    # The image table: a real table, one row per image.
    assert [t.type for t in tokens].count("table_open") == 1
    start = next(i for i, t in enumerate(tokens) if t.type == "table_open")
    end = next(i for i, t in enumerate(tokens) if t.type == "table_close")
    rows = [
        [text_of([c]) for c in tokens[i:end] if c.type == "inline"]
        for i in range(start, end)
        if tokens[i].type == "tr_open"
    ]
    rows = [row[:4] for row in rows]
    assert rows[0] == ["Object", "Container", "Before", "After"]
    assert [
        "Deployment shop/api",
        "api",
        f"registry.example.com/shop/api@{DIGEST}",
        "registry.example.com/shop/api:2.4",
    ] in rows
    assert ["Deployment shop/web", "web", "—", "nginx"] in rows
    assert len(rows) == 1 + len(scenario.images) == 4
    # One section per object, each holding exactly one diff fence with the diff intact.
    sections = details(tokens)
    by_label = {c.label: c for c in scenario.resources}
    titles = [summary for summary, _ in sections]
    for summary, inside in sections:
        fences = [t for t in inside if t.type == "fence"]
        assert len(fences) == 1 and fences[0].info == "diff", summary
        label = re.sub(r"^(⚠ )?(delete|change|add) ", "", summary).split(":")[0].split(" (")[0]
        assert fences[0].content == by_label[label].diff, summary
    # Order: deletions, changes with warnings, other changes, additions.
    assert titles == [
        "⚠ delete Namespace legacy (\u22124)",
        "⚠ change ClusterRole shop-reader: rules[1] (+6 \u22120)",
        "⚠ change Deployment shop/api: spec.template.spec.containers[name=api].image, "
        "spec.replicas 2 → 3 (+2 \u22122)",
        "⚠ change Deployment shop/worker: spec.replicas 2 → 0, "
        "spec.template.spec.containers[name=worker].image registry.example.com/shop/worker:3.1 "
        "→ registry.example.com/shop/worker:latest (+2 \u22122)",
        "⚠ change Secret shop/payment: Secret key payment-api-key changed (+1 \u22121)",
        "⚠ change Service shop/api: spec.clusterIP 10.96.0.20 → 10.96.0.21 (+1 \u22121)",
        "change ConfigMap shop/big: data.key150 value-150 → changed-150, "
        "data.key151 value-151 → changed-151, data.key152 value-152 → changed-152 and 97 more "
        "(+100 \u2212100)",
        "change ConfigMap shop/flags: labels only (+2 \u22120)",
        f"change ConfigMap shop/tricky: data.text plain → {HOSTILE} (+1 \u22121)",
        "⚠ add Deployment shop/web (+20)",
    ]
    # Moved-only objects: one list after the sections, not a section.
    moved = text_of([t for t in inline if "settings" in t.content])
    assert (
        moved == "ConfigMap shop/settings: configmap-settings.yaml → moved/configmap-settings.yaml"
    )
    assert "ConfigMap shop/settings" not in " ".join(titles)
    # The hostile value stays inside its fence and its title: no stray HTML or markup.
    html_blocks = [t.content for t in tokens if t.type == "html_block"]
    assert all(b.startswith(("<details><summary>", "</details>")) for b in html_blocks)
    assert not any(t.type == "link_open" for i in inline for t in (i.children or []))
    for value in (SECRET_OLD, SECRET_NEW, KEPT):
        assert value not in markdown


def test_truncation_keeps_the_changed_lines(scenario: DiffResult) -> None:
    full = render.render_markdown(scenario)
    big = next(c for c in scenario.resources if c.identity.name == "big")
    limit = len(full) - len(big.diff) // 2
    short = render.render_markdown(scenario, limit=limit)
    assert len(short) <= limit
    tokens = parser().parse(short)
    inline = [text_of([t]) for t in tokens if t.type == "inline"]
    # Said once under the plan line, and in the shortened object's title.
    assert inline[3].startswith("(truncated) The whole diff is longer than GitLab allows")
    sections = dict(details(tokens))
    (title,) = [s for s in sections if "(truncated)" in s]
    assert title.startswith("change ConfigMap shop/big") and title.endswith("(truncated)")
    (fence,) = [t for t in sections[title] if t.type == "fence"]
    kept = fence.content
    assert "+  key150: changed-150\n" in kept  # the first change, not the object's start
    assert "apiVersion" not in kept and "key000" not in kept
    assert kept.startswith("@@ ConfigMap shop/big @@\n")
    assert "changed lines shown" in "".join(t.content for t in sections[title])
    # The other sections are whole.
    assert sum("(truncated)" in s for s in sections) == 1


def test_markdown_shortens_a_single_huge_line_and_leaves_out_what_cannot_fit() -> None:
    huge = "+" + "x" * 5000 + "\n"
    changes = [
        ResourceChange(
            "added",
            Identity("a", "ConfigMap", f"c{i}", ""),
            "v1",
            f"c{i}.yaml",
            diff=f"@@ ConfigMap a/c{i} @@\n{huge}",
            lines_added=1,
        )
        for i in range(30)
    ]
    result = DiffResult(
        {"removed": 0, "changed": 0, "added": 30, "moved": 0, "unchanged": 0}, changes
    )
    short = render.render_markdown(result, limit=4000)
    assert len(short) <= 4000
    assert "more objects not shown" in short
    sections = details(parser().parse(short))
    assert sections and all("(truncated)" in s for s, _ in sections)
    fence = next(t for t in sections[0][1] if t.type == "fence")
    assert fence.content.startswith("@@ ConfigMap a/c0 @@\n+xxx") and fence.content.endswith("…\n")


def test_no_changes_and_the_target_line() -> None:
    result = DiffResult(
        {str(k): 0 for k in diff.CHANGES} | {"unchanged": 4},
        [],
        target=Target("https://gitlab.example.com/ops/k8s.git", "main"),
    )
    markdown = render.render_markdown(result)
    assert markdown.endswith("No changes.\n")
    assert "0 to delete, 0 to change, 0 to add, 0 moved, 4 unchanged\n" in markdown
    assert "**" not in markdown  # nothing to delete: nothing bold
    staging = Target("ops/k8s", "main", "clusters/staging", environment="staging")
    assert "Target: `ops/k8s`, branch `main`, path `clusters/staging`, environment `staging`" in (
        render.render_markdown(result, target=staging)
    )
    text = render.render_text(result)
    assert text.endswith(
        "no changes: 0 to delete, 0 to change, 0 to add, 0 moved, 4 unchanged\n"
        "target: https://gitlab.example.com/ops/k8s.git, branch main\n"
    )


def test_json_carries_the_same_facts(scenario: DiffResult) -> None:
    text = render.render_json(scenario)
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, ensure_ascii=False) + "\n"  # streamed alike
    empty = DiffResult(dict.fromkeys(diff.CHANGES, 0), [])
    assert json.loads(render.render_json(empty))["resources"] == []
    assert list(document) == ["summary", "target", "warnings", "images", "resources"]
    assert list(document["summary"]) == ["removed", "changed", "added", "moved", "unchanged"]
    assert document["target"] == {
        "repository": "ops/k8s-manifests",
        "branch": "main",
        "path": "clusters/prod",
        "environment": None,
    }
    assert document["warnings"][0] == {
        "code": "delete-namespace",
        "kind": "Namespace",
        "namespace": None,
        "name": "legacy",
        "path": "",
        "message": scenario.warnings[0].warning.message,
    }
    assert {
        "kind": "Deployment",
        "namespace": "shop",
        "name": "web",
        "container": "web",
        "path": "spec.template.spec.containers[name=web].image",
        "before": None,
        "after": "nginx",
    } in document["images"]
    resources = {(r["kind"], r["name"]): r for r in document["resources"]}
    worker = resources["Deployment", "worker"]
    assert {"path": "spec.replicas", "before": 2, "after": 0} in worker["fields"]
    assert {w["code"] for w in worker["warnings"]} == {"replicas-zero", "image-latest"}
    payment = resources["Secret", "payment"]
    assert payment["fields"] == [{"path": "data.payment-api-key", "before": "***", "after": "***"}]
    assert document["resources"][0]["change"] == "removed"
    text = json.dumps(document)
    for value in (SECRET_OLD, SECRET_NEW, KEPT):
        assert value not in text


def test_text_plan_last_and_colour_only_when_asked(scenario: DiffResult) -> None:
    plain = render.render_text(scenario)
    assert "\033[" not in plain
    lines = plain.splitlines()
    assert lines[-2] == (
        "1 to delete (Flux prunes them), 8 to change, 1 to add, 1 moved, 1 unchanged"
    )
    assert lines[-1] == "target: ops/k8s-manifests, branch main, path clusters/prod"
    assert lines[0].startswith("⚠ delete Namespace legacy (\u22124)")
    assert "---" not in plain and "+++" not in plain
    assert "@@ Deployment shop/api @@" in lines
    warnings = lines[lines.index("warnings (8):") + 1 : lines.index("warnings (8):") + 9]
    assert warnings[0].split()[:3] == ["delete-namespace", "Namespace", "legacy:"]
    assert "  moved (only the file changes):" not in plain and "moved (only the file" in plain
    coloured = render.render_text(scenario, colour=True)
    assert "\033[1;31m1 to delete (Flux prunes them)\033[0m" in coloured
    assert "\033[1;31m⚠ delete Namespace legacy (\u22124)\033[0m" in coloured
    assert "\033[33mdelete-namespace" in coloured and "\033[31m-apiVersion: v1" in coloured
    for value in (SECRET_OLD, SECRET_NEW, KEPT):
        assert value not in plain and value not in coloured


def test_what_is_left_out_is_counted_in_the_singular_too() -> None:
    """One object, warning or image left out reads "1 more object", not "1 more objects"."""
    huge = "+" + "x" * 3000 + "\n"
    warning = ReviewWarning("image-latest", "spec.image", "runs :latest " + "y" * 2000)
    image = ImageChange("web", "spec.image", None, "shop/web:latest" + "z" * 1000)
    changes = [
        ResourceChange(
            "added",
            Identity("a", "ConfigMap", f"c{i:02}", ""),
            "v1",
            f"c{i:02}.yaml",
            diff=f"@@ ConfigMap a/c{i:02} @@\n{huge}",
            warnings=(warning,) if i < 2 else (),
            images=(image,) if i < 2 else (),
            lines_added=1,
        )
        for i in range(18)
    ]
    result = DiffResult(
        {"removed": 0, "changed": 0, "added": 18, "moved": 0, "unchanged": 0}, changes
    )
    short = render.render_markdown(result, limit=15000)
    assert len(short) <= 15000
    assert "**1 more object not shown**" in short
    assert "- … and 1 more warning\n" in short
    assert "… and 1 more image\n" in short
