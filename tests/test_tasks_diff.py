"""``invoke diff`` end to end: the real task in a subprocess, in a copy of a tiny project."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FOREIGN_PREFIXES, invoke_clean, task_project

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
    return invoke_clean(project, "diff", *([] if synth else ["--no-synth"]), *args, env=env)


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


def test_fail_on_codes(project: Path, tmp_path: Path) -> None:
    """dist/ holds a Secret with plain data (publish would refuse it); ../gone has one more
    object, which the diff deletes."""
    clean = invoke(project, "--against", "../other", "--fail-on", "delete,rbac")
    assert clean.returncode == 0, clean.stderr
    plain = invoke(project, "--against", "../other", "--fail-on", "delete, plain-secret")
    assert plain.returncode == 1, plain.stderr
    assert (
        "error" in plain.stderr
        and "plain-secret" in plain.stderr
        and "Secret default/s" in plain.stderr
    )
    assert "warning in the diff" not in plain.stderr  # text: the warnings are on stdout
    assert "plain-secret  Secret default/s: carries plain data" in plain.stdout
    gone = tmp_path / "gone"
    shutil.copytree(tmp_path / "other", gone)
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: legacy}\n"
    (gone / "legacy.yaml").write_text(namespace)
    deleted = invoke(project, "--against", "../gone", "--fail-on", "delete", "--format", "json")
    assert deleted.returncode == 1, deleted.stderr
    document = json.loads(deleted.stdout)  # still exactly one document on stdout
    assert document["warnings"][0] == {
        "code": "delete-namespace",
        "kind": "Namespace",
        "namespace": None,
        "name": "legacy",
        "path": "",
        "message": "removed: Flux deletes the Namespace and every object in it, managed or not",
    }
    assert "--fail-on delete: 1 warning (delete-namespace)" in deleted.stderr
    assert "2 warnings in the diff: 1 delete-namespace, 1 plain-secret" in deleted.stderr
    assert "**1 to delete (Flux prunes them)**" not in deleted.stderr
    assert "1 to delete (Flux prunes them), 2 to change, 0 to add" in deleted.stderr
    unknown = invoke(project, "--against", "../other", "--fail-on", "deletion")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "unknown warning code deletion" in unknown.stderr and "rbac-grows" in unknown.stderr


def on_a_terminal(project: Path, *args: str, **env: str) -> str:
    """``invoke diff ARGS`` with stdout on a pseudo-terminal; what it printed there."""
    import os
    import pty

    main, secondary = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    environ.update(PYTHONPATH=str(Path(__file__).resolve().parents[1]), **env)
    environ.pop("NO_COLOR", None)
    environ.update(env)
    with subprocess.Popen(
        [sys.executable, "-m", "invoke", "diff", "--no-synth", *args],
        cwd=project,
        env=environ,
        stdout=secondary,
        stderr=subprocess.DEVNULL,
    ) as process:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode()


def test_text_is_coloured_on_a_terminal_only_without_no_color(project: Path) -> None:
    coloured = on_a_terminal(project, "--against", "../other")
    assert "\033[1;33mchange Deployment shop/web: spec.replicas 1 \u2192 2" in coloured
    assert "\033[33mplain-secret" in coloured
    plain = on_a_terminal(project, "--against", "../other", NO_COLOR="1")
    assert "\033[" not in plain and "change Deployment shop/web: spec.replicas 1 \u2192 2" in plain
    for output in (coloured, plain):
        assert "bmV3LXNlY3JldA==" not in output and "b2xkLXNlY3JldA==" not in output
