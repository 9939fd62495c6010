"""What invoke itself needs of the project's ``invoke.yaml``, checked before invoke trips on it.

Before every task, invoke maps each key of its configuration to an environment variable
(``gitopskit.environments.dev.values.replicas`` → ``INVOKE_GITOPSKIT_ENVIRONMENTS_DEV_VALUES_
REPLICAS``). A key that is not a string (``80: web``) or two keys that map to one variable
(``a_b`` beside ``a: {b: …}``, or ``A`` beside ``a``) make invoke stop with a traceback, before
any task of ours runs. Free-form environment ``values`` make both easy to write, so the project's
file is read first and such a key is named in one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

#: The project configuration files invoke reads beside ``tasks.py`` that hold YAML.
FILES = ("invoke.yaml", "invoke.yml")


def problem(project_dir: Path) -> str | None:
    """The first key of the project's invoke.yaml that invoke cannot take, as a message, or
    None. A file that does not parse is left to the task that reads it (it says where)."""
    for name in FILES:
        path = project_dir / name
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        found = _problem(data)
        if found is not None:
            return f"{name}: {found}"
    return None


def _problem(data: Any) -> str | None:
    seen: dict[str, list[str]] = {}
    for path in _leaves(data, []):
        bad = next((key for key in path if not isinstance(key, str)), None)
        if bad is not None:
            where = ".".join(map(str, path[: path.index(bad) + 1]))
            if isinstance(bad, bool):
                read = f"a key read as {bad} (YAML reads on, off, yes and no as booleans)"
            elif isinstance(bad, int | float):
                read = f"the key {bad} is a number"
            else:
                read = f"the key {bad!r} is not text"
            return f"{where}: {read}: invoke takes only text keys; quote it"
        variable = "_".join(path).upper()
        if variable in seen:
            return (
                f"{'.'.join(seen[variable])} and {'.'.join(path)}: invoke maps both to the one "
                f"variable INVOKE_{variable}; rename one of them"
            )
        seen[variable] = path
    return None


def _leaves(data: Any, path: list[Any]) -> Iterator[list[Any]]:
    """Every path to a value that is not a mapping, as invoke's environment loader walks them."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, [*path, key])
    elif path:
        yield path
