"""What would change in the cluster, resource by resource.

A library first: ``invoke diff``, ``invoke publish`` and the merge-request comment call it.
:mod:`gitopskit.tree` reads both trees (and decides which files of a manifests tree gitopskit
owns), :func:`compare` matches them by identity (API group, kind, namespace, name: files are only
containers), and the renderers turn the result into text, markdown or JSON.

Objects are compared as loaded with YAML 1.1 semantics (see :mod:`gitopskit.manifests`), as
canonical JSON text, so whitespace, key order and quoting never count as changes. YAML is
rendered only for resources that differ, with sorted keys, and never written back to a user's
file. Secret ``data`` and ``stringData`` values never reach any output: only key names, and
whether each was added, removed or changed.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gitopskit import git
from gitopskit.environments import UNNAMED, Environment
from gitopskit.errors import ConfigError
from gitopskit.tree import (
    DirectoryReader,
    GitReader,
    Identity,
    Resource,
    Tree,
    canonical,
    is_secret,
    load_output,
    load_owned,
)

GITLAB_NOTE_LIMIT = 1_000_000
MASK = "***"

Change = Literal["added", "removed", "changed", "moved", "unchanged"]
CHANGES: tuple[Change, ...] = ("added", "removed", "changed", "moved", "unchanged")
Format = Literal["text", "markdown", "json"]
FORMATS: tuple[Format, ...] = ("text", "markdown", "json")


# --- comparing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceChange:
    """One resource in the result.

    Attributes:
        change: added, removed, changed, moved or unchanged.
        identity: Group, kind, namespace, name.
        api_version: The new object's ``apiVersion`` (the old one's when removed).
        file: Its file in the new tree (the old tree's when removed).
        from_file: Its file in the old tree, when it moved (also for a changed resource).
        diff: A unified diff of its YAML, Secret values masked; empty when unchanged or moved.
    """

    change: Change
    identity: Identity
    api_version: str
    file: str
    from_file: str | None = None
    diff: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON form: change, apiVersion, kind, namespace, name, file, [from_file], diff."""
        out: dict[str, Any] = {
            "change": self.change,
            "apiVersion": self.api_version,
            "kind": self.identity.kind,
            "namespace": self.identity.namespace or None,
            "name": self.identity.name,
            "file": self.file,
        }
        if self.from_file is not None:
            out["from_file"] = self.from_file
        out["diff"] = self.diff
        return out


@dataclass
class DiffResult:
    """What changes between two trees.

    Attributes:
        summary: How many resources are added, removed, changed, unchanged, moved.
        resources: Every resource that is not unchanged, in identity order.
        notes: The trees' notes, for stderr.
        broken: Files of the old tree that are not valid YAML (publish replaces them).
    """

    summary: dict[str, int]
    resources: list[ResourceChange]
    notes: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """Whether anything is added, removed, changed or moved (``--exit-code``)."""
        return bool(self.resources)

    def summary_line(self) -> str:
        """``1 added, 0 removed, 2 changed, 0 moved, 10 unchanged``."""
        return ", ".join(
            f"{self.summary[k]} {k}" for k in ("added", "removed", "changed", "moved", "unchanged")
        )


def same_object(a: Any, b: Any) -> bool:
    """Whether two loaded values mean the same, key order aside and types included (``true`` is
    not ``1``, as Kubernetes sees it)."""
    return canonical(a) == canonical(b)


class _Dumper(yaml.CSafeDumper):
    """Quotes every string that a YAML 1.1 reader (Kubernetes' go-yaml) could take otherwise."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
_Dumper.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^0o[0-7_]+$"), ["0"])


def to_yaml(obj: Any) -> str:
    """YAML with sorted keys, YAML 1.1-safe quoting (``"on"``, ``"0644"``), for display only."""
    return yaml.dump(
        obj,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,
    )


_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _masked_values(values: Any, other: Any, marker: str) -> Any:
    if not isinstance(values, dict):
        return MASK if values is not None else None
    others = other if isinstance(other, dict) else {}
    masked = {}
    for key, value in values.items():
        differs = key in others and not same_object(value, others[key])
        masked[key] = f"{MASK} ({marker})" if differs else MASK
    return masked


def mask_secret(obj: dict[str, Any], other: dict[str, Any] | None, marker: str) -> dict[str, Any]:
    """A copy of a Secret with its values masked, as ``kubectl diff`` does.

    A key whose value differs from ``other``'s reads ``*** (before)``/``*** (after)``
    (``marker``), so that a unified diff shows which keys were added, removed or changed and
    never a value. The ``last-applied-configuration`` annotation, a copy of the whole object,
    is masked too.

    Args:
        obj: The Secret.
        other: The same Secret on the other side, or None.
        marker: ``before`` or ``after``.
    """
    masked = dict(obj)
    for section in ("data", "stringData"):
        if section in obj:
            theirs = other.get(section) if other is not None else None
            masked[section] = _masked_values(obj[section], theirs, marker)
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if (
        isinstance(metadata, dict)
        and isinstance(annotations, dict)
        and _LAST_APPLIED in annotations
    ):
        masked["metadata"] = {**metadata, "annotations": {**annotations, _LAST_APPLIED: MASK}}
    return masked


def unified(old: Resource | None, new: Resource | None) -> str:
    """A unified diff of one resource's YAML (keys sorted, Secret values masked).

    Args:
        old: The resource before (None when added).
        new: The resource after (None when removed).
    """
    old_data = old.data if old else None
    new_data = new.data if new else None
    either = new or old
    if either is not None and is_secret(either.identity):
        masked_old = mask_secret(old_data, new_data, "before") if old_data is not None else None
        masked_new = mask_secret(new_data, old_data, "after") if new_data is not None else None
        old_data, new_data = masked_old, masked_new
    before = to_yaml(old_data).splitlines(keepends=True) if old_data is not None else []
    after = to_yaml(new_data).splitlines(keepends=True) if new_data is not None else []
    lines = difflib.unified_diff(
        before,
        after,
        fromfile=f"a/{old.file}" if old else "/dev/null",
        tofile=f"b/{new.file}" if new else "/dev/null",
        n=3,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def compare(old: Tree, new: Tree, *, unchanged: int = 0) -> DiffResult:
    """Match two trees by identity and tell what happens to each resource.

    Args:
        old: What is there now (the manifests repository).
        new: What would be there (the synthesized output).
        unchanged: Objects known to be unchanged without being in either tree (publish leaves
            files identical on both sides out).

    Returns:
        The counts, every resource that is not unchanged (with its diff), and both trees' notes.
    """
    counts: Counter[str] = Counter({change: 0 for change in CHANGES})
    counts["unchanged"] += unchanged
    changes: list[ResourceChange] = []
    for ident in sorted(old.resources.keys() | new.resources.keys()):
        before = old.resources.get(ident)
        after = new.resources.get(ident)
        if before is None and after is not None:
            change = ResourceChange(
                "added", ident, after.api_version, after.file, diff=unified(None, after)
            )
        elif after is None and before is not None:
            change = ResourceChange(
                "removed", ident, before.api_version, before.file, diff=unified(before, None)
            )
        else:
            assert before is not None and after is not None
            moved_from = before.file if before.file != after.file else None
            text = "" if before.text == after.text else unified(before, after)
            if text:
                kind: Change = "changed"
            else:
                kind = "moved" if moved_from else "unchanged"
            if kind == "unchanged":
                counts["unchanged"] += 1
                continue
            change = ResourceChange(kind, ident, after.api_version, after.file, moved_from, text)
        counts[change.change] += 1
        changes.append(change)
    summary = {k: counts[k] for k in ("added", "removed", "changed", "unchanged", "moved")}
    return DiffResult(summary, changes, [*old.notes, *new.notes])


@dataclass(frozen=True)
class Slot:
    """One environment's side of a diff: its synthesized output and its path in the manifests
    tree (``MANIFESTS_PATH`` and the environment's path)."""

    environment: Environment
    new_root: Path
    subdir: str


def diff_against(
    new_root: Path,
    against: str,
    *,
    ref: str | None = None,
    subdir: str = "",
    env: Mapping[str, str] | None = None,
    timeout: float = git.DEFAULT_TIMEOUT,
    publish_branch: str | None = None,
) -> DiffResult:
    """Compare a directory of manifests (``dist/``) with the files gitopskit owns in a manifests
    tree, wherever it is: :func:`diff_environments` for the one unnamed environment."""
    slot = Slot(UNNAMED, new_root, subdir)
    ((_, result),) = diff_environments(
        [slot], against, ref=ref, env=env, timeout=timeout, publish_branch=publish_branch
    )
    return result


def diff_environments(
    slots: list[Slot],
    against: str,
    *,
    ref: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = git.DEFAULT_TIMEOUT,
    publish_branch: str | None = None,
) -> list[tuple[Environment, DiffResult]]:
    """Compare each environment's output with the files gitopskit owns at its path in a
    manifests tree, wherever it is; a git tree is fetched once for all of them.

    Nothing is checked out: a git tree is read with git's plumbing, a directory without ever
    following a symbolic link, and only the files gitopskit owns there are compared (see
    :func:`gitopskit.tree.ownership`).

    Args:
        slots: The environments: each one's output directory and path.
        against: A directory compared as it stands, or a git URL (``://``, ``user@host:path``,
            a bare repository) fetched shallowly into a temporary repository.
        ref: The branch of a git URL (resolved by :func:`gitopskit.git.resolve_branch` when None).
        env: git's environment for a git URL (see :func:`gitopskit.git.git_environment`).
        timeout: Seconds any one network operation may take.
        publish_branch: The configured publish branch; like every ``gitopskit/*`` branch, it is
            never taken for the target.

    Returns:
        Each environment with its result, in the order given.

    Raises:
        ConfigError: ``against`` is neither, or ``ref`` is given with a plain directory.
        GitError: The fetch failed, or no branch can be told to be the target.
        ManifestError: A tree cannot be read.
    """
    for slot in slots:
        if not slot.new_root.is_dir():
            raise ConfigError(
                f"{slot.new_root} does not exist",
                hint="run invoke synth first, or drop --no-synth",
            )
    kind = git.classify(against)
    if kind is git.SourceKind.DIRECTORY and ref:
        raise ConfigError(
            f"--ref {ref} names a branch, but {against} is a plain directory, "
            "compared as it stands on disk",
            hint=f"drop --ref, or give a git URL such as file://{Path(against).resolve()}",
        )
    news = [load_output(slot.new_root).tree for slot in slots]
    if kind is git.SourceKind.DIRECTORY:
        directory = Path(against).expanduser()
        label = against.rstrip("/") or against
        readers = [DirectoryReader(directory, slot.subdir, label=label) for slot in slots]
        olds = [load_owned(reader, tolerate_broken=True)[0] for reader in readers]
        return _compared(slots, olds, news)
    environment = env if env is not None else git.git_environment(timeout=timeout)
    with git.temporary_repo(against, environment, timeout) as repo:
        refs = repo.remote_refs()
        label = git.display_url(against)
        ours = [b for b in refs.heads if b.startswith("gitopskit/") or b == publish_branch]
        branch = git.resolve_branch(refs, ref, where=label, exclude=ours)
        if branch is None:
            empty = Tree(label)
            empty.notes.append(
                f"{label} has no commits yet: compared with an empty tree, so everything is added"
            )
            return _compared(slots, [empty] * len(slots), news)
        commit = repo.fetch(branch)[branch]
        olds = [
            load_owned(
                GitReader(repo, commit, slot.subdir, label=f"{label}@{branch}"),
                tolerate_broken=True,
            )[0]
            for slot in slots
        ]
    return _compared(slots, olds, news)


def _compared(
    slots: list[Slot], olds: list[Tree], news: list[Tree]
) -> list[tuple[Environment, DiffResult]]:
    return [
        (slot.environment, compare(old, new))
        for slot, old, new in zip(slots, olds, news, strict=True)
    ]


def check_format(fmt: str) -> Format:
    """``fmt`` if it is text, markdown or json.

    Raises:
        ConfigError: Any other format.
    """
    for known in FORMATS:
        if fmt == known:
            return known
    raise ConfigError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")


# --- rendering --------------------------------------------------------------------------------

_SIGN = {"added": "+", "removed": "-", "changed": "~", "moved": ">", "unchanged": " "}
_ANSI = {"+": "32", "-": "31", "@": "36", "header": "1"}


def _title(change: ResourceChange) -> str:
    ident = change.identity
    name = f"{ident.namespace}/{ident.name}" if ident.namespace else ident.name
    where = f"{change.from_file} → {change.file}" if change.from_file else change.file
    return f"{change.change} {change.api_version} {ident.kind} {name} ({where})"


def render_text(result: DiffResult, colour: bool = False) -> str:
    """Plain or ANSI-coloured text: one header and unified diff per resource, then the counts."""

    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if colour else text

    out: list[str] = []
    for change in result.resources:
        out.append(paint(f"{_SIGN[change.change]} {_title(change)}", _ANSI["header"]) + "\n")
        for line in change.diff.splitlines():
            if line.startswith(("+++", "---")):
                out.append(paint(line, _ANSI["header"]) + "\n")
            elif line[:1] in ("+", "-", "@"):
                out.append(paint(line, _ANSI[line[0]]) + "\n")
            else:
                out.append(line + "\n")
        out.append("\n")
    out.append(("no changes: " if not result.has_changes else "") + result.summary_line() + "\n")
    return "".join(out)


def render_json(result: DiffResult) -> str:
    """One JSON document: ``{"summary": {...}, "resources": [...]}``."""
    document = {
        "summary": result.summary,
        "resources": [change.to_json() for change in result.resources],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    return "`" * (longest + 1)


def _section(change: ResourceChange, diff: str, note: str = "") -> str:
    title = html.escape(_title(change))
    if not change.diff:
        return f"<details><summary>{title}</summary>\n\nOnly the file changed.\n\n</details>\n\n"
    fence = _fence(diff)
    return (
        f"<details><summary>{title}</summary>\n\n{fence}diff\n{diff}{fence}\n{note}\n</details>\n\n"
    )


def _cut(diff: str, size: int) -> tuple[str, str]:
    """The first ``size`` characters of a diff, at a line end, and a note on what was left."""
    kept = diff[:size]
    kept = kept[: kept.rfind("\n") + 1]
    total = diff.count("\n")
    shown = kept.count("\n")
    return kept, f"\n**Truncated**: {shown} of {total} lines shown.\n"


def render_markdown(
    result: DiffResult, limit: int = GITLAB_NOTE_LIMIT, *, heading: str = "### Manifest diff"
) -> str:
    """Markdown for a merge request: a table of counts, one collapsible section per resource.

    Kept under ``limit`` characters (GitLab's note limit) by cutting the longest diffs first,
    each with a visible note, and as a last resort leaving resources out, saying how many.
    """
    rows = "| " + " | ".join(k for k in result.summary) + " |\n"
    rows += "|" + "---:|" * len(result.summary) + "\n"
    rows += "| " + " | ".join(str(v) for v in result.summary.values()) + " |\n"
    head = f"{heading}\n\n{rows}\n"
    if not result.has_changes:
        return head + "No changes.\n"
    full = [_section(c, c.diff) for c in result.resources]
    if len(head) + sum(len(s) for s in full) <= limit:
        return head + "".join(full)

    warning = (
        "> **Note**: this diff is longer than the comment limit; the longest resource diffs are "
        "truncated and marked.\n\n"
    )
    overhead = [len(s) - len(c.diff) + 80 for s, c in zip(full, result.resources, strict=True)]
    budget = limit - len(head) - len(warning) - 200
    # The largest per-diff size cap that fits: binary search over 0..longest.
    low, high = 0, max(len(c.diff) for c in result.resources)
    while low < high:
        mid = (low + high + 1) // 2
        need = sum(
            o + min(len(c.diff), mid) for o, c in zip(overhead, result.resources, strict=True)
        )
        if need <= budget:
            low = mid
        else:
            high = mid - 1
    sections: list[str] = []
    used = len(head) + len(warning)
    for index, change in enumerate(result.resources):
        if len(change.diff) > low:
            kept, note = _cut(change.diff, low)
            section = _section(change, kept, note)
        else:
            section = full[index]
        left = len(result.resources) - index
        tail = f"\n**{left} more resources not shown** (the comment limit).\n"
        if used + len(section) + len(tail) + 100 > limit:
            sections.append(tail)
            break
        sections.append(section)
        used += len(section)
    return head + warning + "".join(sections)


def render(result: DiffResult, fmt: str, *, colour: bool = False) -> str:
    """Render in ``fmt`` (text, markdown, json).

    Raises:
        ConfigError: An unknown format.
    """
    if fmt == "text":
        return render_text(result, colour)
    if fmt == "markdown":
        return render_markdown(result)
    if check_format(fmt) == "json":
        return render_json(result)
    raise AssertionError(fmt)  # pragma: no cover


# --- several environments ---------------------------------------------------------------------

Results = list[tuple[Environment, DiffResult]]


def has_changes(results: Results) -> bool:
    """Whether anything changes in any environment (``--exit-code``)."""
    return any(result.has_changes for _, result in results)


def total(results: Results) -> DiffResult:
    """One result holding every environment's resources and notes, counts added up."""
    summary = {k: sum(r.summary[k] for _, r in results) for k in results[0][1].summary}
    return DiffResult(
        summary,
        [change for _, r in results for change in r.resources],
        [note for _, r in results for note in r.notes],
        [file for _, r in results for file in r.broken],
    )


def render_environments(
    results: Results, fmt: str, *, colour: bool = False, limit: int = GITLAB_NOTE_LIMIT
) -> str:
    """Render the results of several environments: text, one headed block each; markdown, one
    section each with its own counts table; JSON, one document whose ``summary`` is the total,
    ``environments`` each one's summary, and every resource names its ``environment``.

    The one unnamed environment of a project without environments renders exactly as
    :func:`render` does.

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
        document: dict[str, Any] = {
            "summary": total(results).summary,
            "environments": {env.label: r.summary for env, r in results},
            "resources": [
                {"environment": env.label, **change.to_json()}
                for env, r in results
                for change in r.resources
            ],
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        share = max(1000, (limit - 200) // len(results))
        sections = [
            render_markdown(r, share, heading=f"#### Environment `{env.label}` (`{env.path}`)")
            for env, r in results
        ]
        head = f"### Manifest diff: {len(results)} environments\n\n"
        return head + "\n".join(sections)
    blocks = []
    for env, result in results:
        title = f"=== environment {env.label} ({env.path}) ==="
        blocks.append((f"\033[1m{title}\033[0m" if colour else title) + "\n")
        blocks.append(render_text(result, colour))
    return "\n".join(blocks)
