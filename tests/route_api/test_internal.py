"""Spec 10.4 (memcached's t/proxyinternal.t) and 2.10 / 8: ``mcp.internal`` runs requests
against the proxy's own cache (tests/configs/route_api/internal.lua routes ``/b/`` keys
there).

The replies must be the ones a real memcached gives for the same bytes: mcpframe takes the
[R] fixes of spec 8 (normal replace, gat applies its exptime, bare ``ms``, the ``M`` flag,
noreply and ``q`` honoured, multiget pieces without their END), which is exactly plain
memcached's behaviour, so a real memcached is the reference here.
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import Client, Memcached
from tests.route_api.conftest import Proxy, StartProxy


@pytest.fixture
def internal(start_proxy: StartProxy) -> Proxy:
    return start_proxy("internal.lua")


SEQUENCE = (
    b"set /b/k1 5 0 3\r\nabc\r\nget /b/k1\r\ngets /b/k1\r\n"
    b"add /b/k1 0 0 1\r\nx\r\nadd /b/k2 0 0 1\r\ny\r\n"
    b"replace /b/k2 3 0 2\r\nzz\r\nreplace /b/none 0 0 1\r\nq\r\n"
    b"append /b/k1 0 0 1\r\nd\r\nprepend /b/k1 0 0 1\r\n_\r\nget /b/k1\r\n"
    b"cas /b/k1 0 0 1 1\r\nz\r\ncas /b/none 0 0 1 1\r\nz\r\n"
    b"get /b/k1 /b/k2 /b/none\r\ngets /b/none /b/k2\r\nget /b/x /b/y\r\n"
    b"set /b/n 0 0 2\r\n10\r\nincr /b/n 5\r\ndecr /b/n 20\r\nincr /b/none 1\r\n"
    b"incr /b/k1 1\r\nset /b/n 0 0 2\r\n10\r\ndecr /b/n 1\r\nget /b/n\r\n"
    b"touch /b/n 100\r\ntouch /b/none 100\r\ngat 100 /b/n\r\ngats 100 /b/n /b/k2\r\n"
    b"delete /b/n\r\ndelete /b/n\r\n"
    b"ms /b/m 2 T0 F7\r\nhi\r\nmg /b/m v f s k\r\nmg /b/m O123 k q\r\nmg /b/none v q\r\n"
    b"mg /b/none v\r\nmg /b/none v k Oab\r\nmd /b/m q\r\nmd /b/m\r\n"
    b"ma /b/ctr N0 J5 v\r\nma /b/ctr D3 v\r\nma /b/ctr MD D2 v\r\nma /b/ctr q\r\n"
    b"ma /b/none\r\nms /b/mode 2 MA\r\nxy\r\nms /b/m2 2\r\nhi\r\nms /b/m2 2 MA\r\nyo\r\n"
    b"mg /b/m2 v\r\nms /b/m3 2 MP\r\nzz\r\nmg /b/m3 v\r\n"
    b"set /b/q 0 0 1 noreply\r\nx\r\nincr /b/q 1 noreply\r\nget /b/q\r\n"
    b"delete /b/q noreply\r\nadd /b/q 0 0 1 noreply\r\nz\r\nget /b/q\r\n"
    b"mg /b/q k v t\r\nmg /b/q s v Oquiet q\r\n"
)
CAS = re.compile(rb"^(VALUE \S+ \d+ \d+) \d+\r$", re.M)


def converse(addr: tuple[str, int], data: bytes) -> bytes:
    c = Client(addr)
    try:
        c.send(data + b"mn\r\n")
        return CAS.sub(rb"\1 <cas>\r", c.read_until(b"MN\r\n"))
    finally:
        c.close()


def test_internal_replies_match_a_real_memcached(
    memcached_server: Memcached, internal: Proxy
) -> None:
    expected = converse(memcached_server.addr, SEQUENCE)
    assert converse(internal.addr, SEQUENCE) == expected


def test_too_large_values(internal: Proxy) -> None:
    internal.send(b"set /b/toolarge 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\n")
    assert internal.readline() == b"SERVER_ERROR object too large for cache\r\n"
    internal.send(b"ms /b/toolarge 2000000 T30\r\n" + b"x" * 2000000 + b"\r\n")
    assert internal.readline() == b"SERVER_ERROR object too large for cache\r\n"
    internal.check_version()


def test_basic_set_get(internal: Proxy) -> None:
    internal.send(b"set /b/foo 0 0 2\r\nhi\r\nget /b/foo\r\n")
    assert internal.read_until(b"END\r\n") == b"STORED\r\nVALUE /b/foo 0 2\r\nhi\r\nEND\r\n"


def test_large_value_flood_releases_everything(internal: Proxy) -> None:
    value = b"v" * 500000
    for i in range(60):
        internal.send(b"set /b/flood%d 0 0 500000\r\n%s\r\n" % (i, value))
        assert internal.readline() == b"STORED\r\n"
    for i in range(60):
        internal.send(b"ms /b/mflood%d 500000 T30\r\n%s\r\n" % (i, value))
        assert internal.readline() == b"HD\r\n"
    internal.send(b"get /b/mflood59\r\n")
    assert internal.read_until(b"END\r\n") == b"VALUE /b/mflood59 0 500000\r\n%s\r\nEND\r\n" % value
    stats = internal.stats("proxy")
    assert stats["buffer_memory_used"] == "0"
    assert internal.stats()["proxy_req_active"] == "0"


def test_unsupported_command_is_a_bad_request_and_frees_its_slot(internal: Proxy) -> None:
    internal.send(b"me /b/foo\r\n")
    assert internal.readline() == b"SERVER_ERROR bad request\r\n"
    internal.send(b"me /b/foo\r\nme /b/bar\r\n")
    assert internal.readline() == b"SERVER_ERROR bad request\r\n"
    assert internal.readline() == b"SERVER_ERROR bad request\r\n"
    assert internal.stats()["proxy_req_active"] == "0"  # [R] 1.6.20 leaked one per call


@pytest.mark.parametrize(
    ("request_", "seen"),
    [
        (b"mg /code/none v\r\n", b"17 true false 0 0"),
        (b"ms /code/x 2\r\nhi\r\n", b"15 true true 0 0"),
        (b"get /code/x\r\n", b"17 true false 0 0"),
        (b"set /code/y 0 0 3\r\nabc\r\n", b"8 true true 0 0"),
        (b"incr /code/none 1\r\n", b"13 true true 0 0"),
    ],
)
def test_internal_responses_as_routes_see_them(
    internal: Proxy, request_: bytes, seen: bytes
) -> None:
    internal.send(request_)
    assert internal.readline() == b"SERVER_ERROR " + seen + b"\r\n"


def test_internal_error_replies_are_ok_with_their_code(internal: Proxy) -> None:
    internal.send(b"set /b/word 0 0 3\r\nabc\r\nincr /code/word 1\r\n")
    assert internal.readline() == b"STORED\r\n"
    # /code/word is another key: a miss. A non-numeric value gives a CLIENT_ERROR reply,
    # which is still an ok() response (spec 2.10).
    assert internal.readline() == b"SERVER_ERROR 13 true true 0 0\r\n"
    internal.send(b"set /code/w 0 0 3\r\nabc\r\n")
    internal.readline()
    internal.send(b"incr /code/w 1\r\n")
    assert internal.readline() == b"SERVER_ERROR 22 true true 0 0\r\n"


def test_internal_value_length(internal: Proxy) -> None:
    internal.send(b"set /code/v 0 0 5\r\nhello\r\n")
    internal.readline()
    internal.send(b"get /code/v\r\n")
    assert internal.readline() == b"SERVER_ERROR 15 true true 5 0\r\n"


def test_internal_responses_are_logged_as_internal(internal: Proxy) -> None:
    w = internal.watch("proxyreqs")
    internal.send(b"get /log/none\r\n")
    assert internal.readline() == b"END\r\n"
    w.expect(
        r"type=proxy_req elapsed=0 type=105 code=17 status=0 be=internal:0 "
        r"detail=internal req=get /log/none\n$"
    )


def test_requests_built_in_lua_run_internally(internal: Proxy) -> None:
    internal.send(b"mg /made/whatever\r\n")
    assert internal.client.readexactly(len(b"VA 3\r\nabc\r\n")) == b"VA 3\r\nabc\r\n"


def test_internal_and_local_share_one_store(internal: Proxy) -> None:
    # Unhooked commands (here: none; /b/ routes are hooked) and mcp.internal reach the same
    # cache: a local "mn"-free check through a second connection's routed get.
    internal.send(b"set /b/shared 0 0 1\r\nx\r\n")
    assert internal.readline() == b"STORED\r\n"
    other = internal.connect()
    other.send(b"get /b/shared\r\n")
    assert other.read_until(b"END\r\n") == b"VALUE /b/shared 0 1\r\nx\r\nEND\r\n"
