"""Hostile input: random and mutated protocol bytes to the parser and to live servers.

Bounded: a few hundred hypothesis examples per test, no deadline, and a wall-clock budget
after which the remaining examples pass trivially (so a slow machine cuts the run short
instead of timing out).

Parsers (``RequestReader``, and ``BinaryRequestReader`` with the binary-to-text translation
behind it): never raise; the same bytes give the same output however they are cut into
reads; what they buffer stays bounded by their limits.

Live servers (the embedded cache, and a proxy in front of a real memcached): each example is
sent on a fresh connection; after it a control client must still get ``version`` and a
set/get round trip, promptly; the process never dies and its RSS stays bounded. Binary
clients get the same treatment: mutated packet streams (wrong magic mid-stream, lengths that
do not add up, bodies over the item limit, unknown opcodes), each followed by a binary
control client.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcpframe.protocol import binary as b
from mcpframe.protocol.binary import (
    BinaryRequest,
    BinaryRequestReader,
    BinaryResponseReader,
    encode_request,
)
from mcpframe.protocol.binmeta import to_binary, to_text
from mcpframe.protocol.reader import RequestReader
from mcpframe.protocol.request import ErrorReply, Request
from tests.helpers import Client, Mcpframe, Memcached
from tests.operations.support import CONFIGS, rss_kb

PARSER_BUDGET = 20.0  # seconds per parser test
LIVE_BUDGET = 20.0  # seconds per live server

VALID = [
    b"get k\r\n",
    b"get a b c d\r\n",
    b"gets k\r\n",
    b"gat 10 k\r\n",
    b"set k 0 0 5\r\nhello\r\n",
    b"add k 1 2 3 noreply\r\nabc\r\n",
    b"cas k 0 0 1 99\r\nx\r\n",
    b"incr n 5\r\n",
    b"decr n 1 noreply\r\n",
    b"touch k 10\r\n",
    b"delete k\r\n",
    b"mg k v f t s\r\n",
    b"ms k 2 T10 F5 q\r\nhi\r\n",
    b"md k q\r\n",
    b"ma n N0 J5 v\r\n",
    b"me k\r\n",
    b"mn\r\n",
    b"version\r\n",
    b"verbosity 1\r\n",
    b"stats\r\n",
    b"flush_all 0\r\n",
]
HUGE = [
    b"set k 0 0 4294967296\r\n",
    b"set k 0 0 2147483645\r\nxx",
    b"ms k 99999999999999999999\r\n",
    b"ms k 2147483647 T0\r\n",
    b"get " + b"k" * 70_000 + b"\r\n",
    b"mg " + b"k" * 300 + b" v\r\n",
    b"x" * 5000,
    b"get " + b" " * 3000 + b"k\r\n",
    b"set k 0 0 -1\r\n",
    b"incr n 99999999999999999999999\r\n",
]
TOKENS = [b" ", b"\r", b"\n", b"\r\n", b"\0", b"noreply", b"q", b"-1", b"4294967295", b"\xff"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A pipeline of valid requests, then byte-level mutations of it."""
    requests = draw(st.lists(st.sampled_from(VALID + HUGE), min_size=1, max_size=6))
    data = bytearray(b"".join(requests))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup", "token"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
        else:
            data[pos:pos] = draw(st.sampled_from(TOKENS))
    return bytes(data)


payloads = st.one_of(
    mutated(),
    st.binary(max_size=512),
    st.lists(st.sampled_from(VALID + HUGE + TOKENS), max_size=12).map(b"".join),
)


def _chunks(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    last = 0
    for p in points:
        yield data[last:p]
        last = p
    yield data[last:]


def _render(items: list[Request | ErrorReply]) -> list[object]:
    out: list[object] = []
    for item in items:
        if isinstance(item, Request):
            out.append((item.cmd, item.line, item.key, item.value, item.noreply, item.multiget))
        else:
            out.append((item.reply, item.close))
    return out


_parser_started: list[float] = []


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(data=payloads, cuts=st.lists(st.integers(0, 10**6), max_size=12))
def test_parser_never_raises_and_ignores_chunking(data: bytes, cuts: list[int]) -> None:
    if not _parser_started:
        _parser_started.append(time.monotonic())
    if time.monotonic() - _parser_started[0] > PARSER_BUDGET:
        return
    whole = RequestReader(max_value=4096)
    expected = _render(whole.feed(data))
    chunked = RequestReader(max_value=4096)
    got: list[Request | ErrorReply] = []
    for piece in _chunks(data, cuts):
        got += chunked.feed(piece)
        # Memory bound: a partial line is at most a (multiget) line; a partial storage
        # request at most its line plus a value under max_value.
        assert chunked.buffered() <= chunked.max_multiget_line + 4096 + 2 + 2048
    assert _render(got) == expected
    assert chunked.buffered() == whole.buffered()
    assert chunked.closed == whole.closed


class LiveTarget:
    def __init__(self, proxy: Mcpframe) -> None:
        self.proxy = proxy
        self.base_rss = rss_kb(proxy.proc.pid)
        self.max_rss = self.base_rss
        self.rounds = 0
        self.started = time.monotonic()
        self.slowest_control = 0.0

    def control(self) -> None:
        t0 = time.monotonic()
        c = Client(self.proxy.addr, timeout=5)
        try:
            c.send(b"version\r\nset ctl 0 0 2\r\nok\r\nget ctl\r\n")
            assert c.readline().startswith(b"VERSION ")
            assert c.readline() == b"STORED\r\n"
            assert c.read_until(b"END\r\n") == b"VALUE ctl 0 2\r\nok\r\nEND\r\n"
        finally:
            c.close()
        self.slowest_control = max(self.slowest_control, time.monotonic() - t0)
        self.max_rss = max(self.max_rss, rss_kb(self.proxy.proc.pid))


def _blast(addr: tuple[str, int], data: bytes) -> None:
    """Send ``data`` on a fresh connection, read what comes back briefly, hang up."""
    s = socket.create_connection(addr, 5)
    try:
        s.settimeout(2)
        with contextlib.suppress(OSError):
            s.sendall(data)
        s.settimeout(0.02)
        with contextlib.suppress(OSError):
            for _ in range(64):
                if not s.recv(65536):
                    break
    finally:
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()


@pytest.fixture(params=["embedded", "proxy"])
def live(
    request: pytest.FixtureRequest,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> LiveTarget:
    if request.param == "embedded":
        return LiveTarget(mcpframe_factory())
    a, b = memcached_factory(), memcached_factory()
    env = {"MCP_TEST_PORT_A": str(a.port), "MCP_TEST_PORT_B": str(b.port)}
    return LiveTarget(mcpframe_factory("--config", str(CONFIGS / "two_backends.lua"), env=env))


@pytest.mark.timeout(120)
def test_live_server_survives_hostile_clients(live: LiveTarget) -> None:
    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(data=payloads)
    def round_(data: bytes) -> None:
        if time.monotonic() - live.started > LIVE_BUDGET:
            return
        _blast(live.proxy.addr, data)
        live.rounds += 1
        if live.rounds % 10 == 0:
            live.control()

    round_()
    live.control()
    assert live.proxy.proc.poll() is None  # no crash
    assert live.rounds >= 50
    assert live.slowest_control < 1.0  # never hung, others kept being served
    growth_mb = (live.max_rss - live.base_rss) / 1024
    assert growth_mb < 100, f"RSS grew {growth_mb:.0f} MB"


# -- the binary protocol -----------------------------------------------------------------------


def _packet(opcode: int, key: bytes = b"", value: bytes = b"", **kw: int) -> bytes:
    return encode_request(BinaryRequest(opcode, key, value, **kw))


def _raw_header(opcode: int, keylen: int, extlen: int, bodylen: int) -> bytes:
    return (
        bytes([0x80, opcode])
        + keylen.to_bytes(2, "big")
        + bytes([extlen, 0, 0, 0])
        + bodylen.to_bytes(4, "big")
        + bytes(12)
    )


VALID_BINARY = [
    _packet(b.OP_GET, b"k"),
    _packet(b.OP_GETKQ, b"k", opaque=7),
    _packet(b.OP_SET, b"k", b"hello", flags=5, exptime=10),
    _packet(b.OP_SETQ, b"k", b"v"),
    _packet(b.OP_ADD, b"k", b"v", cas=3),
    _packet(b.OP_APPENDQ, b"k", b"+"),
    _packet(b.OP_INCREMENT, b"n", delta=5, initial=1, exptime=100),
    _packet(b.OP_DECREMENTQ, b"n", delta=1, exptime=b.NO_CREATE),
    _packet(b.OP_DELETE, b"k"),
    _packet(b.OP_TOUCH, b"k", exptime=10),
    _packet(b.OP_GATKQ, b"k", exptime=10),
    _packet(b.OP_GET, b"a b\r\n"),
    _packet(b.OP_NOOP),
    _packet(b.OP_VERSION),
    _packet(b.OP_STAT),
    _packet(b.OP_STAT, b"settings"),
    _packet(b.OP_STAT, b"detail dump"),
    _packet(b.OP_FLUSHQ, exptime=1),
]
HOSTILE_BINARY = [
    _packet(b.OP_QUIT),
    _packet(0x1B, b"", b"abcd"),  # verbosity: unknown, body swallowed
    _packet(0x21, b"PLAIN", b"secret"),  # SASL auth
    _packet(0xFE),
    _raw_header(b.OP_SET, 1, 8, 3_000_000),  # a body over the item limit, never sent
    _raw_header(b.OP_SET, 1, 8, 2 * 1024 * 1024) + bytes(9),
    _raw_header(b.OP_GET, 9, 4, 5),  # key + extras longer than the body
    _raw_header(b.OP_GET, 300, 0, 300),  # key over 250
    _raw_header(b.OP_GET, 1, 0, 0xFFFFFFFF),
    b"\x81" + bytes(23),  # wrong magic
    b"get k\r\n",
    _packet(b.OP_GET, b"k" * 250),
]


@st.composite
def binary_mutated(draw: st.DrawFn) -> bytes:
    """A pipeline of binary packets starting with a valid one, then byte-level mutations."""
    first = draw(st.sampled_from(VALID_BINARY))
    rest = draw(st.lists(st.sampled_from(VALID_BINARY + HOSTILE_BINARY), max_size=6))
    data = bytearray(first + b"".join(rest))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(1, max(1, len(data) - 1)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if op == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return bytes(data)


def _render_binary(items: list[BinaryRequest | ErrorReply]) -> list[object]:
    return [
        (item.reply, item.close) if isinstance(item, ErrorReply) else repr(item) for item in items
    ]


_binary_started: list[float] = []


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(data=binary_mutated(), cuts=st.lists(st.integers(0, 10**6), max_size=12))
def test_binary_parser_never_raises_and_ignores_chunking(data: bytes, cuts: list[int]) -> None:
    if not _binary_started:
        _binary_started.append(time.monotonic())
    if time.monotonic() - _binary_started[0] > PARSER_BUDGET:
        return
    whole = BinaryRequestReader(max_value=4096)
    items = whole.feed(data)
    chunked = BinaryRequestReader(max_value=4096)
    got: list[BinaryRequest | ErrorReply] = []
    for piece in _chunks(data, cuts):
        got += chunked.feed(piece)
        # A partial packet is buffered only up to a header, key, extras and a value under
        # max_value; a refused body is swallowed, not buffered.
        assert chunked.buffered() <= 24 + 255 + 250 + 4096
    assert _render_binary(got) == _render_binary(items)
    # Every request translates to one text request (or to nothing), and any reply to it
    # becomes binary packets, never an exception.
    text = RequestReader(max_value=4096)
    for item in items:
        if isinstance(item, BinaryRequest):
            request = to_text(item)
            if request:
                assert len(text.feed(request)) == 1 and text.buffered() == 0
            for reply in (b"", b"ERROR\r\n", b"SERVER_ERROR backend failure\r\n", request):
                BinaryResponseReader().feed(to_binary(item, reply))


def _binary_control(target: LiveTarget) -> None:
    """A binary client must still be served promptly: set, getk, version, noop."""
    t0 = time.monotonic()
    c = Client(target.proxy.addr, timeout=5)
    try:
        c.send(
            _packet(b.OP_SET, b"bctl", b"ok")
            + _packet(b.OP_GETK, b"bctl", opaque=2)
            + _packet(b.OP_VERSION)
            + _packet(b.OP_NOOP, opaque=9)
        )
        reader = BinaryResponseReader()
        got: list[b.BinaryResponse] = []
        while len(got) < 4:
            c._fill()
            got += reader.feed(c.buf)
            c.buf = b""
        assert [(r.opcode, r.status) for r in got] == [
            (b.OP_SET, 0),
            (b.OP_GETK, 0),
            (b.OP_VERSION, 0),
            (b.OP_NOOP, 0),
        ]
        assert (got[1].key, got[1].value, got[3].opaque) == (b"bctl", b"ok", 9)
    finally:
        c.close()
    target.slowest_control = max(target.slowest_control, time.monotonic() - t0)


@pytest.mark.timeout(120)
def test_live_server_survives_hostile_binary_clients(live: LiveTarget) -> None:
    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(data=binary_mutated())
    def round_(data: bytes) -> None:
        if time.monotonic() - live.started > LIVE_BUDGET:
            return
        _blast(live.proxy.addr, data)
        live.rounds += 1
        if live.rounds % 10 == 0:
            _binary_control(live)
            live.control()

    round_()
    _binary_control(live)
    live.control()
    assert live.proxy.proc.poll() is None  # no crash
    assert live.rounds >= 50
    assert live.slowest_control < 1.0  # never hung, others kept being served
    growth_mb = (live.max_rss - live.base_rss) / 1024
    assert growth_mb < 100, f"RSS grew {growth_mb:.0f} MB"
