"""API v2 routes on a function generator with one handle, a pool, in front of a real memcached
(spec v2 2.5, 3.4 - 3.11).

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


def test_a_route_that_does_not_wait_frees_its_slot_for_the_next_request(one: Proxy) -> None:
    # Pipelined requests run one after another, as read: each finds the slot the one before
    # freed. (mcpframe used to take a slot for every request of a read first: 1, 1, 1.)
    assert exchange(one, b"mg /nowait/a v\r\n" * 3) == b"".join(
        value("/nowait/a", str(n)) for n in (1, 2, 3)
    )
    assert exchange(one, b"mg /nowait/a v\r\n") == value("/nowait/a", "4")
