"""Strict schema validation, compiled once per kind and cached on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitopskit.errors import ConfigError
from gitopskit.manifests import Document
from gitopskit.validate import SchemaValidator, default_kubernetes_version


def deployment(**container: Any) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx", **container}]},
            },
        },
    }


def test_default_version_follows_cdk8s_plus() -> None:
    assert default_kubernetes_version() == "1.34"


def test_valid_unknown_field_wrong_type_and_crd(tmp_path: Path) -> None:
    validator = SchemaValidator("1.34", cache_dir=tmp_path)
    crd = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization"}
    report = validator.validate(
        [
            Document(deployment(), "ok.yaml", 1),
            Document(deployment(portz=1), "bad.yaml", 4),
            Document(deployment(ports=[{"containerPort": "eighty"}]), "type.yaml", 9),
            Document(crd, "crd.yaml", 1),
        ]
    )
    assert report.validated == 3
    assert report.not_validated == {"Kustomization (kustomize.toolkit.fluxcd.io/v1)": 1}
    first, second = report.problems
    assert str(first) == (
        "bad.yaml:4: apps/v1 Deployment shop/web: "
        "spec.template.spec.containers[0].portz: unknown field"
    )
    assert second.path == "spec.template.spec.containers[0].ports[0].containerPort"
    assert "integer" in second.message


def test_compiled_checks_are_cached_on_disk(tmp_path: Path) -> None:
    SchemaValidator("1.34", cache_dir=tmp_path).validate([Document(deployment(), "a", 1)])
    cached = list(tmp_path.rglob("*.marshal"))
    assert [p.name for p in cached] == ["check_apps_v1_deployment.marshal"]
    again = SchemaValidator("1.34", cache_dir=tmp_path)
    assert again.problem(deployment(portz=1)) == (
        "spec.template.spec.containers[0].portz",
        "unknown field",
    )


def test_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    SchemaValidator("1.34", cache_dir=tmp_path).validate([Document(deployment(), "a", 1)])
    (cached,) = tmp_path.rglob("*.marshal")
    cached.write_bytes(b"garbage")
    assert SchemaValidator("1.34", cache_dir=tmp_path).problem(deployment()) is None


def test_unsupported_version_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigError, match=r"no Kubernetes 9\.99 schema"):
        SchemaValidator("9.99")
    with pytest.raises(ConfigError, match=r"not like 1\.34"):
        SchemaValidator("latest")


def test_every_problem_of_an_object_is_listed_in_document_order(tmp_path: Path) -> None:
    bad = deployment(portz=1, ports=[{"containerPort": "eighty"}], tty="yes")
    bad["spec"]["replicas"] = "3"
    del bad["spec"]["selector"]
    report = SchemaValidator("1.34", cache_dir=tmp_path).validate([Document(bad, "a.yaml", 1)])
    assert [(p.path, p.message) for p in report.problems] == [
        ("spec.template.spec.containers[0].portz", "unknown field"),
        (
            "spec.template.spec.containers[0].ports[0].containerPort",
            'must be an integer, not the string "eighty"',
        ),
        ("spec.template.spec.containers[0].tty", 'must be a boolean, not the string "yes"'),
        ("spec.replicas", 'must be an integer, not the string "3"'),
        ("spec.selector", "required field missing"),
    ]
    assert report.invalid_objects == 1 and report.invalid_files == 1


def test_at_most_twenty_problems_of_one_object(tmp_path: Path) -> None:
    bad = deployment(**{f"field{i:02}": i for i in range(25)})
    report = SchemaValidator("1.34", cache_dir=tmp_path).validate([Document(bad, "a.yaml", 1)])
    assert len(report.problems) == 21
    assert report.problems[19].path == "spec.template.spec.containers[0].field19"
    assert str(report.problems[20]) == (
        "a.yaml:1: apps/v1 Deployment shop/web: and 5 more"
    )
