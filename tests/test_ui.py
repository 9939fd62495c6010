"""Progress output: aligned, stderr, colour only on a terminal and never with NO_COLOR."""

from __future__ import annotations

import io

import pytest

from gitopskit.ui import Progress, use_colour


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_are_aligned_and_plain_off_a_terminal() -> None:
    out = io.StringIO()
    ui = Progress(out)
    ui.step("synth", "running")
    ui.warn("careful")
    assert out.getvalue() == "synth     running\nwarning   careful\n"


def test_colour_on_a_terminal_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(Terminal())
    assert not use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(Terminal())


def test_quiet_keeps_warnings() -> None:
    out = io.StringIO()
    ui = Progress(out, quiet=True)
    ui.step("a", "b")
    ui.warn("w")
    assert out.getvalue() == "warning   w\n"
