"""Spec 10.2 (memcached's t/proxyunits.t): the route API against three fake backends.

Each test starts mcpframe with tests/configs/route_api/units.lua in front of three scripted
backends (tests/fakebackend.py), reads exactly what the proxy sent them and answers with
bytes a real memcached would not send when a fault is the point.
"""

from __future__ import annotations

import re

import pytest

from tests.route_api.conftest import Mocks, Proxy

# -- protocol faults --------------------------------------------------------------------------


def test_bad_syntax_is_answered_without_reaching_a_route(units: Proxy) -> None:
    # 1.6.20 answers CLIENT_ERROR parsing request; mcpframe's parser answers as a plain
    # memcached does (a wrong token count is ERROR) and keeps the connection.
    units.send(b"set with the wrong number of tokens\r\n")
    assert units.readline() == b"ERROR\r\n"
    units.check_version()


def test_missing_end_times_out_and_reconnects(units: Proxy, mocks: Mocks) -> None:
    w = units.watch("proxyevents")
    units.send(b"get /b/a\r\n")
    assert mocks[0].read_line() == b"get /b/a\r\n"
    mocks[0].send(b"VALUE /b/a 0 2\r\nhi\r\nEN")
    assert units.readline() == b"SERVER_ERROR backend failure\r\n"
    w.expect(r"type=proxy_backend error=timeout name=127\.0\.0\.1 port=\d+ depth=1 rbuf=EN$")
    # The proxy reconnects (new accept, new version check) and the backend works again.
    conn = mocks.reaccept(0)
    units.send(b"get /b/a\r\n")
    assert conn.read_line() == b"get /b/a\r\n"
    conn.send(b"END\r\n")
    assert units.readline() == b"END\r\n"


def test_trailing_data_is_delivered_then_the_connection_resets(units: Proxy, mocks: Mocks) -> None:
    w = units.watch("proxyevents")
    units.send(b"get /b/c\r\n")
    assert mocks[0].read_line() == b"get /b/c\r\n"
    mocks[0].send(b"VALUE /b/c 0 2\r\nok\r\nEND\r\ngarbage")
    assert units.read_until(b"END\r\n") == b"VALUE /b/c 0 2\r\nok\r\nEND\r\n"
    w.expect(
        r"type=proxy_backend error=trailingdata name=127\.0\.0\.1 port=\d+ depth=0 rbuf=garbage"
    )
    mocks.reaccept(0)
    units.check_version()


def test_value_split_over_reads(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /b/c\r\n")
    assert mocks[0].read_line() == b"get /b/c\r\n"
    for piece in (b"VALUE /b/c 0 5\r\nhe", b"llo", b"\r\nEND\r\n"):
        mocks[0].send(piece)
        units.nothing(0.05) if piece != b"\r\nEND\r\n" else None
    assert units.read_until(b"END\r\n") == b"VALUE /b/c 0 5\r\nhello\r\nEND\r\n"


def test_unknown_route_consumes_the_value(units: Proxy) -> None:
    units.send(b"set /invalid/a 0 0 2\r\nhi\r\n")
    assert units.readline() == b"SERVER_ERROR no set route\r\n"
    units.check_version()


# -- every command passes through unchanged -------------------------------------------------

PASSTHROUGH = [
    (b"set /b/a 0 0 2\r\nhi\r\n", b"STORED\r\n"),
    (b"get /b/a\r\n", b"VALUE /b/a 0 2\r\nhi\r\nEND\r\n"),
    (b"touch /b/a 50\r\n", b"TOUCHED\r\n"),
    (b"gets /b/a\r\n", b"VALUE /b/a 0 2 2\r\nhi\r\nEND\r\n"),
    (b"gat 10 /b/a\r\n", b"VALUE /b/a 0 2\r\nhi\r\nEND\r\n"),
    (b"gats 10 /b/a\r\n", b"VALUE /b/a 0 2 3\r\nhi\r\nEND\r\n"),
    (b"cas /b/a 0 0 2 5\r\nhi\r\n", b"EXISTS\r\n"),
    (b"add /b/a 0 0 2\r\nhi\r\n", b"NOT_STORED\r\n"),
    (b"delete /b/a\r\n", b"DELETED\r\n"),
    (b"incr /b/a 1\r\n", b"2\r\n"),
    (b"decr /b/a 1\r\n", b"10\r\n"),
    (b"append /b/a 0 0 2\r\nhi\r\n", b"STORED\r\n"),
    (b"prepend /b/a 0 0 2\r\nhi\r\n", b"STORED\r\n"),
    (b"mg /b/a s v\r\n", b"VA 2 s2\r\nhi\r\n"),
    (b"ms /b/a 2 T10\r\nhi\r\n", b"HD\r\n"),
    (b"md /b/a\r\n", b"HD\r\n"),
    (b"ma /b/a v\r\n", b"VA 1\r\n3\r\n"),
]


@pytest.mark.parametrize(
    ("request_", "reply"), PASSTHROUGH, ids=[r.split()[0].decode() for r, _ in PASSTHROUGH]
)
def test_every_command_passes_through(
    units: Proxy, mocks: Mocks, request_: bytes, reply: bytes
) -> None:
    units.send(request_)
    assert mocks[0].read_exactly(len(request_)) == request_
    mocks[0].send(reply)
    assert units.client.readexactly(len(reply)) == reply
    units.check_version()


def test_multiget_is_split_into_single_key_requests(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /b/a /b/b /b/c\r\n")
    for k in (b"a", b"b", b"c"):
        assert mocks[0].read_line() == b"get /b/" + k + b"\r\n"
    mocks[0].send(
        b"VALUE /b/a 0 2\r\nva\r\nEND\r\nVALUE /b/b 0 2\r\nvb\r\nEND\r\n"
        b"VALUE /b/c 0 2\r\nvc\r\nEND\r\n"
    )
    assert units.read_until(b"END\r\n") == (
        b"VALUE /b/a 0 2\r\nva\r\nVALUE /b/b 0 2\r\nvb\r\nVALUE /b/c 0 2\r\nvc\r\nEND\r\n"
    )
    # All misses: only the proxy's own END; the backend connection stays healthy.
    units.send(b"get /b/a /b/b /b/c\r\n")
    for _ in range(3):
        mocks[0].read_line()
    mocks[0].send(b"END\r\nEND\r\nEND\r\n")
    assert units.readline() == b"END\r\n"
    units.send(b"get /b/a\r\n")
    assert mocks[0].read_line() == b"get /b/a\r\n"
    mocks[0].send(b"END\r\n")
    assert units.readline() == b"END\r\n"


def test_multiget_with_a_hit_in_the_middle_and_a_key_too_long(units: Proxy, mocks: Mocks) -> None:
    long_key = b"/b/" + b"x" * 250
    units.send(b"gets /b/a " + long_key + b" /b/c\r\n")
    assert mocks[0].read_line() == b"gets /b/a\r\n"
    assert mocks[0].read_line() == b"gets /b/c\r\n"
    mocks[0].send(b"END\r\nVALUE /b/c 0 1 9\r\nx\r\nEND\r\n")
    assert units.read_until(b"END\r\n") == (
        b"CLIENT_ERROR key too long\r\nVALUE /b/c 0 1 9\r\nx\r\nEND\r\n"
    )


def test_multiget_longer_than_a_routed_line_is_fine(units: Proxy, mocks: Mocks) -> None:
    keys = [b"/b/%040d" % i for i in range(20)]  # an 889-byte line, 20 short requests
    units.send(b"get " + b" ".join(keys) + b"\r\n")
    for k in keys:
        assert mocks[0].read_line() == b"get " + k + b"\r\n"
    mocks[0].send(b"END\r\n" * 20)
    assert units.readline() == b"END\r\n"


# -- noreply and quiet ----------------------------------------------------------------------


def test_classic_noreply_is_stripped_and_the_reply_suppressed(units: Proxy, mocks: Mocks) -> None:
    # 1.6.20 sends "noreplY"; mcpframe drops the token (memcached rejects "delete k noreplY").
    units.send(b"set /b/a 0 0 2 noreply\r\nhi\r\n")
    assert mocks[0].read_line() == b"set /b/a 0 0 2\r\n"
    assert mocks[0].read_exactly(4) == b"hi\r\n"
    mocks[0].send(b"STORED\r\n")
    units.send(b"touch /b/a 50\r\n")
    assert mocks[0].read_line() == b"touch /b/a 50\r\n"
    mocks[0].send(b"TOUCHED\r\n")
    assert units.readline() == b"TOUCHED\r\n"


@pytest.mark.parametrize(
    ("request_", "sent", "reply", "client_gets"),
    [
        (b"delete /b/a noreply\r\n", b"delete /b/a\r\n", b"NOT_FOUND\r\n", b""),
        (b"incr /b/a 1 noreply\r\n", b"incr /b/a 1\r\n", b"2\r\n", b""),
        (b"touch /b/a 1 noreply\r\n", b"touch /b/a 1\r\n", b"CLIENT_ERROR x\r\n", b""),
        (b"delete /b/a 0 noreply\r\n", b"delete /b/a 0\r\n", b"garbage\r\n",
         b"SERVER_ERROR backend failure\r\n"),
        (b"incr /b/a 1 noreply\r\n", b"incr /b/a 1\r\n", b"SERVER_ERROR out of memory\r\n",
         b"SERVER_ERROR out of memory\r\n"),
    ],
)  # fmt: skip
def test_classic_noreply_outcomes(
    units: Proxy, mocks: Mocks, request_: bytes, sent: bytes, reply: bytes, client_gets: bytes
) -> None:
    units.send(request_)
    assert mocks[0].read_line() == sent
    mocks[0].send(reply)
    if client_gets:
        assert units.readline() == client_gets
    else:
        units.nothing()


def test_quiet_flag_is_blanked_and_ok_replies_suppressed(units: Proxy, mocks: Mocks) -> None:
    units.send(b"ms /b/a 2 q\r\nhi\r\n")
    assert mocks[0].read_line() == b"ms /b/a 2  \r\n"
    assert mocks[0].read_exactly(4) == b"hi\r\n"
    mocks[0].send(b"HD\r\n")
    units.nothing()
    units.send(b"ms /b/a 2 q\r\nhi\r\n")
    mocks[0].read_line()
    mocks[0].read_exactly(4)
    mocks[0].send(b"EX\r\n")
    assert units.readline() == b"EX\r\n"
    units.send(b"ms /b/a 2 q\r\nhi\r\n")
    mocks[0].read_line()
    mocks[0].read_exactly(4)
    mocks[0].send(b"garbage\r\n")
    assert units.readline() == b"SERVER_ERROR backend failure\r\n"


@pytest.mark.parametrize(
    ("request_", "sent", "reply", "client_gets"),
    [
        (b"mg /b/a q v\r\n", b"mg /b/a   v\r\n", b"EN\r\n", b""),
        (b"mg /b/a qv k\r\n", b"mg /b/a  v k\r\n", b"VA 1 k/b/a\r\nx\r\n", b"VA 1 k/b/a\r\nx\r\n"),
        (b"md /b/a q\r\n", b"md /b/a  \r\n", b"HD\r\n", b""),
        (b"md /b/a q\r\n", b"md /b/a  \r\n", b"NF\r\n", b"NF\r\n"),
        (b"ma /b/a q v\r\n", b"ma /b/a   v\r\n", b"VA 1\r\n5\r\n", b""),
        (b"ma /b/a q\r\n", b"ma /b/a  \r\n", b"NF\r\n", b"NF\r\n"),
    ],
)  # fmt: skip
def test_meta_quiet_outcomes(
    units: Proxy, mocks: Mocks, request_: bytes, sent: bytes, reply: bytes, client_gets: bytes
) -> None:
    units.send(request_)
    assert mocks[0].read_line() == sent
    mocks[0].send(reply)
    if client_gets:
        assert units.client.readexactly(len(client_gets)) == client_gets
    else:
        units.nothing()
    units.check_version()


# -- the request object -----------------------------------------------------------------------


def test_key_is_seen_by_the_route(units: Proxy) -> None:
    units.send(b"get /getkey/testkey\r\n")
    assert units.read_until(b"END\r\n") == b"VALUE |/getkey/testkey 0 2\r\nts\r\nEND\r\n"


def test_rtrimkey_and_ltrimkey_blank_key_bytes(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /rtrimkey/onehalf\r\n")
    assert mocks[0].read_line() == b"get /rtrimkey/one    \r\n"
    mocks[0].send(b"END\r\n")
    assert units.readline() == b"END\r\n"
    units.send(b"get /ltrimkey/test\r\n")
    assert mocks[0].read_line() == b"get" + b" " * 11 + b"test\r\n"
    mocks[0].send(b"END\r\n")
    assert units.readline() == b"END\r\n"


def test_ntokens(units: Proxy) -> None:
    units.send(b"mg /ntokens/test c v\r\n")
    assert units.client.readexactly(16) == b"VA 1 C123 v\r\n4\r\n"


@pytest.mark.parametrize(
    ("request_", "sent"),
    [
        (b"ms /token/replacement 2 C123\r\n", b"ms /token/replacement 2 C456\r\n"),
        (b"ms /token/removal 2 C123\r\n", b"ms /token/removal 2 \r\n"),
        (b"ms /token/fetch 2 C123 P\r\n", b"ms /token/fetch 2 C123 P/token/fetch\r\n"),
    ],
)
def test_token_edits_reach_the_backend(
    units: Proxy, mocks: Mocks, request_: bytes, sent: bytes
) -> None:
    units.send(request_ + b"hi\r\n")
    assert mocks[0].read_line() == sent
    assert mocks[0].read_exactly(4) == b"hi\r\n"  # the value is unchanged
    mocks[0].send(b"HD\r\n")
    assert units.readline() == b"HD\r\n"


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (b"mg /hasflag/test c\r\n", b"HD C123\r\n"),
        (b"mg /hasflag/test Oabc T999\r\n", b"HD Oabc\r\n"),
        (b"mg /hasflag/test T999\r\n", b"NF\r\n"),
        (b"get /hasflag/test\r\n", b"END\r\n"),
    ],
)
def test_has_flag(units: Proxy, request_: bytes, reply: bytes) -> None:
    units.send(request_)
    assert units.readline() == reply


def test_flag_token_reads_replaces_and_removes(units: Proxy, mocks: Mocks) -> None:
    units.send(b"mg /flagtoken/a N10 k c R10\r\n")
    assert mocks[0].read_line() == b"mg /flagtoken/a N100 k R100\r\n"
    mocks[0].send(b"HD\r\n")
    assert units.readline() == b"HD\r\n"


def test_request_edit_sends_a_new_request_with_its_value(units: Proxy, mocks: Mocks) -> None:
    units.send(b"ms /request/edit 2\r\nhi\r\n")
    assert mocks[0].read_line() == b"ms /request/edit 2\r\n"
    assert mocks[0].read_exactly(4) == b"ab\r\n"
    mocks[0].send(b"HD\r\n")
    assert units.readline() == b"HD\r\n"


def test_request_new_answers_for_the_clients_request(units: Proxy, mocks: Mocks) -> None:
    units.send(b"mg /request/old\r\n")
    assert mocks[0].read_line() == b"mg /request/new c\r\n"
    mocks[0].send(b"HD C123\r\n")
    assert units.readline() == b"HD C123\r\n"


def test_request_cloned_from_a_response_value(units: Proxy, mocks: Mocks) -> None:
    units.send(b"mg /request/clone v\r\n")
    assert mocks[0].read_line() == b"mg /request/clone v\r\n"
    mocks[0].send(b"VA 1 v\r\n4\r\n")
    assert mocks[0].read_line() == b"ms /request/a 1\r\n"
    assert mocks[0].read_exactly(3) == b"4\r\n"
    mocks[0].send(b"HD\r\n")
    assert units.readline() == b"HD\r\n"


# -- pools and logging ------------------------------------------------------------------------


def test_zone_routing(units: Proxy, mocks: Mocks) -> None:
    for i, k in enumerate((b"a", b"b", b"c")):
        units.send(b"get /zonetest/" + k + b"\r\n")
        assert mocks[i].read_line() == b"get /zonetest/" + k + b"\r\n"
        mocks[i].send(b"END\r\n")
        assert units.readline() == b"END\r\n"
    units.send(b"get /zonetest/invalid\r\n")
    assert units.readline() == b"END\r\n"


def test_log_and_log_req(units: Proxy, mocks: Mocks) -> None:
    # An API v1 config's lines are 1.6.20's: no res=, no cfd= (API v2: tests/v2/test_log_req.py)
    w = units.watch("proxyuser", "proxyreqs")
    units.send(b"get /logtest/a\r\n")
    w.expect(r"^ts=\d+\.\d+ gid=\d+ type=proxy_user msg=testing manual log messages\n$")
    assert units.readline() == b"END\r\n"
    units.send(b"get /logreqtest/a\r\n")
    assert mocks[0].read_line() == b"get /logreqtest/a\r\n"
    mocks[0].send(b"END\r\n")
    assert units.readline() == b"END\r\n"
    port = mocks.fakes[0].port
    w.expect(
        r"^ts=\d+\.\d+ gid=\d+ type=proxy_req elapsed=\d+ type=105 code=17 status=0 "
        rf"be=127\.0\.0\.1:{port} detail=logreqtest req=get /logreqtest/a\n$"
    )


def test_log_reqsample_logs_errors(units: Proxy, mocks: Mocks) -> None:
    w = units.watch("proxyreqs")
    units.send(b"get /logsample/ok\r\n")
    mocks[0].read_line()
    mocks[0].send(b"END\r\n")
    assert units.readline() == b"END\r\n"
    units.send(b"get /logsample/err\r\n")
    mocks[0].read_line()
    mocks[0].send(b"SERVER_ERROR busy\r\n")
    assert units.readline() == b"SERVER_ERROR busy\r\n"
    w.expect(
        r"type=proxy_req elapsed=\d+ type=108 code=23 status=-1 be=\S+ detail=sampled "
        r"req=get /logsample/err\n$"
    )
    assert w.quiet() == b""


def test_log_req_costs_nothing_without_a_watcher(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /logreqtest/a\r\n")
    mocks[0].read_line()
    mocks[0].send(b"END\r\n")
    assert units.readline() == b"END\r\n"
    w = units.watch("proxyreqs")
    assert w.quiet() == b""  # nothing was queued for later watchers


# -- mcp.await --------------------------------------------------------------------------------


def answer_all(mocks: Mocks, line: bytes, reply: bytes) -> None:
    for i in range(3):
        assert mocks[i].read_line() == line
        mocks[i].send(reply)


def test_await_all(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /awaitbasic/a\r\n")
    answer_all(mocks, b"get /awaitbasic/a\r\n", b"VALUE /awaitbasic/a 0 2\r\nok\r\nEND\r\n")
    assert units.read_until(b"END\r\n") == b"VALUE /awaitbasic/a 0 11\r\nhit hit hit\r\nEND\r\n"


def test_await_results_in_arrival_order(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /awaitcodes/a\r\n")
    for i in range(3):
        assert mocks[i].read_line() == b"get /awaitcodes/a\r\n"
    mocks[2].send(b"SERVER_ERROR x\r\n")
    units.nothing(0.1)
    mocks[0].send(b"END\r\n")
    units.nothing(0.1)
    mocks[1].send(b"VALUE /awaitcodes/a 0 1\r\nx\r\nEND\r\n")
    assert units.read_until(b"END\r\n") == b"VALUE /awaitcodes/a 0 8\r\n23,17,15\r\nEND\r\n"


@pytest.mark.parametrize(
    ("key", "count"),
    [(b"/awaitone/a", b"1"), (b"/awaitone/b", b"2"), (b"/awaitgood/a", b"1"),
     (b"/awaitany/a", b"2"), (b"/awaitok/a", b"2")],
)  # fmt: skip
def test_await_wait_for(units: Proxy, mocks: Mocks, key: bytes, count: bytes) -> None:
    units.send(b"get " + key + b"\r\n")
    answer_all(mocks, b"get " + key + b"\r\n", b"VALUE " + key + b" 0 2\r\nok\r\nEND\r\n")
    assert units.read_until(b"END\r\n") == b"VALUE " + key + b" 0 1\r\n" + count + b"\r\nEND\r\n"
    units.check_version()


def test_await_good_waits_past_misses(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /awaitgood/a\r\n")
    for i in range(3):
        mocks[i].read_line()
    mocks[0].send(b"END\r\n")
    mocks[1].send(b"END\r\n")
    units.nothing(0.15)  # two misses are not good: wait_for 1 still waits
    mocks[2].send(b"VALUE /awaitgood/a 0 1\r\nx\r\nEND\r\n")
    assert units.read_until(b"END\r\n") == b"VALUE /awaitgood/a 0 1\r\n3\r\nEND\r\n"


def test_await_fastgood(units: Proxy, mocks: Mocks) -> None:
    hit = b"VALUE /awaitfastgood/a 0 2\r\nun\r\nEND\r\n"
    # The first backend's hit answers at once; the others answer later, unread.
    units.send(b"get /awaitfastgood/a\r\n")
    for i in range(3):
        mocks[i].read_line()
    mocks[0].send(hit)
    assert units.read_until(b"END\r\n") == hit
    mocks[1].send(b"END\r\n")
    mocks[2].send(b"END\r\n")
    # END, then a hit: the hit completes the await (the route answers the hit it found)
    units.send(b"get /awaitfastgood/a\r\n")
    for i in range(3):
        mocks[i].read_line()
    mocks[0].send(b"END\r\n")
    units.nothing(0.1)
    mocks[1].send(hit)
    assert units.read_until(b"END\r\n") == hit
    mocks[2].send(b"END\r\n")
    # END, END: two ok misses make wait_for 2; a late hit is discarded
    units.send(b"get /awaitfastgood/a\r\n")
    for i in range(3):
        mocks[i].read_line()
    mocks[0].send(b"END\r\n")
    mocks[1].send(b"END\r\n")
    assert units.readline() == b"END\r\n"
    mocks[2].send(hit)
    units.check_version()


def test_await_good_two_stores(units: Proxy, mocks: Mocks) -> None:
    units.send(b"set /awaitset/a 0 0 2\r\nhi\r\n")
    for i in range(3):
        assert mocks[i].read_line() == b"set /awaitset/a 0 0 2\r\n"
        assert mocks[i].read_exactly(4) == b"hi\r\n"
    mocks[0].send(b"STORED\r\n")
    mocks[1].send(b"STORED\r\n")
    assert units.readline() == b"STORED\r\n"
    mocks[2].send(b"STORED\r\n")
    # Only one STORED: nothing for 0.25 s; after all three, STORED.
    units.send(b"set /awaitset/a 0 0 2\r\nhi\r\n")
    for i in range(3):
        mocks[i].read_line()
        mocks[i].read_exactly(4)
    mocks[0].send(b"STORED\r\n")
    units.nothing(0.25)
    mocks[1].send(b"NOT_STORED\r\n")
    # NOT_STORED is a "hit" too (only END/EN are misses): two good replies complete it,
    # and the route answers the first one.
    assert units.readline() == b"STORED\r\n"
    mocks[2].send(b"STORED\r\n")
    units.check_version()


def test_await_first_only_keeps_the_first_pool(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /awaitfirst/a\r\n")
    for i in range(3):
        mocks[i].read_line()
    mocks[1].send(b"VALUE /awaitfirst/a 0 1\r\nb\r\nEND\r\n")
    mocks[2].send(b"VALUE /awaitfirst/a 0 1\r\nc\r\nEND\r\n")
    units.nothing(0.15)
    mocks[0].send(b"SERVER_ERROR first\r\n")  # completes whatever its status
    assert units.readline() == b"SERVER_ERROR first\r\n"


def test_await_background_answers_before_the_backends(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /awaitbg/a\r\n")
    assert units.read_until(b"END\r\n") == b"VALUE /awaitbg/a 0 1\r\n0\r\nEND\r\n"
    for i in range(3):
        assert mocks[i].read_line() == b"get /awaitbg/a\r\n"
        mocks[i].send(b"END\r\n")
    units.check_version()


def test_await_logerrors_logs_late_failures(units: Proxy, mocks: Mocks) -> None:
    w = units.watch("proxyreqs")
    units.send(b"set /awaitlogerr/a 0 0 5\r\nhello\r\n")
    for i in range(3):
        assert mocks[i].read_line() == b"set /awaitlogerr/a 0 0 5\r\n"
        mocks[i].read_exactly(7)
    mocks[0].send(b"STORED\r\n")
    assert units.readline() == b"STORED\r\n"
    mocks[1].send(b"SERVER_ERROR out of memory\r\n")
    mocks[2].send(b"SERVER_ERROR out of memory\r\n")
    for _ in range(2):
        w.expect(
            r"type=proxy_req elapsed=\d+ type=108 code=23 status=-1 be=\S+ "
            r"detail=write_failed req=set /awaitlogerr/a 0 0 5\n$"
        )
    assert w.quiet() == b""


def test_proxy_await_active_lasts_until_the_last_reply(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /awaitone/a\r\n")
    for i in range(3):
        mocks[i].read_line()
    mocks[0].send(b"VALUE /awaitone/a 0 1\r\nx\r\nEND\r\n")
    assert units.read_until(b"END\r\n") == b"VALUE /awaitone/a 0 1\r\n1\r\nEND\r\n"
    stats = units.stats()
    assert stats["proxy_await_active"] == "1"
    assert stats["proxy_req_active"] == "0"
    mocks[1].send(b"END\r\n")
    mocks[2].send(b"END\r\n")
    units.check_version()
    assert units.stats()["proxy_await_active"] == "0"


# -- backend error lines --------------------------------------------------------------------


def test_server_error_passes_through_and_keeps_the_backend(units: Proxy, mocks: Mocks) -> None:
    units.send(b"set /b/a 0 0 2\r\nhi\r\n")
    mocks[0].read_line()
    mocks[0].read_exactly(4)
    mocks[0].send(b"SERVER_ERROR object too large for cache\r\n")
    assert units.readline() == b"SERVER_ERROR object too large for cache\r\n"
    units.send(b"get /b/a\r\n")
    assert mocks[0].read_line() == b"get /b/a\r\n"
    mocks[0].send(b"END\r\n")
    assert units.readline() == b"END\r\n"


@pytest.mark.parametrize(
    "line", [b"CLIENT_ERROR bad command line format\r\n", b"ERROR unhappy\r\n", b"ERROR\r\n"]
)
def test_client_errors_pass_through_and_reset_the_backend(
    units: Proxy, mocks: Mocks, line: bytes
) -> None:
    units.send(b"get /b/a\r\n")
    mocks[0].read_line()
    mocks[0].send(line)
    assert units.readline() == line
    assert mocks[0].is_closed()
    mocks.reaccept(0)
    units.check_version()


def test_garbage_is_a_backend_failure(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /b/a\r\n")
    mocks[0].read_line()
    mocks[0].send(b"garbage\r\n")
    assert units.readline() == b"SERVER_ERROR backend failure\r\n"
    mocks.reaccept(0)


def test_error_line_fails_the_requests_queued_behind_it(units: Proxy, mocks: Mocks) -> None:
    units.send(b"get /b/a\r\nget /b/b\r\n")
    mocks[0].read_line()
    mocks[0].read_line()
    mocks[0].send(b"CLIENT_ERROR bad protocol\r\nEND\r\n")
    assert units.readline() == b"CLIENT_ERROR bad protocol\r\n"
    assert units.readline() == b"SERVER_ERROR backend failure\r\n"


@pytest.mark.parametrize(
    ("reply", "seen"),
    [
        (b"ERROR test1\r\n", b"21 false false"),
        (b"CLIENT_ERROR test2\r\n", b"22 false false"),
        (b"SERVER_ERROR test3\r\n", b"23 false false"),
        (b"END\r\n", b"17 true false"),
        (b"NOT_FOUND\r\n", b"13 true true"),
        (b"garbage\r\n", b"23 false false"),  # [R] a backend failure reports SERVER_ERROR
    ],
)
def test_routes_see_error_codes(units: Proxy, mocks: Mocks, reply: bytes, seen: bytes) -> None:
    units.send(b"get /errcheck/a\r\n")
    mocks[0].read_line()
    mocks[0].send(reply)
    got = units.read_until(b"END\r\n")
    assert re.search(rb"\r\n(.*)\r\nEND", got).group(1) == seen  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("reply", "seen"),
    [
        (b"HD Oa\r\n", b"Oa|0|15"),
        (b"HD\r\n", b"nil|0|15"),
        (b"VA 2 t-1 Oxy\r\nhi\r\n", b"t-1 Oxy|2|15"),
        (b"EN\r\n", b"nil|0|17"),
        (b"NF k/resline/a\r\n", b"k/resline/a|0|13"),
    ],
)
def test_response_line_is_the_meta_flags(
    units: Proxy, mocks: Mocks, reply: bytes, seen: bytes
) -> None:
    units.send(b"mg /resline/a\r\n")
    mocks[0].read_line()
    mocks[0].send(reply)
    got = units.read_until(b"END\r\n")
    assert got.split(b"\r\n")[1] == seen


def test_background_await_logs_every_failure(units: Proxy, mocks: Mocks) -> None:
    w = units.watch("proxyreqs")
    units.send(b"set /awaitbglog/a 0 0 1\r\nx\r\n")
    assert units.readline() == b"STORED\r\n"
    for i in range(3):
        assert mocks[i].read_line() == b"set /awaitbglog/a 0 0 1\r\n"
        mocks[i].read_exactly(3)
    mocks[0].send(b"STORED\r\n")
    mocks[1].send(b"SERVER_ERROR out of memory\r\n")
    mocks[2].send(b"garbage\r\n")
    w.expect(r"type=108 code=23 status=-1 be=\S+ detail=background req=set /awaitbglog/a 0 0 1\n$")
    w.expect(r"type=0 code=23 status=-1 be=\S+ detail=background req=set /awaitbglog/a 0 0 1\n$")
    assert w.quiet() == b""
    mocks.reaccept(2)


def test_sanity_touch_awaits_all_three(units: Proxy, mocks: Mocks) -> None:
    # memcached's check_sanity
    units.send(b"touch /sanity/a 50\r\n")
    answer_all(mocks, b"touch /sanity/a 50\r\n", b"TOUCHED\r\n")
    assert units.readline() == b"TOUCHED\r\n"
