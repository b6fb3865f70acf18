"""``mcp.time_real_millis()`` and ``mcp.time_mono_millis()`` (spec v2 3.16): integers of
milliseconds, in the route VM only (1.6.45's config VM has neither)."""

from __future__ import annotations

import time

from tests.v2.conftest import StartProxy


def test_clocks(start_v2: StartProxy) -> None:
    proxy = start_v2("clocks.lua", {})
    before = time.time() * 1000
    proxy.send(b"mg k\r\n")
    _, body, _ = proxy.read_until(b"END\r\n").split(b"\r\n", 2)
    after = time.time() * 1000
    rtype, real, mtype, mono, *config_vm = body.decode().split(" ")
    assert (rtype, mtype) == ("integer", "integer")
    assert before - 1 <= int(real) <= after + 1
    assert int(mono) > 0
    assert config_vm == ["nil", "nil"]
