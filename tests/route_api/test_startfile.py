"""Spec 10.1 (memcached's t/proxy.t with t/startfile.lua): zones, failover with mcp.await,
prefix and command routes, in front of five real memcached servers.

tests/configs/route_api/startfile.lua: pools ``foo`` and ``bar`` in zones z1..z3; bar's z1
points at a port where nothing listens. SET/DELETE go to every zone, ADD and everything else
fail over from z1 to the other zones, MG/MS only use z1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import Client, Mcpframe, Memcached
from tests.route_api.conftest import config, refused_port, stop_all


class Setup:
    def __init__(self, servers: list[Memcached], proxy: Mcpframe) -> None:
        self.servers = servers
        self.proxy = proxy


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    servers: list[Memcached] = []
    proxy = None
    try:
        servers = [Memcached() for _ in range(5)]
        env = {f"MCP_M{i + 1}": str(m.port) for i, m in enumerate(servers)}
        env["MCP_DOWN"] = str(refused_port())
        proxy = Mcpframe("--config", config("startfile.lua"), env=env)
        yield Setup(servers, proxy)
    finally:
        if proxy is not None:
            proxy.stop()
        stop_all(servers)


@pytest.fixture
def c(setup: Setup) -> Iterator[Client]:
    client = Client(setup.proxy.addr)
    yield client
    client.close()


def check_version(c: Client) -> None:
    c.send(b"version\r\n")
    assert c.readline() == b"VERSION 1.6.45\r\n"


def gets_cas(c: Client, key: bytes) -> int:
    c.send(b"gets " + key + b"\r\n")
    head = c.readline()
    assert head.startswith(b"VALUE " + key + b" "), head
    c.read_until(b"END\r\n")
    return int(head.split()[4])


def test_incr_decr(c: Client) -> None:
    c.send(b"set /foo/num 0 0 1\r\n1\r\n")
    assert c.readline() == b"STORED\r\n"
    steps = [(b"incr", 1, b"2"), (b"incr", 8, b"10"), (b"decr", 1, b"9"), (b"decr", 9, b"0"),
             (b"decr", 5, b"0")]  # fmt: skip
    for cmd, delta, want in steps:
        c.send(b"%s /foo/num %d\r\n" % (cmd, delta))
        assert c.readline() == want + b"\r\n"
        gets_cas(c, b"/foo/num")


def test_gat_and_gats_multiget(c: Client) -> None:
    c.send(b"gat 10 /foo/foo1\r\n")
    assert c.readline() == b"END\r\n"
    for k in (b"/foo/foo1", b"/foo/foo2"):
        c.send(b"set " + k + b" 0 0 7\r\nfooval1\r\n")
        assert c.readline() == b"STORED\r\n"
    c.send(b"gats 10 /foo/foo1 /foo/foo2\r\n")
    out = c.read_until(b"END\r\n").split(b"\r\n")
    assert out[0].startswith(b"VALUE /foo/foo1 0 7 ") and out[0].split()[4].isdigit()
    assert out[1] == b"fooval1"
    assert out[2].startswith(b"VALUE /foo/foo2 0 7 ")
    assert out[3:] == [b"fooval1", b"END", b""]
    c.send(b"gat 10 /foo/foo1 /foo/foo2\r\n")
    assert c.read_until(b"END\r\n") == (
        b"VALUE /foo/foo1 0 7\r\nfooval1\r\nVALUE /foo/foo2 0 7\r\nfooval1\r\nEND\r\n"
    )


def test_gets_and_cas(c: Client) -> None:
    c.send(b"add /foo/cas 0 0 1\r\nx\r\n")
    assert c.readline() == b"STORED\r\n"
    c.send(b"cas /foo/cas 0 0 1 0\r\ny\r\n")
    assert c.readline() == b"EXISTS\r\n"
    cas = gets_cas(c, b"/foo/cas")
    c.send(b"cas /foo/cas 0 0 1 %d\r\nz\r\n" % cas)
    assert c.readline() == b"STORED\r\n"
    c.send(b"get /foo/cas\r\n")
    assert c.read_until(b"END\r\n") == b"VALUE /foo/cas 0 1\r\nz\r\nEND\r\n"


def test_touch(c: Client) -> None:
    c.send(b"set /foo/t 0 2 1\r\nx\r\n")
    assert c.readline() == b"STORED\r\n"
    c.send(b"touch /foo/t 10\r\n")
    assert c.readline() == b"TOUCHED\r\n"


def test_line_endings(c: Client, setup: Setup) -> None:
    direct = Client(setup.servers[0].addr)
    direct.send(b"version\n")
    assert direct.readline().startswith(b"VERSION ")
    direct.close()
    # 1.6.20 answers "version\n" with CLIENT_ERROR; mcpframe accepts a bare \n as plain
    # memcached and 1.6.22 do.
    c.send(b"version\n")
    assert c.readline() == b"VERSION 1.6.45\r\n"
    check_version(c)


def test_set_get_delete(c: Client) -> None:
    c.send(b"set /foo/a 0 0 2\r\nhi\r\n")
    assert c.readline() == b"STORED\r\n"
    c.send(b"get /foo/a\r\n")
    assert c.read_until(b"END\r\n") == b"VALUE /foo/a 0 2\r\nhi\r\nEND\r\n"
    c.send(b"delete /foo/a\r\n")
    assert c.readline() == b"DELETED\r\n"
    c.send(b"get /foo/a\r\n")
    assert c.readline() == b"END\r\n"


def test_add(c: Client) -> None:
    c.send(b"add /foo/add 0 0 1\r\n1\r\n")
    assert c.readline() == b"STORED\r\n"
    c.send(b"add /foo/add 0 0 1\r\n2\r\n")
    assert c.readline() == b"NOT_STORED\r\n"
    c.send(b"get /foo/add\r\n")
    assert c.read_until(b"END\r\n") == b"VALUE /foo/add 0 1\r\n1\r\nEND\r\n"


def test_pipelined_sets(c: Client) -> None:
    c.send(b"set /foo/p 0 0 1\r\nx\r\n" * 5)
    for _ in range(5):
        assert c.readline() == b"STORED\r\n"


def test_bulk_with_a_zone_down(c: Client, setup: Setup) -> None:
    for pfx in (b"foo", b"bar"):
        for i in range(20):
            c.send(b"set /%s/bulk%d 0 0 4\r\n%04d\r\n" % (pfx, i, i))
            assert c.readline() == b"STORED\r\n"  # bar: z1 is down, z2/z3 store it
    big = [bytes([65 + i]) * 256000 for i in range(4)]
    for i, value in enumerate(big):
        c.send(b"set /foo/big%d 0 0 256000\r\n%s\r\n" % (i, value))
        assert c.readline() == b"STORED\r\n"
    for pfx in (b"foo", b"bar"):
        for i in range(20):
            c.send(b"get /%s/bulk%d\r\n" % (pfx, i))
            assert c.read_until(b"END\r\n") == b"VALUE /%s/bulk%d 0 4\r\n%04d\r\nEND\r\n" % (
                pfx, i, i,
            )  # fmt: skip
    for i, value in enumerate(big):
        c.send(b"get /foo/big%d\r\n" % i)
        assert c.read_until(b"END\r\n") == b"VALUE /foo/big%d 0 256000\r\n%s\r\nEND\r\n" % (
            i, value,
        )  # fmt: skip
    # Every zone of foo holds the values (walk-all sets); bar's live zones too.
    for m in (*setup.servers[:3], *setup.servers[3:]):
        direct = Client(m.addr)
        key = b"/foo/bulk3" if m in setup.servers[:3] else b"/bar/bulk3"
        direct.send(b"get " + key + b"\r\n")
        assert direct.read_until(b"END\r\n") == b"VALUE %s 0 4\r\n0003\r\nEND\r\n" % key
        direct.close()


def test_failover_reads_from_a_far_zone(c: Client, setup: Setup) -> None:
    # Only z3 has the key: z1 misses, the far zones are awaited and the hit wins.
    direct = Client(setup.servers[2].addr)
    direct.send(b"set /foo/far 0 0 3\r\nfar\r\n")
    assert direct.readline() == b"STORED\r\n"
    direct.close()
    c.send(b"get /foo/far\r\n")
    assert c.read_until(b"END\r\n") == b"VALUE /foo/far 0 3\r\nfar\r\nEND\r\n"
    c.send(b"get /foo/nowhere\r\n")
    assert c.readline() == b"END\r\n"


def test_meta_routes_use_the_near_zone(c: Client, setup: Setup) -> None:
    c.send(b"ms /foo/meta 2 T0 Oab\r\nhi\r\n")
    assert c.readline() == b"HD Oab\r\n"
    c.send(b"mg /foo/meta v Oxy\r\n")
    assert c.read_until(b"hi\r\n") == b"VA 2 Oxy\r\nhi\r\n"
    direct = Client(setup.servers[1].addr)  # z2 never saw it
    direct.send(b"mg /foo/meta v\r\n")
    assert direct.readline() == b"EN\r\n"
    direct.close()


def test_unknown_prefix_and_the_example_stat(c: Client) -> None:
    c.send(b"get /nope/a\r\n")
    assert c.readline() == b"SERVER_ERROR no route\r\n"
    c.send(b"set /nope/a 0 0 1\r\nx\r\n")
    assert c.readline() == b"SERVER_ERROR no route\r\n"
    c.send(b"stats proxy\r\n")
    stats = c.read_until(b"END\r\n").decode()
    lines = stats.splitlines()
    assert lines[0].startswith("STAT user_example ") and int(lines[0].split()[2]) >= 2
    assert lines[1] == "STAT user_another 0"
    check_version(c)
