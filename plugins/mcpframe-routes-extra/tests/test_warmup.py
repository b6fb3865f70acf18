"""route_warmup through the wire: mcpframe serving a route-library config, real memcached."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from servers import ask

Start = Callable[..., object]


def config(cold: int, warm: int, options: str = "") -> str:
    return f"""
pools{{
    cold = {{ backends = {{ "127.0.0.1:{cold}" }} }},
    warm = {{ backends = {{ "127.0.0.1:{warm}" }} }},
}}
routes{{
    default = route_warmup{{ child_cold = "cold", child_warm = "warm"{options} }},
}}
"""


def wait_for(port: int, request: bytes, prefix: bytes, timeout: float = 3.0) -> bytes:
    # The copy into the cold pool is not waited for by the route: poll for it.
    deadline = time.monotonic() + timeout
    while True:
        reply = ask(port, request)
        if reply.startswith(prefix) or time.monotonic() > deadline:
            return reply
        time.sleep(0.05)


def ttl_of(reply: bytes) -> int:
    return int(next(t for t in reply.split(b"\r\n")[0].split() if t.startswith(b"t"))[1:])


@pytest.fixture
def pools(backends: Start) -> tuple[int, int]:
    cold, warm = backends(2)
    ask(warm, b"set k1 7 0 5\r\nhello\r\n")
    ask(warm, b"set k2 9 1000 3\r\nabc\r\n")
    return cold, warm


def test_miss_answered_from_warm_and_copied_to_cold(pools: tuple[int, int], proxy: Start) -> None:
    cold, warm = pools
    port = proxy(config(cold, warm))
    assert ask(port, b"get k1\r\n", b"END\r\n") == b"VALUE k1 7 5\r\nhello\r\nEND\r\n"
    copied = wait_for(cold, b"mg k1 v f t\r\n", b"VA")
    assert copied == b"VA 5 f7 t-1\r\nhello\r\n"  # client flags kept, no TTL as on warm
    # The TTL left on warm is kept (a second or two may pass).
    assert ask(port, b"mg k2 v f\r\n", count=2) == b"VA 3 f9\r\nabc\r\n"
    assert 995 <= ttl_of(wait_for(cold, b"mg k2 v t\r\n", b"VA")) <= 1000
    # Now cold answers: change warm, the client still sees cold's copy.
    ask(warm, b"set k1 7 0 3\r\nnew\r\n")
    assert ask(port, b"get k1\r\n", b"END\r\n") == b"VALUE k1 7 5\r\nhello\r\nEND\r\n"


def test_ttl_option_and_client_bytes_unchanged(pools: tuple[int, int], proxy: Start) -> None:
    cold, warm = pools
    port = proxy(config(cold, warm, ", ttl = 100"))
    request = b"mg k1 s k O123 c\r\n"  # no value asked for: the copy still gets it
    direct = ask(warm, request)
    assert ask(port, request) == direct
    copied = wait_for(cold, b"mg k1 v f t\r\n", b"VA")
    assert copied.startswith(b"VA 5 f7 t") and copied.endswith(b"\r\nhello\r\n")
    assert 99 <= ttl_of(copied) <= 100


def test_miss_everywhere(pools: tuple[int, int], proxy: Start) -> None:
    cold, warm = pools
    port = proxy(config(cold, warm))
    assert ask(port, b"get nope\r\n", b"END\r\n") == b"END\r\n"
    assert ask(port, b"mg nope v\r\n") == b"EN\r\n"
    time.sleep(0.2)
    assert ask(cold, b"mg nope\r\n") == b"EN\r\n"


def test_writes_go_to_cold_only(pools: tuple[int, int], proxy: Start) -> None:
    cold, warm = pools
    port = proxy(config(cold, warm))
    assert ask(port, b"set w 1 0 1\r\nz\r\n") == b"STORED\r\n"
    assert ask(port, b"delete k1\r\n") == b"NOT_FOUND\r\n"  # cold does not have it yet
    time.sleep(0.2)
    assert ask(cold, b"mg w v\r\n", count=2) == b"VA 1\r\nz\r\n"
    assert ask(warm, b"mg w v\r\n") == b"EN\r\n"
    assert ask(warm, b"mg k1 v\r\n", count=2) == b"VA 5\r\nhello\r\n"


def test_write_warm_sends_writes_to_both(pools: tuple[int, int], proxy: Start) -> None:
    cold, warm = pools
    port = proxy(config(cold, warm, ", write_warm = true"))
    assert ask(port, b"set w 1 0 1\r\nz\r\n") == b"STORED\r\n"
    assert ask(port, b"delete k1\r\n") == b"NOT_FOUND\r\n"  # the answer is cold's
    assert wait_for(warm, b"mg k1 v\r\n", b"EN") == b"EN\r\n"
    assert ask(cold, b"mg w v\r\n", count=2) == b"VA 1\r\nz\r\n"
    assert wait_for(warm, b"mg w v\r\n", b"VA") == b"VA 1\r\nz\r\n"
