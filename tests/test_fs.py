"""Replacing a directory in one step."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitopskit._fs import replace_dir, staging_dir


def test_replace_existing_and_missing_targets(tmp_path: Path) -> None:
    target = tmp_path / "dist"
    with staging_dir(target) as staged:
        (staged / "a.yaml").write_text("new")
        replace_dir(staged, target)
    assert (target / "a.yaml").read_text() == "new"
    with staging_dir(target) as staged:
        (staged / "b.yaml").write_text("newer")
        replace_dir(staged, target)
    assert sorted(p.name for p in target.iterdir()) == ["b.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]
    assert target.stat().st_mode & 0o777 != 0o700


def test_a_file_in_the_way_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "dist"
    target.write_text("not a directory")
    with staging_dir(target) as staged, pytest.raises(NotADirectoryError):
        replace_dir(staged, target)
    assert target.read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]
