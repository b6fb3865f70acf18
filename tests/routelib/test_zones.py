"""Zones: route_zfailover and route_failover over a pool set (tests/configs/routelib/zones.lua:
set_zs with zones z1, z2, z3 on three fake backends; the global local_zone is z1).

Expected replies recorded from memcached 1.6.45's proxy on the same file, except the tests
marked ``fixed``, where mcpframe does what 1.6.45's library meant (docs/routelib.md, "How
mcpframe's library differs").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.route_api.conftest import Mocks, Proxy
from tests.routelib.conftest import StartRoutelib
from tests.routelib.test_faults import user_stat


@pytest.fixture
def zones(start_routelib: StartRoutelib, mocks: Mocks) -> Iterator[Proxy]:
    proxy = start_routelib("zones.lua", mocks.env())
    mocks.accept_all()
    yield proxy


def test_zfailover_answers_a_local_hit(zones: Proxy, mocks: Mocks) -> None:
    zones.send(b"mg zf/a\r\n")
    assert mocks[0].read_line() == b"mg zf/a\r\n"
    mocks[0].send(b"HD\r\n")
    assert zones.readline() == b"HD\r\n"
    assert mocks[1].read_available(0.2) == b""


def fan_out(zones: Proxy, mocks: Mocks, line: bytes, near: bytes, *far: bytes) -> None:
    """Send ``line``: the local zone (z1) answers ``near``, then each far zone (z2, z3) gets
    the request and answers in order."""
    zones.send(line)
    assert mocks[0].read_line() == line
    mocks[0].send(near)
    for i in (1, 2):
        assert mocks[i].read_line() == line
    for i, reply in enumerate(far, 1):
        mocks[i].send(reply)


def test_zfailover_fans_out_after_a_local_error(zones: Proxy, mocks: Mocks) -> None:
    fan_out(zones, mocks, b"mg zf/a\r\n", b"SERVER_ERROR local\r\n")
    mocks[2].send(b"HD z3\r\n")
    assert zones.readline() == b"HD z3\r\n"
    mocks[1].send(b"EN\r\n")


def test_zfailover_miss_true_fans_out_after_a_local_miss(zones: Proxy, mocks: Mocks) -> None:
    fan_out(zones, mocks, b"mg zfmiss/a\r\n", b"EN\r\n", b"EN\r\n", b"EN\r\n")
    assert zones.readline() == b"EN\r\n"


@pytest.mark.fixed
def test_zfailover_returns_a_local_miss_by_default(zones: Proxy, mocks: Mocks) -> None:
    # 1.6.45: with miss unset a local miss fans out too
    zones.send(b"mg zf/a\r\n")
    assert mocks[0].read_line() == b"mg zf/a\r\n"
    mocks[0].send(b"EN\r\n")
    assert zones.readline() == b"EN\r\n"
    assert mocks[1].read_available(0.2) == b""


@pytest.mark.fixed
def test_zfailover_counts_its_retries(zones: Proxy, mocks: Mocks) -> None:
    # 1.6.45 registers zf_retries but never adds to it
    fan_out(zones, mocks, b"mg zf/a\r\n", b"SERVER_ERROR local\r\n", b"EN\r\n", b"EN\r\n")
    assert zones.readline() == b"EN\r\n"
    assert user_stat(zones, "zf_retries") == 1


@pytest.mark.fixed
def test_zfailover_all_remote_errors_answer_the_local_miss(zones: Proxy, mocks: Mocks) -> None:
    # 1.6.45 answers SERVER_ERROR bad response (its error fallback is inverted)
    fan_out(zones, mocks, b"mg zfmiss/a\r\n", b"EN\r\n", b"SERVER_ERROR far1\r\n",
            b"SERVER_ERROR far2\r\n")  # fmt: skip
    assert zones.readline() == b"EN\r\n"


@pytest.mark.fixed
def test_zfailover_all_errors_answer_an_error(zones: Proxy, mocks: Mocks) -> None:
    fan_out(zones, mocks, b"mg zf/a\r\n", b"SERVER_ERROR local\r\n", b"SERVER_ERROR far\r\n",
            b"SERVER_ERROR far\r\n")  # fmt: skip
    assert zones.readline() == b"SERVER_ERROR far\r\n"


# route_zfailover without stats runs without Lua (proxy/hooks.py FastPlan): zfn and zfmiss


def test_zfailover_answers_a_local_hit_alone(zones: Proxy, mocks: Mocks) -> None:
    zones.send(b"mg zfn/a v\r\n")
    assert mocks[0].read_line() == b"mg zfn/a v\r\n"
    mocks[0].send(b"VA 2\r\nhi\r\n")
    assert zones.read_until(b"hi\r\n") == b"VA 2\r\nhi\r\n"
    assert mocks[1].read_available(0.2) == b""
    assert mocks[2].read_available(0.05) == b""


def test_zfailover_remote_hit_then_late_reply(zones: Proxy, mocks: Mocks) -> None:
    # the first remote hit answers; the other zone's late reply is read and dropped, and
    # that backend connection serves the next request as usual
    fan_out(zones, mocks, b"mg zfn/a\r\n", b"SERVER_ERROR local\r\n")
    mocks[2].send(b"HD z3\r\n")
    assert zones.readline() == b"HD z3\r\n"
    mocks[1].send(b"HD z2\r\n")
    zones.send(b"mg zfn/b\r\n")
    assert mocks[0].read_line() == b"mg zfn/b\r\n"
    mocks[0].send(b"SERVER_ERROR local\r\n")
    assert mocks[1].read_line() == b"mg zfn/b\r\n"
    assert mocks[2].read_line() == b"mg zfn/b\r\n"
    mocks[1].send(b"HD z2\r\n")
    assert zones.readline() == b"HD z2\r\n"
    mocks[2].send(b"EN\r\n")
    zones.send(b"mg zfn/c\r\n")
    assert mocks[0].read_line() == b"mg zfn/c\r\n"
    mocks[0].send(b"HD\r\n")
    assert zones.readline() == b"HD\r\n"


def test_zfailover_miss_true_remote_hit_after_a_remote_miss(zones: Proxy, mocks: Mocks) -> None:
    fan_out(zones, mocks, b"mg zfmiss/a\r\n", b"EN\r\n", b"EN\r\n", b"HD z3\r\n")
    assert zones.readline() == b"HD z3\r\n"


def test_zfailover_remote_misses_answer_a_miss(zones: Proxy, mocks: Mocks) -> None:
    fan_out(zones, mocks, b"mg zfn/a\r\n", b"SERVER_ERROR local\r\n", b"EN\r\n", b"EN\r\n")
    assert zones.readline() == b"EN\r\n"


@pytest.mark.fixed
def test_zfailover_remote_miss_beats_a_remote_error(zones: Proxy, mocks: Mocks) -> None:
    # 1.6.45 answers the error when it comes after the miss in its table order
    fan_out(zones, mocks, b"mg zfn/a\r\n", b"SERVER_ERROR local\r\n",
            b"SERVER_ERROR far\r\n", b"EN\r\n")  # fmt: skip
    assert zones.readline() == b"EN\r\n"


def test_zfailover_classic_commands(zones: Proxy, mocks: Mocks) -> None:
    # a set stored locally is answered; a multiget asks for each key alone
    zones.send(b"set zfn/a 0 0 2\r\nhi\r\n")
    assert mocks[0].read_line() == b"set zfn/a 0 0 2\r\n"
    assert mocks[0].read_line() == b"hi\r\n"
    mocks[0].send(b"STORED\r\n")
    assert zones.readline() == b"STORED\r\n"
    zones.send(b"get zfn/a zfn/b\r\n")
    assert mocks[0].read_line() == b"get zfn/a\r\n"
    mocks[0].send(b"VALUE zfn/a 0 2\r\nhi\r\nEND\r\n")
    assert mocks[0].read_line() == b"get zfn/b\r\n"
    mocks[0].send(b"VALUE zfn/b 0 2\r\nho\r\nEND\r\n")
    expected = b"VALUE zfn/a 0 2\r\nhi\r\nVALUE zfn/b 0 2\r\nho\r\nEND\r\n"
    assert zones.read_until(b"END\r\n") == expected
    assert mocks[1].read_available(0.2) == b""


def test_failover_tries_its_local_zone_first(zones: Proxy, mocks: Mocks) -> None:
    zones.send(b"mg fo/a\r\n")
    assert mocks[1].read_line() == b"mg fo/a\r\n"
    mocks[1].send(b"EN\r\n")
    # then the other zones, in an order Lua's table iteration picks
    first = 0 if mocks[0].read_available(0.3) == b"mg fo/a\r\n" else 2
    mocks[first].send(b"HD\r\n")
    assert zones.readline() == b"HD\r\n"


@pytest.mark.fixed
def test_failover_uses_the_global_local_zone(zones: Proxy, mocks: Mocks) -> None:
    # 1.6.45 ignores local_zone() in route_failover (tries the set in table order)
    for _ in range(3):
        zones.send(b"mg fog/a\r\n")
        assert mocks[0].read_line() == b"mg fog/a\r\n"
        mocks[0].send(b"SERVER_ERROR z1\r\n")
        assert zones.readline() == b"SERVER_ERROR z1\r\n"
