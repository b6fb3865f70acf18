"""Docs and tests keep up with the hookspecs and record types, by test.

Every hookspec must be documented in docs/plugins.md with its exact signature and have a test
named after it here; every record type's constructor signature must be in the docs; the example
plugins in the hookspec docstrings and in the docs must run.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from mcpframe import hookspecs
from mcpframe import types as mtypes
from mcpframe.registry import Registry, build_registry
from mcpframe.testing import (
    check_distribution,
    check_hasher,
    check_key_filter,
    check_route_handler,
)
from tests.plugins.support import manager

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "plugins.md").read_text()
HOOKSPECS = {
    name: fn
    for name, fn in vars(hookspecs).items()
    if callable(fn) and hasattr(fn, f"{hookspecs.PROJECT_NAME}_spec")
}
RECORDS = [
    mtypes.Distribution,
    mtypes.Hasher,
    mtypes.KeyFilter,
    mtypes.Logger,
    mtypes.RouteHandler,
    mtypes.BackendInfo,
]


def hook_signature(fn: Callable[..., object]) -> str:
    """``def name(arg: T, ...) -> R`` as written in the source (annotations are strings)."""
    params = [
        f"{p.name}: {p.annotation}" if p.annotation is not p.empty else p.name
        for p in inspect.signature(fn).parameters.values()
    ]
    return f"def {fn.__name__}({', '.join(params)}) -> {fn.__annotations__['return']}"


def record_signature(cls: type) -> str:
    fields = []
    for field in dataclasses.fields(cls):
        text = f"{field.name}: {field.type}"
        if field.default is not dataclasses.MISSING:
            text += f" = {field.default!r}"
        fields.append(text)
    return f"{cls.__name__}({', '.join(fields)})"


def test_hookspecs_found() -> None:
    assert set(HOOKSPECS) == {
        "mcpframe_distributions",
        "mcpframe_hashers",
        "mcpframe_key_filters",
        "mcpframe_loggers",
        "mcpframe_route_handlers",
    }
    assert {k.hook_name for k in mtypes.PluginKind} == set(HOOKSPECS)


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_every_hookspec_documented_with_exact_signature(name: str) -> None:
    signature = hook_signature(HOOKSPECS[name])
    assert f"```python\n{signature}\n```" in DOCS, f"docs/plugins.md lacks: {signature}"
    assert f"### `{name}`" in DOCS


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_every_hookspec_has_a_test_named_after_it(name: str) -> None:
    test_names = {
        node.name
        for path in Path(__file__).parent.glob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
    }
    assert any(t.startswith(f"test_{name}") for t in test_names), (
        f"no test_{name}* in tests/plugins"
    )


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_every_record_type_documented_with_exact_signature(cls: type) -> None:
    signature = record_signature(cls)
    assert f"```python\n{signature}\n```" in DOCS, f"docs/plugins.md lacks: {signature}"


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_every_hookspec_docstring_has_example_and_return(name: str) -> None:
    doc = HOOKSPECS[name].__doc__ or ""
    assert "Example" in doc and "@hookimpl" in doc and f"def {name}():" in doc
    assert ":return:" in doc


# --- the example plugins run ------------------------------------------------------------------


def docstring_example(name: str, intro: str = "Example") -> str:
    """The code block following the ``<intro> ...::`` line in a hookspec's docstring."""
    doc = inspect.getdoc(HOOKSPECS[name]) or ""
    lines = doc.splitlines()
    # The intro may wrap: the block starts after the first line ending in "::" from there on.
    first = next(i for i, line in enumerate(lines) if line.startswith(intro))
    start = next(i for i in range(first, len(lines)) if lines[i].endswith("::"))
    block = []
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block))


def registry_with_example(code: str, module_name: str, file: Path | None = None) -> Registry:
    module = types.ModuleType(module_name)
    if file is not None:  # where the example thinks it lives, for files read beside it
        module.__file__ = str(file)
    exec(compile(code, module_name, "exec"), module.__dict__)
    pm = manager()
    pm.register(module, name=module_name)
    pm.check_pending()
    reg = build_registry(pm)
    assert reg.failed == []
    return reg


def test_mcpframe_distributions_docstring_example() -> None:
    reg = registry_with_example(docstring_example("mcpframe_distributions"), "mcpframe_modulo")
    check_distribution(reg.distributions["modulo"], consistent=False)


def test_mcpframe_hashers_docstring_example() -> None:
    reg = registry_with_example(docstring_example("mcpframe_hashers"), "mcpframe_crc32")
    assert reg.hashers["crc32"].hash(b"foo", 0) == 0x8C736521
    check_hasher(reg.hashers["crc32"])


def test_mcpframe_key_filters_docstring_example() -> None:
    reg = registry_with_example(docstring_example("mcpframe_key_filters"), "mcpframe_prefix")
    assert reg.key_filters["prefix"].build(b"::")(b"user:42") == b"user"
    check_key_filter(reg.key_filters["prefix"], b"::")


def test_mcpframe_loggers_docstring_example() -> None:
    reg = registry_with_example(docstring_example("mcpframe_loggers"), "mcpframe_counter")
    sink = reg.loggers["counter"].build("")
    for kind in ("proxy_error", "proxy_error", "proxy_req"):
        sink.emit({"ts": 1.0, "type": kind, "msg": ""})
    sink.close()
    assert dict(sink.counts) == {"proxy_error": 2, "proxy_req": 1}  # type: ignore[attr-defined]


def test_mcpframe_route_handlers_docstring_example(tmp_path: Path) -> None:
    lua = docstring_example("mcpframe_route_handlers", "where ``route_first.lua`` holds")
    (tmp_path / "route_first.lua").write_text(lua)
    reg = registry_with_example(
        docstring_example("mcpframe_route_handlers"),
        "mcpframe_first",
        tmp_path / "mcpframe_first.py",
    )
    first = reg.route_handlers["first"]
    assert (first.lua, first.chunkname) == (lua, str(tmp_path / "route_first.lua"))
    assert first.description == "ask the first child only"
    check_route_handler(first, {"children": ["main"]})


def test_docs_example_plugin_runs() -> None:
    blocks = re.findall(r"```python\n(# mcpframe_\w+\.py\n.*?)```", DOCS, re.DOTALL)
    assert blocks, "docs/plugins.md has no example plugin module"
    for block in blocks:
        reg = registry_with_example(block, "docs_example")
        check_hasher(reg.hashers["crc32"])
        check_distribution(reg.distributions["modulo"], consistent=False)


def test_docs_name_every_env_switch_and_builtin() -> None:
    from mcpframe import plugins

    for var in (plugins.ENV_PLUGINS, plugins.ENV_DISABLE_PLUGINS, plugins.ENV_TRACE_PLUGINS):
        assert f"`{var}=" in DOCS
    assert plugins.NOT_INSTALLED_MESSAGE in DOCS
    for path in (ROOT / "mcpframe" / "default_plugins").glob("*.py"):
        if path.stem != "__init__":
            assert f"| `{path.stem}` |" in DOCS, path.stem
