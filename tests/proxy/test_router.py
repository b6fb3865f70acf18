"""The router, socket-free (tests/proxy/harness.py): replies in request order whatever order
the backends answer in, pipelines, multigets split per backend and put back together, every
``mcp.await`` mode, each way a route can fail, and the request and buffer memory limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.proxy.harness import Proxy

CONFIG = """
function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", 11211)
    local b = mcp.backend("b", "127.0.0.1", 11212)
    return { a = mcp.pool({ a }), b = mcp.pool({ b }), ab = mcp.pool({ a, b }) }
end

local MODES = {
    good = mcp.AWAIT_GOOD, any = mcp.AWAIT_ANY, ok = mcp.AWAIT_OK, first = mcp.AWAIT_FIRST,
    fastgood = mcp.AWAIT_FASTGOOD, background = mcp.AWAIT_BACKGROUND,
}

function mcp_config_routes(p)
    -- pass-through routes: run without Lua
    mcp.attach(mcp.CMD_GET, function(r) return p.ab(r) end)
    mcp.attach(mcp.CMD_SET, function(r) return p.ab(r) end)
    -- in Lua: the same pool, one route per key of a multiget
    mcp.attach(mcp.CMD_GETS, function(r) local res = p.ab(r) return res end)
    -- in Lua: pool a, or b for keys starting with b; and the ways a route fails
    mcp.attach(mcp.CMD_MD, function(r)
        local key = r:key()
        if key == "boom" then error("boom") end
        if key == "number" then return 42 end
        if key:sub(1, 1) == "b" then return p.b(r) end
        return p.a(r)
    end)
    -- mg MODE[.WAIT]/...: mcp.await on pools a and b; says what came back, in order
    mcp.attach(mcp.CMD_MG, function(r)
        local mode, wait = r:key():match("^(%a+)%.?(%d*)/")
        local results = mcp.await(r, { p.a, p.b }, tonumber(wait) or 0, MODES[mode])
        local out = {}
        for i, res in ipairs(results) do
            out[i] = res:hit() and "hit" or res:ok() and "miss" or "fail"
        end
        return "RESULT " .. #results .. " " .. table.concat(out, ",") .. "\\r\\n"
    end)
end
"""

Make = Callable[[str], Proxy]


def keys_on(proxy: Proxy, label: str, n: int) -> list[bytes]:
    """``n`` keys that pool ``ab`` places on backend ``label``."""
    pool = next(p for p in proxy.router.pools if len(p.backends) == 2)
    index = [b.spec.label for b in pool.backends].index(label)
    return [k for k in (b"key%d" % i for i in range(200)) if pool.select(k) == index][:n]


def hit(key: bytes, data: bytes) -> bytes:
    return b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, len(data), data)


def test_replies_keep_request_order_when_backends_answer_out_of_order(
    proxy_factory: Make,
) -> None:
    proxy = proxy_factory(CONFIG)
    a, b = proxy.backends["a"], proxy.backends["b"]
    ka, kb = keys_on(proxy, "a", 1)[0], keys_on(proxy, "b", 1)[0]
    c = proxy.client()
    c.send(b"get %s\r\nget %s\r\nmd a1\r\nmd b1\r\n" % (ka, kb))
    proxy.turn()
    assert a.received() == b"get %s\r\nmd a1\r\n" % ka  # one write per backend per turn
    assert b.received() == b"get %s\r\nmd b1\r\n" % kb
    b.reply(hit(kb, b"vb"), b"HD\r\n")
    proxy.turn()
    assert c.received() == b""  # the first reply is still owed
    a.reply(hit(ka, b"va"))
    proxy.turn()
    assert c.received() == hit(ka, b"va") + hit(kb, b"vb")
    a.reply(b"NF\r\n")
    proxy.turn()
    assert c.received() == b"NF\r\nHD\r\n"


def test_pipelined_requests_and_replies_split_anywhere(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    a = proxy.backends["a"]
    keys = keys_on(proxy, "a", 3)
    c = proxy.client()
    pipeline = b"".join(b"get %s\r\n" % k for k in keys) + b"set %s 0 0 2\r\nhi\r\n" % keys[0]
    for i in range(0, len(pipeline), 7):  # the client's bytes arrive in pieces too
        c.send(pipeline[i : i + 7])
    proxy.turn()
    assert a.received() == pipeline
    replies = hit(keys[0], b"v0") + b"END\r\n" + hit(keys[2], b"v2") + b"STORED\r\n"
    a.reply(*(replies[i : i + 5] for i in range(0, len(replies), 5)))
    proxy.turn()
    assert c.received() == replies


def test_multiget_on_a_passthrough_route_is_one_get_per_backend(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    a, b = proxy.backends["a"], proxy.backends["b"]
    ka, kb = keys_on(proxy, "a", 3), keys_on(proxy, "b", 2)
    order = [ka[0], kb[0], ka[1], kb[1], ka[2]]
    c = proxy.client()
    c.send(b"get " + b" ".join(order) + b"\r\n")
    proxy.turn()
    assert a.received() == b"get " + b" ".join(ka) + b"\r\n"
    assert b.received() == b"get " + b" ".join(kb) + b"\r\n"
    b.reply(hit(kb[0], b"b0")[:-5], b"END\r\n")  # kb[1] a miss
    proxy.turn()
    assert c.received() == b""
    a.reply(hit(ka[0], b"a0")[:-5] + hit(ka[2], b"a2"))  # ka[1] a miss
    proxy.turn()
    # Put back together in the client's key order, one END.
    assert c.received() == (
        hit(ka[0], b"a0")[:-5] + hit(kb[0], b"b0")[:-5] + hit(ka[2], b"a2")[:-5] + b"END\r\n"
    )
    assert proxy.router.active == 0


def test_multiget_in_lua_is_one_route_per_key(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    a, b = proxy.backends["a"], proxy.backends["b"]
    ka, kb = keys_on(proxy, "a", 1)[0], keys_on(proxy, "b", 1)[0]
    c = proxy.client()
    c.send(b"gets %s %s\r\n" % (kb, ka))
    proxy.turn()
    assert a.received() == b"gets %s\r\n" % ka
    assert b.received() == b"gets %s\r\n" % kb
    a.reply(b"VALUE %s 0 1 5\r\nx\r\nEND\r\n" % ka)
    b.reply(b"END\r\n")
    proxy.turn()
    assert c.received() == b"VALUE %s 0 1 5\r\nx\r\nEND\r\n" % ka


@pytest.mark.parametrize(
    ("mode", "replies", "result"),
    [
        # (mode[.wait_for], (a's reply, b's reply) in arrival order, what the route saw)
        ("good", [("b", b"EN\r\n"), ("a", b"HD\r\n")], b"RESULT 2 miss,hit"),
        ("good.1", [("b", b"HD\r\n")], b"RESULT 1 hit"),
        ("any.1", [("a", b"EN\r\n")], b"RESULT 1 miss"),
        ("ok.1", [("b", b"SERVER_ERROR x\r\n"), ("a", b"EN\r\n")], b"RESULT 2 fail,miss"),
        ("first", [("b", b"HD\r\n"), ("a", b"EN\r\n")], b"RESULT 1 miss"),
        ("fastgood.2", [("a", b"HD\r\n")], b"RESULT 1 hit"),
        ("fastgood.2", [("a", b"EN\r\n"), ("b", b"EN\r\n")], b"RESULT 2 miss,miss"),
        ("background", [], b"RESULT 0 "),
    ],
)
def test_await_modes(
    proxy_factory: Make, mode: str, replies: list[tuple[str, bytes]], result: bytes
) -> None:
    proxy = proxy_factory(CONFIG)
    c = proxy.client()
    c.send(b"mg %s/k v\r\n" % mode.encode())
    proxy.turn()
    for label in "ab":  # every pool is sent the request, whatever the mode
        assert proxy.backends[label].received() == b"mg %s/k v\r\n" % mode.encode()
    for label, reply in replies:
        assert c.received() == b""
        proxy.backends[label].reply(reply)
        proxy.turn()
    assert c.received() == result + b"\r\n"
    # Replies after completion are discarded; the await stops counting at the last one.
    for label in "ab":
        if label not in {lbl for lbl, _ in replies}:
            proxy.backends[label].reply(b"HD\r\n")
    proxy.turn()
    assert c.received() == b""
    assert proxy.router.await_active == 0


def test_route_errors(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    a = proxy.backends["a"]
    c = proxy.client()
    c.send(b"md boom\r\nmd number\r\nmd k1\r\nmd k2\r\n")
    proxy.turn()
    assert c.received() == b"SERVER_ERROR lua failure\r\nSERVER_ERROR bad response\r\n"
    errors = [e for e in proxy.log.events if e["type"] == "proxy_error"]
    assert "boom" in str(errors[0]["msg"])
    # A reply the backend protocol does not allow fails the connection: every request
    # queued there gets the backend failure, and the backend reconnects.
    assert a.received() == b"md k1\r\nmd k2\r\n"
    a.reply(b"BOGUS\r\n")
    proxy.turn()
    assert c.received() == b"SERVER_ERROR backend failure\r\n" * 2
    failures = [e for e in proxy.log.events if e["type"] == "proxy_backend"]
    assert failures[0]["error"] == "parsing"
    assert a.connections == 2
    a.validate()
    proxy.turn()
    c.send(b"md k3\r\n")
    proxy.turn()
    a.disconnect()  # a backend that goes away with a request owed
    proxy.turn()
    assert c.received() == b"SERVER_ERROR backend failure\r\n"
    assert proxy.router.active == 0


def test_limits_refuse_past_the_active_request_limit(proxy_factory: Make) -> None:
    limited = "function mcp_config_pools()\n    mcp.active_req_limit(2)\n"
    proxy = proxy_factory(CONFIG.replace("function mcp_config_pools()\n", limited))
    a = proxy.backends["a"]
    keys = keys_on(proxy, "a", 3)
    c = proxy.client()
    c.send(b"".join(b"get %s\r\n" % k for k in keys))
    proxy.turn()
    assert a.received() == b"get %s\r\nget %s\r\n" % (keys[0], keys[1])
    a.reply(b"END\r\nEND\r\n")
    proxy.turn()
    assert c.received() == b"END\r\nEND\r\nSERVER_ERROR active request limit reached\r\n"


def test_a_reply_past_the_buffer_memory_limit_fails_its_backend(proxy_factory: Make) -> None:
    limited = "function mcp_config_pools()\n    mcp.buffer_memory_limit(1)\n"  # 1 KB
    proxy = proxy_factory(CONFIG.replace("function mcp_config_pools()\n", limited))
    a = proxy.backends["a"]
    k1, k2 = keys_on(proxy, "a", 2)
    c = proxy.client()
    c.send(b"gets %s\r\ngets %s\r\n" % (k1, k2))  # routes in Lua hold their replies
    proxy.turn()
    assert a.received() == b"gets %s\r\ngets %s\r\n" % (k1, k2)
    big = b"VALUE %s 0 2000 1\r\n%s\r\nEND\r\n" % (k1, b"x" * 2000)
    a.reply(big + b"END\r\n")  # the second arrives while the first is held
    proxy.turn()
    assert c.received() == big + b"SERVER_ERROR backend failure\r\n"
    failures = [e for e in proxy.log.events if e["type"] == "proxy_backend"]
    assert failures[0]["error"] == "outofmemory"
    assert a.connections == 2 and proxy.router.mem_used == 0
