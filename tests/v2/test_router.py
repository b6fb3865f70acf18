"""Routers (``mcp.router_new``) through the wire: prefix and anchor modes, command maps,
fallbacks, failures and validation errors (spec v2 section 4; memcached's t/proxyrouter.t).

Every expected reply was recorded from memcached 1.6.45's proxy on tests/configs/v2/router.lua
with the same requests (see conftest.py). The routes answer without backends.
"""

from __future__ import annotations

import pytest

from tests.route_api.conftest import Proxy
from tests.v2.conftest import StartProxy


@pytest.fixture
def routers(start_v2: StartProxy) -> Proxy:
    return start_v2("router.lua", {})


CASES = [
    # prefix mode, stop "|"; an empty or absent prefix falls back to the default
    (b"mg one|key v\r\nmg two|key v\r\nmg one/found v\r\nmg |one v\r\nmg zz|x v\r\n",
     b"HD one\r\nHD two\r\nHD default\r\nHD default\r\nHD default\r\n"),
    # [Q] stop given without mode is not read: "/" still separates
    (b"ms one|x 1\r\na\r\nms one/x 1\r\na\r\n", b"HD default\r\nHD one\r\n"),
    # a multi-byte stop
    (b"md one+#+foo\r\nmd one+#found\r\nmd borked+\r\nmd two+#+\r\n",
     b"HD one\r\nHD default\r\nHD default\r\nHD two\r\n"),
    # anchor mode, one-byte start and stop
    (b"ma _one,bar\r\nma _one+nothing\r\nma _two,\r\nma one,x\r\nma _,x\r\n",
     b"HD one\r\nHD default\r\nHD two\r\nHD default\r\nHD default\r\n"),
    # anchor mode, longer start and stop
    (b"get =?=one__key\r\nget =?=one_nothing\r\nget =?=two__\r\nget =?=__x\r\n",
     b"HD one\r\nHD default\r\nHD two\r\nHD default\r\n"),
    # command tables in the map win over cmap; CMD_ANY_STORAGE is their default
    (b"incr bar|foo 1\r\nincr one|x 1\r\ngets one|x\r\ntouch one|x 1\r\ndecr zz|x 1\r\n",
     b"HD cmap incr\r\nHD one any\r\nHD one gets\r\nHD one any\r\nHD default\r\n"),
    # cmap alone: the key is not looked at
    (b"gat 5 one|test\r\ngats 5 one|test\r\n", b"HD cmap gat\r\nHD default\r\n"),
    # nothing matches and no default: the request fails, its value is swallowed
    (b"append zz 0 0 1\r\nx\r\nappend one/x 0 0 1\r\nx\r\nmn\r\n",
     b"SERVER_ERROR lua start failure\r\nHD one\r\nMN\r\n"),
    # a router picked by a router
    (b"replace one/x 0 0 1\r\nx\r\nmn\r\n", b"SERVER_ERROR lua start failure\r\nMN\r\n"),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "reply"), CASES)
def test_router(routers: Proxy, request_: bytes, reply: bytes) -> None:
    c = routers.connect()
    c.send(request_)
    assert c.read_available(0.3) == reply


ERRORS = [
    "Must pass a table of arguments to mcp.router_new",
    "Must pass map and/or cmap to mcp.router_new",
    "Must pass a table to map argument of router_new",
    "unhandled data in router_new map",
    "Non integer key in router command map in router_new",
    "Bad command in router command map in router_new",
    "Must pass a table to cmap argument of mcp.router_new",
    "must pass a string to stop in mcp.router_new",
    "must pass a non-zero length string to stop in mcp.router_new",
    "stop is too long in mcp.router_new",
    "must specify start and stop if mode is anchor in mcp.router_new",
    "unknown type passed to mcp.router_new",
    "start is too long in mcp.router_new",
    "cannot assign a router to a handle in new_handle",
]


def test_router_errors(routers: Proxy) -> None:
    c = routers.connect()
    c.send(b"set errs 0 0 1\r\nx\r\n")
    text = "\n".join(ERRORS).encode()
    assert c.read_until(b"END\r\n") == b"VALUE errs 0 %d\r\n%s\r\nEND\r\n" % (len(text), text)
