"""Routes of every kind started and resumed together in one turn of the event loop.

mcpframe starts the routes of all requests read in one loop turn with one call into Lua, and
resumes those whose backend replies arrived in one turn with another (docs/performance.md).
Many clients writing at once, each a pipeline mixing every way a route can answer, put
common and uncommon answers side by side in the same batches; every reply must still be the
right one, in order.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Mcpframe, Memcached

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
CLIENTS = 24
ROUNDS = 20


def expected(kind: str, key: bytes, value: bytes) -> bytes:
    if kind == "str":
        return b"SERVER_ERROR from lua " + key + b"\r\n"
    if kind == "fail":
        return b"SERVER_ERROR lua failure\r\n"
    if kind == "miss":
        return b"END\r\n"
    return b"VALUE " + key + b" 0 %d\r\n" % len(value) + value + b"\r\nEND\r\n"


def test_mixed_routes_in_shared_batches(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    a, b = memcached_factory(), memcached_factory()
    env = {"MCP_TEST_PORT_A": str(a.port), "MCP_TEST_PORT_B": str(b.port)}
    proxy = mcpframe_factory("--config", str(CONFIGS / "mixed_routes.lua"), env=env)
    # Values stored through the proxy (pools.main): plain keys, keys the edit route rewrites
    # to, keys for the two-call route and for the await route (AWAIT_FIRST answers with
    # pools.main's reply).
    setup = socket.create_connection(proxy.addr, timeout=10)
    stored: dict[bytes, bytes] = {}
    for i in range(40):
        for name in (b"plain/%d" % i, b"edited/%d" % i, b"two/%d" % i, b"await/%d" % i):
            value = b"v-" + name
            stored[name] = value
            setup.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (name, len(value), value))
    want = b"STORED\r\n" * len(stored)
    got = b""
    while len(got) < len(want):
        got += setup.recv(65536)
    assert got == want
    setup.close()

    errors: list[str] = []
    barrier = threading.Barrier(CLIENTS)

    def client(n: int) -> None:
        rng = random.Random(n)
        plan: list[tuple[bytes, bytes]] = []
        out = []
        for _ in range(ROUNDS):
            i = rng.randrange(40)
            kind = rng.choice(["plain", "str", "edit", "two", "await", "fail", "miss"])
            if kind == "plain":
                key = b"plain/%d" % i
                reply = expected("hit", key, stored[key])
            elif kind == "edit":
                key = b"edit/%d" % i
                edited = b"edited/%d" % i
                reply = expected("hit", edited, stored[edited])
            elif kind in ("two", "await"):
                key = b"%s/%d" % (kind.encode(), i)
                reply = expected("hit", key, stored[key])
            elif kind == "miss":
                key = b"plain/missing-%d-%d" % (n, i)
                reply = expected("miss", key, b"")
            else:
                key = b"%s/%d" % (kind.encode(), i)
                reply = expected(kind, key, b"")
            out.append(b"get " + key + b"\r\n")
            plan.append((key, reply))
        want = b"".join(r for _, r in plan)
        s = socket.create_connection(proxy.addr, timeout=10)
        try:
            barrier.wait(timeout=10)
            s.sendall(b"".join(out))  # the whole pipeline at once, all clients together
            got = b""
            while len(got) < len(want):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            if got != want:
                errors.append(f"client {n}: got {got[:200]!r}..., want {want[:200]!r}...")
        finally:
            s.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors[:3]
    # The connection-level state is intact: a fresh client still gets normal answers.
    s = socket.create_connection(proxy.addr, timeout=10)
    s.sendall(b"get plain/1\r\n")
    want1 = expected("hit", b"plain/1", stored[b"plain/1"])
    got1 = b""
    while len(got1) < len(want1):
        got1 += s.recv(65536)
    assert got1 == want1
    s.close()
