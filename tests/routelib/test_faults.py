"""route_failover, route_allfastest, route_allsync and route_split in front of fake backends:
failures, misses, timeouts and the order replies arrive in (tests/configs/routelib/faults.lua,
one pool per fake backend: p1, p2, p3).

Every expected reply was recorded from memcached 1.6.45's proxy on the same file, requests and
backend replies (see conftest.py).
"""

from __future__ import annotations

import time

from tests.route_api.conftest import Mocks, Proxy

NOTHING_BACK = b"SERVER_ERROR bad response\r\n"


def user_stat(proxy: Proxy, name: str) -> int:
    return int(proxy.stats("proxy").get("user_" + name, "-1"))


def test_failover_answers_the_first_hit(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"mg fo/a v\r\n")
    assert mocks[0].read_line() == b"mg fo/a v\r\n"
    mocks[0].send(b"VA 1\r\nx\r\n")
    assert faults.read_until(b"x\r\n") == b"VA 1\r\nx\r\n"
    assert mocks[1].read_available(0.2) == b""


def test_failover_moves_on_after_an_error_and_returns_a_miss(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"mg fo/a v\r\n")
    assert mocks[0].read_line() == b"mg fo/a v\r\n"
    mocks[0].send(b"SERVER_ERROR e1\r\n")
    assert mocks[1].read_line() == b"mg fo/a v\r\n"
    mocks[1].send(b"EN\r\n")
    assert faults.readline() == b"EN\r\n"
    assert mocks[2].read_available(0.2) == b""


def test_failover_returns_the_last_error(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"mg fo/a v\r\n")
    for i in range(3):
        assert mocks[i].read_line() == b"mg fo/a v\r\n"
        mocks[i].send(b"SERVER_ERROR e%d\r\n" % (i + 1))
    assert faults.readline() == b"SERVER_ERROR e3\r\n"


def test_failover_miss_true_goes_on_and_counts_retries(faults: Proxy, mocks: Mocks) -> None:
    assert user_stat(faults, "fomiss_retries") == 0
    faults.send(b"mg fomiss/a v\r\n")
    assert mocks[0].read_line() == b"mg fomiss/a v\r\n"
    mocks[0].send(b"EN\r\n")
    assert mocks[1].read_line() == b"mg fomiss/a v\r\n"
    mocks[1].send(b"EN\r\n")
    assert mocks[2].read_line() == b"mg fomiss/a v\r\n"
    mocks[2].send(b"VA 2\r\nhi\r\n")
    assert faults.read_until(b"hi\r\n") == b"VA 2\r\nhi\r\n"
    assert user_stat(faults, "fomiss_retries") == 2


def test_failover_count_limits_attempts_and_returns_the_last_miss(
    faults: Proxy, mocks: Mocks
) -> None:
    faults.send(b"mg focount/a O1\r\n")
    assert mocks[0].read_line() == b"mg focount/a O1\r\n"
    mocks[0].send(b"EN O1a\r\n")
    assert mocks[1].read_line() == b"mg focount/a O1\r\n"
    mocks[1].send(b"EN O1b\r\n")
    assert faults.readline() == b"EN O1b\r\n"
    assert mocks[2].read_available(0.2) == b""


def test_failover_wait_gives_up_on_a_slow_child(faults: Proxy, mocks: Mocks) -> None:
    t0 = time.monotonic()
    faults.send(b"mg fowait/a v\r\n")
    assert mocks[0].read_line() == b"mg fowait/a v\r\n"
    assert mocks[1].read_line(timeout=5) == b"mg fowait/a v\r\n"
    assert time.monotonic() - t0 >= 0.45
    mocks[1].send(b"HD\r\n")
    assert faults.readline() == b"HD\r\n"
    # the late reply of the first child is dropped; its connection stays in step
    mocks[0].send(b"EN\r\n")
    faults.send(b"mg fo/b v\r\n")
    assert mocks[0].read_line() == b"mg fo/b v\r\n"
    mocks[0].send(b"HD\r\n")
    assert faults.readline() == b"HD\r\n"


def fan_out(mocks: Mocks, line: bytes) -> None:
    for i in range(3):
        assert mocks[i].read_line() == line


def test_allfastest_first_non_error_wins_even_a_miss(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"mg fast/a\r\n")
    fan_out(mocks, b"mg fast/a\r\n")
    mocks[1].send(b"EN\r\n")
    assert faults.readline() == b"EN\r\n"
    mocks[0].send(b"HD\r\n")
    mocks[2].send(b"HD\r\n")
    faults.nothing()


def test_allfastest_skips_errors(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"mg fast/a\r\n")
    fan_out(mocks, b"mg fast/a\r\n")
    mocks[0].send(b"SERVER_ERROR e1\r\n")
    time.sleep(0.1)
    mocks[2].send(b"EN\r\n")
    assert faults.readline() == b"EN\r\n"
    mocks[1].send(b"HD\r\n")


def test_allfastest_miss_true_waits_for_a_hit(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"mg fastmiss/a\r\n")
    fan_out(mocks, b"mg fastmiss/a\r\n")
    mocks[1].send(b"EN\r\n")
    mocks[2].send(b"EN\r\n")
    faults.nothing(0.2)
    mocks[0].send(b"HD a1\r\n")
    assert faults.readline() == b"HD a1\r\n"


def test_allfastest_all_misses(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"mg fastmiss/a\r\n")
    fan_out(mocks, b"mg fastmiss/a\r\n")
    for i in range(3):
        mocks[i].send(b"EN\r\n")
    assert faults.readline() == b"EN\r\n"


def test_allfastest_all_bad_answers_the_last_miss_in_child_order(
    faults: Proxy, mocks: Mocks
) -> None:
    faults.send(b"mg fastmiss/a O1\r\n")
    fan_out(mocks, b"mg fastmiss/a O1\r\n")
    mocks[1].send(b"EN O1b\r\n")
    time.sleep(0.05)
    mocks[2].send(b"SERVER_ERROR e3\r\n")
    time.sleep(0.05)
    mocks[0].send(b"EN O1a\r\n")
    assert faults.readline() == b"EN O1b\r\n"


def test_allfastest_all_errors_answers_the_last_in_child_order(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"mg fast/a\r\n")
    fan_out(mocks, b"mg fast/a\r\n")
    for i in (2, 0, 1):
        mocks[i].send(b"SERVER_ERROR e%d\r\n" % (i + 1))
        time.sleep(0.05)
    assert faults.readline() == b"SERVER_ERROR e3\r\n"
    # the connections stay in step
    faults.send(b"mg fast/b\r\n")
    fan_out(mocks, b"mg fast/b\r\n")
    mocks[0].send(b"HD\r\n")
    assert faults.readline() == b"HD\r\n"
    mocks[1].send(b"HD\r\n")
    mocks[2].send(b"HD\r\n")


def test_allfastest_late_replies_are_read_in_step(faults: Proxy, mocks: Mocks) -> None:
    # The slower children's replies come after the client was answered: none reaches the
    # client, but each is consumed whole, even cut across reads, so that every
    # connection's next reply is its next request's.
    faults.send(b"get fast/a\r\n")
    fan_out(mocks, b"get fast/a\r\n")
    mocks[2].send(b"VALUE fast/a 0 2\r\nc3\r\nEND\r\n")
    assert faults.read_until(b"END\r\n") == b"VALUE fast/a 0 2\r\nc3\r\nEND\r\n"
    mocks[0].send(b"VALUE fast/a 0 2\r\nc1\r\nEN")
    time.sleep(0.05)
    mocks[0].send(b"D\r\n")
    mocks[1].send(b"EN")
    time.sleep(0.05)
    mocks[1].send(b"D\r\n")
    faults.nothing(0.2)
    for i, reply in ((0, b"VALUE fast/b 0 2\r\nb1\r\nEND\r\n"), (1, b"END\r\n")):
        faults.send(b"get fast/b\r\n")
        fan_out(mocks, b"get fast/b\r\n")
        mocks[i].send(reply)
        assert faults.read_until(b"END\r\n") == reply
        for j in range(3):
            if j != i:
                mocks[j].send(b"END\r\n")
        faults.nothing(0.1)


def test_allfastest_late_bad_reply_still_fails_its_backend(faults: Proxy, mocks: Mocks) -> None:
    # A late reply is still checked: one the stream cannot go on after fails the
    # connection (logged, counted, reconnected), as in memcached 1.6.45.
    w = faults.watch("proxyevents")
    faults.send(b"get fast/a\r\n")
    fan_out(mocks, b"get fast/a\r\n")
    mocks[1].send(b"END\r\n")
    assert faults.readline() == b"END\r\n"
    mocks[2].send(b"END\r\n")
    mocks[0].send(b"VALUE fast/a 0 2\r\nxyz\r\nEND\r\n")  # (3 bytes for 2)
    port = mocks.fakes[0].port
    w.wait_for(rf"type=proxy_backend error=parsing name=127\.0\.0\.1 port={port} depth=1 ")
    faults.nothing(0.1)
    mocks.reaccept(0)
    faults.send(b"get fast/b\r\n")
    fan_out(mocks, b"get fast/b\r\n")
    mocks[0].send(b"VALUE fast/b 0 2\r\nb1\r\nEND\r\n")
    assert faults.read_until(b"END\r\n") == b"VALUE fast/b 0 2\r\nb1\r\nEND\r\n"
    mocks[1].send(b"END\r\n")
    mocks[2].send(b"END\r\n")


def test_allsync_returns_the_first_failure(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"ms sync/a 1\r\nx\r\n")
    for i in range(3):
        assert mocks[i].read_line() == b"ms sync/a 1\r\n"
        assert mocks[i].read_line() == b"x\r\n"
    mocks[0].send(b"HD\r\n")
    mocks[1].send(b"SERVER_ERROR s2\r\n")
    faults.nothing(0.2)  # waits for every child
    mocks[2].send(b"HD\r\n")
    assert faults.readline() == b"SERVER_ERROR s2\r\n"


def test_allsync_returns_the_last_result(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"mg sync/a\r\n")
    fan_out(mocks, b"mg sync/a\r\n")
    mocks[2].send(b"HD s3\r\n")
    mocks[0].send(b"HD s1\r\n")
    mocks[1].send(b"EN\r\n")
    assert faults.readline() == b"HD s3\r\n"


def test_split_answers_child_a_and_copies_to_child_b(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"md split/a\r\n")
    assert mocks[0].read_line() == b"md split/a\r\n"
    assert mocks[1].read_line() == b"md split/a\r\n"
    mocks[1].send(b"SERVER_ERROR b\r\n")
    mocks[0].send(b"HD\r\n")
    assert faults.readline() == b"HD\r\n"


def test_split_drops_child_bs_late_reply(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"mg split/a v\r\n")
    assert mocks[0].read_line() == b"mg split/a v\r\n"
    assert mocks[1].read_line() == b"mg split/a v\r\n"
    mocks[0].send(b"VA 1\r\na\r\n")
    assert faults.read_until(b"a\r\n") == b"VA 1\r\na\r\n"
    mocks[1].send(b"VA 1\r\nb\r\n")
    faults.nothing(0.2)
    faults.send(b"mg split/b v\r\n")
    assert mocks[0].read_line() == b"mg split/b v\r\n"
    assert mocks[1].read_line() == b"mg split/b v\r\n"
    mocks[1].send(b"EN\r\n")
    mocks[0].send(b"SERVER_ERROR a\r\n")
    assert faults.readline() == b"SERVER_ERROR a\r\n"


def test_allfastest_wait_with_nothing_back(faults: Proxy, mocks: Mocks) -> None:
    faults.send(b"mg fastwait/a\r\n")
    assert mocks[0].read_line() == b"mg fastwait/a\r\n"
    assert mocks[1].read_line() == b"mg fastwait/a\r\n"
    assert faults.readline() == NOTHING_BACK
    mocks[0].send(b"HD\r\n")
    mocks[1].send(b"HD\r\n")


def test_failover_shuffle_picks_one_order_per_worker(faults: Proxy, mocks: Mocks) -> None:
    # the order is shuffled once, when the config loads: every request goes to the same child
    firsts = set()
    for i in range(3):
        faults.send(b"mg shuffled/%d\r\n" % i)
        got = [mocks[j].read_available(0.15) for j in range(3)]
        (first,) = [j for j, data in enumerate(got) if data]
        assert got[first] == b"mg shuffled/%d\r\n" % i
        mocks[first].send(b"HD\r\n")
        assert faults.readline() == b"HD\r\n"
        firsts.add(first)
    assert len(firsts) == 1
