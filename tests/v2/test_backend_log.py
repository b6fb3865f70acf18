"""Automatic backend logging (``mcp.backend{log = {...}}``) through the wire: which results
reach ``watch proxyreqs`` and how their lines read (spec v2 8.8, 10.6). Lines recorded from
memcached 1.6.45's proxy on tests/configs/v2/backend_log.lua, in front of fake backends."""

from __future__ import annotations

import time

import pytest

from tests.route_api.conftest import Mocks, Proxy
from tests.v2.conftest import StartProxy


@pytest.fixture
def logged(start_v2: StartProxy, mocks: Mocks) -> Proxy:
    proxy = start_v2("backend_log.lua", mocks.env())
    mocks.accept_all()
    return proxy


def line(
    elapsed: str, rtype: int, code: int, status: int, res: str, port: int, detail: str, req: str
) -> str:
    return (
        rf"^ts=\d+\.\d+ gid=\d+ type=proxy_req elapsed={elapsed} type={rtype} code={code} "
        rf"status={status} res={res} cfd=\d+ be=127\.0\.0\.1:{port} detail={detail} "
        rf"req={req}$"
    )


def ask(proxy: Proxy, mocks: Mocks, i: int, request: bytes, reply: bytes) -> None:
    proxy.send(request)
    assert mocks[i].read_line() == request
    mocks[i].send(reply)
    assert proxy.readline() == reply


def test_rate_one_logs_every_result(logged: Proxy, mocks: Mocks) -> None:
    w = logged.watch("proxyreqs")
    port = mocks.fakes[0].port
    ask(logged, mocks, 0, b"mg 1/a v\r\n", b"EN\r\n")
    w.expect(line(r"\d+", 101, 17, 0, "ok", port, "", "mg 1/a v"))
    ask(logged, mocks, 0, b"mg 1/b v t\r\n", b"HD t-1\r\n")
    w.expect(line(r"\d+", 101, 15, 0, "good", port, "", "mg 1/b v t"))
    # a route that only forwards is logged too (it runs in Lua for it)
    ask(logged, mocks, 0, b"md 1/c\r\n", b"NF\r\n")
    w.expect(line(r"\d+", 101, 13, 0, "good", port, "", "md 1/c"))


def test_errors_logs_failed_results_only(logged: Proxy, mocks: Mocks) -> None:
    w = logged.watch("proxyreqs")
    port = mocks.fakes[1].port
    ask(logged, mocks, 1, b"mg 2/a v\r\n", b"HD\r\n")
    ask(logged, mocks, 1, b"mg 2/b v\r\n", b"SERVER_ERROR boom\r\n")
    w.expect(line(r"\d+", 108, 23, -1, "any", port, "errs", "mg 2/b v"))
    assert w.quiet() == b""


def test_deadline_logs_slow_results_only(logged: Proxy, mocks: Mocks) -> None:
    w = logged.watch("proxyreqs")
    port = mocks.fakes[2].port
    ask(logged, mocks, 2, b"mg 3/fast v\r\n", b"EN\r\n")
    logged.send(b"mg 3/slow v\r\n")
    assert mocks[2].read_line() == b"mg 3/slow v\r\n"
    time.sleep(0.4)
    mocks[2].send(b"EN\r\n")
    assert logged.readline() == b"EN\r\n"
    m = w.expect(line(r"(\d+)", 101, 17, 0, "ok", port, "slow", "mg 3/slow v"))
    assert int(m[1]) >= 150_000
    assert w.quiet() == b""


def test_nothing_is_logged_without_a_watcher(logged: Proxy, mocks: Mocks) -> None:
    ask(logged, mocks, 0, b"mg 1/a v\r\n", b"EN\r\n")
    w = logged.watch("proxyreqs")
    assert w.quiet() == b""
