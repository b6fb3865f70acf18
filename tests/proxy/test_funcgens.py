"""API v2 routes, socket-free (tests/proxy/harness.py). Slots: a burst makes one per request in
flight; the slots are reused afterwards, and idle ones drain back towards one once the
funcgen has been mostly idle for long enough (spec v2 2.6). The trimming numbers are
1.6.45's release-build ones (pressure 5000, drop 200, 60 s); this test sets small ones, as
memcached's own slot test uses its debug-build numbers. Buffer memory: replies held by v2
routes count against ``buffer_memory_limit`` as v1 routes' do."""

from __future__ import annotations

from collections.abc import Callable

from tests.proxy.harness import Proxy

CONFIG = """
function mcp_config_pools()
    return { main = mcp.pool({ mcp.backend("a", "127.0.0.1", 1) }) }
end

function mcp_config_routes(p)
    fg = mcp.funcgen_new()                  -- a global, for the test to read
    local h = fg:new_handle(p.main)
    fg:ready({ n = "burst", f = function(rctx)
        return function(r)
            local res = rctx:enqueue_and_wait(r, h)
            return res
        end
    end })
    mcp.attach(mcp.CMD_MG, fg)
end
"""


def slots(proxy: Proxy) -> tuple[int, int]:
    """(slots, free slots) of the funcgen."""
    fg = proxy.router.config.routes.lua.globals().fg
    return int(fg[b"_nslots"]), int(fg[b"_nfree"])


def test_a_burst_makes_slots_that_are_reused_then_drained(
    proxy_factory: Callable[[str], Proxy],
) -> None:
    proxy = proxy_factory(CONFIG)
    trim = proxy.router.config.routes.state[b"slot_trim"]
    trim[b"pressure_max"], trim[b"pressure_drop"], trim[b"wait"] = 3, 1, 0
    a = proxy.backends["a"]
    c = proxy.client()
    assert slots(proxy) == (1, 1)  # ready made the first
    c.send(b"mg k v\r\n" * 8)
    proxy.turn()
    assert a.received() == b"mg k v\r\n" * 8
    assert slots(proxy) == (8, 0)  # one per request in flight
    a.reply(b"EN\r\n" * 8)
    proxy.turn()
    assert c.received() == b"EN\r\n" * 8
    assert slots(proxy) == (8, 8)
    # One at a time: mostly idle, pressure rises past 3, then each release drops a slot.
    counts = []
    for _ in range(12):
        c.send(b"mg k v\r\n")
        proxy.turn()
        a.received()
        a.reply(b"HD\r\n")
        proxy.turn()
        assert c.received() == b"HD\r\n"
        counts.append(slots(proxy)[0])
    # (reused, never made again: the count only goes down, one slot per release at most)
    assert counts == sorted(counts, reverse=True), str(counts)
    assert all(a - b <= 1 for a, b in zip([8, *counts], counts, strict=False))
    assert counts[-1] == 1
    # nothing leaked: no request is left active
    assert proxy.router.active == 0


def test_a_v2_reply_past_the_buffer_memory_limit_fails_its_backend(
    proxy_factory: Callable[[str], Proxy],
) -> None:
    limited = "function mcp_config_pools()\n    mcp.buffer_memory_limit(1)\n"  # 1 KB
    proxy = proxy_factory(CONFIG.replace("function mcp_config_pools()\n", limited))
    a = proxy.backends["a"]
    c = proxy.client()
    c.send(b"mg k1 v\r\nmg k2 v\r\n")  # v2 routes in Lua hold their replies
    proxy.turn()
    assert a.received() == b"mg k1 v\r\nmg k2 v\r\n"
    big = b"VA 2000\r\n" + b"x" * 2000 + b"\r\n"
    a.reply(big + b"HD\r\n")  # the second arrives while the first is held
    proxy.turn()
    assert c.received() == big + b"SERVER_ERROR backend failure\r\n"
    failures = [e for e in proxy.log.events if e["type"] == "proxy_backend"]
    assert failures[0]["error"] == "outofmemory"
    assert proxy.router.mem_used == 0 and proxy.router.active == 0


HELD = """
function mcp_config_pools()
    return { main = mcp.pool({ mcp.backend("a", "127.0.0.1", 1) }) }
end

function mcp_config_routes(p)
    local fg = mcp.funcgen_new()
    local h = fg:new_handle(p.main)
    local waiting = nil                     -- the rctx of the request "mg w" while it waits
    local seen = {}
    fg:ready({ n = "held", f = function(rctx)
        return function(r)
            if r:key() == "peek" then
                -- another slot's route reads, then sets a callback on, the waiting one's
                -- rctx: its result is not in yet
                local got = waiting:res_any(h)
                waiting:handle_set_cb(h, function(res)
                    seen[#seen + 1] = "cb " .. tostring(res:hit())
                    return mcp.WAIT_OK
                end)
                return "HD peek " .. tostring(got) .. "\\r\\n"
            end
            if r:key() == "w" then waiting = rctx end
            local res = rctx:enqueue_and_wait(r, h)
            if r:key() == "w" then
                waiting = nil
                local _, flag = rctx:result(h)
                seen[#seen + 1] = "flag " .. tostring(flag)
                return "HD " .. table.concat(seen, ",") .. "\\r\\n"
            end
            return res
        end
    end })
    mcp.attach(mcp.CMD_MG, fg)
end
"""


def test_a_waiting_slot_read_from_another_route(proxy_factory: Callable[[str], Proxy]) -> None:
    # The first wait on a slot's only handle keeps the handle's state back (mcp_funcgen.lua,
    # `own`); an rctx method called while it is in flight (here from another slot's route,
    # which holds that rctx) writes it out first, and the reply then takes the general path:
    # the callback set meanwhile runs and its flag (WAIT_OK: RES_OK, 16) is the result's.
    proxy = proxy_factory(HELD)
    a = proxy.backends["a"]
    c = proxy.client()
    c.send(b"mg w v\r\n")
    proxy.turn()
    assert a.received() == b"mg w v\r\n"
    peek = proxy.client()
    peek.send(b"mg peek v\r\n")
    proxy.turn()
    assert peek.received() == b"HD peek nil\r\n"
    a.reply(b"VA 1\r\nx\r\n")
    proxy.turn()
    assert c.received() == b"HD cb true,flag 16\r\n"
    # The next request takes that slot (last freed, first taken), callback and all.
    c.send(b"mg k v\r\n")
    proxy.turn()
    assert a.received() == b"mg k v\r\n"
    a.reply(b"EN\r\n")
    proxy.turn()
    assert c.received() == b"EN\r\n"
    assert proxy.router.active == 0
