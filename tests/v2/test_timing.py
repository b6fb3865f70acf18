"""API v2 timing and failures, through the wire, in front of fake backends (the only way to
hold a reply back or to answer in a chosen order): wait timeouts, FASTGOOD, callbacks that
resume a wait, requests still in flight when the route returns (spec v2 3.5 - 3.15).

Expected replies recorded from memcached 1.6.45's proxy on tests/configs/v2/funcgen.lua.
"""

from __future__ import annotations

import time

from tests.route_api.conftest import Mocks, Proxy


def value(key: str, text: str) -> bytes:
    return f"VALUE {key} 0 {len(text)}\r\n{text}\r\nEND\r\n".encode()


def active(proxy: Proxy) -> int:
    return int(proxy.stats()["proxy_req_active"])


def settles(proxy: Proxy, want: int) -> bool:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if active(proxy) == want:
            return True
        time.sleep(0.05)
    return False


def test_wait_cond_timeout_then_the_late_reply_is_dropped(faked: Proxy, mocks: Mocks) -> None:
    t0 = time.monotonic()
    faked.send(b"mg /tmo/x v\r\n")
    assert mocks[0].read_line() == b"mg /tmo/x v\r\n"
    assert faked.read_until(b"END\r\n") == value("/tmo/x", "0|true")
    assert 0.15 < time.monotonic() - t0 < 1.0
    # The request was not cancelled: its slot stays busy until the reply comes, then the
    # reply is dropped and the backend connection is still in step.
    assert active(faked) == 1
    mocks[0].send(b"EN\r\n")
    assert settles(faked, 0)
    faked.send(b"mg /direct/y v\r\n")
    assert mocks[0].read_line() == b"mg /direct/y v\r\n"
    mocks[0].send(b"HD\r\n")
    assert faked.readline() == b"HD\r\n"


def test_enqueue_and_wait_timeout(faked: Proxy, mocks: Mocks) -> None:
    faked.send(b"mg /eawtmo/x v\r\n")
    assert mocks[0].read_line() == b"mg /eawtmo/x v\r\n"
    assert faked.read_until(b"END\r\n") == value("/eawtmo/x", "nil|true")
    mocks[0].send(b"EN\r\n")
    assert settles(faked, 0)


def test_a_second_wait_gets_the_result_after_a_timeout(faked: Proxy, mocks: Mocks) -> None:
    faked.send(b"mg /twice/x v\r\n")
    assert mocks[0].read_line() == b"mg /twice/x v\r\n"
    time.sleep(0.3)
    faked.nothing(0.05)
    mocks[0].send(b"HD t1\r\n")
    assert faked.readline() == b"HD t1\r\n"


def test_fastgood_resumes_on_the_first_hit(faked: Proxy, mocks: Mocks) -> None:
    faked.send(b"mg /fast/x v\r\n")
    assert mocks[0].read_line() == b"mg /fast/x v\r\n"
    assert mocks[1].read_line() == b"mg /fast/x v\r\n"
    mocks[0].send(b"HD\r\n")
    assert faked.read_until(b"END\r\n") == value("/fast/x", "1")
    mocks[1].send(b"EN\r\n")
    assert settles(faked, 0)


def test_fastgood_counts_misses(faked: Proxy, mocks: Mocks) -> None:
    faked.send(b"mg /fast/x v\r\n")
    mocks[0].read_line()
    mocks[1].read_line()
    mocks[1].send(b"EN\r\n")
    faked.nothing(0.1)
    mocks[0].send(b"HD\r\n")
    assert faked.read_until(b"END\r\n") == value("/fast/x", "2")


def test_wait_ok_skips_errors(faked: Proxy, mocks: Mocks) -> None:
    faked.send(b"mg /ok/x v\r\n")
    for i in range(3):
        assert mocks[i].read_line() == b"mg /ok/x v\r\n"
    mocks[0].send(b"SERVER_ERROR nope\r\n")
    mocks[1].send(b"EN\r\n")
    faked.nothing(0.1)
    mocks[2].send(b"HD\r\n")
    assert faked.read_until(b"END\r\n") == value("/ok/x", "2")


def test_a_callback_can_resume_the_wait(faked: Proxy, mocks: Mocks) -> None:
    faked.send(b"mg /cb/x v\r\n")
    mocks[0].read_line()
    mocks[1].read_line()
    # The miss is turned into a hit and resumes wait_cond(2, WAIT_GOOD) at once.
    mocks[0].send(b"EN\r\n")
    assert faked.read_until(b"END\r\n") == value("/cb/x", "1|8")
    mocks[1].send(b"EN\r\n")
    assert settles(faked, 0)


def test_a_callback_error_is_logged_and_the_request_goes_on(faked: Proxy, mocks: Mocks) -> None:
    watcher = faked.watch("proxyevents")
    faked.send(b"mg /cberr/x v\r\n")
    mocks[0].read_line()
    mocks[0].send(b"HD\r\n")
    assert faked.readline() == b"HD\r\n"
    watcher.wait_for("callback boom")


def test_the_reply_does_not_wait_for_requests_in_flight(faked: Proxy, mocks: Mocks) -> None:
    faked.send(b"mg /bg/x v\r\n")
    assert faked.read_until(b"END\r\n") == value("/bg/x", "bg 0")
    assert mocks[1].read_line() == b"mg /bg/x v\r\n"
    # spec 3.15: the slot stays busy (and active) until the reply arrives
    assert active(faked) == 1
    mocks[1].send(b"HD\r\n")
    assert settles(faked, 0)


def test_a_request_never_waited_is_never_sent(faked: Proxy, mocks: Mocks) -> None:
    faked.send(b"mg /dropped/x v\r\n")
    assert faked.readline() == b"HD\r\n"
    assert mocks[1].read_available(0.2) == b""
    assert active(faked) == 0


def test_a_sleep_does_not_send(faked: Proxy, mocks: Mocks) -> None:
    t0 = time.monotonic()
    faked.send(b"mg /sleep/x v\r\n")
    assert faked.read_until(b"END\r\n") == value("/sleep/x", "true")
    assert time.monotonic() - t0 >= 0.04
    for i in range(3):
        assert mocks[i].read_available(0.05) == b""


def test_a_backend_failure_is_a_failed_result(faked: Proxy, mocks: Mocks) -> None:
    faked.send(b"mg /failed/x v\r\n")
    assert mocks[2].read_line() == b"mg /failed/x v\r\n"
    # no reply: the read timeout (0.5 s) fails the request
    assert faked.readline() == b"SERVER_ERROR backend failure\r\n"
    assert settles(faked, 0)


def test_results_in_arrival_order_for_best_and_worst(faked: Proxy, mocks: Mocks) -> None:
    faked.send(b"mg /best/x v\r\n")
    for i in range(3):
        mocks[i].read_line()
    mocks[0].send(b"SERVER_ERROR borked\r\n")
    mocks[1].send(b"HD t1\r\n")
    mocks[2].send(b"EN\r\n")
    assert faked.readline() == b"HD t1\r\n"
    faked.send(b"mg /worst/x v\r\n")
    for i in range(3):
        mocks[i].read_line()
    mocks[2].send(b"EN\r\n")
    mocks[1].send(b"HD t1\r\n")
    mocks[0].send(b"SERVER_ERROR borked\r\n")
    assert faked.readline() == b"SERVER_ERROR borked\r\n"
