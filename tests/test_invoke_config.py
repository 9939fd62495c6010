"""invoke.yaml keys that invoke itself cannot take are named before invoke trips on them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from invoke.config import Config
from invoke.exceptions import AmbiguousEnvVar

from gitopskit import invoke_config
from tests.conftest import invoke_clean, task_project


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gitopskit:\n  environments:\n    1: {}\n    dev: {values: {a: 1}}\n", None),
        (
            "gitopskit:\n  environments:\n    1:\n      values: {a: 1}\n",
            "invoke.yaml: gitopskit.environments.1: the key 1 is a number",
        ),
        (
            "gitopskit:\n  environments:\n    dev:\n      values: {on: 1}\n",
            "invoke.yaml: gitopskit.environments.dev.values.True: a key read as True",
        ),
        (
            "gitopskit:\n  environments:\n    dev:\n      values: {a_b: 1, a: {b: 2}}\n",
            "invoke.yaml: gitopskit.environments.dev.values.a_b and "
            "gitopskit.environments.dev.values.a.b: invoke maps both to the one variable "
            "INVOKE_GITOPSKIT_ENVIRONMENTS_DEV_VALUES_A_B",
        ),
        ("gitopskit:\n  environments:\n    dev:\n      values: {A: 1, a: 2}\n", "invoke maps"),
        ("gitopskit:\n  environments:\n    dev:\n      values: {'80': x, 'on': 1}\n", None),
        ("[unclosed\n", None),  # left to the task that reads it
    ],
)
def test_keys_invoke_cannot_take(tmp_path: Path, text: str, expected: str | None) -> None:
    (tmp_path / "invoke.yaml").write_text(text)
    found = invoke_config.problem(tmp_path)
    if expected is None:
        assert found is None
    else:
        assert found is not None and expected in found, found


KEYS = st.one_of(st.text(max_size=4), st.integers(), st.booleans())
CONFIG = st.recursive(
    st.integers() | st.text(max_size=3),
    lambda inner: st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(KEYS, CONFIG, max_size=4))
def test_what_is_let_through_invoke_takes(data: dict[object, object]) -> None:
    """Exactly what invoke refuses, reading the file as it does before a task (its project
    config, then its environment loader), is refused here first."""
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "invoke.yaml").write_text(yaml.safe_dump(data))
        found = invoke_config.problem(Path(directory))
        config = Config(project_location=Path(directory))
        config.load_project()
        try:
            config.load_shell_env()
        except (TypeError, AmbiguousEnvVar):
            trips = True
        else:
            trips = False
    assert (found is not None) == trips, (data, found)


def test_the_task_stops_in_one_line(tmp_path: Path) -> None:
    project = task_project(tmp_path / "project")
    (project / "invoke.yaml").write_text(
        yaml.safe_dump({"gitopskit": {"outdir": "dist"}}) + "x:\n  80: web\n"
    )
    done = invoke_clean(project, "diff", "--no-synth")
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        "error     invoke.yaml: x.80: the key 80 is a number: invoke takes only text keys; "
        "quote it\n"
    )
