"""A config shaped like memcached's own example (tests/configs/route_api/example.lua) runs
against three real memcached zones and does what the example intends: reads fail over from
the near zone, writes invalidate the far zones in the background, deletes reach every zone,
meta routes use the near zone, prefixes are trimmed, requests are logged."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.helpers import Client, Memcached
from tests.route_api.conftest import Proxy, StartProxy, stop_all


class Example:
    def __init__(self, proxy: Proxy, zones: list[Memcached]) -> None:
        self.proxy = proxy
        self.zones = zones

    def zone(self, i: int) -> Client:
        """A direct connection to zone i+1's memcached."""
        c = Client(self.zones[i].addr)
        self.proxy.extra.append(c)
        return c

    def zget(self, i: int, key: bytes) -> bytes:
        c = self.zone(i)
        c.send(b"get " + key + b"\r\n")
        return c.read_until(b"END\r\n")

    def zset(self, i: int, key: bytes, value: bytes) -> None:
        c = self.zone(i)
        c.send(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value))
        assert c.readline() == b"STORED\r\n"


@pytest.fixture(scope="module")
def zones() -> Iterator[list[Memcached]]:
    servers = [Memcached() for _ in range(3)]
    yield servers
    stop_all(servers)


@pytest.fixture
def ex(zones: list[Memcached], start_proxy: StartProxy) -> Example:
    env = {f"MCP_Z{i + 1}": str(m.port) for i, m in enumerate(zones)}
    return Example(start_proxy("example.lua", env=env), zones)


def value(key: bytes, data: bytes) -> bytes:
    return b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, len(data), data)


def eventually(check: object, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.02)


def test_set_writes_the_near_zone_and_invalidates_the_far_ones(ex: Example) -> None:
    key = b"/foo/inv"
    ex.zset(1, key, b"stale2")
    ex.zset(2, key, b"stale3")
    p = ex.proxy
    p.send(b"set /foo/inv 0 0 5\r\nfresh\r\n")
    assert p.readline() == b"STORED\r\n"
    assert ex.zget(0, key) == value(key, b"fresh")
    eventually(lambda: ex.zget(1, key) == b"END\r\n" and ex.zget(2, key) == b"END\r\n")
    p.send(b"get /foo/inv\r\n")
    assert p.read_until(b"END\r\n") == value(key, b"fresh")
    assert p.stats("proxy")["user_invalidations"] == "1"


def test_noreply_set_is_silent_and_stored(ex: Example) -> None:
    p = ex.proxy
    p.send(b"set /foo/quiet 0 0 2 noreply\r\nhi\r\n")
    p.nothing()
    assert ex.zget(0, b"/foo/quiet") == value(b"/foo/quiet", b"hi")


def test_reads_fail_over_to_a_far_zone(ex: Example) -> None:
    key = b"/foo/far"
    ex.zset(2, key, b"from-z3")
    w = ex.proxy.watch("proxyreqs")
    p = ex.proxy
    p.send(b"get /foo/far\r\n")
    assert p.read_until(b"END\r\n") == value(key, b"from-z3")
    w.expect(
        r"type=proxy_req elapsed=\d+ type=100 code=15 status=0 be=127\.0\.0\.1:\d+ "
        r"detail=failover_backup_hit req=get /foo/far\n$"
    )
    ex.zset(0, key, b"near")
    p.send(b"get /foo/far\r\n")
    assert p.read_until(b"END\r\n") == value(key, b"near")
    w.expect(r"detail=failover_hit req=get /foo/far\n$")
    p.send(b"get /foo/nowhere\r\n")
    assert p.readline() == b"END\r\n"
    w.expect(r"type=105 code=17 status=0 .* detail=failover_miss req=get /foo/nowhere\n$")


def test_multiget_through_failover(ex: Example) -> None:
    ex.zset(0, b"/foo/m1", b"one")
    ex.zset(1, b"/foo/m3", b"three")
    p = ex.proxy
    p.send(b"get /foo/m1 /foo/m2 /foo/m3\r\n")
    assert p.read_until(b"END\r\n") == (
        b"VALUE /foo/m1 0 3\r\none\r\nVALUE /foo/m3 0 5\r\nthree\r\nEND\r\n"
    )


def test_delete_reaches_every_zone(ex: Example) -> None:
    key = b"/foo/del"
    for i in range(3):
        ex.zset(i, key, b"x")
    p = ex.proxy
    p.send(b"delete /foo/del\r\n")
    assert p.readline() == b"DELETED\r\n"
    assert all(ex.zget(i, key) == b"END\r\n" for i in range(3))
    p.send(b"delete /foo/del\r\n")
    assert p.readline() == b"NOT_FOUND\r\n"


def test_add_fails_over(ex: Example) -> None:
    p = ex.proxy
    p.send(b"add /foo/add 0 0 1\r\n1\r\n")
    assert p.readline() == b"STORED\r\n"
    p.send(b"add /foo/add 0 0 1\r\n2\r\n")
    assert p.readline() == b"NOT_STORED\r\n"


def test_meta_routes_use_the_near_zone(ex: Example) -> None:
    p = ex.proxy
    w = p.watch("proxyuser")
    p.send(b"ms /foo/meta 3 T0 F5\r\nabc\r\n")
    assert p.readline() == b"HD\r\n"
    assert ex.zget(0, b"/foo/meta") == b"VALUE /foo/meta 5 3\r\nabc\r\nEND\r\n"
    assert ex.zget(1, b"/foo/meta") == b"END\r\n"  # no invalidation for meta sets
    p.send(b"mg /foo/meta v f Oreplaceme\r\n")
    assert p.read_until(b"abc\r\n") == b"VA 3 f5 Oreplaced\r\nabc\r\n"
    p.send(b"mg /foo/meta l\r\n")
    assert p.readline().startswith(b"HD l")
    w.expect(r"type=proxy_user msg=client asks for the last access time of /foo/meta\n$")
    p.send(b"ms /foo/missing 2 C123 Oab\r\nhi\r\n")
    assert p.readline() == b"NF Oab\r\n"
    w.expect(r"type=proxy_user msg=meta set NF for /foo/missing: Oab\n$")


def test_prefix_trim(ex: Example) -> None:
    p = ex.proxy
    p.send(b"set /trim/short 0 0 2\r\nok\r\n")
    assert p.readline() == b"STORED\r\n"
    assert ex.zget(0, b"short") == value(b"short", b"ok")
    p.send(b"get /trim/short\r\n")
    assert p.read_until(b"END\r\n") == value(b"short", b"ok")


def test_unknown_prefix_counts_in_a_user_stat(ex: Example) -> None:
    p = ex.proxy
    for _ in range(3):
        p.send(b"get /nope/x\r\n")
        assert p.readline() == b"SERVER_ERROR no route\r\n"
    stats = p.stat_lines("proxy")
    assert stats[:2] == ["STAT user_default_route 3", "STAT user_invalidations 0"]
