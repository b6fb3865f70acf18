"""Imports point one way (DESIGN.md): cli -> proxy -> lua -> (config, registry...) -> cache ->
protocol, and the package root imports no layer.

Every ``import`` in every module counts, at any depth: function-level imports and those under
``if TYPE_CHECKING`` too (a type-only arrow the wrong way is still a circle in the design).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mcpframe

PACKAGE = Path(mcpframe.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))

#: Layers from the bottom up: a module may import its own layer and the ones below it.
#: ``base`` holds what every layer shares: the config records, plugin machinery, placement,
#: events, errors (and the package root, which other modules import for its version).
LAYERS = ("protocol", "cache", "base", "lua", "proxy", "cli")
TOP = frozenset({"cli", "check_cli", "memcached_cli", "plugins_cli", "__main__", "testing"})
#: protocol/ is sans-I/O: besides itself, only these standard modules.
#: struct and binascii: pure byte packing and codecs (binary headers, base64 keys), no I/O.
#: mypy_extensions is not stdlib but is as inert: its ``i64`` is a plain ``int`` when
#: interpreted and a machine integer when mypyc compiles the module (the reply parser's scans).
PROTOCOL_STDLIB = {
    "__future__",
    "binascii",
    "collections.abc",
    "struct",
    "typing",
    "mypy_extensions",
}


def layer_of(module: str) -> str:
    """The layer of a dotted module name inside mcpframe."""
    parts = module.split(".")[1:]
    if not parts:
        return "base"
    if parts[0] in ("protocol", "cache", "lua", "proxy"):
        return parts[0]
    return "cli" if parts[0] in TOP else "base"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of everything ``path`` imports, relative imports resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], base]).rstrip(".")
            found.append((node.lineno, base))
            if base == "mcpframe" or base.startswith("mcpframe."):
                # `from mcpframe import cli` imports a module, not just a name of the package.
                for alias in node.names:
                    sub = PACKAGE.parent / base.replace(".", "/") / alias.name
                    if sub.is_dir() or sub.with_suffix(".py").exists():
                        found.append((node.lineno, f"{base}.{alias.name}"))
    return found


def test_every_layer_is_classified() -> None:
    assert {layer_of(module_name(p)) for p in MODULES} == set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    name = module_name(path)
    mine = LAYERS.index(layer_of(name))
    for line, target in imports(path):
        if target != "mcpframe" and not target.startswith("mcpframe."):
            continue
        theirs = LAYERS.index(layer_of(target))
        where = f"{path.relative_to(PACKAGE)}:{line} imports {target}"
        assert theirs <= mine, f"{where}: {layer_of(name)} may not import {layer_of(target)}"
        # cache/ and protocol/ are sans-I/O and stand alone (cache may use protocol).
        if layer_of(name) in ("protocol", "cache"):
            assert layer_of(target) != "base", f"{where}: {layer_of(name)} imports nothing else"


def test_the_package_root_imports_no_layer() -> None:
    for line, target in imports(PACKAGE / "__init__.py"):
        if target.startswith("mcpframe."):
            assert layer_of(target) == "base", f"mcpframe/__init__.py:{line} imports {target}"


def test_protocol_imports_only_itself_and_pure_stdlib() -> None:
    modules = sorted((PACKAGE / "protocol").glob("*.py"))
    assert modules
    for path in modules:
        for _, name in imports(path):
            assert name in PROTOCOL_STDLIB or name.startswith("mcpframe.protocol"), (
                path.name,
                name,
            )
