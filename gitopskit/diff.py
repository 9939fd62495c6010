"""What would change in the cluster, resource by resource.

A library first: ``invoke diff``, ``invoke publish`` and the merge-request comment call it.
:mod:`gitopskit.tree` reads both trees (and decides which files of a manifests tree gitopskit
owns), :func:`compare` matches them by identity (API group, kind, namespace, name: files are only
containers), :mod:`gitopskit.review` tells what each change means (fields, warnings, images), and
:mod:`gitopskit.render` turns the result into text, markdown or JSON.

Objects are compared as loaded with YAML 1.1 semantics (see :mod:`gitopskit.manifests`), as
canonical JSON text, so whitespace, key order and quoting never count as changes. An object is
decoded again only when it differs; YAML is rendered only for those, with sorted keys, and never
written back to a user's file. Secret ``data`` and ``stringData`` values never reach any output:
only key names, and whether each was added, removed or changed.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gitopskit import git
from gitopskit.environments import UNNAMED, Environment, Slot
from gitopskit.errors import ConfigError
from gitopskit.review import (
    LAST_APPLIED,
    MASK,
    FieldChange,
    ImageChange,
    ReviewWarning,
    plain_secret_warning,
    review,
)
from gitopskit.tree import (
    DirectoryReader,
    GitReader,
    Identity,
    Resource,
    Tree,
    canonical,
    is_plain_secret,
    is_secret,
    load_output,
    load_owned,
    subdir_path,
)

Change = Literal["added", "removed", "changed", "moved", "unchanged"]
#: The plan's order, everywhere: what Flux deletes first, then changes, additions, the rest.
CHANGES: tuple[Change, ...] = ("removed", "changed", "added", "moved", "unchanged")
#: How the plan line words each count.
PLAN_WORDS: dict[str, str] = {
    "removed": "to delete",
    "changed": "to change",
    "added": "to add",
    "moved": "moved",
    "unchanged": "unchanged",
}
PRUNE_NOTE = "(Flux prunes them)"


# --- comparing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What the new manifests are compared with, as the plan names it.

    Attributes:
        repository: The manifests project, git URL (no credentials) or directory.
        branch: Its branch (None: a directory, or a repository with no commits yet).
        path: ``MANIFESTS_PATH`` inside it ('' for the root).
        environment: The environment, when there are environments.
    """

    repository: str
    branch: str | None = None
    path: str = ""
    environment: str | None = None

    def to_json(self) -> dict[str, str | None]:
        """``{repository, branch, path, environment}``."""
        return {
            "repository": self.repository,
            "branch": self.branch,
            "path": self.path,
            "environment": self.environment,
        }


@dataclass(frozen=True)
class ResourceChange:
    """One resource in the result.

    Attributes:
        change: added, removed, changed, moved or unchanged.
        identity: Group, kind, namespace, name.
        api_version: The new object's ``apiVersion`` (the old one's when removed).
        file: Its file in the new tree (the old tree's when removed).
        from_file: Its file in the old tree, when it moved (also for a changed resource).
        diff: A unified diff of its YAML, Secret values masked, without file headers and with
            every hunk labelled ``@@ Kind namespace/name @@``; empty when unchanged or moved.
        fields: The fields that change (changed resources only), Secret values masked.
        warnings: What a reviewer should not miss about it.
        images: Its containers whose image changes.
        lines_added: ``+`` lines of :attr:`diff`.
        lines_removed: ``-`` lines of :attr:`diff`.
    """

    change: Change
    identity: Identity
    api_version: str
    file: str
    from_file: str | None = None
    diff: str = ""
    fields: tuple[FieldChange, ...] = ()
    warnings: tuple[ReviewWarning, ...] = ()
    images: tuple[ImageChange, ...] = ()
    lines_added: int = 0
    lines_removed: int = 0

    @property
    def label(self) -> str:
        """``Deployment shop/api``, ``Namespace shop``."""
        return object_label(self.identity)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: change, apiVersion, kind, namespace, name, file, [from_file], fields,
        warnings, diff."""
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
        out["fields"] = [f.to_json() for f in self.fields]
        out["warnings"] = [w.to_json() for w in self.warnings]
        out["diff"] = self.diff
        return out


@dataclass(frozen=True)
class Flagged:
    """A warning with the object it is about.

    Attributes:
        label: ``Deployment shop/api``.
        identity: The object's identity (None: a Secret with no name).
        warning: The warning.
    """

    label: str
    identity: Identity | None
    warning: ReviewWarning

    def to_json(self) -> dict[str, Any]:
        """``{code, kind, namespace, name, path, message}``."""
        ident = self.identity
        return {
            "code": self.warning.code,
            "kind": ident.kind if ident else self.label.split(" ", 1)[0],
            "namespace": (ident.namespace or None) if ident else None,
            "name": ident.name if ident else None,
            "path": self.warning.path,
            "message": self.warning.message,
        }


@dataclass
class DiffResult:
    """What changes between two trees.

    Attributes:
        summary: How many resources are removed, changed, added, moved, unchanged (that order).
        resources: Every resource that is not unchanged, in identity order.
        notes: The trees' notes, for stderr.
        broken: Files of the old tree that are not valid YAML (publish replaces them).
        target: What was compared with, when known.
        extra_warnings: Warnings about objects that are not in :attr:`resources` (an unchanged
            Secret carrying plain values).
    """

    summary: dict[str, int]
    resources: list[ResourceChange]
    notes: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    target: Target | None = None
    extra_warnings: list[Flagged] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """Whether anything is added, removed, changed or moved (``--exit-code``)."""
        return bool(self.resources)

    def summary_line(self) -> str:
        """The plan line: ``2 to delete (Flux prunes them), 1 to change, 0 to add, 0 moved,
        10 unchanged``."""
        return ", ".join(text for _, text in plan_parts(self.summary))

    def in_review_order(self) -> list[ResourceChange]:
        """Deletions, changes with warnings, other changes, additions, then moved-only ones."""
        rank = {"removed": 0, "changed": 2, "added": 3, "moved": 4}

        def key(change: ResourceChange) -> int:
            return rank[change.change] - (
                1 if change.change == "changed" and change.warnings else 0
            )

        return sorted(self.resources, key=key)

    @property
    def warnings(self) -> list[Flagged]:
        """Every warning, in review order, each with its object."""
        found = [
            Flagged(change.label, change.identity, warning)
            for change in self.in_review_order()
            for warning in change.warnings
        ]
        return found + self.extra_warnings

    @property
    def images(self) -> list[tuple[ResourceChange, ImageChange]]:
        """Every container image that changes, in review order, with its object."""
        return [(c, image) for c in self.in_review_order() for image in c.images]


def object_label(ident: Identity) -> str:
    """An object as titles and warnings name it: ``Deployment shop/api``, ``Namespace shop``."""
    return (
        f"{ident.kind} {ident.namespace}/{ident.name}"
        if ident.namespace
        else (f"{ident.kind} {ident.name}")
    )


def plan_parts(summary: Mapping[str, int]) -> list[tuple[bool, str]]:
    """The plan line's parts in order, each with whether it must stand out (deletions)."""
    parts = []
    for key in CHANGES:
        count = summary.get(key, 0)
        text = f"{count} {PLAN_WORDS[key]}"
        if key == "removed" and count:
            text += f" {PRUNE_NOTE}"
        parts.append((key == "removed" and count > 0, text))
    return parts


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
    if isinstance(metadata, dict) and isinstance(annotations, dict) and LAST_APPLIED in annotations:
        masked["metadata"] = {**metadata, "annotations": {**annotations, LAST_APPLIED: MASK}}
    return masked


def unified(
    identity: Identity, old: dict[str, Any] | None, new: dict[str, Any] | None, label: str = ""
) -> tuple[str, int, int]:
    """A unified diff of one object's YAML (keys sorted, Secret values masked).

    No ``---``/``+++`` file headers (the object, not a file, is what changes); every hunk is
    labelled ``@@ <label> @@`` instead of line numbers in a YAML rendering nobody sees.

    Args:
        identity: The object's identity.
        old: The object before (None when added).
        new: The object after (None when removed).
        label: Names the object in hunk headers (default: the identity).

    Returns:
        The diff, and how many lines it adds and removes.
    """
    if is_secret(identity):
        masked_old = mask_secret(old, new, "before") if old is not None else None
        masked_new = mask_secret(new, old, "after") if new is not None else None
        old, new = masked_old, masked_new
    before = to_yaml(old).splitlines(keepends=True) if old is not None else []
    after = to_yaml(new).splitlines(keepends=True) if new is not None else []
    hunk = f"@@ {label or identity} @@\n"
    out: list[str] = []
    added = removed = 0
    lines: Iterator[str] = difflib.unified_diff(before, after, n=3)
    for number, line in enumerate(lines):
        if number < 2:  # the ---/+++ headers
            continue
        first = line[:1]
        if first == "@":
            out.append(hunk)
            continue
        if first == "+":
            added += 1
        elif first == "-":
            removed += 1
        out.append(line if line.endswith("\n") else line + "\n")
    return "".join(out), added, removed


def _change(
    change: Change,
    ident: Identity,
    before: Resource | None,
    after: Resource | None,
) -> ResourceChange:
    """A resource that differs, decoded once for its diff and its review."""
    old = before.data if before is not None else None
    new = after.data if after is not None else None
    either = after if after is not None else before
    assert either is not None
    moved_from = before.file if before and after and before.file != after.file else None
    text, added, removed = unified(ident, old, new, object_label(ident))
    found = review(ident, old, new)
    return ResourceChange(
        change,
        ident,
        either.api_version,
        either.file,
        moved_from,
        text,
        found.fields,
        found.warnings,
        found.images,
        added,
        removed,
    )


def _plain_secrets(new: Tree, reported: set[Identity]) -> list[Flagged]:
    """Warnings for the new tree's plain Secrets that are not among the reported resources."""
    if not new.plain_secrets:
        return []
    found = []
    for ident, resource in sorted(new.resources.items()):
        if is_secret(ident) and ident not in reported and is_plain_secret(resource.data):
            found.append(Flagged(object_label(ident), ident, plain_secret_warning()))
    for where in new.plain_secrets:
        if where.startswith("<no name>") or "/<no name> " in where:
            found.append(Flagged(f"Secret {where}", None, plain_secret_warning()))
    return found


def compare(
    old: Tree, new: Tree, *, unchanged: int = 0, target: Target | None = None
) -> DiffResult:
    """Match two trees by identity and tell what happens to each resource.

    Objects whose canonical text is equal are never decoded; the others are decoded once for
    their diff and their review (:func:`gitopskit.review.review`).

    Args:
        old: What is there now (the manifests repository).
        new: What would be there (the synthesized output).
        unchanged: Objects known to be unchanged without being in either tree (publish leaves
            files identical on both sides out).
        target: What ``old`` is, for the plan.

    Returns:
        The counts, every resource that is not unchanged (with its diff and review), the
        warnings about the others, and both trees' notes.
    """
    counts: Counter[str] = Counter({change: 0 for change in CHANGES})
    counts["unchanged"] += unchanged
    changes: list[ResourceChange] = []
    for ident in sorted(old.resources.keys() | new.resources.keys()):
        before = old.resources.get(ident)
        after = new.resources.get(ident)
        if before is None:
            change = _change("added", ident, None, after)
        elif after is None:
            change = _change("removed", ident, before, None)
        elif before.text != after.text:
            change = _change("changed", ident, before, after)
        elif before.file != after.file:
            change = ResourceChange("moved", ident, after.api_version, after.file, before.file)
        else:
            counts["unchanged"] += 1
            continue
        counts[change.change] += 1
        changes.append(change)
    summary: dict[str, int] = {k: counts[k] for k in CHANGES}
    extra = _plain_secrets(new, {c.identity for c in changes if c.change != "moved"})
    return DiffResult(
        summary, changes, [*old.notes, *new.notes], target=target, extra_warnings=extra
    )


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
) -> Results:
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
        if not slot.outdir.is_dir():
            raise ConfigError(
                f"{slot.outdir} does not exist",
                hint="run invoke synth first, or drop --no-synth",
            )
    kind = git.classify(against)
    if kind is git.SourceKind.DIRECTORY and ref:
        raise ConfigError(
            f"--ref {ref} names a branch, but {against} is a plain directory, "
            "compared as it stands on disk",
            hint=f"drop --ref, or give a git URL such as file://{Path(against).resolve()}",
        )
    news = [load_output(slot.outdir).tree for slot in slots]
    if kind is git.SourceKind.DIRECTORY:
        shown = against.rstrip("/") or against
        directory = Path(against).expanduser()
        readers = [DirectoryReader(directory, slot.path, label=shown) for slot in slots]
        olds = [load_owned(reader, tolerate_broken=True)[0] for reader in readers]
        return _compared(slots, olds, news, shown, None)
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
            return _compared(slots, [empty] * len(slots), news, label, None)
        commit = repo.fetch(branch)[branch]
        olds = [
            load_owned(
                GitReader(repo, commit, slot.path, label=f"{label}@{branch}"),
                tolerate_broken=True,
            )[0]
            for slot in slots
        ]
    return _compared(slots, olds, news, label, branch)


def _compared(
    slots: list[Slot], olds: list[Tree], news: list[Tree], repository: str, branch: str | None
) -> Results:
    return [
        (
            slot.environment,
            compare(
                old,
                new,
                target=Target(
                    repository, branch, subdir_path(slot.path), slot.environment.name
                ),
            ),
        )
        for slot, old, new in zip(slots, olds, news, strict=True)
    ]


# --- several environments ---------------------------------------------------------------------

Results = list[tuple[Environment, DiffResult]]


def has_changes(results: Results) -> bool:
    """Whether anything changes in any environment (``--exit-code``)."""
    return any(result.has_changes for _, result in results)


def total(results: Results) -> DiffResult:
    """One result holding every environment's resources, warnings and notes, counts added up
    (the target: the first one's repository and branch)."""
    summary = {k: sum(r.summary[k] for _, r in results) for k in results[0][1].summary}
    first = results[0][1].target
    target = Target(first.repository, first.branch) if first is not None else None
    return DiffResult(
        summary,
        [change for _, r in results for change in r.resources],
        [note for _, r in results for note in r.notes],
        [file for _, r in results for file in r.broken],
        target,
        [flagged for _, r in results for flagged in r.extra_warnings],
    )
