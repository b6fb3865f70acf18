"""A reload while v2 routes are running (spec v2 2.10): requests in flight finish in their
old slots with the old closures; new requests take slots of the new function generators."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Client, Mcpframe

CONFIG = """
function mcp_config_pools()
    return {}
end

function mcp_config_routes()
    local fg = mcp.funcgen_new()
    fg:ready({ n = "versioned", f = function(rctx)
        local version = "%s"                    -- captured per slot
        return function(r)
            rctx:sleep(0.4)
            return "HD " .. version .. "\\r\\n"
        end
    end })
    mcp.attach(mcp.CMD_MG, fg)
end
"""


def test_in_flight_requests_finish_on_the_old_slots(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    cfg = tmp_path / "routes.lua"
    cfg.write_text(CONFIG % "old")
    proxy = mcpframe_factory("--config", str(cfg))
    slow = Client(proxy.addr)
    slow.send(b"mg a v\r\n")
    time.sleep(0.1)  # the route is asleep in its old slot
    cfg.write_text(CONFIG % "new")
    os.kill(proxy.proc.pid, signal.SIGHUP)
    assert slow.readline() == b"HD old\r\n"
    deadline = time.monotonic() + 5
    while True:
        c = Client(proxy.addr)
        c.send(b"mg a v\r\n")
        got = c.readline()
        c.close()
        if got == b"HD new\r\n" or time.monotonic() > deadline:
            break
    assert got == b"HD new\r\n"
