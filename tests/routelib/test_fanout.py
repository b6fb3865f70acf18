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
