"""A client cannot grow the process without bound (RSS read from /proc).

A client that pipelines requests earning large replies and never reads them, one that
streams a huge value, one that floods small requests: each is held to a bounded amount of
memory (the connection stops running requests while its replies are not read, and stops
reading from its socket), and other clients are served meanwhile.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from tests.helpers import Client, Mcpframe, Memcached
from tests.operations.support import CONFIGS, rss_kb

pytestmark = pytest.mark.timeout(60)

BIG = 512 * 1024


def _greedy_reader(addr: tuple[str, int]) -> socket.socket:
    """A client socket with a tiny receive buffer that will never be read."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(addr)
    return s


def _peak_growth_mb(pid: int, base_kb: int, seconds: float) -> float:
    peak = base_kb
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, rss_kb(pid))
        time.sleep(0.05)
    return (peak - base_kb) / 1024


def _control(addr: tuple[str, int]) -> None:
    c = Client(addr)
    try:
        c.send(b"version\r\n")
        assert c.readline().startswith(b"VERSION ")
    finally:
        c.close()


@pytest.fixture(params=["embedded", "proxy"])
def server(
    request: pytest.FixtureRequest,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> Mcpframe:
    if request.param == "embedded":
        return mcpframe_factory()
    a, b = memcached_factory("-I", "2m"), memcached_factory("-I", "2m")
    env = {"MCP_TEST_PORT_A": str(a.port), "MCP_TEST_PORT_B": str(b.port)}
    return mcpframe_factory("--config", str(CONFIGS / "two_backends.lua"), env=env)


def test_client_that_never_reads_large_replies(server: Mcpframe) -> None:
    c = Client(server.addr)
    c.send(b"set big 0 0 %d\r\n" % BIG + b"v" * BIG + b"\r\n")
    assert c.readline() == b"STORED\r\n"
    c.close()
    base = rss_kb(server.proc.pid)
    greedy = _greedy_reader(server.addr)
    greedy.sendall(b"get big\r\n" * 2000)  # 1 GB of replies owed
    growth = _peak_growth_mb(server.proc.pid, base, 1.5)
    assert growth < 64, f"RSS grew {growth:.0f} MB"
    _control(server.addr)
    greedy.close()


def test_flood_of_small_requests_never_read(server: Mcpframe) -> None:
    base = rss_kb(server.proc.pid)
    greedy = _greedy_reader(server.addr)
    greedy.settimeout(5)
    payload = b"mg nope v\r\n" * 20_000
    sent = 0
    for _ in range(25):  # up to 500k requests, as many as the server takes within ~5 s
        try:
            greedy.sendall(payload)
        except TimeoutError:
            break  # the server stopped reading: that is the point
        sent += 20_000
    growth = _peak_growth_mb(server.proc.pid, base, 1.0)
    assert growth < 64, f"RSS grew {growth:.0f} MB after {sent} requests"
    _control(server.addr)
    greedy.close()


def test_huge_value_is_streamed_away_not_buffered(server: Mcpframe) -> None:
    base = rss_kb(server.proc.pid)
    s = socket.create_connection(server.addr, 10)
    s.sendall(b"set huge 0 0 200000000\r\n")
    chunk = b"z" * (1024 * 1024)
    for _ in range(64):  # 64 MB of a value far over the item size limit
        s.sendall(chunk)
    growth = _peak_growth_mb(server.proc.pid, base, 0.3)
    assert growth < 32, f"RSS grew {growth:.0f} MB"
    _control(server.addr)
    s.close()
