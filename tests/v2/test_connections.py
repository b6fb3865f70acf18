"""``mcp.backend{connections = N}`` through the wire (spec v2 8.3): N connections to the
backend, and which one each batch of requests takes. Recorded from memcached 1.6.45's proxy
on tests/configs/v2/connections.lua, in front of a fake backend."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.fakebackend import FakeBackend, FakeConn
from tests.helpers import free_port
from tests.route_api.conftest import Proxy
from tests.v2.conftest import StartProxy


@pytest.fixture
def fake() -> Iterator[FakeBackend]:
    f = FakeBackend()
    yield f
    f.close()


@pytest.fixture
def three(start_v2: StartProxy, fake: FakeBackend) -> tuple[Proxy, list[FakeConn]]:
    proxy = start_v2("connections.lua", {"MCP_B1": str(fake.port)})
    conns = [fake.accept() for _ in range(3)]
    return proxy, conns


def which(conns: list[FakeConn], request: bytes) -> int:
    """The connection that received ``request`` (and nothing else)."""
    got = [c.read_available(0.3) for c in conns]
    hits = [i for i, data in enumerate(got) if data]
    assert len(hits) == 1 and got[hits[0]] == request, got
    return hits[0]


def test_three_connections_are_opened(
    three: tuple[Proxy, list[FakeConn]], fake: FakeBackend
) -> None:
    proxy, _ = three
    fake.listener.settimeout(0.5)
    with pytest.raises(TimeoutError):
        fake.listener.accept()
    # one backend object, three sockets
    assert proxy.stats()["proxy_backend_total"] == "1"


def test_light_load_uses_the_first_connection(three: tuple[Proxy, list[FakeConn]]) -> None:
    proxy, conns = three
    used = set()
    for i in range(4):
        request = f"mg k{i} v\r\n".encode()
        proxy.send(request)
        n = which(conns, request)
        used.add(n)
        conns[n].send(b"EN\r\n")
        assert proxy.readline() == b"EN\r\n"
    assert len(used) == 1


def test_a_busy_connection_sends_the_next_batch_elsewhere(
    three: tuple[Proxy, list[FakeConn]],
) -> None:
    proxy, conns = three
    # (one client each: memcached reads no more of a client's requests while some wait)
    clients = [proxy.connect() for _ in range(4)]
    order = []
    for i in range(3):
        request = f"mg held{i} v\r\n".encode()
        clients[i].send(request)
        order.append(which(conns, request))
    # each batch found the connections before it busy: all three used
    assert sorted(order) == [0, 1, 2]
    # all busy (one each): the fewest outstanding, the first of them
    clients[3].send(b"mg held3 v\r\n")
    assert which(conns, b"mg held3 v\r\n") == order[0]
    for i, n in enumerate(order):
        conns[n].send(b"EN\r\n")
        assert clients[i].readline() == b"EN\r\n"
    conns[order[0]].send(b"EN\r\n")
    assert clients[3].readline() == b"EN\r\n"
    # one batch of two pipelined requests goes whole to one connection
    proxy.send(b"mg p1 v\r\nmg p2 v\r\n")
    got = [c.read_available(0.3) for c in conns]
    assert sorted(got, key=len)[-1] == b"mg p1 v\r\nmg p2 v\r\n"
    assert sum(1 for data in got if data) == 1


def test_stats_proxybe_counts_bad_connections(start_v2: StartProxy) -> None:
    proxy = start_v2("connections_bad.lua", {"MCP_B1": str(free_port())})
    deadline = time.monotonic() + 5
    while (lines := proxy.stat_lines("proxybe")) != ["STAT bad_dead 2"]:
        assert time.monotonic() < deadline, lines
        time.sleep(0.1)
    proxy.send(b"mg k v\r\n")
    assert proxy.readline() == b"SERVER_ERROR backend failure\r\n"
    assert proxy.stats()["proxy_backend_total"] == "1"
