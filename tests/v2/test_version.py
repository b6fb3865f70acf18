"""``version`` and ``STAT version``: memcached 1.6.45, the newest proxy API mcpframe implements,
for API v2 configs (recorded from 1.6.45's proxy on tests/configs/v2/router.lua) and API v1
configs alike (1.6.20's proxy says 1.6.20; mcpframe reports one version whatever the config)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.helpers import Client, Mcpframe
from tests.route_api.conftest import Proxy
from tests.v2.conftest import StartProxy

V1_CONFIG = """\
function mcp_config_pools() return {} end
function mcp_config_routes() mcp.attach(mcp.CMD_MG, function(r) return "EN\\r\\n" end) end
"""


def stat_version(client: Client) -> bytes:
    client.send(b"stats\r\n")
    out = client.read_until(b"END\r\n")
    (line,) = [x for x in out.split(b"\r\n") if x.startswith(b"STAT version ")]
    return line


def test_v2_config(start_v2: StartProxy) -> None:
    proxy: Proxy = start_v2("router.lua", {})
    c = Client(proxy.addr)
    c.send(b"version\r\n")
    assert c.readline() == b"VERSION 1.6.45\r\n"
    assert stat_version(c) == b"STAT version 1.6.45"


def test_v1_config(mcpframe_factory: Callable[..., Mcpframe], tmp_path: Path) -> None:
    config = tmp_path / "v1.lua"
    config.write_text(V1_CONFIG)
    c = Client(mcpframe_factory("--config", str(config)).addr)
    c.send(b"mg k\r\n")
    assert c.readline() == b"EN\r\n"
    c.send(b"version\r\n")
    assert c.readline() == b"VERSION 1.6.45\r\n"
    assert stat_version(c) == b"STAT version 1.6.45"
