"""The client connection, socket-free (tests/proxy/harness.py): replies in request order
whether answered locally or routed, flow control (reading paused past the requests a client
may have in flight, or while it does not read its replies; resumed when it catches up), and
the connection closing after the replies owed before ``quit``."""

from __future__ import annotations

from collections.abc import Callable

from mcpframe.proxy.client import INITIAL_INFLIGHT
from tests.proxy.harness import Proxy

CONFIG = """
function mcp_config_pools()
    return mcp.pool({ mcp.backend("a", "127.0.0.1", 11211) })
end

function mcp_config_routes(p)
    mcp.attach(mcp.CMD_GET, function(r) return p(r) end)
end
"""

Make = Callable[[str], Proxy]


def test_local_and_routed_replies_keep_request_order(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    a = proxy.backends["a"]
    c = proxy.client()
    c.send(b"get k1\r\nversion\r\nbogus\r\nget k2\r\nmn\r\n")
    proxy.turn()
    assert c.received() == b""  # everything waits for the first reply
    assert a.received() == b"get k1\r\nget k2\r\n"
    a.reply(b"END\r\n")
    proxy.turn()
    version = c.received()
    assert version.startswith(b"END\r\nVERSION ") and version.endswith(b"\r\nERROR\r\n")
    a.reply(b"END\r\n")
    proxy.turn()
    assert c.received() == b"END\r\nMN\r\n"


def test_reading_pauses_past_the_requests_in_flight_and_resumes(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    a = proxy.backends["a"]
    c = proxy.client()
    n = INITIAL_INFLIGHT * 3
    c.send(b"".join(b"get k%d\r\n" % i for i in range(n)))
    proxy.turn()
    # A new connection has INITIAL_INFLIGHT requests in flight at most; the rest wait,
    # parsed, and the socket is not read meanwhile.
    assert a.received().count(b"get ") == INITIAL_INFLIGHT
    assert not c.transport.reading
    a.reply(b"END\r\n" * INITIAL_INFLIGHT)
    proxy.turn()
    assert c.received() == b"END\r\n" * INITIAL_INFLIGHT
    # Small replies seen: the pipeline widens, everything left goes, reading resumes.
    assert a.received().count(b"get ") == n - INITIAL_INFLIGHT
    assert c.transport.reading
    a.reply(b"END\r\n" * (n - INITIAL_INFLIGHT))
    proxy.turn()
    assert c.received() == b"END\r\n" * (n - INITIAL_INFLIGHT)


def test_a_client_that_does_not_read_is_not_served_more(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    c = proxy.client()
    c.conn.pause_writing()  # the socket's send buffer is full
    c.send(b"version\r\n" * 3)
    proxy.turn()
    assert c.received() == b""
    assert not c.transport.reading and c.transport.pauses == 1
    c.conn.resume_writing()
    proxy.turn()
    assert c.received().count(b"VERSION ") == 3
    assert c.transport.reading


def test_quit_closes_after_the_replies_owed_before_it(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    a = proxy.backends["a"]
    c = proxy.client()
    c.send(b"get k\r\nquit\r\nget never\r\n")
    proxy.turn()
    assert a.received() == b"get k\r\n"
    assert not c.transport.closed
    a.reply(b"END\r\n")
    proxy.turn()
    assert c.received() == b"END\r\n"
    assert c.transport.closed
