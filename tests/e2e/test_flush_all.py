"""``flush_all`` with a config loaded: refused by default, or sent to every backend of the pools
the config names with ``mcp.broadcast`` (never ``OK`` for a flush the backends did not do)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mcpframe.errors import ConfigError
from mcpframe.proxy.app import load_config
from mcpframe.registry import build_registry
from tests.helpers import Client, Mcpframe, Memcached

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
#: spec 5.6 vectors, two backends: /test/b lands on the first, /test/a on the second.
KEYS = (b"/test/b", b"/test/a")
BROADCAST = """
function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", os.getenv("MCP_TEST_PORT_A"))
    local b = mcp.backend("b", "127.0.0.1", os.getenv("MCP_TEST_PORT_B"))
    return { main = mcp.pool({ a, b }), backup = mcp.pool({ b }) }
end

function mcp_config_routes(pools)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r) return pools.main(r) end)
    mcp.broadcast(mcp.CMD_FLUSH_ALL, { pools.main, pools.backup })
end
"""


def start(
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
    config: Path,
) -> tuple[Memcached, Memcached, Client]:
    a, b = memcached_factory(), memcached_factory()
    env = {"MCP_TEST_PORT_A": str(a.port), "MCP_TEST_PORT_B": str(b.port)}
    proxy = mcpframe_factory("--config", str(config), env=env)
    c = Client(proxy.addr)
    for key in KEYS:
        c.send(b"set " + key + b" 0 0 1\r\nx\r\n")
        assert c.readline() == b"STORED\r\n"
    return a, b, c


def held(backend: Memcached, key: bytes) -> bool:
    direct = Client(backend.addr)
    try:
        direct.send(b"get " + key + b"\r\n")
        return direct.read_until(b"END\r\n") != b"END\r\n"
    finally:
        direct.close()


def test_flush_all_is_refused_and_the_items_remain(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    a, b, c = start(memcached_factory, mcpframe_factory, CONFIGS / "two_backends.lua")
    refused = b"SERVER_ERROR flush_all is not forwarded by this proxy\r\n"
    c.send(b"flush_all\r\nflush_all 10\r\nflush_all noreply\r\nmn\r\n")
    assert c.read_until(b"MN\r\n") == refused * 3 + b"MN\r\n"
    assert held(a, KEYS[0]) and held(b, KEYS[1])
    c.send(b"get " + b" ".join(KEYS) + b"\r\n")
    assert c.read_until(b"END\r\n").count(b"VALUE") == 2


def test_broadcast_flushes_every_backend_of_the_pools(
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
    tmp_path: Path,
) -> None:
    config = tmp_path / "broadcast.lua"
    config.write_text(BROADCAST)
    a, b, c = start(memcached_factory, mcpframe_factory, config)
    # A delay goes along: the items stay until then.
    c.send(b"flush_all 100\r\n")
    assert c.readline() == b"OK\r\n"
    assert held(a, KEYS[0]) and held(b, KEYS[1])
    c.send(b"flush_all\r\n")
    assert c.readline() == b"OK\r\n"
    assert not held(a, KEYS[0]) and not held(b, KEYS[1])
    c.send(b"get " + b" ".join(KEYS) + b"\r\n")
    assert c.read_until(b"END\r\n") == b"END\r\n"
    # noreply: nothing back; a backend's error lines but SERVER_ERROR stay hidden too.
    c.send(b"flush_all noreply\r\nflush_all x noreply\r\nflush_all x\r\nmn\r\n")
    assert c.read_until(b"MN\r\n") == b"CLIENT_ERROR invalid exptime argument\r\nMN\r\n"
    # A dead backend: its failure is the answer, and the connection stays.
    b.stop()
    c.send(b"flush_all\r\nmn\r\n")
    assert c.read_until(b"MN\r\n") == b"SERVER_ERROR backend failure\r\nMN\r\n"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("mcp.broadcast(mcp.CMD_GET, { p.main })", "only mcp.CMD_FLUSH_ALL can be broadcast"),
        ("mcp.broadcast(mcp.CMD_FLUSH_ALL, {})", "mcp.broadcast: needs at least one pool"),
        ("mcp.broadcast(mcp.CMD_FLUSH_ALL, { 1 })", "mcp.pool_proxy expected, got number"),
        ("mcp.broadcast(mcp.CMD_FLUSH_ALL)", "table expected, got no value"),
    ],
)
def test_broadcast_arguments_are_checked(tmp_path: Path, call: str, error: str) -> None:
    config = tmp_path / "routes.lua"
    config.write_text(
        "function mcp_config_pools()\n"
        "    return { main = mcp.pool({ mcp.backend('a', '127.0.0.1', 11211) }) }\n"
        "end\n"
        f"function mcp_config_routes(p)\n    {call}\nend\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(config, build_registry())
    assert error in str(e.value) and "routes.lua:5" in str(e.value)
