"""A 1.6.20-style route that edits the response it got before returning it: the client sees
the edited bytes (the driver's shortcut for ``return pool(r)`` sends the bytes Python already
holds, so it must not apply to an edited or closed response). Real memcached behind it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.helpers import Client, Mcpframe, Memcached

CONFIG = """
function mcp_config_pools()
    return mcp.pool({ mcp.backend("a", "127.0.0.1", %d) })
end
function mcp_config_routes(p)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        local res = p(r)
        local key = r:key()
        if key == "blank" then res:flag_blank("O") end
        if key == "closed" then res:close() end
        return res
    end)
end
"""


def test_an_edited_response_is_sent_as_edited(
    tmp_path: Path,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    m = memcached_factory()
    cfg = tmp_path / "routes.lua"
    cfg.write_text(CONFIG % m.port)
    proxy = mcpframe_factory("--config", str(cfg))
    c = Client(proxy.addr)
    c.send(b"ms blank 2 T0\r\nhi\r\nmg blank O123 t\r\n")
    assert c.readline() == b"HD\r\n"
    assert c.readline() == b"HD      t-1\r\n"  # "O123" blanked, the spaces kept
    c.send(b"mg plain O123 t\r\n")
    assert c.readline() == b"EN O123\r\n"  # (not edited: unchanged)
    c.send(b"ms plain 2 T0\r\nhi\r\nmg plain O123 t\r\n")
    assert c.readline() == b"HD\r\n"
    assert c.readline() == b"HD O123 t-1\r\n"
    c.send(b"mg closed v\r\nmg plain O9 t\r\n")
    assert c.readline() == b"SERVER_ERROR bad response\r\n"
    assert c.readline() == b"HD O9 t-1\r\n"  # the connection goes on
