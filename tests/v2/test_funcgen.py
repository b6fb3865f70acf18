"""API v2 through the wire, in front of real memcached servers: function generators, slots,
handles to pools, to the internal cache and to other generators, ``rctx`` waits and result
accessors, what a route may return, and v1 routes beside v2 in one config (spec v2 1.2, 2, 3).

Every expected reply was recorded from memcached 1.6.45's proxy on tests/configs/v2/funcgen.lua
with the same requests (see conftest.py); [R] marks where mcpframe takes the spec's recommended
behaviour instead.
"""

from __future__ import annotations

import pytest

from tests.route_api.conftest import Proxy


def exchange(proxy: Proxy, request: bytes, wait: float = 0.3) -> bytes:
    c = proxy.connect()
    c.send(request)
    return c.read_available(wait)


def value(key: str, text: str) -> bytes:
    return f"VALUE {key} 0 {len(text)}\r\n{text}\r\nEND\r\n".encode()


CASES = [
    # enqueue_and_wait to one pool handle: the response as the backend gave it
    (b"set /direct/a 0 0 2\r\nhi\r\nget /direct/a\r\n",
     b"STORED\r\nVALUE /direct/a 0 2\r\nhi\r\nEND\r\n"),
    # fgen:ready{a = ...} reaches the generator
    (b"mg /arg/x v\r\n", value("/arg/x", "world")),
    # three pipelined requests run in three slots, each with its own closure
    (b"mg /count/x v\r\n" * 3, value("/count/x", "1") * 3),
    # wait_cond counts per mode; result() flags are RES_GOOD 8 / RES_OK 16
    (b"ms /all/k 2\r\nhi\r\nmg /all/k v\r\nmg /all/miss v\r\n",
     value("/all/k", "3|8,8,8") * 2 + value("/all/miss", "3|16,16,16")),
    # WAIT_GOOD with only misses ends when nothing is outstanding, with 0
    (b"mg /good/miss v\r\n", value("/good/miss", "0|16,16,16")),
    (b"mg /ok/miss v\r\n", value("/ok/miss", "2")),
    (b"mg /fast/miss v\r\n", value("/fast/miss", "2")),
    (b"mg /best/miss v\r\nmg /worst/miss v\r\n", b"EN\r\nEN\r\n"),
    (b"mg /accessors/miss v\r\n", value("/accessors/miss", "-oa,-oa,---")),
    (b"mg /sleep/x v\r\n", value("/sleep/x", "true")),
    # wait_cond(0) sends in the background and goes on at once
    (b"mg /bg/x v\r\n", value("/bg/x", "bg 0")),
    # enqueued, never waited: never sent; the route's string is the reply
    (b"mg /dropped/x v\r\n", b"HD\r\n"),
    # handles count from 0 in creation order
    (b"mg /handles/x v\r\n", value("/handles/x", "01234")),
    # a child funcgen: its response, its string (the Lua string itself), its failure
    (b"mg /child/x v\r\nmg /child/str v\r\nmg /child/boom v\r\n",
     b"EN\r\n" + value("/child/str", "string HD child\r\n") + value("/child/boom", "failed 23 32")),
    # a child that sleeps and waits on its own handle, next to a pool handle; a string
    # result counts as RES_ANY
    (b"mg /childmix/x v\r\nmg /childmix/slp v\r\nmg /childmix/str v\r\n",
     value("/childmix/x", "2|16,16") + value("/childmix/slp", "2|16,16")
     + value("/childmix/str", "2|16,32")),
    # queue two, wait for each by itself
    (b"ms /two/k 2\r\nhi\r\nmg /two/k v\r\nmg /two/miss v\r\n",
     value("/two/k", "15,15") * 2 + value("/two/miss", "17,17")),
    # a handle to mcp.internal_handler
    (b"ms /internal/k 2\r\nhi\r\nmg /internal/k v\r\nmg /internal/zz v\r\n",
     b"HD\r\nVA 2\r\nhi\r\nEN\r\n"),
    # mcp.internal(r) from a top-level v2 route
    (b"ms /mcpinternal/k 2\r\nhi\r\nmg /mcpinternal/k v\r\nmg /mcpinternal/zz v\r\n"
     b"get /mcpinternal/k\r\n",
     b"HD\r\nVA 2\r\nhi\r\nEN\r\nVALUE /mcpinternal/k 0 2\r\nhi\r\nEND\r\n"),
    (b"mg /err/x v\r\n", b"SERVER_ERROR lua failure\r\n"),
    (b"mg /badnil/x v\r\nmg /badtable/x v\r\nmg /badrctx/x v\r\n",
     b"SERVER_ERROR bad response\r\n" * 3),
    # a string reply is cut at 1024 bytes
    (b"mg /long/x v\r\n", b"a" * 1024),
    (b"mg /edit/x v\r\n", b"EN\r\n"),
    (b"mg /cfd/x v\r\n", value("/cfd/x", "integer")),
    # handle callbacks: WAIT_OK forces the flag; a non-integer return changes nothing; an
    # error is logged and the request carries on; WAIT_GOOD + WAIT_RESUME ends the wait
    (b"mg /cbok/miss v\r\nmg /cbstr/miss v\r\nmg /cberr/miss v\r\n",
     value("/cbok/miss", "16") + value("/cbstr/miss", "16") + b"EN\r\n"),
    (b"mg /cb/miss v\r\n", value("/cb/miss", "1|8")),
    (b"mg /nope/x v\r\n", b"SERVER_ERROR no route\r\n"),
    # a v1 route function in the same config
    (b"delete foo\r\n", b"HD v1\r\n"),
    # multigets are split per key; a hit loses its END, strings' too
    (b"get /direct/a /direct/b /all/k\r\n",
     b"VALUE /direct/a 0 2\r\nhi\r\nVALUE /all/k 0 7\r\n3|8,8,8\r\nEND\r\n"),
    # noreply and quiet as for v1 routes
    (b"set /direct/n 0 0 1 noreply\r\nz\r\nmg /direct/n v q\r\nmg /direct/nn v q\r\nmn\r\n",
     b"VA 1\r\nz\r\nMN\r\n"),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "reply"), CASES)
def test_route(units: Proxy, request_: bytes, reply: bytes) -> None:
    if request_.startswith(b"get /direct/a /direct/b"):
        exchange(units, b"set /direct/a 0 0 2\r\nhi\r\nms /all/k 2\r\nhi\r\n")
    assert exchange(units, request_) == reply


ERRORS = [
    "attempted to enqueue an invalid handle",
    "invalid handle passed to queue via array table",
    "must pass a handle or a table to queue",
    "cannot queue requests without a key",
    "must pass at least count to wait_cond",
    "wait count for wait_cond must be a positive integer",
    "invalid mode sent to wait_cond",
    "invalid mode sent to wait_cond",  # [Q] an explicit nil mode, as 1.6.45
    "invalid handle passed to wait_handle",
    "wait_handle called on unqueued handle",
    "invalid handle passed to enqueue_and_wait",
    "invalid queue handle passed to :good/:ok:/:any",
    "must pass a table to :best_result",
    "invalid queue handle passed to worst_result",
    "invalid handle passed to queue_set_cb",
    "ok",
    "rctx request new: object count limit reached",
    "timeout argument to wait or sleep must be a number",
    "timeout argument to wait or sleep must be a number",
]


def test_rctx_error_texts(units: Proxy) -> None:
    assert exchange(units, b"mg /errs/x v\r\n") == value("/errs/x", "\n".join(ERRORS))


def test_a_used_handle_is_not_sent_again(units: Proxy) -> None:
    # [R] waiting again on a handle already counted returns its result at once (1.6.45 hangs
    # until the timeout and answers "false|true").
    assert exchange(units, b"mg /reuse/x v\r\n") == value("/reuse/x", "true|nil")


def test_slots_are_reused(units: Proxy) -> None:
    # One at a time, requests reuse the same slot: its counter goes on.
    c = units.connect()
    for n in (1, 2, 3):
        c.send(b"mg /count/x v\r\n")
        assert c.read_until(b"END\r\n") == value("/count/x", str(n))


FUNCGEN_ERRORS = [
    "invalid argument to new_handle",
    "Must specify generator function ('f') to fgen:ready",
    "user obj ('u') in fgen:ready must be between 1 and 255",
    "user obj ('u') in fgen:ready must be between 1 and 255",
    "function generator didn't return a function",
    "gen boom",
    "ok",  # a child that is not ready yet is accepted by new_handle...
    "failed to generate request slot during queue_assign()",  # ...but not by ready
    "ok",  # u = "2" is ignored
    "cannot modify function generator after calling ready",
    "cannot modify function generator after calling ready",
]


def test_funcgen_error_texts(units: Proxy) -> None:
    assert exchange(units, b"mg /fgerrs/x v\r\n") == value("/fgerrs/x", "\n".join(FUNCGEN_ERRORS))


def test_a_slot_that_cannot_be_made_fails_its_request_only(units: Proxy) -> None:
    # Two at once need two slots; the generator raises for the second.
    reply = exchange(units, b"touch /a/b 10\r\ntouch /a/b 10\r\n")
    assert reply == b"HD flaky\r\nSERVER_ERROR lua start failure\r\n"
    # The first slot is back and serves the next one.
    assert exchange(units, b"touch /a/b 10\r\n") == b"HD flaky\r\n"


def test_a_funcgen_never_made_ready_fails_every_request(units: Proxy) -> None:
    assert exchange(units, b"gat 10 /a/b\r\n") == b"SERVER_ERROR lua start failure\r\n"
    assert exchange(units, b"gat 10 /a/b\r\ndelete x\r\n") == (
        b"SERVER_ERROR lua start failure\r\nHD v1\r\n"
    )


def test_a_route_yielding_by_itself_fails_and_its_slot_starts_over(units: Proxy) -> None:
    # [R] 1.6.45 never answers; the slot's next request runs from the start of the route.
    c = units.connect()
    c.send(b"mg /yield/x v\r\n")
    assert c.readline() == b"SERVER_ERROR lua failure\r\n"
    c.send(b"mg /handles/x v\r\n")
    assert c.read_until(b"END\r\n") == value("/handles/x", "01234")


def test_a_funcgen_replaced_on_every_hook_is_closed(units: Proxy) -> None:
    # Recorded by the config (mcp_config_routes) and reported by a v1 route on cas.
    text = (
        "true\nmcp.attach: cannot use a previously replaced function\n"
        "cannot use a replaced function in new_handle"
    )
    assert exchange(units, b"cas x 0 0 1 1\r\nz\r\n") == value("closed", text)
