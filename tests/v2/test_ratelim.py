"""Rate limiters (``mcp.ratelim_tbf``, ``mcp.ratelim_global_tbf``) through the wire (spec v2
6; memcached's t/proxyratelim.t). Expected replies recorded from memcached 1.6.45's proxy on
tests/configs/v2/ratelim.lua (see conftest.py)."""

from __future__ import annotations

import re
import time

import pytest

from tests.route_api.conftest import Proxy
from tests.v2.conftest import StartProxy


@pytest.fixture
def ratelim(start_v2: StartProxy) -> Proxy:
    return start_v2("ratelim.lua", {})


def value(key: str, text: str) -> bytes:
    return f"VALUE {key} 0 {len(text)}\r\n{text}\r\nEND\r\n".encode()


def take(proxy: Proxy, what: str, n: object) -> str:
    key = f"{what}_{n}"
    proxy.send(f"mg {key}\r\n".encode())
    reply = proxy.read_until(b"END\r\n")
    for answer in ("true", "false"):
        if reply == value(key, answer):
            return answer
    raise AssertionError(reply)


ERRORS = [
    # config VM: mcp.ratelim_global_tbf
    "mcp.ratelim_tbf: arguments must be unsigned 32 bit integer",
    "mcp.ratelim_tbf: arguments must be unsigned 32 bit integer",
    "bad argument #1 to '?' (table expected, got number)",
    # (1.6.45 finds the object it just made where the missing argument should be)
    "bad argument #1 to '?' (table expected, got mcp.ratelim_global_tbf)",
    "ok",
    # route VM: mcp.ratelim_tbf and calls
    "mcp.ratelim_tbf: arguments must be unsigned 32 bit integer",
    "mcp.ratelim_tbf: arguments must be unsigned 32 bit integer",
    "bad argument #1 to '?' (table expected, got string)",
    "bad argument #2 to '?' (number expected, got string)",
    "bad argument #2 to '?' (number expected, got no value)",
    "bad argument #2 to '?' (number expected, got table)",
    "ratelim.lua:47: bad argument #2 to 'wlong' (number expected, got string)",
    # mcp.ratelim_global_tbf exists only in the config VM
    "nil",
]


def test_errors(ratelim: Proxy) -> None:
    ratelim.send(b"mg errs\r\n")
    head, body, end = ratelim.read_until(b"END\r\n").split(b"\r\n", 2)
    assert head.startswith(b"VALUE errs 0 ") and end == b"END\r\n"
    # (the file's path as Lua shortens it: the test's absolute path, or memcached's relative)
    body = re.sub(rb"\S*ratelim\.lua:", b"ratelim.lua:", body)
    assert body.decode().split("\n") == ERRORS


def test_bucket_grants_while_strictly_more_than_taken(ratelim: Proxy) -> None:
    # limit 5: one at a time succeeds 4 times, not 5
    assert [take(ratelim, "wlong", 1) for _ in range(5)] == ["true"] * 4 + ["false"]
    # global, limit 5: 5 is refused, 4 granted (1 left), 3 refused; 0 granted while any left
    assert [take(ratelim, "glong", n) for n in (5, 4, 3, 0)] == ["false", "true", "false", "true"]
    # limit 0 (an empty table) refuses everything, even 0
    assert take(ratelim, "wzero", 0) == "false"


def test_take_is_read_as_c_reads_it(ratelim: Proxy) -> None:
    # negative: a huge unsigned number; a fraction: 0
    assert [take(ratelim, "wbig", n) for n in (-1, 1.5, 4294967293, 0)] == [
        "false", "true", "true", "true",
    ]  # fmt: skip


def test_global_limiter_named_twice_is_one_bucket(ratelim: Proxy) -> None:
    assert [take(ratelim, "nested", n) for n in (2, 0, 0, 1)] == ["true", "true", "true", "false"]


@pytest.mark.parametrize("what", ["wshort", "gshort"])
def test_bucket_refills_per_tick(ratelim: Proxy, what: str) -> None:
    # limit 3, 2 tokens every 100 ms
    assert take(ratelim, what, 2) == "true"
    time.sleep(0.35)  # at least one tick, whatever the load: back to 3 (capped)
    assert take(ratelim, what, 2) == "true"
    time.sleep(0.35)
    assert take(ratelim, what, 2) == "true"


def test_global_bucket_is_shared_by_connections(ratelim: Proxy) -> None:
    other = ratelim.connect()
    assert take(ratelim, "glong", 4) == "true"
    other.send(b"mg glong_1\r\n")
    assert other.read_until(b"END\r\n") == value("glong_1", "false")
