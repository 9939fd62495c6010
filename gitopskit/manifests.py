"""Reading Kubernetes manifests the way Kubernetes reads them.

Kubernetes reads YAML 1.1 (``on``/``yes``/``no`` are booleans, ``0644`` is octal) and keeps
timestamps as strings. PyYAML's libyaml-backed ``CSafeLoader`` is YAML 1.1 by nature and the
fastest loader among our dependencies (see benchmarks/), so it is the one used, and its presence
is checked at run time rather than silently falling back to pure Python.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitopskit.errors import ManifestError

MANIFEST_SUFFIXES = (".yaml", ".yml")
_TOP_LEVEL_KIND = re.compile(r"^kind:[ \t]*(\S+)[ \t]*$", re.MULTILINE)


def _require_libyaml() -> type[yaml.CSafeLoader]:
    if not getattr(yaml, "__with_libyaml__", False):
        raise ManifestError(
            "PyYAML was installed without libyaml, so YAML would load in slow pure Python",
            hint="reinstall PyYAML from a wheel: pip install --force-reinstall PyYAML",
        )
    return yaml.CSafeLoader


class KubeLoader(_require_libyaml()):  # type: ignore[misc]
    """CSafeLoader with timestamps kept as strings, as the Kubernetes API server keeps them."""


def _construct_str(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


KubeLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_str)
KubeLoader.add_constructor("tag:yaml.org,2002:value", _construct_str)


@dataclass(frozen=True)
class Document:
    """One YAML document of a file.

    Attributes:
        data: What the document holds.
        file: The file's path as shown to the user.
        line: The 1-based line where the document starts.
    """

    data: Any
    file: str
    line: int

    @property
    def is_object(self) -> bool:
        """Whether it looks like a Kubernetes object (see :func:`is_object`)."""
        return is_object(self.data)

    def describe(self) -> str:
        """``apiVersion kind namespace/name`` for messages."""
        return describe(self.data)


def is_object(data: Any) -> bool:
    """Whether ``data`` looks like a Kubernetes object: a mapping with apiVersion and kind."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("apiVersion"), str)
        and isinstance(data.get("kind"), str)
    )


def describe(obj: dict[str, Any]) -> str:
    """Name an object in messages: ``apps/v1 Deployment shop/web``."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name", "<no name>")
    namespace = metadata.get("namespace")
    where = f"{namespace}/{name}" if namespace else str(name)
    return f"{obj.get('apiVersion', '?')} {obj.get('kind', '?')} {where}"


def load_documents(text: str | bytes, file: str) -> Iterator[Document]:
    """Parse every document of a YAML stream, empty ones skipped.

    Args:
        text: The YAML.
        file: The name to show in messages.

    Raises:
        ManifestError: A syntax error, naming the file and line.
    """
    loader = KubeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            data = loader.construct_document(node)
            if data is not None:
                yield Document(data, file, line)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        problem = error.problem or error.context or "invalid YAML"
        raise ManifestError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as error:
        raise ManifestError(f"{file}: YAML error: {error}") from None
    finally:
        loader.dispose()


def load_file(path: Path, display: str | None = None) -> list[Document]:
    """Every non-empty document of one file.

    Raises:
        ManifestError: The file cannot be read or parsed.
    """
    name = display or str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ManifestError(f"{name}: cannot read: {error.strerror}") from None
    return list(load_documents(data, name))


def manifest_files(root: Path) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` file under ``root``, sorted, hidden directories skipped."""
    found = [
        path
        for path in root.rglob("*")
        if path.suffix in MANIFEST_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts[:-1])
    ]
    return sorted(found)


def count_kinds(files: Iterable[Path]) -> Counter[str]:
    """Objects per kind without parsing: a top-level ``kind:`` starts at column 0, where no
    nested or block-scalar line can. For counts only; anything that needs the objects parses."""
    kinds: Counter[str] = Counter()
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        kinds.update(m.group(1).strip("'\"") for m in _TOP_LEVEL_KIND.finditer(text))
    return kinds
