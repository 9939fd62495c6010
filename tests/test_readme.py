"""The README: its quick start's test command is what CI runs, its local tour runs as written,
and it says what it promises (the tasks, the "Why", the test suite's needs).

Every ``invoke`` command line of the README and of docs/ is checked in ``tests/test_docs.py``,
with the rest of the documentation. The other commands in it are run by tests: the Flux 1 to
Flux 2 migration (``helm uninstall``, ``kubectl get``) in ``tests/test_flux.py``, the quick start
by ``.ci/run``."""

from __future__ import annotations

import re
from pathlib import Path

from tests.doc_examples import README, ROOT, Tour, tour_script
from tests.invoke_calls import invoke_calls, shell_blocks


def test_quick_start_is_what_ci_runs() -> None:
    blocks = [b for b in shell_blocks(README.read_text()).splitlines() if b.strip()]
    test_command = next(line for line in blocks if "pytest" in line)
    assert test_command.startswith("python3 -m venv .venv && .venv/bin/pip install -e '.[test]'")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv .venv" in ci
    assert ".venv/bin/pip install --quiet -e '.[test]'" in ci
    assert ci.rstrip().endswith(".venv/bin/python -m pytest")


def test_the_readme_stays_an_overview() -> None:
    """About 150 lines: what it is, why, the quick start, the tour, one paragraph per task with
    its page, environments, the tests; the rest is in docs/."""
    text = README.read_text()
    assert len(text.splitlines()) <= 170
    for heading in ("## Why", "## Quick start", "## A local tour", "## Tasks", "## Environments"):
        assert f"\n{heading}" in text, heading
    for page in ("synth", "diff", "publish", "flux", "operator-guide", "configuration"):
        assert f"(docs/{page}.md" in text, page
    for task in ("synth", "diff", "publish", "flux-bootstrap", "flux-rotate-key"):
        assert f"`invoke {task}`" in text, task
    for need in ("openssh-server", "kubectl", ".ci/run"):
        assert need in text, need
    assert re.search(r"The test suite takes about \d+ s on a 2-core machine", text)


def test_the_local_tour_runs_as_written(local_tour: Tour) -> None:
    """Every command of the tour, in a copy of the project, with no GitLab, no cluster and no
    kubeconfig; the checkout's virtual environment is this one."""
    script = tour_script()
    assert "invoke publish --merge" in script and "flux-bootstrap --dry-run" in script
    assert [call[1] for call in invoke_calls(script)] == [
        "synth", "diff", "publish", "publish", "diff", "flux-bootstrap",
    ]  # fmt: skip
    assert local_tour.returncode == 0, local_tour.stdout + local_tour.stderr
    assert "main fast-forwarded" in local_tour.stderr
    no_changes = "no changes: 0 to delete, 0 to change, 0 to add, 0 moved, 9 unchanged"
    assert no_changes in local_tour.stdout
    assert "dry run: nothing was changed" in local_tour.stderr
    assert (Path(local_tour.root) / "manifests.git").is_dir()
