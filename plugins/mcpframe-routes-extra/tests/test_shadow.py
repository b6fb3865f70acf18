"""route_shadow through the wire: mcpframe serving a route-library config, real memcached."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from mcpframe.testing import WireClient
from servers import ask

Start = Callable[..., object]


def config(main: int, canary: int, options: str = "") -> str:
    return f"""
pools{{
    main = {{ backends = {{ "127.0.0.1:{main}" }} }},
    canary = {{ backends = {{ "127.0.0.1:{canary}" }} }},
}}
routes{{
    default = route_shadow{{ child = "main", child_shadow = "canary"{options} }},
}}
"""


def present(port: int, keys: list[str]) -> set[str]:
    """The keys a backend holds (one pipelined batch of mg ... k, answered HD/EN in order)."""
    reply = ask(port, b"".join(f"mg {k} k\r\n".encode() for k in keys), count=len(keys))
    lines = reply.split(b"\r\n")[: len(keys)]
    return {k for k, line in zip(keys, lines, strict=True) if line.startswith(b"HD")}


def key_point(key: bytes) -> float:
    """What route_shadow.lua computes: FNV-1a steps over 8-byte words, folded, murmur3 mix."""
    mask = (1 << 64) - 1
    h = 0xCBF29CE484222325
    whole = len(key) // 8 * 8
    words = [int.from_bytes(key[i : i + 8], "little") for i in range(0, whole, 8)]
    for part in [*words, *key[whole:]]:
        h = ((h ^ part) * 0x100000001B3) & mask
    h = (h ^ (h >> 32)) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h / 2**32


def settle(port: int, keys: list[str], want: int, timeout: float = 3.0) -> set[str]:
    # The copies are not waited for by the route: they land a little after the replies.
    deadline = time.monotonic() + timeout
    while True:
        got = present(port, keys)
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_every_request_copied_answer_from_main(backends: Start, proxy: Start) -> None:
    main, canary = backends(2)
    port = proxy(config(main, canary))
    ask(canary, b"set k1 0 0 6\r\ncanary\r\n")
    ask(main, b"set k1 0 0 4\r\nmain\r\n")
    client = WireClient(port)
    assert client.ask(b"get k1\r\n", b"END\r\n") == b"VALUE k1 0 4\r\nmain\r\nEND\r\n"
    assert client.ask(b"set k2 3 0 2\r\nhi\r\n") == b"STORED\r\n"
    assert client.ask(b"mg k2 v f\r\n", count=2) == b"VA 2 f3\r\nhi\r\n"
    assert client.ask(b"delete k1\r\n") == b"DELETED\r\n"
    client.close()
    assert settle(canary, ["k1", "k2"], 1) == {"k2"}  # the set and the delete were copied
    assert ask(canary, b"mg k2 v f\r\n", count=2) == b"VA 2 f3\r\nhi\r\n"


def test_sample_by_key_copies_the_same_keys_every_time(backends: Start, proxy: Start) -> None:
    main, canary = backends(2)
    port = proxy(config(main, canary, ", sample = 0.3"))
    keys = [f"user:{i}" for i in range(600)]
    expected = {k for k in keys if key_point(k.encode()) < 0.3}
    assert 120 < len(expected) < 240
    client = WireClient(port)
    batch = b"".join(f"set {k} 0 0 1\r\nx\r\n".encode() for k in keys)
    assert client.ask(batch, count=len(keys)) == b"STORED\r\n" * len(keys)
    client.close()
    assert settle(canary, keys, len(expected)) == expected
    assert present(main, keys) == set(keys)


def test_random_sample_and_command_list(backends: Start, proxy: Start) -> None:
    main, canary = backends(2)
    options = ', sample = 0.5, sample_by = "random", commands = { "set" }'
    port = proxy(config(main, canary, options))
    sets = [f"s{i}" for i in range(400)]
    adds = [f"a{i}" for i in range(100)]
    batch = b"".join(f"set {k} 0 0 1\r\nx\r\n".encode() for k in sets)
    batch += b"".join(f"add {k} 0 0 1\r\nx\r\n".encode() for k in adds)
    assert ask(port, batch, count=500) == b"STORED\r\n" * 500
    time.sleep(0.3)
    copied = present(canary, sets)
    assert 120 < len(copied) < 280, len(copied)  # 200 expected; 8 sigma either way
    assert present(canary, adds) == set()  # add is not in commands


def test_a_stuck_shadow_costs_the_client_nothing(backends: Start, proxy: Start) -> None:
    # The shadow accepts connections (the kernel's backlog does) but never answers.
    (main,) = backends(1)
    with socket.socket() as stuck:
        stuck.bind(("127.0.0.1", 0))
        stuck.listen(64)
        port = proxy(config(main, stuck.getsockname()[1]))
        client = WireClient(port)
        started = time.monotonic()
        for i in range(20):
            assert client.ask(f"set k{i} 0 0 1\r\nx\r\n".encode()) == b"STORED\r\n"
            assert client.ask(f"get k{i}\r\n".encode(), b"END\r\n") == (
                f"VALUE k{i} 0 1\r\nx\r\nEND\r\n".encode()
            )
        elapsed = time.monotonic() - started
        client.close()
    assert elapsed < 1.0, elapsed  # 40 round trips; a wait on the shadow would be seconds
