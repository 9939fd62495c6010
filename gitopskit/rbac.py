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


def _atoms(rule: Mapping[str, Any]) -> Iterator[tuple[str, ...]]:
    """What a rule allows, one (group, resource, verb, name) or (url, verb) at a time."""
    verbs = _strings(rule, "verbs")
    for url, verb in product(_strings(rule, "nonResourceURLs"), verbs):
        yield ("url", url, verb)
    names = _strings(rule, "resourceNames") or ["*"]
    groups, resources = _strings(rule, "apiGroups"), _strings(rule, "resources")
    for group, resource, verb, name in product(groups, resources, verbs, names):
        yield ("resource", group, resource, verb, name)


def _allows(rule: Mapping[str, Any], atom: tuple[str, ...]) -> bool:
    verbs = _strings(rule, "verbs")
    verb = atom[2] if atom[0] == "url" else atom[3]
    if "*" not in verbs and verb not in verbs:
        return False
    if atom[0] == "url":
        return any(
            url == atom[1] or (url.endswith("*") and atom[1].startswith(url[:-1]))
            for url in _strings(rule, "nonResourceURLs")
        )
    _, group, resource, _, name = atom
    groups, resources = _strings(rule, "apiGroups"), _strings(rule, "resources")
    names = _strings(rule, "resourceNames")
    return (
        ("*" in groups or group in groups)
        and ("*" in resources or resource in resources)
        and (not names or name in names)
    )


def _rule_text(rule: Mapping[str, Any]) -> str:
    verbs = ", ".join(_strings(rule, "verbs")) or "no verbs"
    urls = _strings(rule, "nonResourceURLs")
    if urls:
        return f"{verbs} on {', '.join(urls)}"
    groups = _strings(rule, "apiGroups")
    what = ", ".join(
        resource if group == "" else f"{resource}.{group}"
        for group, resource in product(groups, _strings(rule, "resources"))
    )
    names = _strings(rule, "resourceNames")
    return f"{verbs} on {what or 'no resources'}" + (f" named {', '.join(names)}" if names else "")


def _wildcard(rule: Mapping[str, Any]) -> bool:
    keys = ("verbs", "apiGroups", "resources", "nonResourceURLs")
    return any(v == "*" or v.endswith("/*") for key in keys for v in _strings(rule, key))


def _rules(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> Iterator[Finding]:
    before = old.get("rules") if old is not None else None
    after = new.get("rules")
    old_rules = [r for r in before if isinstance(r, dict)] if isinstance(before, list) else []
    for index, rule in enumerate(after if isinstance(after, list) else []):
        if not isinstance(rule, dict):
            continue
        if all(any(_allows(o, atom) for o in old_rules) for atom in _atoms(rule)):
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
