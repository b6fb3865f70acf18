"""Routers whose targets only forward are placed without Lua (proxy/hooks.py RouterPlan): for
every (command, key), the plan must pick the pool that the router's own pick (mcp_router.lua
``route_pick``) leads to, and -1 wherever the request has to run in Lua."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mcpframe.lua.config import ConfigLoader
from mcpframe.protocol import commands as c
from mcpframe.proxy.hooks import Hooks
from mcpframe.registry import build_registry

CONFIG = """
function mcp_config_pools()
    local function pool(i) return mcp.pool({ mcp.backend("b" .. i, "127.0.0.1", 11000 + i) }) end
    return { pool(1), pool(2), pool(3), pool(4), pool(5) }
end

local function forward(p, name)
    local fg = mcp.funcgen_new()
    local h = fg:new_handle(p)
    fg:ready({ n = name, f = function(rctx)
        return function(r) return rctx:enqueue_and_wait(r, h) end
    end })
    return fg
end

local function in_lua(name)
    local fg = mcp.funcgen_new()
    fg:ready({ n = name, f = function(rctx) return function(r) return "HD\\r\\n" end end })
    return fg
end

function mcp_config_routes(p)
    mcp.attach(mcp.CMD_ANY_STORAGE, mcp.router_new({
        mode = "%s", start = "%s", stop = "%s",
        map = {
            a = forward(p[1], "a"),
            lua = in_lua("lua"),
            cmds = { [mcp.CMD_GET] = forward(p[2], "cg"), [mcp.CMD_SET] = in_lua("cs"),
                     [mcp.CMD_ANY_STORAGE] = forward(p[3], "cany") },
            only = { [mcp.CMD_MG] = forward(p[4], "omg") },
        },
        cmap = { [mcp.CMD_DELETE] = forward(p[5], "del"), [mcp.CMD_TOUCH] = in_lua("t") },
        default = forward(p[3], "default"),
    }))
end
"""

KEYS = [
    b"a/x", b"a/", b"/a", b"a", b"lua/x", b"cmds/x", b"only/x", b"zz/x", b"x", b"aa/x",
    b"a|x", b"a||x", b"_a|x", b"_a||x", b"_cmds|y", b"__a|x", b"_only|", b"_lua|z", b"",
    b"_", b"_a", b"a_|x",
]  # fmt: skip
COMMANDS = [c.CMD_GET, c.CMD_SET, c.CMD_MG, c.CMD_DELETE, c.CMD_TOUCH, c.CMD_INCR]


@pytest.mark.parametrize(
    ("mode", "start", "stop"),
    [("prefix", "/", "/"), ("prefix", "/", "||"), ("anchor", "_", "|"), ("anchor", "__", "|")],
)
def test_the_plan_picks_what_the_router_picks(
    tmp_path: Path, mode: str, start: str, stop: str
) -> None:
    path = tmp_path / "routes.lua"
    path.write_text(CONFIG % (mode, start, stop))
    loaded = ConfigLoader(build_registry()).load(str(path))
    vm = loaded.routes
    hooks = Hooks(vm, loaded.tunables, 1)
    router = vm.hooks[""][c.CMD_GET]
    assert hooks.router_plans, "the router was not planned"
    lua_pick = vm.lua.execute(
        b"""
        local state, router = ...
        return function(cmd, key)
            local fg = state.route_pick(router._router, cmd, key)
            if fg == nil then return -1 end
            local p = state.v2.passthrough_pool(fg)
            return p >= 0 and p or -1
        end
        """,
        vm.state,
        router,
    )
    picked = set()
    for cmd, key in itertools.product(COMMANDS, KEYS):
        want = lua_pick(cmd, key)
        assert hooks.passthrough_pool_for(router, cmd, key) == want, (cmd, key)
        picked.add(want)
    assert -1 in picked and len(picked) >= 4  # the cases cover Lua and several pools
