"""Pass-through routes (``return pool(r)``) answer exactly as their Lua says.

mcpframe runs a route that only sends its request to one pool without entering Lua
(docs/performance.md). These tests hold it to the Lua's meaning: the pool is the one the
route names *now* (another route may reassign the variable, table field or global), requests
reach backends in the order they came even when some of a pipeline go through Lua, noreply
requests are rewritten as the route would, and errors surface from the route's line.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.check.test_check_cli import run_check
from tests.helpers import ROOT, Client, Mcpframe, Memcached, free_port
from tests.operations.test_metrics import scrape

CONFIG = ROOT / "tests" / "configs" / "passthrough.lua"


def value(key: bytes, data: bytes) -> bytes:
    return b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, len(data), data)


def start(
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
    env: dict[str, str] | None = None,
    *args: str,
) -> tuple[Mcpframe, Client, Client]:
    """The proxy, and a client on each backend holding key ``k`` = from-a / from-b."""
    a, b = memcached_factory(), memcached_factory()
    direct = []
    for server, data in ((a, b"from-a"), (b, b"from-b")):
        c = Client(server.addr)
        c.send(b"set k 0 0 %d\r\n%s\r\n" % (len(data), data))
        assert c.readline() == b"STORED\r\n"
        direct.append(c)
    ports = {"MCP_TEST_PORT_A": str(a.port), "MCP_TEST_PORT_B": str(b.port)}
    proxy = mcpframe_factory("--config", str(CONFIG), *args, env={**ports, **(env or {})})
    return proxy, direct[0], direct[1]


def reads(c: Client) -> list[bytes]:
    """get, gets and mg of ``k`` (one route each: upvalue, table field, global)."""
    c.send(b"get k\r\ngets k\r\nmg k v\r\n")
    got = [c.read_until(b"END\r\n")]
    gets = c.read_until(b"END\r\n")
    got.append(gets.split(b"\r\n", 1)[1] if gets.startswith(b"VALUE") else gets)  # no cas
    mg = c.readline()
    got.append(c.readline() if mg.startswith(b"VA") else mg)
    return got


def test_reassigned_pools_are_followed(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    proxy, _, _ = start(memcached_factory, mcpframe_factory)
    c = Client(proxy.addr)
    from_a = [value(b"k", b"from-a"), b"from-a\r\nEND\r\n", b"from-a\r\n"]
    from_b = [value(b"k", b"from-b"), b"from-b\r\nEND\r\n", b"from-b\r\n"]
    assert reads(c) == from_a
    c.send(b"md to-b\r\n")
    assert c.readline() == b"HD\r\n"
    assert reads(c) == from_b
    assert reads(Client(proxy.addr)) == from_b  # every connection, not only this one
    c.send(b"md to-a\r\n")
    assert c.readline() == b"HD\r\n"
    assert reads(c) == from_a
    # In one pipeline: the switch runs in Lua first, the reads after it see pool b.
    c.send(b"md to-b\r\nget k\r\nmd to-a\r\nget k\r\n")
    assert c.readline() == b"HD\r\n"
    assert c.read_until(b"END\r\n") == value(b"k", b"from-b")
    assert c.readline() == b"HD\r\n"
    assert c.read_until(b"END\r\n") == value(b"k", b"from-a")
    # Named value no longer a pool: the route fails in Lua, as it says.
    c.send(b"md to-nothing\r\nget k\r\nmd to-a\r\nget k\r\n")
    assert c.readline() == b"HD\r\n"
    assert c.readline() == b"SERVER_ERROR lua failure\r\n"
    assert c.readline() == b"HD\r\n"
    assert c.read_until(b"END\r\n") == value(b"k", b"from-a")


def test_order_noreply_and_multiget(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    proxy, direct_a, _ = start(memcached_factory, mcpframe_factory)
    c = Client(proxy.addr)
    # noreply sets go through the route's rewrite; the gets after them, pass-through or not,
    # must find what they stored (the backend sees them in order).
    pipeline = b"".join(b"set n%d 0 0 2 noreply\r\nv%d\r\n" % (i, i % 10) for i in range(50))
    pipeline += b"".join(b"get n%d\r\n" % i for i in range(50))
    c.send(pipeline)
    for i in range(50):
        assert c.read_until(b"END\r\n") == value(b"n%d" % i, b"v%d" % (i % 10))
    c.send(b"get n1 k missing n2\r\n")
    assert c.read_until(b"END\r\n") == (
        b"VALUE n1 0 2\r\nv1\r\nVALUE k 0 6\r\nfrom-a\r\nVALUE n2 0 2\r\nv2\r\nEND\r\n"
    )
    direct_a.send(b"get n49\r\n")
    assert direct_a.read_until(b"END\r\n") == value(b"n49", b"v9")


@pytest.mark.parametrize("dump", [None, "truncated", "version", "trailing", "garbage", "raises"])
def test_bytecode_the_detector_does_not_know_runs_in_lua(
    dump: str | None,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    """The pass-through detector reads Lua 5.4's bytecode dump. A dump it does not know (what
    a lupa upgrade to another Lua would bring; here the config alters ``string.dump``) must
    not stop the config from loading: every route then runs in Lua, with the same answers.
    The verdict shows in ``mcpframe check`` and in the backend requests a multiget makes."""
    env = {"MCP_TEST_DUMP": dump} if dump else {}
    metrics_port = free_port()
    proxy, _, _ = start(
        memcached_factory, mcpframe_factory, env, "--metrics", f"127.0.0.1:{metrics_port}"
    )
    c = Client(proxy.addr)
    assert reads(c) == [value(b"k", b"from-a"), b"from-a\r\nEND\r\n", b"from-a\r\n"]
    c.send(b"md to-b\r\n")
    assert c.readline() == b"HD\r\n"
    assert reads(c) == [value(b"k", b"from-b"), b"from-b\r\nEND\r\n", b"from-b\r\n"]

    def backend_requests() -> float:
        samples, _ = scrape(metrics_port)
        return sum(v for (n, _), v in samples.items() if n == "mcpframe_backend_requests_total")

    before = backend_requests()
    c.send(b"get " + b" ".join(b"key/%d" % i for i in range(10)) + b"\r\n")
    assert c.read_until(b"END\r\n") == b"END\r\n"
    assert backend_requests() - before == (10 if dump else 1)  # one get per key in Lua

    ports = {"MCP_TEST_PORT_A": "1", "MCP_TEST_PORT_B": "2"}
    done = run_check("--json", str(CONFIG), env={**os.environ, **ports, **env})
    assert done.returncode == 0, done.stderr
    routes = json.loads(done.stdout)["routes"]
    assert {r["passthrough"] for r in routes} == ({None} if dump else {None, "a"})


@pytest.fixture
def fragile_hasher(tmp_path: Path) -> dict[str, str]:
    """An installed plugin (a dist-info on PYTHONPATH) whose hasher raises on keys starting
    with ``boom`` (tests/plugins/fakes/raising.py)."""
    info = tmp_path / "mcpframe_fragile-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mcpframe-fragile\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        "[mcpframe]\nhash_fragile = tests.plugins.fakes.raising\n"
    )
    path = os.pathsep.join(p for p in (str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "MCP_TEST_FRAGILE": "1"}


def test_placement_error_is_raised_by_the_route(
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
    fragile_hasher: dict[str, str],
) -> None:
    proxy, _, _ = start(memcached_factory, mcpframe_factory, env=fragile_hasher)
    w = Client(proxy.addr)
    w.send(b"watch proxyevents\r\n")
    assert w.readline() == b"OK\r\n"
    c = Client(proxy.addr)
    c.send(b"touch k 0\r\ntouch boom 0\r\ntouch k 0\r\n")
    assert c.readline() == b"TOUCHED\r\n"
    assert c.readline() == b"SERVER_ERROR lua failure\r\n"
    assert c.readline() == b"TOUCHED\r\n"
    events = [w.readline().decode() for _ in range(2)]
    # Once from the plugin call, once from the route: `return pool(r)` is a tail call, so the
    # error has no line of the route to name (as when the route runs in Lua).
    assert "msg=key placement failed in plugin code: hasher plugin 'fragile'" in events[0]
    assert "msg=key placement failed: hasher plugin 'fragile'" in events[1], events


MULTIGET_CONFIG = ROOT / "tests" / "configs" / "two_backends.lua"


def exchange(c: Client, request: bytes, replies: int = 1) -> bytes:
    c.send(request)
    return b"".join(c.read_until(b"END\r\n") for _ in range(replies))


def test_multigets_match_one_route_per_key(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    """Multigets on a pass-through route go one get per backend; the client reads exactly
    what the one-route-per-key way gives (the "lua" listener): hits, misses, repeated and
    over-long keys, cas values, hundreds of keys, and a backend that is down."""

    a, b = memcached_factory(), memcached_factory()
    env = {"MCP_TEST_PORT_A": str(a.port), "MCP_TEST_PORT_B": str(b.port)}
    lua_port = free_port()
    proxy = mcpframe_factory(
        "--config", str(MULTIGET_CONFIG), "--listen", f"127.0.0.1:{lua_port}:lua", env=env
    )
    fast, slow = Client(proxy.addr), Client(("127.0.0.1", lua_port))
    rng = random.Random(7)
    keys = [b"key/%d/%s" % (i, b"x" * rng.randrange(0, 40)) for i in range(300)]
    stored = keys[::2]
    setup = b"".join(
        b"set %s %d 0 %d\r\n%s\r\n" % (k, i, len(v), v)
        for i, k in enumerate(stored)
        for v in [bytes(rng.choice(b"abcdefgh") for _ in range(rng.randrange(0, 300)))]
    )
    fast.send(setup)
    for _ in stored:
        assert fast.readline() == b"STORED\r\n"

    def check(request: bytes, replies: int = 1) -> bytes:
        got = exchange(fast, request, replies)
        assert got == exchange(slow, request, replies), request
        return got

    assert check(b"get %s %s\r\n" % (stored[0], stored[1])).count(b"VALUE ") == 2
    for _ in range(30):
        picked = [rng.choice(keys) for _ in range(rng.randrange(2, 120))]
        if rng.random() < 0.2:
            picked.insert(rng.randrange(len(picked)), b"k" * 251)  # CLIENT_ERROR piece
        for cmd in (b"get", b"gets"):
            check(cmd + b" " + b" ".join(picked) + b"\r\n")
    # Pipelined, and mixed with single-key requests.
    pipeline = b"get %s %s\r\nget %s\r\ngets %s %s %s\r\n" % (*keys[:3], *keys[3:6])
    assert check(pipeline, 3).count(b"END\r\n") == 3
    # Every stored key in one request: lines of more than 2 KB of keys are split.
    everything = check(b"get " + b" ".join(keys) + b"\r\n")
    assert everything.count(b"VALUE ") == len(stored)

    # A backend down: its keys get the error line each, the others their values.
    b.stop()
    request = b"get " + b" ".join(keys[:40]) + b"\r\n"
    exchange(fast, request)  # the first one finds out that the backend went away
    got = check(request)
    assert b"SERVER_ERROR" in got and b"VALUE " in got


def test_multiget_reaches_each_backend_once(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    """Through the metrics endpoint: a 10-key get on a pass-through route is one backend
    request per backend it touches; with the route in Lua it is one per key."""
    a, b = memcached_factory(), memcached_factory()
    env = {"MCP_TEST_PORT_A": str(a.port), "MCP_TEST_PORT_B": str(b.port)}
    lua_port, metrics_port = free_port(), free_port()
    proxy = mcpframe_factory(
        "--config", str(MULTIGET_CONFIG), "--listen", f"127.0.0.1:{lua_port}:lua",
        "--metrics", f"127.0.0.1:{metrics_port}", env=env,
    )  # fmt: skip

    def backend_requests() -> float:
        samples, _ = scrape(metrics_port)
        return sum(v for (n, _), v in samples.items() if n == "mcpframe_backend_requests_total")

    request = b"get " + b" ".join(b"key/%d" % i for i in range(10)) + b"\r\n"
    fast, slow = Client(proxy.addr), Client(("127.0.0.1", lua_port))
    before = backend_requests()
    assert exchange(fast, request) == b"END\r\n"
    after_fast = backend_requests()
    assert exchange(slow, request) == b"END\r\n"
    after_slow = backend_requests()
    assert 1 <= after_fast - before <= 2  # the keys land on one or both backends
    assert after_slow - after_fast == 10
