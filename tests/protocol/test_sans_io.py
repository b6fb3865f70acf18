"""mcpframe.protocol stays sans-I/O: no asyncio, sockets or Lua, nothing from other layers."""

from __future__ import annotations

import ast
from pathlib import Path

import mcpframe.protocol

#: struct: pure byte packing (binary protocol headers), no I/O.
ALLOWED = {"__future__", "collections.abc", "struct", "typing"}
PACKAGE = Path(mcpframe.protocol.__file__).parent


def test_protocol_imports_only_itself_and_pure_stdlib() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert modules
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name in ALLOWED or name.startswith("mcpframe.protocol"), (path.name, name)
