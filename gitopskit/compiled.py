"""JSON schemas compiled to Python once, and kept on disk.

Validating thousands of objects is only cheap when each schema is compiled once:
``fastjsonschema`` turns a schema into Python code, and the compiled code object itself is kept
on disk (``marshal``), not the source: byte-compiling a megabyte of generated Python costs more
than validating thousands of objects, and ``PYTHONDONTWRITEBYTECODE`` would stop Python from
caching it for us.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import os
import re
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema

CheckFunction = Callable[[Any], Any]
"""Raises ``fastjsonschema.JsonSchemaValueException`` at the first violation."""


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gitopskit/schemas`` (default ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitopskit" / "schemas"


def code_key() -> str:
    """What compiled code depends on besides the schema: fastjsonschema and Python's bytecode."""
    return f"{fastjsonschema.VERSION}-{importlib.util.MAGIC_NUMBER.hex()}"


def schema_digest(schema: dict[str, Any]) -> str:
    """A name for a schema's compiled code that changes whenever the schema does."""
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class CompiledCache:
    """Compiled checks in one directory, by name.

    Args:
        directory: Where the code objects are kept (made when first written).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        """The file of the check named ``name``."""
        slug = re.sub(r"[^A-Za-z0-9]+", "_", name).lower()
        return self.directory / f"check_{slug}.marshal"

    def load(self, name: str) -> CheckFunction | None:
        """The cached check, or None when there is none (or it cannot be read)."""
        try:
            code = marshal.loads(self.path(name).read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if not isinstance(code, types.CodeType):
            return None
        return _function_from(code)

    def compile(self, name: str, schema: dict[str, Any], label: str) -> CheckFunction:
        """Compile ``schema``, keep the code as ``name``, and return the check.

        Args:
            name: Its name in the cache.
            schema: A JSON schema (draft 7).
            label: Names the code in tracebacks.
        """
        source = fastjsonschema.compile_to_code(schema, use_formats=False, use_default=False)
        code = compile(source, f"<schema {label}>", "exec")
        path = self.path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written whole, then renamed: a concurrent run never reads a half-written file.
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as out:
                out.write(marshal.dumps(code))
            os.replace(out.name, path)
        except OSError:
            pass  # no writable cache: compile again next run
        return _function_from(code)

    def get(self, name: str, schema: Callable[[], dict[str, Any]], label: str) -> CheckFunction:
        """The cached check ``name``, compiled from ``schema()`` first if need be."""
        return self.load(name) or self.compile(name, schema(), label)


def _function_from(code: types.CodeType) -> CheckFunction:
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    check: CheckFunction = namespace["validate"]
    return check
