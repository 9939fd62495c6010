"""Every problem of an object against a JSON schema, in words, in the order of the document.

The fast check (compiled by ``fastjsonschema``) stops at the first violation. Only an object
that fails it comes here, where the ``jsonschema`` library lists all of them; each becomes an
:class:`Issue`: the JSON path of the field and what is wrong with it, with an unknown field
(``additionalProperties: false``) told apart, since for custom resources that is a warning
unless validation is strict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError as SchemaViolation

MAX_ISSUES = 20
"""At most this many issues of one object are listed."""

_SHOWN_VALUE = 40
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


@dataclass(frozen=True)
class Issue:
    """One problem of an object.

    Attributes:
        path: JSON path of the field, e.g. ``spec.template.spec.containers[0].portz``; empty
            for the object itself.
        message: What is wrong with it.
        unknown_field: The field is not in the schema (``additionalProperties: false``).
    """

    path: str
    message: str
    unknown_field: bool = False


def json_path(parts: Iterable[str | int]) -> str:
    """``["spec", "containers", 0, "name"]`` → ``spec.containers[0].name``."""
    out = ""
    for part in parts:
        if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def issues(schema: dict[str, Any], obj: Any) -> list[Issue]:
    """Every problem of ``obj`` against ``schema`` (draft 7), in document order (callers show
    :data:`MAX_ISSUES` of them)."""
    validator = jsonschema.Draft7Validator(schema)
    found: list[tuple[tuple[int, ...], Issue]] = []
    for violation in validator.iter_errors(obj):
        for issue, where in _explain(violation):
            found.append((_document_order(obj, where), issue))
    found.sort(key=lambda pair: pair[0])
    return list(dict.fromkeys(issue for _, issue in found))  # two rules may say the same


def _explain(violation: SchemaViolation) -> Iterator[tuple[Issue, list[str | int]]]:
    where = list(violation.absolute_path)
    instance = violation.instance
    rule = violation.validator
    unknown = rule == "additionalProperties" and violation.validator_value is False
    if unknown and isinstance(instance, dict):
        schema = violation.schema if isinstance(violation.schema, dict) else {}
        known = set(schema.get("properties", {}))
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        for key in instance:
            if key not in known and not any(p.search(str(key)) for p in patterns):
                field = [*where, str(key)]
                yield Issue(json_path(field), "unknown field", True), field
        return
    expected: Any = violation.validator_value
    if rule == "required" and isinstance(instance, dict):
        for name in expected:
            if name not in instance:
                field = [*where, str(name)]
                yield Issue(json_path(field), "required field missing"), field
        return
    yield Issue(json_path(where), _message(violation)), where


def _message(violation: SchemaViolation) -> str:
    rule = violation.validator
    value = violation.instance
    expected: Any = violation.validator_value
    if rule == "type":
        return f"must be {_types(expected)}, not {_value(value)}"
    if rule in ("oneOf", "anyOf"):
        options = expected
        types = [o.get("type") for o in options if isinstance(o, dict) and set(o) == {"type"}]
        if len(types) == len(options):
            flat = [t for ts in types for t in (ts if isinstance(ts, list) else [ts])]
            return f"must be {_types(flat)}, not {_value(value)}"
    if rule == "enum":
        choices = ", ".join(_short(json.dumps(c)) for c in expected if c is not None)
        return f"must be one of {choices}, not {_value(value)}"
    message = str(violation.message)
    shown = repr(value)
    if len(shown) > _SHOWN_VALUE:
        message = message.replace(shown, _short(shown))
    return message


def _types(names: Any) -> str:
    listed = [names] if isinstance(names, str) else list(names)
    words = [_TYPE_NAMES.get(n, n) for n in dict.fromkeys(listed) if n != "null"]
    return " or ".join(words) or "null"


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, str):
        return f"the string {_short(json.dumps(value))}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return _short(repr(value))


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN_VALUE else text[: _SHOWN_VALUE - 1] + "…"


def _document_order(obj: Any, where: list[str | int]) -> tuple[int, ...]:
    """Where ``where`` is in ``obj``, as the positions of its keys and indices: sorting by it
    lists problems in the order of the document."""
    order: list[int] = []
    node = obj
    for part in where:
        if isinstance(node, dict):
            keys = list(node)
            index = keys.index(part) if part in node else len(keys)
            order.append(index)
            node = node.get(part) if isinstance(part, str) else None
        elif isinstance(node, list) and isinstance(part, int):
            order.append(part)
            node = node[part] if 0 <= part < len(node) else None
        else:
            order.append(0)
            node = None
    return tuple(order)
