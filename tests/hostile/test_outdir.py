"""Hostile inputs for synth's output directory (issue 9, section 1).

Synth replaces only a directory it owns: missing, empty, marked by an earlier synth and holding
nothing else, or an earlier version's ``dist/`` holding only ``*.k8s.yaml`` files. Every other
directory is refused with exit 1, and then not one byte under it (or beside it) has changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gitopskit.errors import OutdirError
from gitopskit.outdir import MARKER, read_marker, write_marker
from gitopskit.synth import synth
from tests.conftest import run_invoke
from tests.trees import CONFIG_MAP, FAST_APP, snapshot, write_fast_app


def run_synth(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    app = write_fast_app(project)
    return run_invoke(project, "synth", "--app", app, "--no-validate", *args, env=env)


def refused(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 1, an error naming the directory and what is in the way, no traceback, no stdout."""
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, done.stderr
    for needle in needles:
        assert needle in errors[0], done.stderr


@pytest.fixture
def checkout(project: Path) -> Path:
    """The example project as a git checkout, with the fast app in it."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    write_fast_app(project)
    return project


def test_outdir_dot_is_refused_and_nothing_is_touched(checkout: Path) -> None:
    before = snapshot(checkout.parent)
    done = run_synth(checkout, "--outdir", ".")
    refused(done, "refusing to replace", "project directory")
    assert snapshot(checkout.parent) == before


def test_outdir_from_the_environment_is_held_to_the_same_rule(checkout: Path) -> None:
    before = snapshot(checkout.parent)
    done = run_synth(checkout, env={"GITOPSKIT_OUTDIR": "."})
    refused(done, "refusing to replace", "project directory")
    assert snapshot(checkout.parent) == before


def test_an_ancestor_of_the_project_is_refused(checkout: Path) -> None:
    before = snapshot(checkout.parent)
    done = run_synth(checkout, "--outdir", "..")
    refused(done, "refusing to replace", str(checkout.parent), "project directory")
    assert snapshot(checkout.parent) == before


def test_the_chart_sources_are_refused(checkout: Path) -> None:
    before = snapshot(checkout.parent)
    done = run_synth(checkout, "--outdir", "charts")
    refused(done, "refusing to replace charts", "Python files", "main.py")
    assert snapshot(checkout.parent) == before


def test_a_git_checkout_as_outdir_is_refused(checkout: Path) -> None:
    clone = checkout / "manifests"
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    (clone / "web.k8s.yaml").write_text(CONFIG_MAP.format(name="web"))
    before = snapshot(checkout.parent)
    done = run_synth(checkout, "--outdir", "manifests")
    refused(done, "refusing to replace manifests", ".git")
    assert snapshot(checkout.parent) == before


def test_a_stray_file_in_an_unmarked_directory_is_refused(checkout: Path) -> None:
    (checkout / "dist").mkdir()
    (checkout / "dist" / "web.k8s.yaml").write_text(CONFIG_MAP.format(name="web"))
    (checkout / "dist" / "notes.md").write_text("my notes\n")
    before = snapshot(checkout.parent)
    done = run_synth(checkout)
    refused(done, "refusing to replace dist", "notes.md")
    assert snapshot(checkout.parent) == before


def test_a_stray_file_in_a_directory_synth_wrote_is_refused(checkout: Path) -> None:
    first = run_synth(checkout)
    assert first.returncode == 0, first.stderr
    assert (checkout / "dist" / MARKER).is_file()
    (checkout / "dist" / "sub").mkdir()
    (checkout / "dist" / "sub" / "keep.txt").write_text("mine\n")
    before = snapshot(checkout.parent)
    done = run_synth(checkout)
    refused(done, "refusing to replace dist", "files synth did not write: sub/")
    assert snapshot(checkout.parent) == before


def test_outdir_naming_a_file_is_one_line(checkout: Path) -> None:
    (checkout / "out").write_text("a file\n")
    before = snapshot(checkout.parent)
    done = run_synth(checkout, "--outdir", "out")
    refused(done, "out", "not a directory")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert snapshot(checkout.parent) == before


def test_a_path_that_cannot_be_created_is_one_line(checkout: Path) -> None:
    before = snapshot(checkout.parent)
    for path in ("/proc/x/y", "tasks.py/dist"):
        done = run_synth(checkout, "--outdir", path)
        refused(done, "cannot create", path)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert snapshot(checkout.parent) == before


def test_a_symlink_is_never_followed(checkout: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "web.k8s.yaml").write_text(CONFIG_MAP.format(name="web"))
    empty = tmp_path / "empty"
    empty.mkdir()
    for target in (elsewhere, empty):
        link = checkout / "dist"
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        before = snapshot(tmp_path)
        done = run_synth(checkout)
        refused(done, "refusing to replace dist", "symbolic link")
        assert snapshot(tmp_path) == before


def test_dry_run_is_held_to_the_same_rule(checkout: Path) -> None:
    before = snapshot(checkout.parent)
    done = run_synth(checkout, "--dry-run", "--outdir", "charts")
    refused(done, "refusing to replace charts")
    assert snapshot(checkout.parent) == before


def test_an_earlier_versions_dist_with_only_k8s_yaml_is_adopted(checkout: Path) -> None:
    (checkout / "dist").mkdir()
    (checkout / "dist" / "old.k8s.yaml").write_text(CONFIG_MAP.format(name="old"))
    done = run_synth(checkout)
    assert done.returncode == 0, done.stderr
    assert "adopting dist/" in done.stderr
    assert sorted(os.listdir(checkout / "dist")) == [MARKER, "app.k8s.yaml"]
    assert read_marker(checkout / "dist") == {"app.k8s.yaml"}
    again = run_synth(checkout)
    assert again.returncode == 0, again.stderr
    assert "adopting" not in again.stderr


def test_an_empty_or_missing_directory_is_synth_s(checkout: Path) -> None:
    (checkout / "empty").mkdir()
    for outdir in ("empty", "new/nested/dist"):
        done = run_synth(checkout, "--outdir", outdir)
        assert done.returncode == 0, done.stderr
        assert sorted(os.listdir(checkout / outdir)) == [MARKER, "app.k8s.yaml"]
    assert [p for p in os.listdir(checkout / "new" / "nested") if p != "dist"] == []


def test_a_failing_app_leaves_no_directory_behind(checkout: Path) -> None:
    (checkout / "fail_app.py").write_text("raise SystemExit(3)\n")
    before = snapshot(checkout.parent)
    done = run_invoke(checkout, "synth", "--app", "python fail_app.py", "--outdir", "new/dist")
    assert done.returncode == 1, done.stderr
    assert snapshot(checkout.parent) == before


# --- properties -------------------------------------------------------------------------------

# Things a directory may hold: (relative path, content); a trailing "/" is a directory,
# "->" a symlink.
ENTRIES = {
    "a.k8s.yaml": CONFIG_MAP.format(name="a"),
    "b.k8s.yaml": CONFIG_MAP.format(name="b"),
    "notes.md": "notes\n",
    "main.py": "print('hi')\n",
    "tasks.py": "",
    "cdk8s.yaml": "app: python main.py\n",
    "values.yaml": "a: 1\n",
    ".git/": None,
    ".git/HEAD": "ref: refs/heads/main\n",
    "sub/": None,
    "sub/c.k8s.yaml": CONFIG_MAP.format(name="c"),
    "link.k8s.yaml->": "../outside.txt",
}
MARKERS = st.one_of(
    st.none(),
    st.just("garbage\n"),
    st.sets(st.sampled_from(sorted({*ENTRIES, "sub/"} - {"link.k8s.yaml->"}))).map(
        lambda names: json.dumps({"entries": sorted(n.rstrip("/") for n in names)})
    ),
)


def _materialize(root: Path, names: set[str], marker: str | None) -> None:
    (root.parent / "outside.txt").write_text("outside\n")
    root.mkdir()
    for name in sorted(names):
        if name.endswith("->"):
            target = ENTRIES[name]
            assert target is not None
            (root / name[:-2]).symlink_to(target)
        elif name.endswith("/"):
            (root / name).mkdir(exist_ok=True)
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(ENTRIES[name] or "")
    if marker is not None:
        (root / MARKER).write_text(marker)


def _owned(names: set[str], marker: str | None) -> bool:
    """The rule, as docs/synth.md states it."""
    present = {n.removesuffix("->").rstrip("/") for n in names}
    present |= {n.split("/")[0] for n in present}
    if marker is not None:
        try:
            listed = set(json.loads(marker)["entries"])
        except ValueError:
            return False
        return present <= listed
    return all(n.endswith(".k8s.yaml") and n + "->" not in names for n in present)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.sets(st.sampled_from(sorted(ENTRIES))), marker=MARKERS)
def test_synth_either_refuses_touching_nothing_or_owned_the_directory(
    names: set[str], marker: str | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "fast_app.py").write_text(FAST_APP)
        outdir = Path(tmp) / "out"
        _materialize(outdir, names, marker)
        before = snapshot(Path(tmp))
        try:
            synth(project, outdir, app="python fast_app.py", validate=False)
        except OutdirError:
            assert snapshot(Path(tmp)) == before
            assert not _owned(names, marker)
        else:
            assert _owned(names, marker)
            assert sorted(os.listdir(outdir)) == [MARKER, "app.k8s.yaml"]
            assert sorted(os.listdir(tmp)) == ["out", "outside.txt", "project"]
            assert (Path(tmp) / "outside.txt").read_text() == "outside\n"


NAMES = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/\x00"),
    min_size=1,
    max_size=40,
).filter(lambda n: n not in (".", "..", MARKER))


@settings(max_examples=100, deadline=None)
@given(names=st.sets(NAMES, max_size=8))
@example(names={"a\nb.k8s.yaml", "c\u2028d", "e\x85f", os.fsdecode(b"\xff.k8s.yaml")})
def test_the_marker_reads_back_exactly_what_was_written(names: set[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in names:
            (root / name).write_bytes(b"")
        write_marker(root)
        assert read_marker(root) == names


@settings(max_examples=8, deadline=None)
@given(outputs=st.sets(st.from_regex(r"[a-z0-9]{1,8}( [a-z]{1,3})?", fullmatch=True), max_size=4))
def test_synth_always_owns_what_it_wrote(outputs: set[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "app.py").write_text(
            FAST_APP + "\n(out / 'sub').mkdir()\n(out / 'sub' / 'x.yaml').write_text('a: 1')\n"
        )
        app = "python app.py " + " ".join(f"'{o}'" for o in outputs)
        synth(project, Path("dist"), app=app, validate=False)
        synth(project, Path("dist"), app=app, validate=False)
        assert MARKER in os.listdir(project / "dist")


@pytest.mark.parametrize("outdir", [".git/refs/tags", ".git/new", "sub/.git/dist"])
def test_an_outdir_inside_a_git_directory_is_refused(checkout: Path, outdir: str) -> None:
    """``.git/refs/tags`` is empty in a fresh clone: synth filled it with YAML, broken refs."""
    (checkout / "sub" / ".git").mkdir(parents=True)
    before = snapshot(checkout.parent)
    done = run_synth(checkout, "--outdir", outdir)
    refused(done, "refusing to replace", ".git")
    assert snapshot(checkout.parent) == before


def test_a_tilde_is_the_home_directory(checkout: Path, tmp_path: Path) -> None:
    """``--outdir=~`` (no shell expands that) made a directory named ``~`` in the project, one
    ``rm -rf ~`` away from the user's home."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("mine\n")
    before = snapshot(tmp_path)
    for value in ("--outdir=~", "--outdir=~/"):
        done = run_synth(checkout, value, env={"HOME": str(home)})
        refused(done, "refusing to replace", str(home))
        assert snapshot(tmp_path) == before
    done = run_synth(checkout, env={"HOME": str(home), "GITOPSKIT_OUTDIR": "~/out"})
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(home / "out")) == [MARKER, "app.k8s.yaml"]
    assert not (checkout / "~").exists()
