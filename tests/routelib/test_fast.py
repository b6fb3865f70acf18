"""Which route library handlers the proxy runs without Lua (proxy/hooks.py): ``route_direct``
(a pass-through function generator, alone or behind the tree's router), ``route_failover``
over pools without ``wait`` or ``stats``, ``route_allfastest`` over pools without ``wait``,
``route_split`` over pools and ``route_zfailover`` over pools without ``stats`` (a FastPlan).
Their replies are tested through the wire by test_routing.py, test_faults.py and
test_zones.py, which cover both paths."""

from __future__ import annotations

import pytest

from mcpframe.config import ConfigSource
from mcpframe.lua.config import ConfigLoader
from mcpframe.protocol import commands as c
from mcpframe.proxy.hooks import FAST, Hooks
from mcpframe.registry import build_registry
from tests.routelib.conftest import config


def test_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    for i in (1, 2, 3):
        monkeypatch.setenv(f"MCP_B{i}", str(21000 + i))
    loaded = ConfigLoader(build_registry()).load(ConfigSource(("routelib",), config("faults.lua")))
    hooks = Hooks(loaded.routes, loaded.tunables, 1)
    router = loaded.routes.hooks[""][c.CMD_MG]
    pools = {spec.backends[0].label: i for i, spec in enumerate(loaded.pools)}
    p1, p2, p3 = pools["b1"], pools["b2"], pools["b3"]

    def plan(key: bytes) -> tuple[list[int], int, bool] | int:
        code = hooks.passthrough_pool_for(router, c.CMD_MG, key)
        if code > FAST:
            return code
        found = hooks.fast_plans[FAST - code]
        return found.pools, found.limit, found.miss, found.fastest

    assert plan(b"fo/x") == ([p1, p2, p3], 3, False, False)
    assert plan(b"focount/x") == ([p1, p2, p3], 2, True, False)
    assert plan(b"fast/x") == ([p1, p2, p3], 3, False, True)
    assert plan(b"fastmiss/x") == ([p1, p2, p3], 3, True, True)
    shuffled = plan(b"shuffled/x")
    assert isinstance(shuffled, tuple) and sorted(shuffled[0]) == sorted([p1, p2, p3])
    assert shuffled[1] == 1
    # route_split: both children at once, B (p2) asked first
    split = hooks.fast_plans[FAST - hooks.passthrough_pool_for(router, c.CMD_MG, b"split/x")]
    assert (split.pools, split.fastest, split.split) == ([p2, p1], True, True)
    # stats, wait, other handlers, no match: in Lua
    for key in (b"fomiss/x", b"fowait/x", b"fastwait/x", b"sync/x", b"zz/x", b"x"):
        assert plan(key) == -1, key


def test_zfailover_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    for i in (1, 2, 3):
        monkeypatch.setenv(f"MCP_B{i}", str(21000 + i))
    loaded = ConfigLoader(build_registry()).load(ConfigSource(("routelib",), config("zones.lua")))
    hooks = Hooks(loaded.routes, loaded.tunables, 1)
    router = loaded.routes.hooks[""][c.CMD_MG]
    pools = {spec.backends[0].label: i for i, spec in enumerate(loaded.pools)}
    for key, miss in ((b"zfn/x", False), (b"zfmiss/x", True)):
        code = hooks.passthrough_pool_for(router, c.CMD_MG, key)
        assert code <= FAST, key
        plan = hooks.fast_plans[FAST - code]
        # the local zone's pool first, then the others (in Lua's table order)
        assert plan.pools[0] == pools["z1"]
        assert sorted(plan.pools[1:]) == sorted([pools["z2"], pools["z3"]])
        assert (plan.zone, plan.fastest, plan.miss) == (True, False, miss)
    # with stats: in Lua
    assert hooks.passthrough_pool_for(router, c.CMD_MG, b"zf/x") == -1


def test_random_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    for i in (1, 2, 3):
        monkeypatch.setenv(f"MCP_B{i}", str(21000 + i))
    loaded = ConfigLoader(build_registry()).load(ConfigSource(("routelib",), config("routing.lua")))
    hooks = Hooks(loaded.routes, loaded.tunables, 1)
    router = loaded.routes.hooks[""][c.CMD_MG]
    code = hooks.passthrough_pool_for(router, c.CMD_MG, b"rand3/x")
    assert code <= FAST
    plan = hooks.fast_plans[FAST - code]
    assert (len(plan.pools), plan.pick, plan.fastest, plan.zone) == (3, True, False, False)
