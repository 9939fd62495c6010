"""Custom resources validated: Flux's shipped schemas, CRDs of the project and of the output,
schema catalogs; Kubernetes' schema extensions; unknown fields as warnings unless strict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitopskit.crds import make_validator, to_json_schema
from gitopskit.errors import ConfigError
from gitopskit.manifests import Document
from gitopskit.validate import Report
from tests.conftest import invoke_clean, task_project

FLUX = "Flux 2.9.4"


def kustomization(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {
            "interval": "10m",
            "path": "./apps",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
            **spec,
        },
    }


def helm_release(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "apps"},
        "spec": {
            "interval": "5m",
            "chart": {
                "spec": {
                    "chart": "podinfo",
                    "version": "6.x",
                    "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                }
            },
            # Anything goes under values (x-kubernetes-preserve-unknown-fields).
            "values": {"replicaCount": 2, "ingress": {"enabled": True, "hosts": [{"x": 1}]}},
            **spec,
        },
    }


def validate(
    tmp_path: Path, *objects: dict[str, Any], cache: Path | None = None, **options: Any
) -> Report:
    validator = make_validator("1.34", cache_dir=cache, **options)
    documents = [Document(o, "flux.k8s.yaml", 1 + 10 * i) for i, o in enumerate(objects)]
    return validator.validate(documents)


def lines(problems: list[Any]) -> list[str]:
    return [f"{p.path}: {p.message}" for p in problems]


def test_correct_flux_objects_are_validated_not_warned(tmp_path: Path) -> None:
    report = validate(tmp_path, kustomization(), helm_release())
    assert (report.problems, report.warnings, report.not_validated) == ([], [], {})
    assert report.sources == {FLUX: 2}


def test_a_kustomization_with_prune_yes_is_an_error(tmp_path: Path) -> None:
    report = validate(tmp_path, kustomization(prune="yes"))
    assert [str(p) for p in report.problems] == [
        "flux.k8s.yaml:1: kustomize.toolkit.fluxcd.io/v1 Kustomization flux-system/apps: "
        'spec.prune: must be a boolean, not the string "yes"'
    ]


def test_a_misspelt_field_misses_the_required_one_and_is_unknown(tmp_path: Path) -> None:
    obj = kustomization()
    obj["spec"]["intervall"] = obj["spec"].pop("interval")
    report = validate(tmp_path, obj)
    assert lines(report.problems) == ["spec.interval: required field missing"]
    assert lines(report.warnings) == ["spec.intervall: unknown field"]


def test_a_helm_release_with_a_wrong_field_is_an_error(tmp_path: Path) -> None:
    obj = helm_release(interval=5)
    obj["spec"]["chart"]["spec"]["sourceRef"]["kind"] = "HelmRepo"
    report = validate(tmp_path, obj)
    assert lines(report.problems) == [
        "spec.interval: must be a string, not the number 5",
        'spec.chart.spec.sourceRef.kind: must be one of "HelmRepository", "GitRepository", '
        '"Bucket", not the string "HelmRepo"',
    ]


def test_strict_makes_unknown_fields_and_missing_schemas_errors(tmp_path: Path) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    loose = validate(tmp_path, kustomization(pruen=True), widget)
    assert lines(loose.warnings) == ["spec.pruen: unknown field"]
    assert loose.not_validated == {"Widget (example.com/v1)": 1} and not loose.problems
    strict = validate(tmp_path, kustomization(pruen=True), widget, strict=True)
    assert lines(strict.problems) == [
        "spec.pruen: unknown field",
        ": no schema for Widget (example.com/v1)",
    ]
    assert not strict.warnings and not strict.not_validated


def test_metadata_of_a_custom_resource_is_checked_as_object_meta(tmp_path: Path) -> None:
    obj = kustomization()
    obj["metadata"]["lables"] = {"a": "b"}
    obj["metadata"]["annotations"] = {"a": 1}
    report = validate(tmp_path, obj)
    assert lines(report.warnings) == ["metadata.lables: unknown field"]
    assert lines(report.problems) == ["metadata.annotations.a: must be a string, not the number 1"]


WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, exclusiveMaximum: true, maximum: 10}
              port:
                x-kubernetes-int-or-string: true
                anyOf: [{type: integer}, {type: string}]
              note: {type: string, nullable: true}
              mode: {type: string, enum: [fast, slow]}
              config:
                type: object
                x-kubernetes-preserve-unknown-fields: true
                properties:
                  level: {type: integer}
              template:
                type: object
                x-kubernetes-embedded-resource: true
                x-kubernetes-preserve-unknown-fields: true
              labels:
                type: object
                additionalProperties: {type: string}
  - name: v1alpha1
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object}
"""


def widget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "shop"},
        "spec": {"size": 3, **spec},
    }


@pytest.fixture
def crds(tmp_path: Path) -> Path:
    folder = tmp_path / "crds"
    (folder / "nested").mkdir(parents=True)
    (folder / "nested" / "widget.yaml").write_text(WIDGET_CRD)
    (folder / "README.md").write_text("not a manifest\n")
    return folder


def test_a_crd_from_a_folder_with_kubernetes_extensions(tmp_path: Path, crds: Path) -> None:
    good = widget(
        port="http",
        note=None,
        mode="fast",
        config={"level": 2, "anything": {"goes": ["here"]}},
        template={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
        labels={"a": "b"},
    )
    report = validate(tmp_path, good, widget(port=8080), crd_paths=[crds])
    assert (report.problems, report.warnings) == ([], [])
    assert report.sources == {str(crds / "nested" / "widget.yaml"): 2}


def test_a_crd_from_a_folder_reports_every_problem(tmp_path: Path, crds: Path) -> None:
    bad = widget(
        size=10,
        port=True,
        mode="medium",
        config={"level": "high"},
        template={"metadata": {}},
        labels={"a": 1},
        colour="red",
    )
    report = validate(tmp_path, bad, crd_paths=[crds])
    assert lines(report.problems) == [
        "spec.size: 10 is greater than or equal to the maximum of 10",
        "spec.port: must be an integer or a string, not the boolean true",
        'spec.mode: must be one of "fast", "slow", not the string "medium"',
        "spec.config.level: must be an integer, not the string \"high\"",
        "spec.template.apiVersion: required field missing",
        "spec.template.kind: required field missing",
        "spec.labels.a: must be a string, not the number 1",
    ]
    assert lines(report.warnings) == ["spec.colour: unknown field"]


def test_a_served_false_version_is_not_a_schema(tmp_path: Path, crds: Path) -> None:
    alpha = {**widget(), "apiVersion": "example.com/v1alpha1"}
    report = validate(tmp_path, alpha, crd_paths=[crds])
    assert report.not_validated == {"Widget (example.com/v1alpha1)": 1}


def test_a_crd_in_the_output_validates_its_resources(tmp_path: Path) -> None:
    crd = yaml.safe_load(WIDGET_CRD)
    report = validate(tmp_path, crd, widget(size="big"))
    assert lines(report.problems) == ['spec.size: must be an integer, not the string "big"']
    assert report.sources == {"Kubernetes 1.34": 1, "CRD in flux.k8s.yaml": 1}


def test_a_schema_catalog_on_disk(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"issuerRef": {"type": "string"}},
                "required": ["issuerRef"],
            }
        },
    }
    (catalog / "cert-manager.io").mkdir(parents=True)
    (catalog / "cert-manager.io" / "certificate_v1.json").write_text(json.dumps(schema))
    cert = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}}
    report = validate(
        tmp_path, {**cert, "spec": {"issuerRef": 1, "dnsNames": []}}, catalogs=[catalog]
    )
    assert lines(report.problems) == ["spec.issuerRef: must be a string, not the number 1"]
    assert lines(report.warnings) == ["spec.dnsNames: unknown field"]
    assert report.sources == {str(catalog): 1}


def test_the_project_s_crds_win_over_the_shipped_flux_schemas(tmp_path: Path) -> None:
    crd = yaml.safe_load(WIDGET_CRD)
    crd["spec"]["group"] = "kustomize.toolkit.fluxcd.io"
    crd["spec"]["names"]["kind"] = "Kustomization"
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "k.yaml").write_text(yaml.safe_dump(crd))
    report = validate(tmp_path, kustomization(), crd_paths=[folder / "k.yaml"])
    assert lines(report.problems) == ["spec.size: required field missing"]


def test_a_named_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        make_validator("1.34", crd_paths=[tmp_path / "missing"])


def test_a_crd_file_that_is_not_yaml_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("a: [\n")
    validator = make_validator("1.34", cache_dir=tmp_path / "c", crd_paths=[tmp_path / "bad.yaml"])
    with pytest.raises(ConfigError, match=r"bad\.yaml:2:1: YAML syntax error"):
        validator.validate([Document(widget(), "a", 1)])


def test_compiled_crd_schemas_are_cached_on_disk(tmp_path: Path) -> None:
    validate(tmp_path, kustomization(), helm_release(), cache=tmp_path / "cache")
    cached = sorted(tmp_path.glob("cache/custom-*/check_*.marshal"))
    assert len(cached) == 2
    stamps = [p.stat().st_mtime_ns for p in cached]
    again = validate(
        tmp_path, kustomization(prune="no"), helm_release(), cache=tmp_path / "cache"
    )
    assert lines(again.problems) == ['spec.prune: must be a boolean, not the string "no"']
    assert [p.stat().st_mtime_ns for p in cached] == stamps  # loaded, not compiled again


def test_conversion_of_the_extensions() -> None:
    converted = to_json_schema(
        {
            "type": "object",
            "properties": {
                "n": {"type": "integer", "nullable": True, "minimum": 0, "exclusiveMinimum": True},
                "e": {"type": "string", "nullable": True, "enum": ["a"]},
                "p": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "m": {"type": "object"},
            },
        },
        forbid_unknown=True,
    )
    props = converted["properties"]
    assert props["n"] == {"type": ["integer", "null"], "exclusiveMinimum": 0}
    assert props["e"] == {"type": ["string", "null"], "enum": ["a", None]}
    assert props["p"] == {"type": "object"}
    assert props["m"] == {"type": "object", "additionalProperties": False}
    assert converted["additionalProperties"] is False
    assert props["apiVersion"] == props["kind"] == {"type": "string"}


# Writes the YAML in the environment variable MANIFEST into CDK8S_OUTDIR/app.k8s.yaml.
YAML_APP = """\
import os, pathlib
out = pathlib.Path(os.environ["CDK8S_OUTDIR"])
(out / "app.k8s.yaml").write_text(os.environ["MANIFEST"])
"""


@pytest.fixture
def app_project(tmp_path: Path) -> Path:
    project = task_project(tmp_path / "p")
    (project / "cdk8s.yaml").write_text("app: python yaml_app.py\n")
    (project / "yaml_app.py").write_text(YAML_APP)
    return project


def test_task_fails_a_flux_kustomization_with_prune_yes(app_project: Path) -> None:
    manifest = yaml.safe_dump(kustomization(prune="yes"))
    done = invoke_clean(app_project, "synth", MANIFEST=manifest)
    assert done.returncode == 1
    assert done.stderr.splitlines()[1:3] == [
        "error     1 object in 1 file does not match its schema (Kubernetes 1.34):",
        "  app.k8s.yaml:1: kustomize.toolkit.fluxcd.io/v1 Kustomization flux-system/apps: "
        'spec.prune: must be a boolean, not the string "yes"',
    ]


def test_task_uses_the_project_s_crds_folder_and_strict(app_project: Path) -> None:
    (app_project / "crds").mkdir()
    (app_project / "crds" / "widget.yaml").write_text(WIDGET_CRD)
    manifest = yaml.safe_dump_all([widget(colour="red"), kustomization(), helm_release()])
    done = invoke_clean(app_project, "synth", MANIFEST=manifest)
    assert done.returncode == 0, done.stderr
    assert (
        "validate  3 objects match their schemas: 2 Flux 2.9.4, 1 crds/widget.yaml"
        in done.stderr.splitlines()
    )
    assert (
        "warning   app.k8s.yaml:1: example.com/v1 Widget shop/w: spec.colour: unknown field"
        in done.stderr.splitlines()
    )
    strict = invoke_clean(app_project, "synth", "--strict", MANIFEST=manifest)
    assert strict.returncode == 1
    assert "spec.colour: unknown field" in strict.stderr
    env = invoke_clean(app_project, "synth", MANIFEST=manifest, GITOPSKIT_STRICT="true")
    assert env.returncode == 1, env.stderr


def test_task_takes_crds_and_schemas_from_settings(app_project: Path, tmp_path: Path) -> None:
    (app_project / "vendor").mkdir()
    (app_project / "vendor" / "widget.yaml").write_text(WIDGET_CRD)
    catalog = tmp_path / "catalog" / "cert-manager.io"
    catalog.mkdir(parents=True)
    (catalog / "certificate_v1.json").write_text('{"type": "object", "properties": {}}')
    cert = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}}
    manifest = yaml.safe_dump_all([widget(size=0), cert])
    (app_project / "invoke.yaml").write_text(
        f"gitopskit:\n  crds: [vendor]\n  schemas: [{tmp_path / 'catalog'}]\n"
    )
    done = invoke_clean(app_project, "synth", MANIFEST=manifest)
    assert done.returncode == 1
    assert "example.com/v1 Widget shop/w: spec.size: 0 is less than the minimum of 1" in done.stderr
    missing = invoke_clean(app_project, "synth", MANIFEST=manifest, GITOPSKIT_CRDS="nowhere")
    assert missing.returncode == 1
    assert "error     nowhere does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_many_unknown_fields_of_a_custom_resource_stay_warnings(tmp_path: Path) -> None:
    report = validate(tmp_path, kustomization(**{f"extra{i:02}": i for i in range(25)}))
    assert not report.problems
    assert len(report.warnings) == 21
    assert report.warnings[-1].message == "and 5 more"


def test_task_failing_validation_still_reports_the_warnings(app_project: Path) -> None:
    """Every problem of an object is reported: an object that fails shows its unknown fields
    (warnings) too, so that the next run does not bring news."""
    (app_project / "crds").mkdir()
    (app_project / "crds" / "widget.yaml").write_text(WIDGET_CRD)
    manifest = yaml.safe_dump(widget(size=0, colour="red"))
    done = invoke_clean(app_project, "synth", MANIFEST=manifest)
    assert done.returncode == 1
    assert done.stderr.splitlines()[1:5] == [
        "error     1 object in 1 file does not match its schema (Kubernetes 1.34):",
        "  app.k8s.yaml:1: example.com/v1 Widget shop/w: spec.size: 0 is less than the minimum "
        "of 1",
        "  and 1 warning:",
        "  app.k8s.yaml:1: example.com/v1 Widget shop/w: spec.colour: unknown field",
    ]


def test_task_counts_the_warnings_left_out_in_the_singular_too(app_project: Path) -> None:
    objects = [kustomization(pruen=True) for _ in range(21)]
    for index, obj in enumerate(objects):
        obj["metadata"]["name"] = f"apps{index:02}"
    done = invoke_clean(app_project, "synth", MANIFEST=yaml.safe_dump_all(objects))
    assert done.returncode == 0, done.stderr
    assert "warning   ... and 1 more warning" in done.stderr.splitlines()
