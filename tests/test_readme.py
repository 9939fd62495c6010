"""The README: every ``invoke`` command in it (code blocks and inline code) names a task that
exists with options it accepts; the quick start's test command is what CI runs; every setting is
documented; the operator's guide covers the path from nothing to a synced cluster.

The other commands in it are run by tests: the Flux 1 to Flux 2 migration (``helm uninstall``,
``kubectl get``) in ``tests/test_flux.py``, the quick start by ``.ci/run``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from gitopskit.config import SETTINGS
from tests.invoke_calls import (
    check_invoke_call,
    inline_commands,
    invoke_calls,
    load_collection,
    shell_blocks,
)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_every_invoke_command_is_accepted() -> None:
    text = README.read_text()
    calls = invoke_calls(shell_blocks(text)) + invoke_calls(inline_commands(text))
    tasks = {argv[1] for argv in calls}
    assert {"synth", "diff", "publish", "flux-bootstrap", "flux-rotate-key"} <= tasks
    assert ["invoke", "flux-bootstrap", "--dry-run"] in calls
    checked = load_collection()
    for argv in calls:
        check_invoke_call(argv, checked)


def test_covers_the_path_from_nothing_to_a_synced_cluster() -> None:
    text = README.read_text()
    for needle in (
        "write_repository",
        "read_repository",
        "Developer",
        "Maintainer",
        "MANIFESTS_PROJECT",
        "MANIFESTS_TOKEN",
        "MANIFESTS_READ_TOKEN",
        "COMMENT_TOKEN",
        "GITLAB_TOKEN",
        "masked",
        "protected",
        "CI_JOB_TOKEN",
        "git.readonly",
        "syncGarbageCollection",
        "ssh://git@",
        "helm uninstall flux -n flux",
        "What to expect after merging",
    ):
        assert needle in text, needle


def test_quick_start_is_what_ci_runs() -> None:
    blocks = [b for b in shell_blocks(README.read_text()).splitlines() if b.strip()]
    test_command = next(line for line in blocks if "pytest" in line)
    assert test_command.startswith("python3 -m venv .venv && .venv/bin/pip install -e '.[test]'")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv .venv" in ci
    assert ".venv/bin/pip install --quiet -e '.[test]'" in ci
    assert ci.rstrip().endswith(".venv/bin/python -m pytest")


def test_every_setting_is_documented() -> None:
    text = README.read_text()
    for setting in SETTINGS.values():
        assert f"| `{setting.env}`" in text, setting.env


def tour_script() -> str:
    """The shell block of the README's local tour, as written."""
    text = README.read_text()
    section = text[text.index("## A local tour") :]
    section = section[: section.index("\n## ", 1)]
    return shell_blocks(section)


def test_the_local_tour_runs_as_written(tmp_path: Path) -> None:
    """Every command of the tour, in a copy of the project, with no GitLab, no cluster and no
    kubeconfig; the checkout's virtual environment is this one."""
    project = tmp_path / "checkout"
    project.mkdir()
    for name in ("tasks.py", "invoke.yaml", "cdk8s.yaml"):
        shutil.copy2(ROOT / name, project / name)
    for name in ("charts", "flux"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".venv").symlink_to(Path(sys.prefix))
    home = tmp_path / "home"
    home.mkdir()
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MANIFESTS_", "GITOPSKIT_", "GITLAB_", "CI_", "KUBE"))
    }
    environ.update(HOME=str(home), NO_COLOR="1", GITOPSKIT_NETWORK_TIMEOUT="10")
    script = tour_script()
    assert "invoke publish --merge" in script and "flux-bootstrap --dry-run" in script
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "main fast-forwarded" in done.stderr
    assert "no changes: 0 to delete, 0 to change, 0 to add, 0 moved, 9 unchanged" in done.stdout
    assert "dry run: nothing was changed" in done.stderr
    assert (tmp_path / "manifests.git").is_dir()
