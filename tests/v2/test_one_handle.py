"""API v2 routes on a function generator with one handle, a pool, in front of a real memcached
(spec v2 3.4 - 3.11, 2.5). mcpframe runs the first ``enqueue_and_wait`` of such a route's client
request on a shorter path that keeps the handle's state back until an rctx method asks for it
(mcp_funcgen.lua, ``own``); these cases read that state every way there is: ``result``,
``res_good/res_ok/res_any``, ``best_result``/``worst_result``, a callback set after the wait or
by the generator, a slot with user objects, an error, a sleep, requests the route built, slot reuse.

Every expected reply was recorded from memcached 1.6.45's proxy on tests/configs/v2/onehandle.lua
with the same requests (see conftest.py).
"""

from __future__ import annotations

import pytest

from tests.helpers import Memcached
from tests.route_api.conftest import Proxy
from tests.v2.conftest import StartProxy
from tests.v2.test_funcgen import exchange, value


@pytest.fixture
def one(start_v2: StartProxy, three_memcached: list[Memcached]) -> Proxy:
    """onehandle.lua in front of a real memcached server."""
    return start_v2("onehandle.lua", {"MCP_B1": str(three_memcached[0].port)})


CASES = [
    # the response as it came; multigets per key; noreply rewritten on the way
    (b"set /plain/a 0 0 2\r\nhi\r\nget /plain/a\r\nget /plain/a /plain/zz\r\nmg /plain/zz v\r\n",
     b"STORED\r\nVALUE /plain/a 0 2\r\nhi\r\nEND\r\nVALUE /plain/a 0 2\r\nhi\r\nEND\r\nEN\r\n"),
    (b"set /plain/n 0 0 1 noreply\r\nz\r\nmg /plain/n v\r\n", b"VA 1\r\nz\r\n"),
    # result() after the wait: the same response, RES_GOOD 8 for a hit (and an HD), RES_OK 16
    # for a miss; res_good, res_ok, res_any agree
    (b"ms /result/a 2\r\nhi\r\nmg /result/a v\r\nmg /result/miss v\r\n",
     value("/result/a", "true|8|yyy|true") * 2 + value("/result/miss", "true|16|nyy|false")),
    (b"ms /any/a 2\r\nhi\r\nmg /any/a v\r\nmg /any/miss v\r\n",
     value("/any/a", "true|8") * 2 + value("/any/miss", "true|16")),
    (b"ms /best/a 2\r\nhi\r\nmg /best/a v\r\nmg /best/miss v\r\n",
     value("/best/a", "true|8|true|8") * 2 + value("/best/miss", "true|16|true|16")),
    # a callback set once the result is in does not change its flag
    (b"ms /cbafter/a 2\r\nhi\r\nmg /cbafter/a v\r\nmg /cbafter/miss v\r\n",
     value("/cbafter/a", "8|true") * 2 + value("/cbafter/miss", "16|false")),
    # a callback set by the generator, before the first request: its flag (WAIT_OK) counts
    (b"ms /cbgen/a 2\r\nhi\r\nmg /cbgen/a v\r\nmg /cbgen/miss v\r\n",
     value("/cbgen/a", "16|true") * 2 + value("/cbgen/miss", "16|false")),
    (b"ms /uobj/a 2\r\nhi\r\nmg /uobj/a v\r\nmg /uobj/miss v\r\n", b"HD\r\nVA 2\r\nhi\r\nEN\r\n"),
    (b"ms /sleep/a 2\r\nhi\r\nmg /sleep/a v\r\n", b"HD\r\nVA 2\r\nhi\r\n"),
    (b"ms /built/a 2\r\nhi\r\nmg /built/a v\r\nmg /built/timeout v\r\n", b"EN\r\nEN\r\nEN\r\n"),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "reply"), CASES)
def test_route(one: Proxy, request_: bytes, reply: bytes) -> None:
    assert exchange(one, request_) == reply


def test_an_error_after_the_wait_fails_that_request_and_the_slot_starts_over(one: Proxy) -> None:
    # Pipelined: the second request takes a second slot while the first waits.
    assert exchange(one, b"ms /err/x 2\r\nhi\r\nmg /err/x v\r\nmg /err/boom v\r\n") == (
        value("/err/x", "1|true") * 2 + b"SERVER_ERROR lua failure\r\n"
    )
    # A slot that ran before (the free list is last in, first out: the failed one) runs the
    # next request from the start of its route; its counter goes on.
    assert exchange(one, b"mg /err/x v\r\n") == value("/err/x", "2|true")


def test_a_route_that_does_not_wait_frees_its_slot_for_the_next_request(one: Proxy) -> None:
    # Pipelined requests run one after another, as read: each finds the slot the one before
    # freed. (mcpframe used to take a slot for every request of a read first: 1, 1, 1.)
    assert exchange(one, b"mg /nowait/a v\r\n" * 3) == b"".join(
        value("/nowait/a", str(n)) for n in (1, 2, 3)
    )
    assert exchange(one, b"mg /nowait/a v\r\n") == value("/nowait/a", "4")


def test_slots_after_a_wait_are_reused_last_freed_first(one: Proxy) -> None:
    assert exchange(one, b"mg /count/a v\r\n") == value("/count/a", "1|false")
    # two at once: the free slot (its second request), then a new one
    assert exchange(one, b"mg /count/a v\r\nmg /count/a v\r\n") == (
        value("/count/a", "2|false") + value("/count/a", "1|false")
    )


def test_a_slot_released_after_its_reply_serves_the_next_request(one: Proxy) -> None:
    # The route answers while its request is still in flight (wait_cond(0)); the slot is
    # released when the backend's reply is in, and its next request takes the common path.
    assert exchange(one, b"mg /bg/left v\r\n") == value("/bg/left", "left 1")
    assert exchange(one, b"mg /bg/a v\r\n") == value("/bg/a", "2|false")
    assert exchange(one, b"mg /bg/left v\r\nmg /bg/a v\r\n") == (
        value("/bg/left", "left 3") + value("/bg/a", "1|false")
    )
