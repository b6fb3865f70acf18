"""The example configs of spec/mcp-v2.md (kept in tests/configs/spec_v2/, their backend
addresses taken from the environment) load and serve, through the CLI, in front of real
memcached servers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.helpers import Client, Mcpframe, Memcached, free_port

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "spec_v2"


def test_the_function_generator_example_serves(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    a, b = memcached_factory(), memcached_factory()
    env = {"SPEC_PORT_A": str(a.port), "SPEC_PORT_B": str(b.port)}
    proxy = mcpframe_factory("--config", str(CONFIGS / "funcgen.lua"), env=env)
    c = Client(proxy.addr)
    for i in range(20):
        c.send(b"set k%d 0 0 2\r\nv%d\r\nget k%d\r\n" % (i, i % 10, i))
        assert c.readline() == b"STORED\r\n"
        assert c.read_until(b"END\r\n") == b"VALUE k%d 0 2\r\nv%d\r\nEND\r\n" % (i, i % 10)
    # Both backends took keys (jump hash over two).
    for m in (a, b):
        direct = Client(m.addr)
        direct.send(b"get " + b" ".join(b"k%d" % i for i in range(20)) + b"\r\n")
        assert direct.read_until(b"END\r\n").count(b"VALUE ") > 0
    b.stop()
    answers = set()
    for i in range(20):
        c.send(b"get k%d\r\n" % i)
        answers.add(c.readline())
    assert b"SERVER_ERROR try later\r\n" in answers  # the route's own answer to a failure


def test_the_route_library_examples_serve(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    a, b, c_ = memcached_factory(), memcached_factory(), memcached_factory()
    env = {"SPEC_PORT_A": str(a.port), "SPEC_PORT_B": str(b.port), "SPEC_PORT_C": str(c_.port)}
    port = free_port()
    mcpframe_factory(
        "--routelib", str(CONFIGS / "routelib.lua"), "--config", str(CONFIGS / "hello.lua"),
        "--listen", f"127.0.0.1:{port}:alt", env=env,
    )  # fmt: skip
    c = Client(("127.0.0.1", port))
    c.send(b"set users/1 0 0 2\r\nhi\r\nget users/1\r\n")
    assert c.readline() == b"STORED\r\n"
    assert c.read_until(b"END\r\n") == b"VALUE users/1 0 2\r\nhi\r\nEND\r\n"
    c.send(b"set cache/1 0 0 2\r\nhi\r\n")  # cache/: only get goes to a pool
    assert c.readline() == b"NOT_STORED\r\n"  # route_null's answer to a set
    c.send(b"get cache/1\r\n")
    assert c.readline() == b"END\r\n"
    c.send(b"incr nomap/1 1\r\n")  # no map entry: cmap's incr, route_null
    assert c.readline() == b"NOT_FOUND\r\n"
    c.send(b"incr users/1 1\r\n")  # a map entry wins over cmap (spec 4.4): the backend
    assert c.readline() == b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    c.send(b"get hello/x\r\n")
    assert c.readline() == b"SERVER_ERROR hello from hello\r\n"
    c.send(b"set other/1 0 0 2\r\nok\r\nget other/1\r\n")  # default: failover over the set
    assert c.readline() == b"STORED\r\n"
    assert c.read_until(b"END\r\n") == b"VALUE other/1 0 2\r\nok\r\nEND\r\n"
