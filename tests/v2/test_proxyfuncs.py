"""``stats proxyfuncs`` (spec v2 10.3): funcgens in use and their slots, per name. Expected
lines recorded from memcached 1.6.45's proxy on tests/configs/v2/funcs.lua (order aside,
which is unspecified)."""

from __future__ import annotations

from tests.v2.conftest import StartProxy


def test_funcgens_and_slots_per_name(start_v2: StartProxy) -> None:
    proxy = start_v2("funcs.lua", {})
    assert proxy.stats("proxyfuncs") == {
        "funcs_parent": "1", "slots_parent": "1", "funcs_child": "1", "slots_child": "1",
        "funcs_mcp_router": "1", "slots_mcp_router": "0",
        "funcs_anonymous": "1", "slots_anonymous": "0",
    }  # fmt: skip
    # three at once: three parent slots, each pinning a child slot
    c = proxy.connect()
    c.send(b"mg a v\r\nmg b v\r\nmg c v\r\n")
    assert c.read_until(b"HD child\r\n" * 3) == b"HD child\r\n" * 3
    stats = proxy.stats("proxyfuncs")
    assert (stats["slots_parent"], stats["slots_child"]) == ("3", "3")
