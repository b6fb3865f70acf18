"""Routes that ask again when the answer is not ok (issue 15's route with logic), socket-free
(tests/proxy/harness.py): ``local res = p(r) if res:ok() then return res end return p(r)``
runs its first call without Lua and enters Lua only for an answer that is not ok; the v2
``enqueue_and_wait`` form runs as a pass-through. Each answers exactly as the same logic
written so that it stays in Lua (listener tag ``lua``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.proxy.harness import FakeClient, Proxy

CONFIG = """
function mcp_config_pools()
    return { main = mcp.pool({ mcp.backend("a", "127.0.0.1", 11211) }) }
end


function mcp_config_routes(p)
    local main = p.main
    pools = p  -- a global table, and a global pool, for the other two forms
    gmain = p.main
    -- the retry shape: the pool an upvalue, a field of an upvalue table, a global
    mcp.attach(mcp.CMD_GET, function(r) local res = main(r) if res:ok() then return res end
        return main(r) end)
    mcp.attach(mcp.CMD_GETS, function(r) local res = p.main(r) if res:ok() then return res end
        return p.main(r) end)
    mcp.attach(mcp.CMD_SET, function(r) local res = gmain(r) if res:ok() then return res end
        return gmain(r) end)
    -- a method that is not ok(): the same bytecode, another constant; stays in Lua
    mcp.attach(mcp.CMD_DELETE, function(r) local res = main(r) if res:hit() then return res end
        return main(r) end)
    -- the same logic in other words, so that it runs in Lua
    local lua = function(r)
        local res = main(r)
        if res:ok() then return res end
        local again = main(r)
        return again
    end
    for _, cmd in ipairs({ mcp.CMD_GET, mcp.CMD_GETS, mcp.CMD_SET, mcp.CMD_DELETE }) do
        mcp.attach(cmd, lua, "lua")
    end
    -- v2: the same route in a function generator, and with a callback (stays in Lua)
    local function v2(with_callback)
        local fg = mcp.funcgen_new()
        local h = fg:new_handle(main)
        fg:ready({ n = "retry", f = function(rctx)
            if with_callback then rctx:handle_set_cb(h, function(res, req) end) end
            return function(r)
                local res = rctx:enqueue_and_wait(r, h) if res:ok() then return res end
                return rctx:enqueue_and_wait(r, h)
            end
        end })
        return fg
    end
    mcp.attach(mcp.CMD_MG, v2(false))
    mcp.attach(mcp.CMD_MG, v2(true), "lua")
    -- reassigns the upvalue pool of the get route (mcp.internal-free: just Lua)
    mcp.attach(mcp.CMD_TOUCH, function(r)
        main = nil
        return "TOUCHED\\r\\n"
    end)
end
"""

Make = Callable[[str], Proxy]
FAIL = b"SERVER_ERROR out of coffee\r\n"


def errors(proxy: Proxy) -> list[object]:
    return [e for e in proxy.log.events if e["type"] == "proxy_error"]


def ask(proxy: Proxy, c: FakeClient, request: bytes, answers: list[bytes]) -> tuple[bytes, bytes]:
    """Send ``request``, answer each backend request with the next of ``answers``; what the
    backend received, and what the client read."""
    a = proxy.backends["a"]
    c.send(request)
    proxy.turn()
    seen = b""
    for answer in answers:
        seen += a.received()
        a.reply(answer)
        proxy.turn()
    seen += a.received()
    return seen, c.received()


@pytest.mark.parametrize(
    ("request_", "answers"),
    [
        (b"get k\r\n", [b"VALUE k 0 1\r\nx\r\nEND\r\n"]),
        (b"get k\r\n", [FAIL, b"VALUE k 0 1\r\ny\r\nEND\r\n"]),
        (b"get k\r\n", [FAIL, FAIL]),
        (b"gets k\r\n", [FAIL, b"END\r\n"]),
        (b"gets k\r\n", [b"END\r\n"]),
        (b"set k 0 0 1\r\nv\r\n", [FAIL, b"STORED\r\n"]),
        (b"set k 0 0 1\r\nv\r\n", [b"NOT_STORED\r\n"]),
        (b"delete k\r\n", [FAIL, b"DELETED\r\n"]),
        (b"mg k v\r\n", [FAIL]),
        (b"mg k v\r\n", [b"VA 1\r\nw\r\n"]),
    ],
)
def test_retry_routes_answer_as_in_lua(
    proxy_factory: Make, request_: bytes, answers: list[bytes]
) -> None:
    proxy = proxy_factory(CONFIG)
    results = [ask(proxy, c, request_, answers) for c in (proxy.client(), proxy.client("lua"))]
    assert results[0] == results[1]
    assert proxy.router.active == 0
    assert not errors(proxy)


def test_retry_routes_are_recognised(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    router = proxy.router
    assert len(router.retry) == 3  # get, gets, set; not delete (hit), not the tagged ones
    # the v2 one is a pass-through (the only one): its slot (made by ready) is not taken
    (fg,) = router.passthrough
    assert fg in router.fgen_hooks
    c = proxy.client()
    c.send(b"mg k v\r\n" * 3)
    proxy.turn()
    assert int(fg[b"_nslots"]) == 1 and int(fg[b"_nfree"]) == 1


def test_a_pool_reassigned_before_the_retry_is_what_the_retry_calls(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    c = proxy.client()
    a = proxy.backends["a"]
    c.send(b"get k\r\n")
    proxy.turn()
    assert a.received() == b"get k\r\n"
    c.send(b"touch x 1\r\n")  # sets `main` to nil
    proxy.turn()
    a.reply(FAIL)
    proxy.turn()
    # the route's second call is on nil: a Lua error, as the route in Lua would raise
    assert c.received() == b"SERVER_ERROR lua failure\r\nTOUCHED\r\n"
    assert a.received() == b""
    (event,) = errors(proxy)
    assert "attempt to call a nil value (upvalue 'main')" in str(event["msg"])
    assert proxy.router.active == 0


TWO = """
function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", 11211)
    local b = mcp.backend("b", "127.0.0.1", 11212)
    return { ab = mcp.pool({ a, b }) }
end

function mcp_config_routes(p)
    local ab = p.ab
    mcp.attach(mcp.CMD_GET, function(r) local res = ab(r) if res:ok() then return res end
        return ab(r) end)
    mcp.attach(mcp.CMD_GET, function(r)
        local res = ab(r)
        if res:ok() then return res end
        local again = ab(r)
        return again
    end, "lua")
end
"""


def hit(key: bytes, data: bytes) -> bytes:
    return b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, len(data), data)


@pytest.mark.parametrize("fail", [False, True])
def test_a_multiget_on_a_retry_route_is_one_get_per_backend(
    proxy_factory: Make, fail: bool
) -> None:
    proxy = proxy_factory(TWO)
    a, b = proxy.backends["a"], proxy.backends["b"]
    pool = proxy.router.pools[0]
    labels = [be.spec.label for be in pool.backends]
    keys = [b"key%d" % i for i in range(12)]
    on = {k: labels[pool.select(k)] for k in keys}
    ka = [k for k in keys if on[k] == "a"]
    kb = [k for k in keys if on[k] == "b"]
    request = b"get " + b" ".join(keys) + b"\r\n"
    replies = []
    for tag in (None, "lua"):
        c = proxy.client(tag)
        c.send(request)
        proxy.turn()
        sent_a, sent_b = a.received(), b.received()
        if tag is None:  # one get per backend
            assert sent_a == b"get " + b" ".join(ka) + b"\r\n"
            assert sent_b == b"get " + b" ".join(kb) + b"\r\n"
        # kb[0] a miss
        if tag is None:
            b.reply(b"".join(hit(k, b"b")[:-5] for k in kb[1:]) + b"END\r\n")
        else:
            b.reply(b"END\r\n", *[hit(k, b"b") for k in kb[1:]])
        if fail:
            # a fails: each of its keys asks again, on its own
            a.reply(FAIL * (1 if tag is None else len(ka)))
            proxy.turn()
            assert a.received() == b"".join(b"get %s\r\n" % k for k in ka)
            a.reply(*[hit(k, b"a") if i % 2 else b"END\r\n" for i, k in enumerate(ka)])
        else:
            if tag is None:
                a.reply(b"".join(hit(k, b"a")[:-5] for k in ka) + b"END\r\n")
            else:
                a.reply(*[hit(k, b"a") for k in ka])
        proxy.turn()
        replies.append(c.received())
        assert proxy.router.active == 0
    assert replies[0] == replies[1]
    assert replies[0].endswith(b"END\r\n") and replies[0].count(b"VALUE") == (
        len(kb) - 1 + (len(ka) // 2 if fail else len(ka))
    )
    assert not errors(proxy)


FAILOVER = """
function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", 11211)
    local b = mcp.backend("b", "127.0.0.1", 11212)
    return { main = mcp.pool({ a }), backup = mcp.pool({ b }) }
end

function mcp_config_routes(p)
    local main, backup = p.main, p.backup
    gmain, gbackup = p.main, p.backup
    -- failover: ask another pool when the answer is not ok (upvalues, fields, globals)
    mcp.attach(mcp.CMD_GET, function(r) local res = main(r) if res:ok() then return res end
        return backup(r) end)
    mcp.attach(mcp.CMD_GETS, function(r) local res = p.main(r) if res:ok() then return res end
        return p.backup(r) end)
    mcp.attach(mcp.CMD_SET, function(r) local res = gmain(r) if res:ok() then return res end
        return gbackup(r) end)
    local lua = function(r)
        local res = main(r)
        if res:ok() then return res end
        local again = backup(r)
        return again
    end
    for _, cmd in ipairs({ mcp.CMD_GET, mcp.CMD_GETS, mcp.CMD_SET }) do
        mcp.attach(cmd, lua, "lua")
    end
end
"""


@pytest.mark.parametrize("request_", [b"get k\r\n", b"gets k\r\n", b"set k 0 0 1\r\nv\r\n"])
@pytest.mark.parametrize("fail", [False, True])
def test_failover_routes_answer_as_in_lua(proxy_factory: Make, request_: bytes, fail: bool) -> None:
    proxy = proxy_factory(FAILOVER)
    assert len(proxy.router.retry) == 3
    a, b = proxy.backends["a"], proxy.backends["b"]
    results = []
    for c in (proxy.client(), proxy.client("lua")):
        c.send(request_)
        proxy.turn()
        sent = [a.received(), b""]
        a.reply(FAIL if fail else b"END\r\n" if request_.startswith(b"get") else b"STORED\r\n")
        proxy.turn()
        sent[1] = b.received()
        if fail:
            b.reply(b"VALUE k 0 1\r\nb\r\nEND\r\n" if b"get" in request_ else b"STORED\r\n")
            proxy.turn()
        results.append((sent, c.received()))
        assert proxy.router.active == 0
    assert results[0] == results[1]
    assert bool(results[0][0][1]) == fail  # the backup asked only after a failure
    assert not errors(proxy)
