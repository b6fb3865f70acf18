"""A request sent to several pools at once (route_allfastest, route_split, placed without
Lua) lands, in each pool, on the backend a route_direct over that pool picks
(tests/configs/routelib/fanout.lua: the same three memcached servers in two orders, and a
pool of two of them). Each copy is looked for through a route_direct of its own pool (mg:
main, gets: rev, get: pair; the pools share servers, so nothing is deleted between looks).
Passes on memcached 1.6.45's proxy as well (MCPFRAME_ROUTELIB_REFERENCE)."""

from __future__ import annotations

from tests.helpers import Client, Memcached
from tests.routelib.conftest import StartRoutelib, backends_env

KEYS = [b"%d-%s" % (i, b"x" * (i % 7)) for i in range(40)]


def test_every_copy_lands_where_its_pool_puts_the_key(
    start_routelib: StartRoutelib, three_memcached: list[Memcached]
) -> None:
    proxy = start_routelib("fanout.lua", backends_env(three_memcached))
    c = proxy.connect()
    for prefix, checks in ((b"fast/", (b"mg", b"gets", b"get")), (b"split/", (b"mg", b"gets"))):
        for m in three_memcached:
            flush = Client(m.addr)
            flush.send(b"flush_all\r\n")
            assert flush.readline() == b"OK\r\n"
            flush.close()
        for key in KEYS:
            c.send(b"set %s%s 0 0 1\r\nv\r\n" % (prefix, key))
            assert c.readline() == b"STORED\r\n"
        for cmd in checks:
            missing = []
            for key in KEYS:
                c.send(b"%s %s%s\r\n" % (cmd, prefix, key))
                first = c.readline()
                if first.startswith(b"VALUE "):
                    assert c.readline() == b"v\r\n" and c.readline() == b"END\r\n"
                elif first in (b"EN\r\n", b"END\r\n"):
                    missing.append(key)
                else:
                    assert first == b"HD\r\n", first
            assert missing == [], (prefix, cmd)


def test_pipelined_fan_outs_answer_each_request_with_its_own_reply(
    start_routelib: StartRoutelib, three_memcached: list[Memcached]
) -> None:
    # Hundreds of allfastest requests in flight on every backend at once, their copies on
    # different servers: each client request is answered by whichever copy comes first,
    # the other copy's reply comes later in another read and is consumed unseen. Every
    # reply must still be its own request's, in order (the replies read unseen are never
    # confused with those still owed, however many are queued behind them).
    proxy = start_routelib("fanout.lua", backends_env(three_memcached))
    clients = [proxy.connect() for _ in range(4)]
    n = 300
    for round_ in (b"set", b"get"):
        for c, client in enumerate(clients):
            out = []
            for i in range(n):
                key, value = b"both/%d-%d" % (c, i), b"v%d-%d" % (c, i)
                if round_ == b"set":
                    out.append(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value))
                else:
                    out.append(b"get %s\r\n" % key)
            client.send(b"".join(out))
        for c, client in enumerate(clients):
            for i in range(n):
                key, value = b"both/%d-%d" % (c, i), b"v%d-%d" % (c, i)
                if round_ == b"set":
                    assert client.readline() == b"STORED\r\n", (c, i)
                else:
                    got = client.read_until(b"END\r\n")
                    want = b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, len(value), value)
                    assert got == want, (c, i)
