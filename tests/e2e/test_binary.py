"""Binary-protocol clients of the embedded cache (no config), on the wire: the same binary
bytes sent to mcpframe and to a real memcached get the same reply bytes.

mcpframe serves these through its text path (``docs/binary-protocol.md``); these tests see
only the socket. Where the two cannot agree byte for byte (the version string, statistics'
values) the test says what it compares instead.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable

import pytest

import mcpframe
from mcpframe.protocol import binary as b
from mcpframe.protocol.binary import (
    BinaryRequest,
    BinaryResponse,
    BinaryResponseReader,
    encode_request,
)
from tests.helpers import Client, Mcpframe, Memcached
from tests.protocol.binary_helpers import binary_exchange
from tests.protocol.test_binmeta_memcached import random_request

Start = Callable[..., Memcached]
StartProxy = Callable[..., Mcpframe]


def packets(data: bytes) -> list[BinaryResponse]:
    reader = BinaryResponseReader()
    out = reader.feed(data)
    assert reader.buffered() == 0
    return out


def read_all(addr: tuple[str, int], data: bytes, wait: float = 0.3) -> tuple[bytes, bool]:
    """Send ``data`` on a fresh connection; everything that comes back until ``wait`` seconds
    of silence, and whether the server closed the connection."""
    s = socket.create_connection(addr, 5)
    try:
        s.sendall(data)
        s.settimeout(wait)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                return out, False
            if not chunk:
                return out, True
            out += chunk
    finally:
        s.close()


def req(opcode: int, key: bytes = b"", value: bytes = b"", **kw: int) -> bytes:
    return encode_request(BinaryRequest(opcode, key, value, **kw))


@pytest.fixture
def pair(memcached_factory: Start, mcpframe_factory: StartProxy) -> tuple[Client, Client]:
    """A binary client of a real memcached and one of mcpframe's embedded cache."""
    return Client(memcached_factory().addr), Client(mcpframe_factory().addr)


@pytest.mark.parametrize("seed", [3, 4])
def test_random_requests_same_bytes_as_memcached(pair: tuple[Client, Client], seed: int) -> None:
    """Every keyed opcode, quiet and not, with CAS values, flags, exptimes, keys text cannot
    carry: one request at a time, each followed by a noop."""
    memcached, ours = pair
    rng = random.Random(seed)
    for i in range(400):
        r = random_request(rng)
        if r.opcode == b.OP_VERSION:
            continue  # (the version strings differ; see test_version_and_noop)
        packet = encode_request(r)
        expected = binary_exchange(memcached, packet)
        got = binary_exchange(ours, packet)
        assert got == expected, (i, r, packets(expected), packets(got))


def same_reply(pair: tuple[Client, Client], data: bytes) -> bytes:
    """Send ``data`` (whole, in one write) to both; their replies up to the final noop's must
    be the same bytes. Returns them."""
    memcached, ours = pair
    expected = binary_exchange(memcached, data)
    got = binary_exchange(ours, data)
    assert got == expected, (packets(expected), packets(got))
    return got


def test_quiet_batch_in_one_write_ends_at_noop(pair: tuple[Client, Client]) -> None:
    batch = b"".join(
        [
            req(b.OP_SETQ, b"q1", b"one", flags=7),
            req(b.OP_SETQ, b"q2", b"two", exptime=100),
            req(b.OP_ADDQ, b"q1", b"again"),  # exists: answered
            req(b.OP_REPLACEQ, b"nope", b"x"),  # missing: answered
            req(b.OP_APPENDQ, b"q1", b"+"),
            req(b.OP_PREPENDQ, b"q2", b"-"),
            req(b.OP_GETQ, b"q1", opaque=11),
            req(b.OP_GETQ, b"missing", opaque=12),  # silent
            req(b.OP_GETKQ, b"q2", opaque=13),
            req(b.OP_GETKQ, b"missing", opaque=14),  # silent
            req(b.OP_INCREMENTQ, b"ctr", delta=1, initial=5, exptime=0),
            req(b.OP_INCREMENTQ, b"q1", delta=1),  # non-numeric: answered
            req(b.OP_DECREMENTQ, b"ctr", delta=2),
            req(b.OP_SETQ, b"q1", b"cas?", cas=1),  # wrong CAS: answered
            req(b.OP_DELETEQ, b"q2"),
            req(b.OP_DELETEQ, b"q2"),  # gone: answered
            req(b.OP_GATQ, b"ctr", exptime=50),
            req(b.OP_GATKQ, b"gone", exptime=50),
            req(b.OP_GETK, b"ctr", opaque=15),
        ]
    )
    got = same_reply(pair, batch + req(b.OP_NOOP, opaque=99))
    statuses = [(p.opcode, p.status) for p in packets(got)]
    assert (b.OP_ADDQ, b.STATUS_KEY_EEXISTS) in statuses
    assert (b.OP_INCREMENTQ, b.STATUS_DELTA_BADVAL) in statuses
    assert (b.OP_NOOP, 0) in statuses


def test_cas_and_incr_with_initial_value_and_expiry(pair: tuple[Client, Client]) -> None:
    same_reply(pair, req(b.OP_SET, b"k", b"v", flags=3))
    cas = packets(same_reply(pair, req(b.OP_GET, b"k")))[0].cas
    assert cas
    same_reply(pair, req(b.OP_SET, b"k", b"w", cas=cas + 1))  # Data exists
    same_reply(pair, req(b.OP_REPLACE, b"k", b"w", cas=cas))
    same_reply(pair, req(b.OP_DELETE, b"k", cas=cas))  # old CAS: Data exists
    same_reply(pair, req(b.OP_APPEND, b"k", b"!", cas=cas + 1))
    # incr: created at its initial value, then counted; "do not create" misses.
    same_reply(pair, req(b.OP_INCREMENT, b"n", delta=5, initial=100, exptime=3600))
    same_reply(pair, req(b.OP_INCREMENT, b"n", delta=5, initial=100, exptime=3600))
    same_reply(pair, req(b.OP_DECREMENT, b"n", delta=1000))  # floors at 0
    same_reply(pair, req(b.OP_INCREMENT, b"m", delta=1, exptime=b.NO_CREATE))
    same_reply(pair, req(b.OP_INCREMENT, b"n", delta=2**64 - 1))  # wraps
    # An expiry in the past: created, and gone at once.
    same_reply(pair, req(b.OP_INCREMENT, b"e", delta=1, initial=9, exptime=1))
    same_reply(pair, req(b.OP_GET, b"e"))
    same_reply(pair, req(b.OP_TOUCH, b"n", exptime=10))
    same_reply(pair, req(b.OP_GATK, b"n", exptime=10))


def test_flush_and_flushq(pair: tuple[Client, Client]) -> None:
    same_reply(pair, req(b.OP_SET, b"k", b"v") + req(b.OP_SET, b"j", b"v"))
    same_reply(pair, req(b.OP_FLUSH))
    same_reply(pair, req(b.OP_GET, b"k"))
    same_reply(pair, req(b.OP_SET, b"k", b"v"))
    same_reply(pair, req(b.OP_FLUSHQ))  # silent
    same_reply(pair, req(b.OP_GETK, b"k"))
    same_reply(pair, req(b.OP_SET, b"k", b"v"))
    same_reply(pair, req(b.OP_FLUSH, exptime=3600))  # later: still there
    same_reply(pair, req(b.OP_GET, b"k"))


def test_version_and_noop(pair: tuple[Client, Client]) -> None:
    ours = pair[1]
    got = packets(binary_exchange(ours, req(b.OP_VERSION, opaque=5) + req(b.OP_NOOP, opaque=6)))
    assert [(p.opcode, p.status, p.opaque) for p in got] == [
        (b.OP_VERSION, 0, 5),
        (b.OP_NOOP, 0, 6),
    ]
    assert not got[0].extras and not got[0].key
    assert got[0].value == mcpframe.MEMCACHED_VERSION.encode() == b"1.6.45"


def stat_names(client: Client, sub: bytes) -> list[tuple[int, bytes]]:
    """(status, name) of every packet a stat request gets, the closing empty one included."""
    return [(p.status, p.key) for p in packets(binary_exchange(client, req(b.OP_STAT, sub)))]


def test_stat_sub_commands(pair: tuple[Client, Client]) -> None:
    """The values differ (pid, uptime...); the shape of the answer does not: one packet per
    statistic, then an empty one; an unknown sub-command is Not found. (``conns`` and
    ``proxy``, which memcached's binary protocol does not answer, are answered as in text:
    docs/binary-protocol.md.)"""
    memcached, ours = pair
    for sub in (b"", b"settings", b"items", b"slabs", b"sizes"):
        theirs, mine = stat_names(memcached, sub), stat_names(ours, sub)
        assert mine[-1] == (0, b"") and theirs[-1] == (0, b""), sub
        assert all(status == 0 for status, _ in mine), sub
        if sub == b"":
            names = {name for _, name in mine}
            assert {b"pid", b"uptime", b"curr_items", b"get_hits", b"cmd_set"} <= names
    assert same_reply(pair, req(b.OP_STAT, b"nonsense", opaque=3)) != b""
    same_reply(pair, req(b.OP_STAT, b"cachedump 1 1", opaque=3))
    same_reply(pair, req(b.OP_STAT, b"reset"))  # answered by an empty packet alone
    same_reply(pair, req(b.OP_STAT, b"detail on"))
    dump = packets(binary_exchange(ours, req(b.OP_STAT, b"detail dump")))
    assert [p.key for p in dump] == [b"detailed", b""]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(req(b.OP_SET, b"k", b"v") + req(b.OP_QUIT, opaque=7), id="quit"),
        pytest.param(req(b.OP_SET, b"k", b"v") + req(b.OP_QUITQ, opaque=7), id="quitq"),
        pytest.param(req(b.OP_GET, b"k") + b"\x81" + bytes(23), id="wrong-magic-mid-stream"),
        pytest.param(
            req(b.OP_GET, b"k") + bytes([0x80, 0, 0, 9, 4]) + bytes(3) + (5).to_bytes(4, "big"),
            id="key-and-extras-longer-than-body",
        ),
        pytest.param(
            bytes([0x80, 0, 1, 5]) + bytes(4) + (261).to_bytes(4, "big") + bytes(12) + b"k" * 261,
            id="key-over-250",
        ),
        pytest.param(
            bytes([0x80, b.OP_SET, 0, 1, 0])
            + bytes(3)
            + (2).to_bytes(4, "big")
            + bytes(12)
            + b"kv",
            id="set-without-extras",
        ),
        pytest.param(req(b.OP_GET, b"k", b"value") + req(b.OP_NOOP), id="get-with-a-value"),
        pytest.param(b"\x80" + b"\x00" * 10, id="short-header-then-nothing"),
    ],
)
def test_closing_and_bad_input_like_memcached(
    memcached_factory: Start, mcpframe_factory: StartProxy, data: bytes
) -> None:
    """Requests after which memcached closes the connection (or waits for more): the same
    bytes before it, the same close (or the same silence), and the server goes on serving."""
    memcached, ours = memcached_factory(), mcpframe_factory()
    expected = read_all(memcached.addr, data)
    assert read_all(ours.addr, data) == expected
    assert read_all(ours.addr, req(b.OP_NOOP, opaque=1)) == read_all(
        memcached.addr, req(b.OP_NOOP, opaque=1)
    )


def test_errors_that_keep_the_connection(pair: tuple[Client, Client]) -> None:
    """Unknown opcodes (verbosity and SASL included, as memcached without SASL answers them)
    and a value over the item limit: an error status each, and the connection goes on."""
    for opcode in (0x1B, 0x20, 0x3F, 0xFE):
        same_reply(pair, req(opcode, opaque=opcode))
    # With a body, memcached swallows the body's length *after* the extras and key it read,
    # which eats the next request (here the noop): mcpframe swallows the body only and
    # answers the same "Unknown command".
    ours = pair[1]
    verbosity = bytes([0x80, 0x1B, 0, 0, 4]) + bytes(3) + (4).to_bytes(4, "big") + bytes(16)
    for packet in (verbosity, req(b.OP_SASL_AUTH, b"PLAIN", opaque=4)):
        got = packets(binary_exchange(ours, packet))
        assert [(p.status, p.value) for p in got] == [
            (b.STATUS_UNKNOWN_COMMAND, b"Unknown command")
        ]
    same_reply(pair, req(b.OP_SET, b"big", b"x" * (1024 * 1024 + 1), opaque=9))
    same_reply(pair, req(b.OP_SETQ, b"big", b"x" * (2 * 1024 * 1024), opaque=9))
    same_reply(pair, req(b.OP_GET, b"big"))
    # A large value that fits.
    same_reply(pair, req(b.OP_SET, b"big", b"y" * 1_000_000) + req(b.OP_GETK, b"big"))


@pytest.mark.parametrize("mode", ["ascii", "binary", "auto"])
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"version\r\nget k\r\n" + b" " * 20, id="text"),
        pytest.param(req(b.OP_VERSION), id="binary"),
        pytest.param(req(b.OP_NOOP) + b"\r\n", id="binary-then-crlf"),
        pytest.param(req(b.OP_NOOP) + b"version\r\n" + b" " * 20, id="binary-then-text"),
        pytest.param(b"version\r\n", id="short-text"),
    ],
)
def test_protocol_option_like_memcached_b(
    memcached_factory: Start, mcpframe_factory: StartProxy, mode: str, data: bytes
) -> None:
    """``serve --protocol`` against ``memcached -B``: a text client of a binary-only server
    is closed once a header's worth of bytes is in (and waited for before that); binary
    bytes to a text-only server are read as a text line; auto decides per connection. The
    version strings differ: they are masked."""
    memcached = memcached_factory("-B", mode)
    ours = mcpframe_factory("--protocol", mode)

    def masked(reply: tuple[bytes, bool]) -> tuple[bytes, bool]:
        out, closed = reply
        for version in (b"1.6.18", mcpframe.MEMCACHED_VERSION.encode()):
            out = out.replace(b"VERSION " + version, b"VERSION x").replace(version, b"x")
        return out, closed

    expected = masked(read_all(memcached.addr, data))
    assert masked(read_all(ours.addr, data)) == expected
