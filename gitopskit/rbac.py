"""RBAC that grows: rules and subjects a Role, ClusterRole or binding grants that it did not.

A rule is compared with every rule before it as the set of what it allows, one (API group,
resource, verb, name) or (URL, verb) at a time, so a rule split in two, reordered or narrowed is
no growth, while a new verb, resource, group or a dropped ``resourceNames`` is. Wildcards (``*``
in verbs, resources or groups, ``/*`` URLs) and subjects that stand for everyone
(``system:authenticated``…) are called out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import product
from typing import Any, NamedTuple

from gitopskit.tree import Identity

RBAC_GROUP = "rbac.authorization.k8s.io"


class Finding(NamedTuple):
    """``(code, path, message)``: ``rbac-grows`` or ``rbac-wildcard``."""

    code: str
    path: str
    message: str


_EVERYONE = {
    "system:authenticated": "every authenticated user",
    "system:unauthenticated": "every anonymous request",
    "system:serviceaccounts": "every service account",
}


def _strings(rule: Mapping[str, Any], key: str) -> list[str]:
    values = rule.get(key)
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


#: The most (group, resource, verb, name) combinations a rule is compared by; a larger rule
#: counts as grown unless an identical rule was there (a bound on a hostile manifest's cost).
MAX_ATOMS = 20_000
_LISTED = 6


class _Rule(NamedTuple):
    """A rule's lists as sets (``names`` empty: every name)."""

    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]
    urls: frozenset[str]

    @classmethod
    def of(cls, rule: Mapping[str, Any]) -> _Rule:
        return cls(*(frozenset(_strings(rule, key)) for key in _KEYS))

    def size(self) -> int:
        resource_atoms = len(self.groups) * len(self.resources) * max(len(self.names), 1)
        return len(self.verbs) * (resource_atoms + len(self.urls))

    def atoms(self) -> Iterator[tuple[str, ...]]:
        """What it allows, one (group, resource, verb, name) or (url, verb) at a time."""
        for url, verb in product(sorted(self.urls), sorted(self.verbs)):
            yield ("url", url, verb)
        names = sorted(self.names) or ["*"]
        for atom in product(sorted(self.groups), sorted(self.resources), sorted(self.verbs), names):
            yield ("resource", *atom)

    def allows(self, atom: tuple[str, ...]) -> bool:
        verb = atom[2] if atom[0] == "url" else atom[3]
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if atom[0] == "url":
            return any(
                url == atom[1] or (url.endswith("*") and atom[1].startswith(url[:-1]))
                for url in self.urls
            )
        _, group, resource, _, name = atom
        return (
            ("*" in self.groups or group in self.groups)
            and ("*" in self.resources or resource in self.resources or _any_subresource(
                resource, self.resources))
            and (not self.names or name in self.names)
        )


_KEYS = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")


def _covered(rule: _Rule, before: list[_Rule]) -> bool:
    """Whether the rules ``before`` allowed everything ``rule`` allows."""
    if rule.size() > MAX_ATOMS:
        return rule in before
    return all(any(old.allows(atom) for old in before) for atom in rule.atoms())


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def _rule_text(rule: Mapping[str, Any]) -> str:
    verbs = _listing(_strings(rule, "verbs")) or "no verbs"
    urls = _strings(rule, "nonResourceURLs")
    if urls:
        return f"{verbs} on {_listing(urls)}"
    groups, resources = _strings(rule, "apiGroups")[:_LISTED], _strings(rule, "resources")
    what = [r if g == "" else f"{r}.{g}" for g, r in product(groups, resources[:_LISTED])]
    names = _strings(rule, "resourceNames")
    return f"{verbs} on {_listing(what) or 'no resources'}" + (
        f" named {_listing(names)}" if names else ""
    )


def _any_subresource(resource: str, resources: frozenset[str]) -> bool:
    """``*/scale`` allows the ``scale`` subresource of every resource, as the API server's RBAC
    reads it; ``pods/*`` is no pattern there, only a name that matches nothing."""
    _, slash, subresource = resource.partition("/")
    return bool(slash) and f"*/{subresource}" in resources


def _wildcard(rule: Mapping[str, Any]) -> bool:
    """``*`` in verbs, groups or resources, a ``*/subresource``, or a URL ending in ``*``: the
    patterns the API server's RBAC matches (``pods/*`` is not one)."""
    return any(
        v == "*"
        for key in ("verbs", "apiGroups", "resources", "nonResourceURLs")
        for v in _strings(rule, key)
    ) or any(v.startswith("*/") for v in _strings(rule, "resources")) or any(
        v.endswith("*") for v in _strings(rule, "nonResourceURLs")
    )


def _rules(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> Iterator[Finding]:
    before = old.get("rules") if old is not None else None
    after = new.get("rules")
    old_rules = (
        [_Rule.of(r) for r in before if isinstance(r, dict)] if isinstance(before, list) else []
    )
    for index, rule in enumerate(after if isinstance(after, list) else []):
        if not isinstance(rule, dict) or _covered(_Rule.of(rule), old_rules):
            continue
        path = f"rules[{index}]"
        if _wildcard(rule):
            yield Finding(
                "rbac-wildcard",
                path,
                f"grants {_rule_text(rule)}: a wildcard, which also covers what is added later",
            )
        else:
            yield Finding("rbac-grows", path, f"grants {_rule_text(rule)}")


def _subject_key(subject: Mapping[str, Any]) -> tuple[str, str, str]:
    return (
        str(subject.get("kind", "")),
        str(subject.get("namespace") or ""),
        str(subject.get("name", "")),
    )


def _subjects(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> Iterator[Finding]:
    before = old.get("subjects") if old is not None else None
    known = (
        {_subject_key(s) for s in before if isinstance(s, dict)}
        if isinstance(before, list)
        else set()
    )
    role = new.get("roleRef")
    role_text = (
        f"{role.get('kind', 'role')} {role.get('name', '?')}" if isinstance(role, dict) else "?"
    )
    after = new.get("subjects")
    for index, subject in enumerate(after if isinstance(after, list) else []):
        if not isinstance(subject, dict) or _subject_key(subject) in known:
            continue
        kind, namespace, name = _subject_key(subject)
        who = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
        everyone = _EVERYONE.get(name) or (
            f"every service account of {name.split(':')[2]}"
            if name.startswith("system:serviceaccounts:")
            else None
        )
        path = f"subjects[{index}]"
        if kind == "Group" and everyone:
            yield Finding("rbac-wildcard", path, f"binds {everyone} ({who}) to {role_text}")
        else:
            yield Finding("rbac-grows", path, f"binds {who} to {role_text}")


def growth(
    identity: Identity, old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> Iterator[Finding]:
    """What an RBAC object grants now that it did not (``old`` None: it is new)."""
    if identity.group != RBAC_GROUP:
        return
    if identity.kind in ("Role", "ClusterRole"):
        yield from _rules(old, new)
    elif identity.kind in ("RoleBinding", "ClusterRoleBinding"):
        yield from _subjects(old, new)
