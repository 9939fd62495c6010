"""The cdk8s app runs as the cdk8s CLI runs it: ``app:`` through ``/bin/sh -c``, in the directory
that holds ``cdk8s.yaml`` (searched from the current directory upwards), into ``output:``.

Real shells run real (small, cdk8s-free) Python apps that write YAML into ``CDK8S_OUTDIR``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from gitopskit.cdk8s_app import find_app, find_config
from gitopskit.errors import ConfigError, SynthError
from gitopskit.outdir import MARKER
from gitopskit.synth import synth
from tests.conftest import invoke_clean, task_project

# Writes one ConfigMap whose data is what the app saw: a file it read by a relative path, an
# environment variable, its working directory.
SEEING_APP = """\
import os, pathlib, sys
out = pathlib.Path(os.environ["CDK8S_OUTDIR"])
here = pathlib.Path("values.txt")
values = here.read_text().strip() if here.exists() else ""
(out / "seen.k8s.yaml").write_text(
    "apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: seen\\ndata:\\n"
    f"  values: '{values}'\\n"
    f"  debug: '{os.environ.get('CDK8S_DEBUG', '')}'\\n"
    f"  cwd: '{os.getcwd()}'\\n"
    f"  python: '{sys.executable}'\\n"
)
"""


def seen(outdir: Path) -> str:
    return (outdir / "seen.k8s.yaml").read_text()


def cdk8s_project(root: Path, app: str, *, output: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = f"language: python\napp: {app}\n" + (f"output: {output}\n" if output else "")
    (root / "cdk8s.yaml").write_text(config)
    return root


def test_an_app_line_with_and(tmp_path: Path) -> None:
    project = cdk8s_project(tmp_path / "p", "mkdir -p build && python main.py")
    (project / "main.py").write_text(SEEING_APP)
    result = synth(project, Path("dist"))
    assert result.files == ["seen.k8s.yaml"]
    assert (project / "build").is_dir()


def test_cd_into_a_subdirectory_that_reads_a_relative_file(tmp_path: Path) -> None:
    project = cdk8s_project(tmp_path / "p", "cd sub && python main.py")
    (project / "sub").mkdir()
    (project / "sub" / "main.py").write_text(SEEING_APP)
    (project / "sub" / "values.txt").write_text("from-sub\n")
    synth(project, Path("dist"))
    assert "values: 'from-sub'" in seen(project / "dist")
    assert f"cwd: '{project / 'sub'}'" in seen(project / "dist")


def test_an_environment_assignment(tmp_path: Path) -> None:
    project = cdk8s_project(tmp_path / "p", "CDK8S_DEBUG=1 python main.py")
    (project / "main.py").write_text(SEEING_APP)
    synth(project, Path("dist"))
    assert "debug: '1'" in seen(project / "dist")


def test_the_running_python_stays_first_on_path_through_the_shell(tmp_path: Path) -> None:
    project = cdk8s_project(tmp_path / "p", "python main.py")
    (project / "main.py").write_text(SEEING_APP)
    synth(project, Path("dist"))
    assert f"python: '{Path(sys.executable).parent / 'python'}'" in seen(project / "dist")


def test_the_program_the_shell_cannot_find_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert shutil.which("pipenv") is None
    project = cdk8s_project(tmp_path / "p", "pipenv install && pipenv run python main.py")
    with pytest.raises(SynthError) as caught:
        synth(project, Path("dist"))
    assert caught.value.message == "cannot run the app: pipenv is not installed or not on PATH"
    assert caught.value.hint is not None
    assert "pipenv install && pipenv run python main.py" in caught.value.hint
    assert not (project / "dist").exists()


def test_a_missing_program_after_a_cd_is_named_not_cd(tmp_path: Path) -> None:
    project = cdk8s_project(tmp_path / "p", "cd sub && no-such-program-xyz --synth")
    (project / "sub").mkdir()
    with pytest.raises(SynthError, match="no-such-program-xyz is not installed"):
        synth(project, Path("dist"))


def test_a_failing_shell_step_is_reported_with_the_shells_words(tmp_path: Path) -> None:
    project = cdk8s_project(tmp_path / "p", "cd missing && python main.py")
    with pytest.raises(SynthError) as caught:
        synth(project, Path("dist"))
    assert caught.value.message.startswith("the app failed: ")
    assert "can't cd to missing" in caught.value.message
    assert "exited 2" in str(caught.value.hint)


def test_cdk8s_yaml_is_found_from_the_current_directory_upwards(tmp_path: Path) -> None:
    project = cdk8s_project(tmp_path / "p", "python main.py")
    (project / "main.py").write_text(SEEING_APP)
    deep = project / "charts" / "deep"
    deep.mkdir(parents=True)
    assert find_config(deep) == project / "cdk8s.yaml"
    app = find_app(deep)
    assert (app.command, app.directory) == ("python main.py", project)
    synth(project, Path("dist"), start=deep)
    assert f"cwd: '{project}'" in seen(project / "dist")


def test_the_nearest_cdk8s_yaml_wins(tmp_path: Path) -> None:
    project = cdk8s_project(tmp_path / "p", "python outer.py")
    inner = cdk8s_project(project / "apps" / "web", "python main.py", output="out")
    (inner / "charts").mkdir()
    app = find_app(inner / "charts")
    assert (app.command, app.directory, app.output) == ("python main.py", inner, inner / "out")
    assert find_app(project / "apps").directory == project


def test_no_cdk8s_yaml_and_no_app_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no cdk8s\.yaml in .* or above"):
        find_app(tmp_path)
    app = find_app(tmp_path, "python main.py")
    assert (app.command, app.directory, app.output) == ("python main.py", tmp_path, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("app: [python, main.py]\n", "has no `app:` command"),
        ("app: python main.py\noutput: [a]\n", "`output:` must be a directory name"),
        ("app: 'python\n", "not valid YAML"),
    ],
)
def test_a_bad_cdk8s_yaml_is_one_clear_error(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "cdk8s.yaml").write_text(text)
    with pytest.raises(ConfigError, match=problem):
        find_app(tmp_path)


def test_output_of_cdk8s_yaml_is_the_default_outdir(tmp_path: Path) -> None:
    project = cdk8s_project(tmp_path / "p", "python main.py", output="manifests")
    (project / "main.py").write_text(SEEING_APP)
    result = synth(project)
    assert result.outdir == project / "manifests"
    assert sorted(os.listdir(project / "manifests")) == [MARKER, "seen.k8s.yaml"]


def test_output_is_taken_from_the_directory_of_cdk8s_yaml(tmp_path: Path) -> None:
    project = tmp_path / "p"
    web = cdk8s_project(project / "web", "python main.py", output="out")
    (web / "main.py").write_text(SEEING_APP)
    result = synth(project, start=web)
    assert result.outdir == web / "out"


def task_app(root: Path, *, output: str | None) -> Path:
    project = task_project(root)
    (project / "invoke.yaml").write_text("gitopskit: {}\n")
    cdk8s_project(project, "python main.py", output=output)
    (project / "main.py").write_text(SEEING_APP)
    return project


def test_task_honours_output_and_flag_env_and_invoke_yaml_beat_it(tmp_path: Path) -> None:
    project = task_app(tmp_path / "p", output="manifests")
    done = invoke_clean(project, "synth", "--no-validate")
    assert done.returncode == 0, done.stderr
    assert "wrote     manifests/" in done.stderr
    assert (project / "manifests" / "seen.k8s.yaml").is_file()
    done = invoke_clean(project, "synth", "--no-validate", "--outdir", "flag")
    assert done.returncode == 0, done.stderr
    assert (project / "flag" / "seen.k8s.yaml").is_file()
    done = invoke_clean(project, "synth", "--no-validate", GITOPSKIT_OUTDIR="env")
    assert (project / "env" / "seen.k8s.yaml").is_file(), done.stderr
    (project / "invoke.yaml").write_text("gitopskit:\n  outdir: configured\n")
    done = invoke_clean(project, "synth", "--no-validate")
    assert (project / "configured" / "seen.k8s.yaml").is_file(), done.stderr


def test_task_run_from_a_subdirectory_finds_cdk8s_yaml_above(tmp_path: Path) -> None:
    project = task_app(tmp_path / "p", output=None)
    (project / "values.txt").write_text("top\n")
    sub = project / "charts"
    sub.mkdir()
    done = invoke_clean(sub, "synth", "--no-validate")
    assert done.returncode == 0, done.stderr
    assert "values: 'top'" in seen(project / "dist")


def test_task_missing_program_is_one_line_and_exit_1(tmp_path: Path) -> None:
    project = task_app(tmp_path / "p", output=None)
    (project / "cdk8s.yaml").write_text("app: CDK8S_DEBUG=1 pipenv run python main.py\n")
    done = invoke_clean(project, "synth", PATH="/usr/bin:/bin")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert errors == ["error     cannot run the app: pipenv is not installed or not on PATH"]
    assert "Traceback" not in done.stderr
    assert not (project / "dist" / "seen.k8s.yaml").exists()
