"""Multi-key gets through route_failover and route_allfastest run without Lua (issue 15): one
get per backend of a child, and each key's answer what its own route would have answered
(tests/configs/routelib/faults.lua, one pool per fake backend: p1, p2, p3).

1.6.45's proxy sends one get per key, so the backends see other bytes there: these tests are
mcpframe's own (``fixed``). The per-key answers they expect are the ones test_faults.py
recorded from 1.6.45 for a key alone.
"""

from __future__ import annotations

import time

import pytest

from tests.route_api.conftest import Mocks, Proxy

pytestmark = pytest.mark.fixed


def value(key: bytes, data: bytes) -> bytes:
    return b"VALUE %s 0 %d\r\n%s\r\n" % (key, len(data), data)


def test_failover_asks_its_first_child_with_one_get(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"get fo/a fo/b fo/c\r\n")
    assert mocks[0].read_line() == b"get fo/a fo/b fo/c\r\n"
    mocks[0].send(value(b"fo/a", b"1") + value(b"fo/c", b"3") + b"END\r\n")
    assert faults.read_until(b"END\r\n") == value(b"fo/a", b"1") + value(b"fo/c", b"3") + b"END\r\n"
    assert mocks[1].read_available(0.2) == b""


def test_failover_keys_go_on_alone_after_an_error(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"get fo/a fo/b\r\n")
    assert mocks[0].read_line() == b"get fo/a fo/b\r\n"
    mocks[0].send(b"SERVER_ERROR e1\r\n")
    assert mocks[1].read_line() == b"get fo/a\r\n"
    assert mocks[1].read_line() == b"get fo/b\r\n"
    mocks[1].send(b"SERVER_ERROR e2\r\n")
    mocks[1].send(value(b"fo/b", b"2") + b"END\r\n")
    # fo/a's third attempt
    assert mocks[2].read_line() == b"get fo/a\r\n"
    mocks[2].send(b"END\r\n")
    assert faults.read_until(b"END\r\n") == value(b"fo/b", b"2") + b"END\r\n"


def test_failover_miss_true_moves_the_missed_keys_on(faults: Proxy, mocks: Mocks) -> None:
    # focount: misses move on, two attempts at most
    faults.send(b"get focount/a focount/b focount/c\r\n")
    assert mocks[0].read_line() == b"get focount/a focount/b focount/c\r\n"
    mocks[0].send(value(b"focount/b", b"b0") + b"END\r\n")
    assert mocks[1].read_line() == b"get focount/a\r\n"
    assert mocks[1].read_line() == b"get focount/c\r\n"
    mocks[1].send(value(b"focount/a", b"a1") + b"END\r\nSERVER_ERROR e2\r\n")
    # focount/c: the last attempt failed, the client gets the miss before it
    assert (
        faults.read_until(b"END\r\n")
        == value(b"focount/a", b"a1") + value(b"focount/b", b"b0") + b"END\r\n"
    )
    assert mocks[2].read_available(0.2) == b""


def test_allfastest_answers_each_key_from_the_first_reply(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"get fast/a fast/b\r\n")
    for i in range(3):
        assert mocks[i].read_line() == b"get fast/a fast/b\r\n"
    mocks[1].send(value(b"fast/b", b"b1") + b"END\r\n")
    # (fast/a's miss is an answer: misses do not wait)
    assert faults.read_until(b"END\r\n") == value(b"fast/b", b"b1") + b"END\r\n"
    # the late replies are read and dropped; the connections stay in step
    mocks[0].send(value(b"fast/a", b"a0") + value(b"fast/b", b"b0") + b"END\r\n")
    mocks[2].send(b"SERVER_ERROR e3\r\n")
    faults.send(b"get fo/x fo/y\r\n")
    assert mocks[0].read_line() == b"get fo/x fo/y\r\n"
    mocks[0].send(value(b"fo/y", b"y") + b"END\r\n")
    assert faults.read_until(b"END\r\n") == value(b"fo/y", b"y") + b"END\r\n"


def test_allfastest_miss_true_waits_per_key(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"get fastmiss/a fastmiss/b fastmiss/c\r\n")
    for i in range(3):
        assert mocks[i].read_line() == b"get fastmiss/a fastmiss/b fastmiss/c\r\n"
    mocks[0].send(b"END\r\n")
    time.sleep(0.05)
    mocks[1].send(value(b"fastmiss/b", b"b1") + b"END\r\n")
    faults.nothing(0.2)  # fastmiss/a and fastmiss/c wait for the third child
    mocks[2].send(value(b"fastmiss/c", b"c2") + value(b"fastmiss/b", b"b2") + b"END\r\n")
    assert (
        faults.read_until(b"END\r\n")
        == value(b"fastmiss/b", b"b1") + value(b"fastmiss/c", b"c2") + b"END\r\n"
    )


def test_allfastest_all_errors_answer_the_last_childs(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"get fast/a fast/b\r\n")
    for i in range(3):
        assert mocks[i].read_line() == b"get fast/a fast/b\r\n"
    for i in (2, 0, 1):
        mocks[i].send(b"SERVER_ERROR e%d\r\n" % (i + 1))
        time.sleep(0.05)
    assert faults.read_until(b"END\r\n") == b"SERVER_ERROR e3\r\n" * 2 + b"END\r\n"


def test_keys_of_different_routes_go_one_by_one(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"get fo/a fast/b\r\n")
    assert mocks[0].read_line() == b"get fo/a\r\n"
    assert mocks[0].read_line() == b"get fast/b\r\n"
    assert mocks[1].read_line() == b"get fast/b\r\n"
    assert mocks[2].read_line() == b"get fast/b\r\n"
    mocks[0].send(value(b"fo/a", b"a") + b"END\r\n" + b"END\r\n")
    assert faults.read_until(b"END\r\n") == value(b"fo/a", b"a") + b"END\r\n"
    mocks[1].send(b"END\r\n")
    mocks[2].send(b"END\r\n")
