"""A v2 route that only forwards runs without entering Lua, and answers exactly as the same
route run in Lua (spec v2 3.6; docs/performance.md). The config attaches the pass-through
funcgen untagged and the same route with a handle callback (which keeps it in Lua) on the
listener tagged ``lua``."""

from __future__ import annotations

from collections.abc import Callable

from tests.check.test_check_cli import run_check
from tests.helpers import ROOT, Client, Mcpframe, Memcached, free_port
from tests.v2.conftest import CONFIGS

REQUESTS = (
    b"set k1 0 0 2\r\nv1\r\nset k2 0 0 2 noreply\r\nv2\r\nms k3 2 q\r\nv3\r\n"
    b"get k1\r\nget k1 k2 k3 nope\r\ngets nope\r\nmg k2 v\r\nmg nope v q\r\n"
    b"incr k9 1\r\ndelete k1\r\ndelete k1\r\nmn\r\n"
)


def test_forwarding_is_a_pass_through() -> None:
    env = {"MCP_B1": "11211", "MCP_B2": "11212", "PATH": "/usr/bin:/bin"}
    done = run_check(str(CONFIGS / "forward.lua"), env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    routes = done.stdout.split("\nroute tree\n")[0]  # (the tree below names the tags again)
    untagged, tagged = routes.split("tag lua:")
    assert "CMD_ANY_STORAGE (19 commands) -> funcgen forward (pass-through: pool main)" in untagged
    assert "-> funcgen forward\n" in tagged


def test_pass_through_answers_as_lua(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    a, b = memcached_factory(), memcached_factory()
    env = {"MCP_B1": str(a.port), "MCP_B2": str(b.port)}
    lua_port = free_port()
    proxy = mcpframe_factory(
        "--config", str(CONFIGS / "forward.lua"), "--listen", f"127.0.0.1:{lua_port}:lua", env=env
    )
    replies = []
    for addr in (proxy.addr, ("127.0.0.1", lua_port)):
        c = Client(addr)
        c.send(REQUESTS)
        replies.append(c.read_until(b"MN\r\n"))
    assert replies[0] == replies[1], replies
    assert replies[0] == (
        b"STORED\r\nVALUE k1 0 2\r\nv1\r\nEND\r\n"
        b"VALUE k1 0 2\r\nv1\r\nVALUE k2 0 2\r\nv2\r\nVALUE k3 0 2\r\nv3\r\nEND\r\n"
        b"END\r\nVA 2\r\nv2\r\n"
        b"NOT_FOUND\r\nDELETED\r\nNOT_FOUND\r\nMN\r\n"
    )
