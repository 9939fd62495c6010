"""``invoke diff`` end to end: the real task in a subprocess, in a copy of a tiny project."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import invoke_clean, task_project

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop}}
spec: {{replicas: {replicas}}}
"""
SECRET = "apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\ndata: {{k: {value}}}\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with tasks.py, invoke.yaml, dist/ (replicas 2) and two manifests trees."""
    root = task_project(tmp_path / "project")
    (root / "dist" / "web.k8s.yaml").write_text(
        DEPLOYMENT.format(replicas=2) + "---\n" + SECRET.format(value="bmV3LXNlY3JldA==")
    )
    (root / "dist" / "values.yaml").write_text("not: kubernetes\n")
    same = tmp_path / "same"
    same.mkdir()
    shutil.copy(root / "dist" / "web.k8s.yaml", same / "web.k8s.yaml")
    other = tmp_path / "other"
    other.mkdir()
    (other / "web.k8s.yaml").write_text(
        DEPLOYMENT.format(replicas=1) + "---\n" + SECRET.format(value="b2xkLXNlY3JldA==")
    )
    return root


def invoke(
    project: Path, *args: str, synth: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    return invoke_clean(project, "diff", *([] if synth else ["--no-synth"]), *args, **env)


def test_exit_codes(project: Path) -> None:
    unchanged = invoke(project, "--against", "../same", "--exit-code")
    assert unchanged.returncode == 0, unchanged.stderr
    assert "no changes" in unchanged.stdout
    changed = invoke(project, "--against", "../other")
    assert changed.returncode == 0, changed.stderr
    assert "-spec:\n" not in changed.stdout and "+  replicas: 2" in changed.stdout
    flagged = invoke(project, "--against", "../other", "--exit-code")
    assert flagged.returncode == 1, flagged.stderr
    for output in (changed.stdout, changed.stderr, flagged.stdout):
        assert "bmV3LXNlY3JldA==" not in output and "b2xkLXNlY3JldA==" not in output


def test_errors_exit_2(project: Path) -> None:
    unconfigured = invoke(project)
    assert unconfigured.returncode == 2
    assert "--against" in unconfigured.stderr and "MANIFESTS_GIT_URL" in unconfigured.stderr
    assert unconfigured.stdout == ""
    bad_ref = invoke(project, "--against", "../same", "--ref", "main")
    assert bad_ref.returncode == 2 and "plain directory" in bad_ref.stderr
    missing = invoke(project, "--against", "../nowhere")
    assert missing.returncode == 2
    (project / "dist" / "broken.yaml").write_text("a: [b\n")
    broken = invoke(project, "--against", "../same")
    assert broken.returncode == 2 and "broken.yaml:2" in broken.stderr


def test_failing_synth_exits_2(project: Path) -> None:
    app = f"{sys.executable} -c 'raise SystemExit(3)'"
    result = invoke(project, "--against", "../same", synth=True, APP=app)
    assert result.returncode == 2, result.stderr
    assert "error" in result.stderr and result.stdout == ""


def test_json_is_the_only_thing_on_stdout(project: Path) -> None:
    result = invoke(project, "--against", "../other", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # exactly one document, nothing else
    assert document["summary"]["changed"] == 2
    assert {r["name"] for r in document["resources"]} == {"web", "s"}
    assert "not a Kubernetes object" in result.stderr  # notes go to stderr
    assert "bmV3LXNlY3JldA==" not in result.stdout


def test_default_against_from_settings(project: Path) -> None:
    result = invoke(project, "--format", "markdown", MANIFESTS_GIT_URL="../other")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("### Manifest diff")
