"""A diff for people and machines: text for a terminal, markdown for GitLab, JSON.

Every format says the same things in one order, readable before anything is opened:

1. the plan line, ``N to delete (Flux prunes them)`` first (bold when N > 0), then to change, to
   add, moved, unchanged; then the target (repository, branch, path, environment);
2. the warnings, one line each naming the object (see :data:`gitopskit.review.CODES`);
3. the container images that change (object, container, before → after);
4. one section per object, titled with what changed and its size, in the order deletions,
   changes with warnings, other changes, additions; moved-only objects as one list.

Text puts the plan last, where a terminal leaves the eye. Each renderer is a function of one
:class:`~gitopskit.diff.DiffResult` and, optionally, the target to name (by default the result's
own), so a caller with several results (environments) renders each and wraps them.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

from gitopskit.diff import DiffResult, Flagged, ResourceChange, Results, Target, plan_parts, total
from gitopskit.errors import ConfigError
from gitopskit.review import FieldChange, scalar_text, secret_keys
from gitopskit.tree import is_secret
from gitopskit.ui import visible

GITLAB_NOTE_LIMIT = 1_000_000
HEADING = "### Manifest diff"
Format = Literal["text", "markdown", "json"]
FORMATS: tuple[Format, ...] = ("text", "markdown", "json")
#: The minus sign of sizes (``+3 \u22121``), as typography has it.
MINUS = "\u2212"
#: The fewest characters of a diff a shortened section shows (else sections are left out).
MIN_SHOWN = 400
#: What shortening adds to a section: ``(truncated)`` in its title and the note under it.
_TRUNCATION_ROOM = 140
#: How many changed fields a title names before ``and N more``.
TITLE_FIELDS = 3

_VERB = {"removed": "delete", "changed": "change", "added": "add", "moved": "move"}
_ANSI = {
    "removed": "1;31", "changed": "1;33", "added": "1;32", "moved": "1",
    "+": "32", "-": "31", "@": "36", "warn": "33", "strong": "1;31", "dim": "2",
}  # fmt: skip


def check_format(fmt: str) -> Format:
    """``fmt`` if it is text, markdown or json.

    Raises:
        ConfigError: Any other format.
    """
    for known in FORMATS:
        if fmt == known:
            return known
    raise ConfigError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")


def _plain(text: str) -> str:
    return text


def plan_line(result: DiffResult, strong: Callable[[str], str] = _plain) -> str:
    """``2 to delete (Flux prunes them), 1 to change, 0 to add, 0 moved, 10 unchanged``, the
    deletions passed through ``strong`` when there are any."""
    return ", ".join(
        strong(text) if stands_out else text for stands_out, text in plan_parts(result.summary)
    )


def target_parts(target: Target) -> list[tuple[str, str]]:
    """``[("", repository), ("branch", b), ("path", p), ("environment", e)]``, known ones."""
    parts = [("", target.repository)]
    if target.branch:
        parts.append(("branch", target.branch))
    if target.path:
        parts.append(("path", target.path))
    if target.environment:
        parts.append(("environment", target.environment))
    return parts


# --- titles -----------------------------------------------------------------------------------


def _field_text(change: FieldChange) -> str:
    before, after = scalar_text(change.before), scalar_text(change.after)
    if before is None or after is None:
        return change.path
    return f"{change.path} {before} → {after}"


def _weight(change: ResourceChange) -> Callable[[FieldChange], int]:
    """Orders a title's fields: those warned about, then images and replicas, then the rest
    (the sort is stable, so key order otherwise)."""
    warned = tuple(w.path for w in change.warnings if w.path)
    images = {image.path for image in change.images}

    def weight(field: FieldChange) -> int:
        path = field.path
        if any(path == w or path.startswith((w + ".", w + "[")) for w in warned):
            return 0
        return 1 if path in images or path == "spec.replicas" else 2

    return weight


def what_changed(change: ResourceChange, limit: int = TITLE_FIELDS) -> str:
    """What a change's title says changed: ``labels only``, ``Secret key a changed``, or up to
    ``limit`` field paths, scalars with ``before → after``, then ``and N more``."""
    fields = change.fields
    if not fields:
        return ""
    if all(len(f.parts) > 1 and f.parts[0] == "metadata" for f in fields):
        parts = {f.parts[1] for f in fields}
        if parts == {"labels"}:
            return "labels only"
        if parts == {"annotations"}:
            return "annotations only"
        if parts == {"labels", "annotations"}:
            return "labels and annotations only"
    items: list[str] = []
    others: Iterable[FieldChange] = fields
    if is_secret(change.identity):
        keys = secret_keys(fields)
        for verb in ("changed", "added", "removed"):
            names = [key for key, how in keys if how == verb]
            if names:
                plural = "s" if len(names) > 1 else ""
                items.append(f"Secret key{plural} {', '.join(names)} {verb}")
        others = [f for f in fields if f.parts[:1] not in (("data",), ("stringData",))]
    items += (_field_text(f) for f in sorted(others, key=_weight(change)))
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def size_text(change: ResourceChange) -> str:
    """``+3 \u22121`` (a minus sign); an addition only ``+n``, a deletion only the minus."""
    if change.change == "added":
        return f"+{change.lines_added}"
    if change.change == "removed":
        return f"{MINUS}{change.lines_removed}"
    return f"+{change.lines_added} {MINUS}{change.lines_removed}"


def title(change: ResourceChange, *, truncated: bool = False) -> str:
    """``⚠ change Deployment shop/api: spec.replicas 2 → 3 (+1 \u22121)``."""
    mark = "⚠ " if change.warnings else ""
    what = what_changed(change)
    text = f"{mark}{_VERB[change.change]} {change.label}" + (f": {what}" if what else "")
    if change.change != "moved":
        text += f" ({size_text(change)})"
    return text + (" (truncated)" if truncated else "")


def warning_line(flagged: Flagged) -> str:
    """``Deployment shop/api: spec.selector changes…`` (the code is shown beside it)."""
    return f"{flagged.label}: {flagged.warning.message}"


# --- text -------------------------------------------------------------------------------------


def iter_text(
    result: DiffResult, colour: bool = False, *, target: Target | None = None
) -> Iterator[str]:
    """:func:`render_text` piece by piece, so that a large diff is written as it is made."""

    def paint(text: str, style: str) -> str:
        text = visible(text)  # a manifest's control characters shown, never acted on
        return f"\033[{_ANSI[style]}m{text}\033[0m" if colour else text

    ordered = result.in_review_order()
    for change in (c for c in ordered if c.change != "moved"):
        where = f"{change.from_file} → {change.file}" if change.from_file else change.file
        yield paint(title(change), change.change) + paint(f"  {where}", "dim") + "\n"
        if colour:
            for line in change.diff.splitlines():
                first = line[:1]
                yield (paint(line, first) if first in ("+", "-", "@") else visible(line)) + "\n"
        else:
            yield visible(change.diff)  # whole: no copy line by line
        yield "\n"
    moved = [c for c in ordered if c.change == "moved"]
    if moved:
        yield paint("moved (only the file changes):", "moved") + "\n"
        yield from (visible(f"  {c.label}: {c.from_file} → {c.file}\n") for c in moved)
        yield "\n"
    images = result.images
    if images:
        yield paint("images:", "moved") + "\n"
        for change, image in images:
            before, after = image.before or "(none)", image.after or "(removed)"
            yield visible(f"  {change.label} {image.container}: {before} → {after}\n")
        yield "\n"
    warnings = result.warnings
    if warnings:
        yield paint(f"warnings ({len(warnings)}):", "warn") + "\n"
        width = max(len(f.warning.code) for f in warnings)
        for flagged in warnings:
            code = f"{flagged.warning.code:<{width}}"
            yield f"  {paint(code, 'warn')}  {visible(warning_line(flagged))}\n"
        yield "\n"
    prefix = "no changes: " if not result.has_changes else ""
    yield prefix + plan_line(result, lambda s: paint(s, "strong")) + "\n"
    shown = target or result.target
    if shown is not None:
        parts = target_parts(shown)
        yield visible("target: " + ", ".join(f"{k} {v}".strip() for k, v in parts)) + "\n"


def render_text(result: DiffResult, colour: bool = False, *, target: Target | None = None) -> str:
    """Text for a terminal: one titled diff per object, the moved ones, the images, the
    warnings, then the plan line and target; ANSI colours when ``colour``."""
    return "".join(iter_text(result, colour, target=target))


# --- JSON -------------------------------------------------------------------------------------


def iter_json(result: DiffResult, *, target: Target | None = None) -> Iterator[str]:
    """:func:`render_json` piece by piece: the head whole, then one resource at a time (the
    text is the same as one ``json.dumps(document, indent=2)``)."""
    shown = target or result.target
    images: list[dict[str, Any]] = [
        {
            "kind": change.identity.kind,
            "namespace": change.identity.namespace or None,
            "name": change.identity.name,
            "container": image.container,
            "path": image.path,
            "before": image.before,
            "after": image.after,
        }
        for change, image in result.images
    ]
    head = {
        "summary": result.summary,
        "target": shown.to_json() if shown is not None else None,
        "warnings": [flagged.to_json() for flagged in result.warnings],
        "images": images,
        "resources": [],
    }
    text = json.dumps(head, indent=2, ensure_ascii=False)
    ordered = result.in_review_order()
    if not ordered:
        yield text + "\n"
        return
    yield text[: -len("[]\n}")] + "["
    for index, change in enumerate(ordered):
        item = json.dumps(change.to_json(), indent=2, ensure_ascii=False)
        yield ("\n" if index == 0 else ",\n") + "    " + item.replace("\n", "\n    ")
    yield "\n  ]\n}\n"


def render_json(result: DiffResult, *, target: Target | None = None) -> str:
    """One JSON document: ``summary`` (in the plan's order), ``target``, ``warnings``,
    ``images``, ``resources`` (in review order, each with ``fields``, ``warnings``, ``diff``)."""
    return "".join(iter_json(result, target=target))


# --- markdown ---------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!])")


def md_text(text: str) -> str:
    """Plain text safe in markdown: every character markdown could take for syntax escaped, and
    every control or bidirectional character shown as its escape."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", visible(text))


def md_code(text: str, *, in_table: bool = False) -> str:
    """``text`` as an inline code span, whatever backticks it holds (``|`` escaped in a table),
    control and bidirectional characters shown as their escapes."""
    text = visible(text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    span = f"{ticks}{pad}{text}{pad}{ticks}"
    return span.replace("|", "\\|") if in_table else span


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    return "`" * (longest + 1)


def _section(change: ResourceChange, diff: str, note: str = "", *, truncated: bool = False) -> str:
    summary = html.escape(visible(title(change, truncated=truncated)), quote=False)
    diff = visible(diff)
    where = md_code(change.file)
    if change.from_file:
        where = f"{md_code(change.from_file)} → {where}"
    fence = _fence(diff)
    body = f"{md_code(change.api_version)} in {where}\n\n{fence}diff\n{diff}{fence}\n"
    return f"<details><summary>{summary}</summary>\n\n{body}{note}\n</details>\n\n"


def _noun(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


def _capped(lines: list[str], budget: int, more: Callable[[int], str]) -> str:
    """``lines`` joined, as many as fit in ``budget`` characters, then ``more(left)``."""
    out: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        if used + len(line) > budget:
            return "".join(out) + more(len(lines) - index)
        out.append(line)
        used += len(line)
    return "".join(out)


def _warnings_block(result: DiffResult, budget: int) -> str:
    flagged = result.warnings
    if not flagged:
        return ""
    lines = [f"- ⚠ {md_code(f.warning.code)} {md_text(warning_line(f))}\n" for f in flagged]
    body = _capped(lines, budget, lambda n: f"- … and {n} more {_noun(n, 'warning')}\n")
    return f"**Warnings** ({len(flagged)})\n\n{body}\n"


def _images_block(result: DiffResult, budget: int) -> str:
    images = result.images
    if not images:
        return ""
    rows = [
        "| "
        + " | ".join(
            (
                md_text(change.label).replace("|", "\\|"),
                md_text(image.container).replace("|", "\\|"),
                md_code(image.before, in_table=True) if image.before else "—",
                md_code(image.after, in_table=True) if image.after else "—",
            )
        )
        + " |\n"
        for change, image in images
    ]
    body = _capped(rows, budget, lambda n: f"\n… and {n} more {_noun(n, 'image')}\n")
    table = "| Object | Container | Before | After |\n|---|---|---|---|\n"
    return f"**Images** ({len(images)})\n\n{table}{body}\n"


def _moved_block(moved: list[ResourceChange], budget: int) -> str:
    if not moved:
        return ""
    lines = [
        f"- {md_text(c.label)}: {md_code(c.from_file or '')} → {md_code(c.file)}\n" for c in moved
    ]
    body = _capped(lines, budget, lambda n: f"- … and {n} more\n")
    return f"**Moved** ({len(moved)}, only the file changes)\n\n{body}\n"


_Item = tuple[str, Any]


def _items(lines: list[str]) -> list[_Item]:
    """A diff's lines as hunk breaks, context kept (next to a change) or skipped, and change
    blocks (a run of ``-`` lines and the run of ``+`` lines after it)."""
    items: list[_Item] = []
    for line in lines:
        first = line[:1]
        if first == "@":
            items.append(("hunk", None))
        elif first in ("+", "-"):
            if not items or items[-1][0] != "change" or (first == "-" and items[-1][1][1]):
                items.append(("change", ([], [])))
            items[-1][1][0 if first == "-" else 1].append(line)
        else:
            items.append(("context", line))
    for index, (kind, line) in enumerate(items):
        if kind == "context":
            near = [items[j][0] for j in (index - 1, index + 1) if 0 <= j < len(items)]
            items[index] = ("context" if "change" in near else "skip", line)
    return items


def _render_items(items: list[_Item], hunk: str, most: int) -> tuple[list[str], int]:
    """The lines of :func:`_items` with at most ``most`` lines of each run of a change block;
    every gap gets the hunk label again. Returns the lines and how many changed ones."""
    out: list[str] = []
    shown = 0
    gap = True
    for kind, payload in items:
        if kind in ("hunk", "skip"):
            gap = True
            continue
        if gap:
            out.append(hunk)
            gap = False
        if kind == "context":
            out.append(payload)
            continue
        minus, plus = payload
        out += minus[:most]
        if len(minus) > most and plus:
            out.append(hunk)
        out += plus[:most]
        shown += min(most, len(minus)) + min(most, len(plus))
        gap = len(plus) > most or (not plus and len(minus) > most)
    return out, shown


def shorten(diff: str, size: int) -> tuple[str, int, int]:
    """A diff cut to at most ``size`` characters, keeping the changed lines and some context.

    Context narrows to one line around each change; each change block then shows as many of
    its first removed and first added lines as fit, so that before and after stay side by
    side; gaps get the hunk label again. What still does not fit is cut at a line end, and a
    single line too long alone is cut short.

    Returns:
        The shortened diff, how many changed lines it shows, and how many there are.
    """
    lines = diff.splitlines(keepends=True)
    total = sum(line[:1] in ("+", "-") for line in lines)
    hunk = next((line for line in lines if line.startswith("@@")), "")
    items = _items(lines)
    longest = max((max(len(p[0]), len(p[1])) for k, p in items if k == "change"), default=0)
    low, high = 1, max(longest, 1)
    while low < high:  # the most lines per run that fit
        mid = (low + high + 1) // 2
        if len("".join(_render_items(items, hunk, mid)[0])) <= size:
            low = mid
        else:
            high = mid - 1
    out, shown = _render_items(items, hunk, low)
    if len("".join(out)) <= size:
        return "".join(out), shown, total
    kept: list[str] = []
    used = shown = 0
    for line in out:
        if used + len(line) > size:
            room = size - used - 2
            changed = line[:1] in ("+", "-")
            if changed and room > 0 and not any(k[:1] in ("+", "-") for k in kept):
                kept.append(line[:room].rstrip("\n") + "…\n")
                shown += 1
            break
        kept.append(line)
        used += len(line)
        shown += line[:1] in ("+", "-")
    return "".join(kept), shown, total


def _truncated_section(change: ResourceChange, size: int) -> str:
    kept, shown, total = shorten(change.diff, size)
    note = (
        f"\n**(truncated)**: {shown} of {total} changed lines shown, with one line of context; "
        "gaps are marked with the object's @@ line.\n"
    )
    return _section(change, kept, note, truncated=True)


def render_markdown(
    result: DiffResult,
    limit: int = GITLAB_NOTE_LIMIT,
    *,
    target: Target | None = None,
    heading: str = HEADING,
) -> str:
    """Markdown for a merge request (GitLab flavoured: CommonMark, tables, ``<details>``).

    The plan line, the target, the warnings and the image table come first; then one
    collapsible section per object and the list of moved ones. The result stays under
    ``limit`` characters (GitLab's note limit): the longest diffs are shortened first, to their
    changed lines with one line of context, each marked ``(truncated)`` in its title, and a line
    under the plan says so once; as a last resort, sections are left out, saying how many.

    Args:
        result: The diff.
        limit: The most characters the markdown may have.
        target: What to name as the target (default: the result's).
        heading: The first line (a caller wrapping several results picks its own level).
    """
    shown = target or result.target
    head = f"{heading}\n\n{plan_line(result, lambda s: f'**{s}**')}\n\n"
    if shown is not None:
        parts = target_parts(shown)
        head += "Target: " + ", ".join(f"{k} {md_code(v)}".strip() for k, v in parts) + "\n\n"
    ordered = result.in_review_order()
    objects = [c for c in ordered if c.change != "moved"]
    moved = [c for c in ordered if c.change == "moved"]
    full_blocks = _warnings_block(result, limit) + _images_block(result, limit)
    if not result.has_changes:
        return head + full_blocks + "No changes.\n"
    sections = [_section(c, c.diff) for c in objects]
    moved_text = _moved_block(moved, limit)
    whole = head + full_blocks + "".join(sections) + moved_text
    if len(whole) <= limit:
        return whole

    notice = (
        "> **(truncated)** The whole diff is longer than GitLab allows here: the longest diffs "
        "are shortened to their changed lines, each marked (truncated).\n\n"
    )
    blocks = _warnings_block(result, limit // 5) + _images_block(result, limit // 10)
    moved_text = _moved_block(moved, limit // 20)
    reserve = 300  # the "more objects not shown" line, and slack
    fixed = len(head) + len(notice) + len(blocks) + len(moved_text) + reserve
    overheads = [len(s) - len(c.diff) for s, c in zip(sections, objects, strict=True)]
    budget = limit - fixed

    def need(size: int) -> int:
        """Characters the sections take with every diff cut to ``size`` (an upper bound)."""
        return sum(
            o + (len(c.diff) if len(c.diff) <= size else size + _TRUNCATION_ROOM)
            for o, c in zip(overheads, objects, strict=True)
        )

    # The largest per-diff size that fits: a binary search over 0..longest. Below a useful
    # size, sections are left out at the end instead.
    low, high = 0, max((len(c.diff) for c in objects), default=0)
    while low < high:
        mid = (low + high + 1) // 2
        if need(mid) <= budget:
            low = mid
        else:
            high = mid - 1
    low = max(low, MIN_SHOWN)
    out: list[str] = []
    used = fixed - reserve
    for index, change in enumerate(objects):
        section = sections[index] if len(change.diff) <= low else _truncated_section(change, low)
        if used + len(section) + reserve > limit:
            left = len(objects) - index
            out.append(f"**{left} more {_noun(left, 'object')} not shown** (GitLab's limit).\n\n")
            break
        out.append(section)
        used += len(section)
    return head + notice + blocks + "".join(out) + moved_text


def render_chunks(
    result: DiffResult, fmt: str, *, colour: bool = False, target: Target | None = None
) -> Iterator[str]:
    """Render in ``fmt`` (text, markdown, json) piece by piece, to write as it is made.

    Raises:
        ConfigError: An unknown format.
    """
    if fmt == "text":
        return iter_text(result, colour, target=target)
    if fmt == "markdown":
        return iter([render_markdown(result, target=target)])
    if check_format(fmt) == "json":
        return iter_json(result, target=target)
    raise AssertionError(fmt)  # pragma: no cover


def render(
    result: DiffResult, fmt: str, *, colour: bool = False, target: Target | None = None
) -> str:
    """Render in ``fmt`` (text, markdown, json).

    Raises:
        ConfigError: An unknown format.
    """
    return "".join(render_chunks(result, fmt, colour=colour, target=target))


# --- several environments ---------------------------------------------------------------------


def render_environments(
    results: Results, fmt: str, *, colour: bool = False, limit: int = GITLAB_NOTE_LIMIT
) -> str:
    """Render the results of several environments.

    Text: one headed block each. Markdown: one section each, with its plan, target and counts.
    JSON: one document whose ``summary`` is the total and ``environments`` maps each name to its
    own summary; every resource, warning and image names its ``environment``. The one unnamed
    environment of a project without environments renders exactly as :func:`render` does.

    Raises:
        ConfigError: An unknown format.
    """
    check_format(fmt)
    if len(results) == 1 and results[0][0].name is None:
        result = results[0][1]
        if fmt == "markdown":
            return render_markdown(result, limit)
        return render(result, fmt, colour=colour)
    if fmt == "json":
        combined = json.loads(render_json(total(results)))
        combined["environments"] = {env.label: r.summary for env, r in results}
        for key in ("resources", "warnings", "images"):
            combined[key] = [
                {"environment": env.label, **item}
                for env, result in results
                for item in json.loads(render_json(result))[key]
            ]
        return json.dumps(combined, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        share = max(MIN_SHOWN * 4, (limit - 200) // len(results))
        sections = []
        for env, result in results:
            heading = f"#### Environment {md_code(env.label)} ({md_code(env.path)})"
            sections.append(render_markdown(result, share, heading=heading))
        count = f"{len(results)} environment{'s' if len(results) != 1 else ''}"
        return f"{HEADING}: {count}\n\n" + "\n".join(sections)
    blocks = []
    for env, result in results:
        header = f"=== environment {env.label} ({env.path}) ==="
        blocks.append((f"\033[1m{header}\033[0m" if colour else header) + "\n")
        blocks.append(render_text(result, colour))
    return "\n".join(blocks)
