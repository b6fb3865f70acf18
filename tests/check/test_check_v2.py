"""``mcpframe check CONFIG --key K`` on API v2 configs written by hand: per listener tag and
the commands attached, the router (mode, separators, map with command maps, cmap, default) or
the function generator, each generator's handles down to pools, and where a key goes.

The routes each key takes on tests/configs/v2/router.lua were compared with memcached 1.6.45's
proxy serving the same file (its generators answer ``HD <name>``): every attached command
with the keys below picks the generator ``check`` names, and a request ``check`` says fails
gets no ``HD`` (tests/v2/test_router.py holds the recorded answers)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.check.test_check_cli import check_json, run_check, write
from tests.helpers import ROOT

CONFIGS = ROOT / "tests" / "configs"
ROUTER = str(CONFIGS / "v2" / "router.lua")


def test_routers_and_where_keys_go() -> None:
    done = run_check(ROUTER, "--key", "one|x", "--key", "one/x")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    where = f"({ROUTER}:10)"
    # every router attached is described on its own (they were one "router mcp_router" line)
    assert "  untagged: mg -> router mcp_router\n  untagged: ms -> router mcp_router\n" in out
    tree = out[out.index("\nroute tree\n") :]
    assert (
        "  untagged: mg -> router prefix stop '|'\n"
        f"    prefix one -> funcgen one  {where}\n"
        f"    prefix two -> funcgen two  {where}\n"
        f"    default -> funcgen default  {where}\n"
        "    key one|x: prefix one -> funcgen one\n"
        "    key one/x: default -> funcgen default\n"
    ) in tree
    # [Q] as 1.6.45: stop without mode is not read, the separator stays "/"
    assert "  untagged: ms -> router prefix stop '/'\n" in tree
    assert "  untagged: ma -> router anchor stop ',' start '_'\n" in tree
    assert "  untagged: get -> router anchor stop '__' start '=?='\n" in tree
    # a command map in the map, a cmap, and keys placed per command
    assert (
        "  untagged: gets incr decr touch -> router prefix stop '|'\n"
        "    prefix one -> cmdmap\n"
        f"      gets -> funcgen one gets  {where}\n"
        f"      all -> funcgen one any  {where}\n"
        f"    cmap incr -> funcgen cmap incr  {where}\n"
        f"    default -> funcgen default  {where}\n"
        "    key one|x: gets: prefix one, cmdmap gets -> funcgen one gets\n"
        "    key one|x: incr decr touch: prefix one, cmdmap all -> funcgen one any\n"
        "    key one/x: gets decr touch: default -> funcgen default\n"
        "    key one/x: incr: cmap incr -> funcgen cmap incr\n"
    ) in tree
    assert "  untagged: append -> router prefix stop '/'\n" in tree
    assert "    key one|x: no match and no default: the request fails\n" in tree
    assert "    prefix one -> router (a router's target: its requests fail)\n" in tree
    assert f"  untagged: set -> funcgen errs  ({ROUTER}:53)\n    key one|x: funcgen errs\n" in tree


def test_generators_down_to_pools() -> None:
    config = str(CONFIGS / "v2" / "funcgen.lua")
    env = {**os.environ, "MCP_B1": "21001", "MCP_B2": "21002", "MCP_B3": "21003"}
    done = run_check(config, "--key", "a/b", env=env)
    assert done.returncode == 0, done.stderr
    tree = done.stdout[done.stdout.index("\nroute tree\n") :]
    assert (
        f" -> funcgen units  ({config}:47)\n"
        "    handle 0: pool z1\n"
        "    handle 1: pool z2\n"
        "    handle 2: pool z3\n"
        f"    handle 3: funcgen child  ({config}:24)\n"
        "      handle 0: pool z3\n"
        "    handle 4: the proxy's internal cache\n"
        "    key a/b: funcgen units\n"
        "      z1: b1 127.0.0.1:21001\n"
        "      z2: b2 127.0.0.1:21002\n"
        "      z3: b3 127.0.0.1:21003\n"
    ) in tree
    assert "  untagged: gat -> funcgen anonymous (never made ready: its requests fail)\n" in tree


def test_spec_example_as_json() -> None:
    config = str(CONFIGS / "spec_v2" / "funcgen.lua")
    env = {**os.environ, "SPEC_PORT_A": "21001", "SPEC_PORT_B": "21002"}
    report = check_json(config, "--key", "foo", "--key", "bar", env=env)
    assert report["routelib"] is None
    (tree,) = report["v2"]
    assert tree["tag"] is None and tree["commands"] == "CMD_ANY_STORAGE (19 commands)"
    assert tree["router"] is None and tree["map"] == [] and tree["cmap"] == []
    assert tree["default"] == {
        "handler": "funcgen main_direct",
        "where": f"{config}:17",
        "options": {},
        "children": [
            {"option": "handle 0", "child": "pool main", "name": "main", "pools": ["main"]}
        ],
    }
    # the backend the key lands on through the handle: the pool's, as the pools section says
    by_key = {p["key"]: p["pools"]["main"] for p in report["keys"]}
    for placed in tree["keys"]:
        want = by_key[placed["key"]]
        assert placed["pools"] == {"main": f"{want['label']} {want['host']}:{want['port']}"}


def test_tags_and_v1_routes_beside(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """\
        function mcp_config_pools()
            local b = mcp.backend("b1", "127.0.0.1", 11511)
            return { main = mcp.pool({ b }), other = mcp.pool({ b }) }
        end
        function mcp_config_routes(p)
            local fg = mcp.funcgen_new()
            local h = fg:new_handle(p.other)
            fg:ready({ n = "other", f = function(rctx)
                return function(r) return rctx:enqueue_and_wait(r, h) end
            end })
            local rt = mcp.router_new({ map = { o = fg }, mode = "anchor", start = "/",
                stop = "/" })
            mcp.attach(mcp.CMD_MG, rt, "ro")
            mcp.attach(mcp.CMD_GET, function(r) return p.main(r) end)
        end
        """,
    )
    done = run_check(str(config), "--key", "/o/1", "--key", "/x/1")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"  untagged: get -> {config}:14 (pass-through: pool main)\n" in out
    assert (
        "route tree\n"
        "  tag ro: mg -> router anchor stop '/' start '/'\n"
        f"    prefix o -> funcgen other  ({config}:8)\n"
        "      handle 0: pool other\n"
        "    key /o/1: prefix o -> funcgen other\n"
        "      other: b1 127.0.0.1:11511\n"
        "    key /x/1: no match and no default: the request fails\n"
        "\nkeys\n"
    ) in out


def test_v1_config_has_no_tree(tmp_path: Path) -> None:
    env = {**os.environ, "MCP_TEST_PORT_A": "21001", "MCP_TEST_PORT_B": "21002"}
    report = check_json(str(CONFIGS / "two_backends.lua"), env=env)
    assert report["v2"] is None and report["routelib"] is None
