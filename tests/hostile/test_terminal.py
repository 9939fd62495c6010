"""Manifest values that reach a terminal: a control sequence in a name, a value, a container or an
image (someone with push access to the manifests repository, or a chart reading a file) is
shown, escaped, and never acted on by the reviewer's terminal or the CI log viewer."""

from __future__ import annotations

import io
import re
from pathlib import Path

from gitopskit import diff, render
from gitopskit.ui import Progress

# ESC ] (OSC: set the window title), BEL, ESC [ (CSI: colour, clear the screen), C1 CSI, and a
# right-to-left override that turns what follows around.
HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\x9b31m\u202egnp.exe"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

OLD = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: calm}
"""
NEW = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: "%(h)s"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: "api%(h)s", namespace: shop}
spec:
  replicas: 0
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: "web%(h)s", image: "shop/web%(h)s:latest"}]
"""


def _result(tmp_path: Path) -> diff.DiffResult:
    escaped = HOSTILE.encode("unicode_escape").decode()  # as YAML double-quoted escapes
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "app.k8s.yaml").write_text(OLD)
    (new / "app.k8s.yaml").write_text(NEW % {"h": escaped})
    return diff.diff_against(new, str(old))


def test_the_text_review_shows_control_characters_escaped(tmp_path: Path) -> None:
    result = _result(tmp_path)
    assert any(HOSTILE in c.label for c in result.resources)  # read as written
    for colour in (False, True):
        text = render.render_text(result, colour=colour)
        if colour:
            text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # our own colours
        assert not RAW.search(text), text
        assert "\\x1b]0;PWNED\\x07" in text  # shown, not acted on


def test_progress_lines_show_control_characters_escaped(tmp_path: Path) -> None:
    result = _result(tmp_path)
    stream = io.StringIO()
    ui = Progress(stream, colour=False)
    for flagged in result.warnings:
        ui.warn(render.warning_line(flagged))
    ui.error(f"object {HOSTILE}:\n  second line")
    ui.block(f"a {HOSTILE} traceback line")
    written = stream.getvalue()
    assert "PWNED" in written and not RAW.search(written), written
    assert "\n  second line\n" in written  # line breaks of a message are kept


def test_the_merge_request_note_shows_control_and_bidi_characters_escaped(tmp_path: Path) -> None:
    # A right-to-left override in a reviewed note turns a line around in the reviewer's browser
    # (the "Trojan Source" trick); a C0 or C1 control is shown as nothing at all.
    note = render.render_markdown(_result(tmp_path))
    assert "PWNED" in note and not RAW.search(note), note
    assert "\\u202egnp.exe" in note
