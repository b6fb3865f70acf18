"""Binary-protocol clients through the proxy (a v1 config, two real memcached backends), and
a real binary client library (python-binary-memcached) against the embedded cache and the
proxy.

A binary request is routed as the text request of the same key: every key is looked for on
the backends directly, in text, to see where it landed.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable
from pathlib import Path

import bmemcached
import bmemcached.exceptions
import pytest

from mcpframe.protocol import binary as b
from mcpframe.protocol.binary import BinaryRequest, BinaryResponseReader, encode_request
from tests.helpers import Client, Mcpframe, Memcached, free_port
from tests.protocol.binary_helpers import binary_exchange

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
KEYS = [b"key:%d" % i for i in range(40)] + [b"\xffk", b"s p a c e", b"ctl\x01"]


class Proxied:
    def __init__(self, a: Memcached, b_: Memcached, proxy: Mcpframe) -> None:
        self.backends = (a, b_)
        self.proxy = proxy

    def holder(self, key: bytes) -> list[tuple[int, bytes]]:
        """(backend index, value) of every backend holding ``key`` (read directly, meta get
        with a base64 key when text cannot carry it)."""
        out = []
        for i, m in enumerate(self.backends):
            c = Client(m.addr)
            try:
                if any(x <= 0x20 or x == 0x7F for x in key):
                    c.send(b"mg " + base64.b64encode(key) + b" b v\r\n")
                else:
                    c.send(b"mg " + key + b" v\r\n")
                line = c.readline()
                if line.startswith(b"VA "):
                    out.append((i, c.readexactly(int(line.split()[1]) + 2)[:-2]))
            finally:
                c.close()
        return out


@pytest.fixture(params=["passthrough", "lua"])
def proxied(
    request: pytest.FixtureRequest,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> Proxied:
    """The pass-through route (no Lua per request) and the same route run in Lua."""
    a, b_ = memcached_factory(), memcached_factory()
    env = {"MCP_TEST_PORT_A": str(a.port), "MCP_TEST_PORT_B": str(b_.port)}
    if request.param == "lua":
        port = free_port()
        proxy = mcpframe_factory(
            "--config",
            str(CONFIGS / "two_backends.lua"),
            "--listen",
            f"127.0.0.1:{port}:lua",
            env=env,
        )
        proxy.port = port
    else:
        proxy = mcpframe_factory("--config", str(CONFIGS / "two_backends.lua"), env=env)
    return Proxied(a, b_, proxy)


def send(client: Client, r: BinaryRequest) -> list[b.BinaryResponse]:
    return BinaryResponseReader().feed(binary_exchange(client, encode_request(r)))


def test_keys_land_where_the_text_request_puts_them(proxied: Proxied) -> None:
    binary, text = Client(proxied.proxy.addr), Client(proxied.proxy.addr)
    for key in KEYS:
        assert send(binary, BinaryRequest(b.OP_SET, key, b"bin")) == [
            b.BinaryResponse(b.OP_SET, cas=send(binary, BinaryRequest(b.OP_GET, key))[0].cas)
        ]
        where = proxied.holder(key)
        assert len(where) == 1 and where[0][1] == b"bin", key
        if any(x <= 0x20 or x == 0x7F for x in key):
            continue  # (no text request carries this key but as base64)
        text.send(b"set " + key + b" 0 0 4\r\ntext\r\n")
        assert text.readline() == b"STORED\r\n"
        assert proxied.holder(key) == [(where[0][0], b"text")], key
    # Both backends were used.
    assert {proxied.holder(k)[0][0] for k in KEYS} == {0, 1}


def test_quiet_batch_across_backends_keeps_request_order(proxied: Proxied) -> None:
    c = Client(proxied.proxy.addr)
    sets = b"".join(
        encode_request(BinaryRequest(b.OP_SETQ, k, b"v" + k, opaque=i)) for i, k in enumerate(KEYS)
    )
    gets = b"".join(
        encode_request(BinaryRequest(b.OP_GETKQ, k, opaque=i))
        for i, k in enumerate([*KEYS, b"missing:1", b"missing:2"])
    )
    adds = b"".join(encode_request(BinaryRequest(b.OP_ADDQ, k, b"x", opaque=7)) for k in KEYS[:3])
    got = BinaryResponseReader().feed(binary_exchange(c, sets + gets + adds))
    # Quiet sets succeed silently; every hit comes back in request order, misses silent;
    # the refused adds are answered.
    hits = [r for r in got if r.opcode == b.OP_GETKQ]
    assert [(r.key, r.value, r.opaque) for r in hits] == [
        (k, b"v" + k, i) for i, k in enumerate(KEYS)
    ]
    assert [(r.opcode, r.status) for r in got[len(hits) :]] == [
        (b.OP_ADDQ, b.STATUS_KEY_EEXISTS)
    ] * 3
    for k in KEYS:
        assert len(proxied.holder(k)) == 1


def test_incr_cas_delete_and_local_commands_through_the_proxy(proxied: Proxied) -> None:
    c = Client(proxied.proxy.addr)
    assert send(c, BinaryRequest(b.OP_INCREMENT, b"n", delta=2, initial=40, exptime=60))[
        0
    ].value == (40).to_bytes(8, "big")
    r = send(c, BinaryRequest(b.OP_INCREMENT, b"n", delta=2))[0]
    assert r.value == (42).to_bytes(8, "big")
    assert proxied.holder(b"n")[0][1] == b"42"
    assert send(c, BinaryRequest(b.OP_DELETE, b"n", cas=r.cas + 1))[0].status == (
        b.STATUS_KEY_EEXISTS
    )
    assert send(c, BinaryRequest(b.OP_DELETE, b"n", cas=r.cas))[0].status == 0
    assert proxied.holder(b"n") == []
    assert send(c, BinaryRequest(b.OP_GETK, b"n"))[0].status == b.STATUS_KEY_ENOENT
    # Unrouted commands answered by the proxy itself.
    assert send(c, BinaryRequest(b.OP_NOOP, opaque=3)) == [b.BinaryResponse(b.OP_NOOP, opaque=3)]
    assert send(c, BinaryRequest(b.OP_VERSION))[0].status == 0
    stats = send(c, BinaryRequest(b.OP_STAT))
    assert stats[-1] == b.BinaryResponse(b.OP_STAT) and len(stats) > 10
    # This config broadcasts no flush_all: the text client's SERVER_ERROR, as a temporary
    # failure with its text.
    text = Client(proxied.proxy.addr)
    text.send(b"flush_all\r\n")
    error = text.readline()
    assert error.startswith(b"SERVER_ERROR ")
    assert send(c, BinaryRequest(b.OP_FLUSH)) == [
        b.BinaryResponse(b.OP_FLUSH, b.STATUS_TEMPORARY_FAILURE, value=error[13:-2])
    ]


def test_backend_down_is_a_temporary_failure(proxied: Proxied) -> None:
    c = Client(proxied.proxy.addr)
    for m in proxied.backends:
        m.stop()
    r = send(c, BinaryRequest(b.OP_GET, b"k", opaque=5))
    assert (r[0].status, r[0].opaque) == (b.STATUS_TEMPORARY_FAILURE, 5)
    assert r[0].value  # the proxy's SERVER_ERROR text


# -- a real binary client library --------------------------------------------------------------


BROADCAST_FLUSH = """
function mcp_config_pools()
    return mcp.pool({ mcp.backend("a", "127.0.0.1", %d), mcp.backend("b", "127.0.0.1", %d) })
end
function mcp_config_routes(p)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r) return p(r) end)
    mcp.broadcast(mcp.CMD_FLUSH_ALL, { p })
end
"""


@pytest.fixture(params=["embedded", "proxy"])
def server(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> str:
    """The embedded cache, or a proxy to two memcached that broadcasts flush_all."""
    if request.param == "embedded":
        return f"127.0.0.1:{mcpframe_factory().port}"
    a, b_ = memcached_factory(), memcached_factory()
    config = tmp_path / "routes.lua"
    config.write_text(BROADCAST_FLUSH % (a.port, b_.port))
    proxy = mcpframe_factory("--config", str(config))
    return f"127.0.0.1:{proxy.port}"


def test_bmemcached_client(server: str) -> None:
    c = bmemcached.Client([server], socket_timeout=5)
    try:
        assert c.set("a", "1") and c.get("a") == "1"
        # get_multi (getkq... noop), quiet sets (setq... noop).
        values = {f"m{i}": f"value {i}" for i in range(50)}
        assert c.set_multi(values) == []  # (the keys that failed)
        assert c.get_multi([*values, "absent"]) == values
        # cas
        value, cas = c.gets("a")
        assert value == "1" and cas
        assert c.cas("a", "2", cas) is True
        assert c.cas("a", "3", cas) is False
        assert c.get("a") == "2"
        # incr/decr with an initial value and expiry
        assert c.incr("counter", 5, default=100, time=60) == 100
        assert c.incr("counter", 5) == 105
        assert c.decr("counter", 200) == 0
        # large values (incompressible), and one over the item limit
        big = os.urandom(900_000)
        assert c.set("big", big, compress_level=0)
        assert c.get("big") == big
        assert c.replace("big", b"small") and c.get("big") == b"small"
        assert c.add("a", "x") is False and c.delete("a") and c.add("a", "x")
        with pytest.raises(bmemcached.exceptions.MemcachedException, match="Too large"):
            c.set("huge", os.urandom(1_100_000), compress_level=0)
        assert c.get("huge") is None and c.get("a") == "x"
        assert c.flush_all()
        assert c.get("m1") is None
    finally:
        c.disconnect_all()


def test_session_lock_loop(server: str) -> None:
    """What PHP's session handler does per request: add a lock (retried while another
    request holds it), read the session, write it, delete the lock. Two clients race."""
    done: list[int] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        c = bmemcached.Client([server], socket_timeout=5)
        try:
            for _ in range(40):
                while not c.add("sess.lock", str(n), time=30):
                    pass
                count = int(c.get("sess") or 0)
                assert c.set("sess", str(count + 1))
                assert c.delete("sess.lock")
                done.append(n)
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            c.disconnect_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(done) == 80
    c = bmemcached.Client([server], socket_timeout=5)
    assert c.get("sess") == "80"  # the lock serialised every read-modify-write
    c.disconnect_all()
