"""docs/lua-api.md keeps up with the route API, by test: every ``mcp`` function of both VMs,
every constant, every request, response, funcgen and rctx method is documented, and the
page's Lua examples compile (whole configs load)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mcpframe.lua.config import ConfigLoader
from mcpframe.lua.runtime import CONSTANTS, new_runtime
from mcpframe.registry import build_registry

ROOT = Path(__file__).resolve().parent.parent.parent
PAGE = (ROOT / "docs" / "lua-api.md").read_text()
LUA = ROOT / "mcpframe" / "lua"


def defined(source: str, pattern: str) -> list[str]:
    return sorted(set(re.findall(pattern, (LUA / source).read_text(), re.M)))


MCP_FUNCTIONS = defined("mcp_config.lua", r"^function mcp\.(\w+)") + defined(
    "mcp_routes.lua", r"^(?:function mcp\.(\w+)|mcp\.(\w+) = )"
)
MCP_FUNCTIONS += defined("mcp_funcgen.lua", r"^function mcp\.(\w+)")
MCP_FUNCTIONS += defined("mcp_router.lua", r"^function mcp\.(\w+)")
MCP_FUNCTIONS += defined("mcp_inspect.lua", r"^function mcp\.(\w+)")
MCP_FUNCTIONS += defined("mcp_ratelim.lua", r"^ *function mcp\.(\w+)")
MCP_FUNCTIONS += defined("mcp_mutate.lua", r"^function mcp\.(\w+)")
FUNCGEN_METHODS = defined("mcp_funcgen.lua", r"^function FGEN:(\w+)")
RCTX_METHODS = defined("mcp_funcgen.lua", r"^function RCTX:(\w+)")
REQUEST_METHODS = defined("mcp_routes.lua", r"^function Request:(\w+)")
RESPONSE_METHODS = defined("mcp_routes.lua", r"^function Response:(\w+)")


def names(found: list[str] | list[tuple[str, str]]) -> list[str]:
    return sorted({n for item in found for n in ([item] if isinstance(item, str) else item) if n})


def test_the_lists_are_not_empty() -> None:
    assert "attach" in names(MCP_FUNCTIONS) and "await_logerrors" in names(MCP_FUNCTIONS)
    assert "flag_token" in REQUEST_METHODS and "elapsed" in RESPONSE_METHODS


@pytest.mark.parametrize("name", names(MCP_FUNCTIONS))
def test_every_mcp_function_is_documented(name: str) -> None:
    assert f"`mcp.{name}(" in PAGE


def test_the_v2_lists_are_not_empty() -> None:
    assert "funcgen_new" in names(MCP_FUNCTIONS) and "router_new" in names(MCP_FUNCTIONS)
    assert {"ratelim_tbf", "ratelim_global_tbf"} <= set(names(MCP_FUNCTIONS))
    assert {"req_mutator_new", "res_mutator_new"} <= set(names(MCP_FUNCTIONS))
    assert "ready" in FUNCGEN_METHODS
    assert "wait_cond" in RCTX_METHODS


@pytest.mark.parametrize("name", FUNCGEN_METHODS)
def test_every_funcgen_method_is_documented(name: str) -> None:
    assert f"`fgen:{name}(" in PAGE


@pytest.mark.parametrize("name", RCTX_METHODS)
def test_every_rctx_method_is_documented(name: str) -> None:
    assert f"`rctx:{name}(" in PAGE


@pytest.mark.parametrize("name", REQUEST_METHODS)
def test_every_request_method_is_documented(name: str) -> None:
    assert f"`r:{name}(" in PAGE


@pytest.mark.parametrize("name", RESPONSE_METHODS)
def test_every_response_method_is_documented(name: str) -> None:
    assert f"`res:{name}(" in PAGE


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_every_constant_is_documented(name: str) -> None:
    assert re.search(rf"`{name}` -?\d+", PAGE), name


BLOCKS = re.findall(r"```lua\n(.*?)```", PAGE, re.S)


def test_lua_examples_compile() -> None:
    assert BLOCKS
    lua = new_runtime()
    check = lua.execute(b"return function(src) local f, err = load(src) return err end")
    for block in BLOCKS:
        assert check(block.encode()) is None, block


def test_config_examples_load(tmp_path: Path) -> None:
    configs = [b for b in BLOCKS if "function mcp_config_pools" in b]
    assert configs
    for block in configs:
        path = tmp_path / "example.lua"
        path.write_text(block)
        assert ConfigLoader(build_registry()).load(str(path)).named_pools()
