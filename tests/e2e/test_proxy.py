"""mcpframe as a proxy in front of real memcached servers, driven by real clients."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pymemcache.client.base import Client as PyMemcache

from tests.helpers import ROOT, Client, Mcpframe, Memcached, free_port

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


class Proxied:
    """Two memcached backends and mcpframe routing to them."""

    def __init__(self, a: Memcached, b: Memcached, proxy: Mcpframe) -> None:
        self.a, self.b, self.proxy = a, b, proxy


@pytest.fixture
def proxied(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> Iterator[Proxied]:
    a, b = memcached_factory(), memcached_factory()
    env = {"MCP_TEST_PORT_A": str(a.port), "MCP_TEST_PORT_B": str(b.port)}
    proxy = mcpframe_factory("--config", str(CONFIGS / "two_backends.lua"), env=env)
    yield Proxied(a, b, proxy)


def converse(addr: tuple[str, int], data: bytes) -> bytes:
    c = Client(addr)
    try:
        c.send(data + b"mn\r\n")
        return c.read_until(b"MN\r\n")
    finally:
        c.close()


CAS = re.compile(rb"^(VALUE \S+ \d+ \d+) \d+\r$", re.M)


def no_cas(data: bytes) -> bytes:
    return CAS.sub(rb"\1 <cas>\r", data)


# Byte sequences whose replies through the proxy must equal memcached's own replies.
PASSTHROUGH = {
    "storage": (
        b"set k1 1 0 3\r\nabc\r\nadd k1 0 0 1\r\nx\r\nadd k2 2 0 1\r\ny\r\n"
        b"replace k2 3 0 2\r\nzz\r\nappend k1 0 0 1\r\nd\r\nprepend k1 0 0 1\r\n_\r\n"
        b"get k1\r\nget k2\r\nget k3\r\n"
    ),
    "multiget": (
        b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nset c 0 0 1\r\n3\r\n"
        b"get a b c d e\r\ngets a nope c\r\nget x y z\r\n"
    ),
    "arith": b"set n 0 0 1\r\n5\r\nincr n 10\r\ndecr n 20\r\nincr nope 1\r\ntouch n 100\r\n",
    "delete": b"set d 0 0 1\r\nx\r\ndelete d\r\ndelete d\r\nget d\r\n",
    "noreply": (
        b"set q 0 0 1 noreply\r\nx\r\nincr q 1 noreply\r\ndelete zz noreply\r\n"
        b"add q 0 0 1 noreply\r\ny\r\nget q\r\n"
    ),
    "meta": (
        b"ms m1 2 F7 T0\r\nhi\r\nmg m1 v f s k\r\nmg m1 O99 k\r\nmg nope v\r\nmd m1\r\n"
        b"md m1\r\nma ctr N0 J5 v\r\nma ctr D3 v\r\nmn\r\n"
    ),
    "meta-quiet": (
        b"ms mq 2 q\r\nhi\r\nmg mq v q\r\nmg nope v q\r\nmd nope q\r\nmd mq q\r\nmg mq v\r\n"
    ),
}


@pytest.mark.parametrize("name", sorted(PASSTHROUGH))
def test_passthrough_matches_memcached(
    name: str, proxied: Proxied, memcached_factory: Callable[..., Memcached]
) -> None:
    direct = memcached_factory()
    expected = converse(direct.addr, PASSTHROUGH[name])
    got = converse(proxied.proxy.addr, PASSTHROUGH[name])
    assert no_cas(got) == no_cas(expected)


def test_pymemcache_classic_commands(proxied: Proxied) -> None:
    client = PyMemcache(proxied.proxy.addr, connect_timeout=5, timeout=5)
    try:
        assert client.set("user:1", b"alice", noreply=False) is True
        assert client.get("user:1") == b"alice"
        client.set_many({f"k{i}": str(i).encode() for i in range(50)}, noreply=True)
        got = client.get_many([f"k{i}" for i in range(60)])
        assert got == {f"k{i}": str(i).encode() for i in range(50)}
        value, cas = client.gets("user:1")
        assert value == b"alice"
        assert client.cas("user:1", b"bob", cas) is True
        assert client.cas("user:1", b"carol", cas) is False
        assert client.get("user:1") == b"bob"
        assert client.add("user:1", b"x", noreply=False) is False
        client.set("count", b"10")
        assert client.incr("count", 5) == 15
        assert client.decr("count", 20) == 0
        assert client.delete("count", noreply=False) is True
        assert client.get("count") is None
        assert client.touch("user:1", 100, noreply=False) is True
        assert client.version() == b"1.6.45"
    finally:
        client.close()


def test_keys_are_spread_over_both_backends(proxied: Proxied) -> None:
    client = PyMemcache(proxied.proxy.addr, connect_timeout=5, timeout=5)
    try:
        for i in range(200):
            client.set(f"/test/{i}", b"v", noreply=False)
    finally:
        client.close()
    counts = []
    for backend in (proxied.a, proxied.b):
        direct = PyMemcache(backend.addr)
        counts.append(int(direct.stats()[b"curr_items"]))
        direct.close()
    assert sum(counts) == 200
    assert min(counts) > 60  # jump hash splits 200 keys roughly evenly


def test_jump_hash_placement_matches_memcached_vectors(proxied: Proxied) -> None:
    # spec 5.6: the default pool of 2 backends puts /test/a on index 1, /test/b on index 0.
    client = PyMemcache(proxied.proxy.addr, connect_timeout=5, timeout=5)
    for key in ("/test/a", "/test/b", "/test/c", "foo", "baz"):
        client.set(key, key.encode(), noreply=False)
    client.close()
    expected = {"/test/a": 1, "/test/b": 0, "/test/c": 1, "foo": 1, "baz": 0}
    for key, index in expected.items():
        backend = (proxied.a, proxied.b)[index]
        direct = PyMemcache(backend.addr)
        assert direct.get(key) == key.encode(), key
        direct.close()


def test_deep_pipeline_stays_in_order(proxied: Proxied) -> None:
    c = Client(proxied.proxy.addr)
    n = 2000
    batch = b"".join(b"ms p%d 4\r\n%04d\r\n" % (i, i) for i in range(n))
    batch += b"".join(b"mg p%d v\r\n" % i for i in range(n))
    batch += b"version\r\n"
    c.send(batch)
    for _ in range(n):
        assert c.readline() == b"HD\r\n"
    for i in range(n):
        assert c.readline() == b"VA 4\r\n"
        assert c.readline() == b"%04d\r\n" % i
    assert c.readline() == b"VERSION 1.6.45\r\n"


def test_many_clients_at_once(proxied: Proxied) -> None:
    clients = [Client(proxied.proxy.addr) for _ in range(40)]
    for i, c in enumerate(clients):
        c.send(b"set c%d 0 0 2\r\n%02d\r\nget c%d\r\n" % (i, i, i))
    for i, c in enumerate(clients):
        assert c.read_until(b"END\r\n") == b"STORED\r\nVALUE c%d 0 2\r\n%02d\r\nEND\r\n" % (i, i)
        c.close()


def test_bad_input_gets_memcached_errors_and_connection_survives(proxied: Proxied) -> None:
    c = Client(proxied.proxy.addr)
    c.send(b"bogus\r\n")
    assert c.readline() == b"ERROR\r\n"
    c.send(b"set k abc 0 1\r\n")
    assert c.readline() == b"CLIENT_ERROR bad command line format\r\n"
    c.send(b"set k 0 0 3\r\nabcdef\r\n")
    assert c.readline() == b"CLIENT_ERROR bad data chunk\r\n"
    assert c.readline() == b"ERROR\r\n"  # memcached parses the leftover "f" as a command
    c.send(b"get " + b"x" * 251 + b"\r\n")
    assert c.readline() == b"CLIENT_ERROR bad command line format\r\n"
    c.send(b"get ok " + b"x" * 251 + b"\r\n")
    assert c.read_until(b"END\r\n") == b"CLIENT_ERROR key too long\r\nEND\r\n"
    c.read_available(0.3)
    c.send(b"set fine 0 0 2\r\nok\r\nget fine\r\n")
    assert c.read_until(b"END\r\n") == b"STORED\r\nVALUE fine 0 2\r\nok\r\nEND\r\n"


def test_routed_line_too_long_closes_after_earlier_replies(proxied: Proxied) -> None:
    c = Client(proxied.proxy.addr)
    c.send(b"mn\r\nmg " + b"k" * 200 + b" v O" + b"o" * 300 + b"\r\n")
    assert c.readline() == b"MN\r\n"
    assert c.readline() == b"CLIENT_ERROR request too long\r\n"
    assert c.is_closed()
    other = Client(proxied.proxy.addr)
    other.send(b"mn\r\n")
    assert other.readline() == b"MN\r\n"


def test_client_vanishing_mid_request_disturbs_nobody(proxied: Proxied) -> None:
    steady = Client(proxied.proxy.addr)
    for data in (b"set k 0 0 50\r\npartial", b"get a b c", b"ms k 10 T0\r\n12"):
        gone = Client(proxied.proxy.addr)
        gone.send(data)
        gone.close()
        steady.send(b"set s 0 0 1\r\nx\r\nget s\r\n")
        assert steady.read_until(b"END\r\n") == b"STORED\r\nVALUE s 0 1\r\nx\r\nEND\r\n"


def test_dead_backend_fails_only_its_keys(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    live = memcached_factory()
    dead_port = free_port()  # nothing listens here
    env = {"MCP_TEST_PORT_A": str(dead_port), "MCP_TEST_PORT_B": str(live.port)}
    proxy = mcpframe_factory("--config", str(CONFIGS / "two_backends.lua"), env=env)
    c = Client(proxy.addr)
    # spec 5.6 vectors, 2 backends: /test/b -> index 0 (dead), /test/a -> index 1 (live).
    started = time.monotonic()
    for _ in range(20):
        c.send(b"set /test/b 0 0 1\r\nx\r\nset /test/a 0 0 1\r\ny\r\nget /test/a\r\n")
        assert c.readline() == b"SERVER_ERROR backend failure\r\n"
        assert c.read_until(b"END\r\n") == b"STORED\r\nVALUE /test/a 0 1\r\ny\r\nEND\r\n"
    assert time.monotonic() - started < 5


def test_route_errors_answer_lua_failure_and_keep_connection(
    memcached_factory: Callable[..., Memcached], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    a = memcached_factory()
    proxy = mcpframe_factory(
        "--config", str(CONFIGS / "route_errors.lua"), env={"MCP_TEST_PORT_A": str(a.port)}
    )
    c = Client(proxy.addr)
    c.send(b"get /err/raise\r\nget /err/nil\r\nget /str/hello\r\nget /other\r\n")
    assert c.readline() == b"SERVER_ERROR lua failure\r\n"
    assert c.readline() == b"SERVER_ERROR bad response\r\n"
    assert c.read_until(b"END\r\n") == b"VALUE /str/hello 0 5\r\nhello\r\nEND\r\n"
    assert c.read_until(b"END\r\n") == b"END\r\n"
    _, err = proxy.stop()
    assert b"route failed on purpose" in err
    assert b"route_errors.lua:11" in err
    assert b"stack traceback" in err


def serve_fails(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--listen", f"127.0.0.1:{port}", *args],
        capture_output=True,
        timeout=30,
        cwd=ROOT,
        env={**__import__("os").environ, **(env or {})},
    )
    return proc.returncode, proc.stderr.decode()


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("function mcp_config_pools(\n  return {}\nend\n", "routes.lua:2:"),
        ("function mcp_config_pools()\n  error('no pools today')\nend\n",
         "routes.lua:2: no pools today"),
        ("function mcp_config_pools()\n  return {}\nend\n"
         "function mcp_config_routes(c)\n\n  c.nope.x = 1\nend\n",
         "routes.lua:6: attempt to index a nil value"),
        ("function mcp_config_pools()\n  return { p = mcp.pool({ mcp.backend('a') }) }\nend\n",
         "routes.lua:2: bad argument #2 to 'backend'"),
        ("x = 1\n", "missing 'mcp_config_pools'"),
        ("function mcp_config_pools()\n  return { mcp.backend('a', '127.0.0.1', 1) }\nend\n",
         "unhandled userdata type in configuration table"),
    ],
)  # fmt: skip
def test_config_errors_name_file_and_line(tmp_path: Path, source: str, needle: str) -> None:
    cfg = tmp_path / "routes.lua"
    cfg.write_text(source)
    code, err = serve_fails("--config", str(cfg))
    assert code != 0
    assert needle in err
    assert "Traceback" not in err


def test_missing_config_file(tmp_path: Path) -> None:
    code, err = serve_fails("--config", str(tmp_path / "nope.lua"))
    assert code != 0
    assert "nope.lua" in err and "not found" in err


def test_port_in_use_is_one_clear_line(memcached_server: Memcached) -> None:
    port = memcached_server.port
    proc = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--listen", f"127.0.0.1:{port}"],
        capture_output=True,
        timeout=30,
        cwd=ROOT,
    )
    assert proc.returncode != 0
    lines = [x for x in proc.stderr.decode().splitlines() if x.startswith("mcpframe:")]
    assert lines == [f"mcpframe: cannot listen on 127.0.0.1:{port}: address already in use"]


def test_long_routed_multiget_is_served(proxied: Proxied) -> None:
    c = Client(proxied.proxy.addr)
    keys = [b"/many/%03d/" % i + b"k" * 24 for i in range(100)]  # a 3.4 KB request line
    c.send(b"".join(b"set %s 0 0 1 noreply\r\n%d\r\n" % (k, i % 10) for i, k in enumerate(keys)))
    c.send(b"get " + b" ".join(keys) + b"\r\n")
    out = c.read_until(b"\r\nEND\r\n")
    assert out.count(b"VALUE ") == 100
    assert out.endswith(b"VALUE %s 0 1\r\n9\r\nEND\r\n" % keys[-1])


def test_bad_logger_argument_is_one_clear_line(tmp_path: Path) -> None:
    code, err = serve_fails("--logger", f"jsonfile:{tmp_path}/missing/dir/log.jsonl")
    assert code == 1
    assert "mcpframe: --logger jsonfile:" in err
    assert "Traceback" not in err
    code, err = serve_fails("--logger", "nope")
    assert code == 1
    assert "unknown logger 'nope'" in err
