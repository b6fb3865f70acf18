"""``mcp.log_req`` and ``mcp.log_reqsample`` in an API v2 config: 1.6.45's line, with ``res=``
and ``cfd=`` (spec v2 10.6, 10.7). Lines and replies recorded from memcached 1.6.45's proxy on
tests/configs/v2/log_req.lua, in front of fake backends. API v1 configs keep 1.6.20's line
(tests/route_api/test_units.py)."""

from __future__ import annotations

import pytest

from tests.route_api.conftest import Mocks, Proxy
from tests.v2.conftest import StartProxy


@pytest.fixture
def logs(start_v2: StartProxy, mocks: Mocks) -> Proxy:
    proxy = start_v2("log_req.lua", mocks.env())
    mocks.conns = [mocks.fakes[0].accept()]
    return proxy


def test_lines_carry_res_and_cfd(logs: Proxy, mocks: Mocks) -> None:
    w = logs.watch("proxyreqs")
    port = mocks.fakes[0].port
    logs.send(b"mg foo v\r\n")
    assert mocks[0].read_line() == b"mg foo v\r\n"
    mocks[0].send(b"EN\r\n")
    assert logs.readline() == b"EN\r\n"
    head = r"^ts=\d+\.\d+ gid=\d+ type=proxy_req "
    be = rf"be=127\.0\.0\.1:{port}"
    w.expect(head + rf"elapsed=\d+ type=101 code=17 status=0 res=ok cfd=0 {be} "
             r"detail=plain req=mg foo v$")  # fmt: skip
    m = w.expect(head + rf"elapsed=\d+ type=101 code=17 status=0 res=ok cfd=(\d+) {be} "
                 r"detail=withfd req=mg foo v$")  # fmt: skip
    assert int(m[1]) > 2  # the client's descriptor (rctx:cfd())
    # [Q] 1.6.45 prints res=good without a response
    w.expect(head + r"elapsed=0 type=0 code=0 status=0 res=good cfd=0 be=: detail=nores "
             r"req=mg foo v$")  # fmt: skip
    assert w.quiet() == b""  # log_reqsample: errors only

    logs.send(b"mg bar v\r\n")
    assert mocks[0].read_line() == b"mg bar v\r\n"
    mocks[0].send(b"HD t-1\r\n")
    assert logs.readline() == b"HD t-1\r\n"
    w.expect(head + rf"elapsed=\d+ type=101 code=15 status=0 res=good cfd=0 {be} detail=plain ")
    w.expect(r"res=good cfd=\d+ .* detail=withfd ")
    w.expect(r"res=good cfd=0 be=: detail=nores ")
    assert w.quiet() == b""

    logs.send(b"mg baz v\r\n")
    assert mocks[0].read_line() == b"mg baz v\r\n"
    mocks[0].send(b"SERVER_ERROR boom\r\n")
    assert logs.readline() == b"SERVER_ERROR boom\r\n"
    w.expect(r"type=108 code=23 status=-1 res=any cfd=0 .* detail=plain req=mg baz v$")
    w.expect(r"res=any cfd=\d+ .* detail=withfd ")
    w.expect(r"res=good cfd=0 be=: detail=nores ")
    w.expect(rf"type=108 code=23 status=-1 res=any cfd=7 {be} detail=errors req=mg baz v$")


def test_cfd_must_be_an_integer(logs: Proxy) -> None:
    w = logs.watch("proxyreqs", "proxyevents")
    logs.send(b"md c\r\n")
    assert logs.readline() == b"HD\r\n"
    w.expect(r"type=proxy_req elapsed=0 type=0 code=0 status=0 res=good cfd=12 be=: detail=str ")
    logs.send(b"md a\r\n")
    assert logs.readline() == b"SERVER_ERROR lua failure\r\n"
    w.expect(
        r"type=proxy_error msg=\S*log_req\.lua:\d+: bad argument #4 to 'log_req' "
        r"\(number expected, got string\)$"
    )
    logs.send(b"md b\r\n")
    assert logs.readline() == b"SERVER_ERROR lua failure\r\n"
    w.expect(
        r"type=proxy_error msg=\S*log_req\.lua:\d+: bad argument #7 to 'log_reqsample' "
        r"\(number has no integer representation\)$"
    )
