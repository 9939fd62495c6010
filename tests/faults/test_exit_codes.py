"""Exit codes are a contract (issue 10, section 3): real invoke processes, real inputs.

``invoke diff`` exits 2 on every failure, unexpected ones included (1 is "differs" with
--exit-code); the other tasks exit 1. An unexpected error is one line naming it and
``set GITOPSKIT_DEBUG=1 for the traceback``; with GITOPSKIT_DEBUG=1 the traceback is shown,
redacted like every message. No input, however hostile, gets a Python traceback by default.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import invoke_clean, task_project
from tests.trees import CONFIG_MAP, bare_repository

HINT = "(set GITOPSKIT_DEBUG=1 for the traceback)"
TOKEN = "glpat-exit-code-test-token-1234"


def nested(depth: int, leaf: str) -> str:
    """A ConfigMap whose data nests ``depth`` mappings deep."""
    return CONFIG_MAP.format(name="deep") + "data: " + "{a: " * depth + leaf + "}" * depth + "\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tasks.py and its settings, a dist/ holding one ConfigMap, and ../same, a copy of it."""
    root = task_project(tmp_path / "project")
    (root / "dist" / "web.k8s.yaml").write_text(CONFIG_MAP.format(name="web"))
    shutil.copytree(root / "dist", tmp_path / "same")
    return root


def invoke(
    project: Path, *args: str, memory: int | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return invoke_clean(project, *args, preexec_fn=limit if memory is not None else None, env=env)


def one_error(done: subprocess.CompletedProcess[str], status: int, *needles: str) -> str:
    """Exit ``status``, no traceback, no stdout, exactly one error line holding ``needles``."""
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, done.stderr
    for needle in needles:
        assert needle in errors[0], done.stderr
    return errors[0]


def test_diff_exits_2_on_a_recursion_error(project: Path) -> None:
    (project / "dist" / "deep.yaml").write_text(nested(900, "1"))
    (project.parent / "same" / "deep.yaml").write_text(nested(900, "2"))
    done = invoke(project, "diff", "--no-synth", "--against", "../same", "--exit-code")
    one_error(done, 2)


def test_diff_exits_2_on_an_os_error(project: Path) -> None:
    done = invoke(project, "diff", "--no-synth", "--against", "x" * 300)
    one_error(done, 2, "unexpected error: OSError", "File name too long", HINT)


def test_diff_exits_2_when_memory_runs_out(project: Path) -> None:
    """A 60 MB value under a 150 MB address-space limit (diff itself runs in under 100 MB)."""
    (project / "dist" / "big.yaml").write_text(
        CONFIG_MAP.format(name="big") + "data:\n  blob: " + "x" * 60_000_000 + "\n"
    )
    done = invoke(project, "diff", "--no-synth", "--against", "../same", memory=150 << 20)
    one_error(done, 2, "MemoryError")


def test_debug_shows_the_traceback_redacted(project: Path) -> None:
    against = "x" * 300 + TOKEN
    quiet = invoke(project, "diff", "--no-synth", "--against", against, MANIFESTS_READ_TOKEN=TOKEN)
    assert TOKEN not in quiet.stderr
    one_error(quiet, 2, "***", HINT)
    loud = invoke(
        project,
        "diff",
        "--no-synth",
        "--against",
        against,
        MANIFESTS_READ_TOKEN=TOKEN,
        GITOPSKIT_DEBUG="1",
    )
    assert loud.returncode == 2
    assert "Traceback (most recent call last)" in loud.stderr
    assert "OSError: [Errno 36] File name too long" in loud.stderr
    assert TOKEN not in loud.stderr and "***" in loud.stderr


APP = """\
import os, pathlib
out = pathlib.Path(os.environ["CDK8S_OUTDIR"])
{body}
"""


@pytest.mark.parametrize("validate", ["--validate", "--no-validate"])
def test_synth_a_chart_writing_an_unreadable_file_is_one_line(
    project: Path, validate: str
) -> None:
    body = '(out / "mem.k8s.yaml").symlink_to("/proc/self/mem")'
    (project / "app.py").write_text(APP.format(body=body))
    done = invoke(project, "synth", "--app", "python app.py", validate)
    one_error(done, 1, "mem.k8s.yaml")


def test_synth_deeply_nested_output_is_one_line(project: Path) -> None:
    body = f"(out / 'deep.k8s.yaml').write_text({nested(900, '1')!r})"
    (project / "app.py").write_text(APP.format(body=body))
    done = invoke(project, "synth", "--app", "python app.py")
    one_error(done, 1)


def test_publish_deeply_nested_input_is_one_line(project: Path) -> None:
    (project / "dist" / "deep.k8s.yaml").write_text(nested(900, "1"))
    bare = bare_repository(project.parent, {"deep.k8s.yaml": nested(900, "2")})
    done = invoke(
        project, "publish", "--no-synth", "--adopt", "--dry-run", MANIFESTS_GIT_URL=str(bare)
    )
    one_error(done, 1)
