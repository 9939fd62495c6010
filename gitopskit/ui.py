"""Progress lines on stderr: short, aligned, coloured only on a terminal and never with NO_COLOR.

stdout is left to a task's result (a diff, JSON) so that it can be piped.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TextIO

from gitopskit.redact import redact

_LABEL_WIDTH = 10
# What a terminal (or a CI log viewer) would act on rather than show: C0 controls but the line
# break and the tab, DEL, C1 controls (U+009B is a CSI on its own), bidirectional overrides.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_STYLES = {"step": "36", "ok": "32", "warn": "33", "error": "31", "dim": "2", "bold": "1"}


def use_colour(stream: TextIO, environ: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """Colour only when the stream is a terminal and NO_COLOR is unset or empty."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def visible(text: str) -> str:
    """``text`` with every control character a terminal would act on shown as its escape
    (``\\x1b``, ``\\r``, ``\\u202e``): a name or value from a manifest cannot set the window
    title, clear the screen, fake a line or turn text around. Line breaks and tabs are kept."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


class Progress:
    """Writes one aligned line per step of a long task.

    Args:
        stream: Where to write; stderr by default.
        colour: Force colour on or off; by default decided by :func:`use_colour`.
        quiet: Write only warnings and errors.
    """

    def __init__(
        self, stream: TextIO | None = None, *, colour: bool | None = None, quiet: bool = False
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.colour = use_colour(self.stream) if colour is None else colour
        self.quiet = quiet

    def style(self, text: str, style: str) -> str:
        """Wrap ``text`` in the ANSI style named ``style`` when colour is on."""
        if not self.colour:
            return text
        return f"\033[{_STYLES[style]}m{text}\033[0m"

    def _line(self, label: str, message: str, style: str) -> None:
        padded = f"{label:<{_LABEL_WIDTH}}"
        self.stream.write(f"{self.style(padded, style)}{visible(redact(message))}\n")
        self.stream.flush()

    def step(self, label: str, message: str) -> None:
        """A step done or under way: ``label`` in the left column."""
        if not self.quiet:
            self._line(label, message, "step")

    def ok(self, label: str, message: str) -> None:
        """The step that ends a task successfully."""
        if not self.quiet:
            self._line(label, message, "ok")

    def note(self, message: str) -> None:
        """Something worth knowing that is not a problem."""
        if not self.quiet:
            self._line("note", message, "dim")

    def warn(self, message: str) -> None:
        """Something the user should look at; the task goes on."""
        self._line("warning", message, "warn")

    def error(self, message: str) -> None:
        """Why the task stopped."""
        self._line("error", message, "error")

    def block(self, text: str) -> None:
        """Verbatim lines (a traceback, a plan), indented under the last step."""
        for line in visible(redact(text)).rstrip("\n").splitlines():
            self.stream.write(f"  {line}\n")
        self.stream.flush()
