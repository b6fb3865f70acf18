"""The embedded default (no config) answers like memcached, byte for byte.

Each case is sent to a fresh real memcached and to a fresh mcpframe started by the CLI with no
config; the complete replies must be identical. A trailing ``mn`` marks the end of the replies.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers import Client, Mcpframe, Memcached

CASES: dict[str, bytes] = {
    "set-get": b"set k 5 0 3\r\nabc\r\nget k\r\ngets k\r\nget missing\r\n",
    "multiget": b"set a 1 0 1\r\nx\r\nset c 3 0 1\r\nz\r\nget a b c\r\ngets a b c\r\nget b d\r\n",
    "add-replace": (
        b"add k 0 0 1\r\n1\r\nadd k 0 0 1\r\n2\r\nreplace k 0 0 1\r\n3\r\n"
        b"replace nope 0 0 1\r\n4\r\nget k\r\n"
    ),
    "append-prepend": (
        b"append k 0 0 1\r\nx\r\nset k 7 0 2\r\nbb\r\nappend k 0 0 2\r\ncc\r\n"
        b"prepend k 9 0 2\r\naa\r\nget k\r\nprepend nope 0 0 1\r\nx\r\n"
    ),
    "cas": (
        b"cas k 0 0 1 1\r\nx\r\nset k 0 0 1\r\na\r\ngets k\r\ncas k 0 0 1 999\r\nb\r\n"
        b"cas k 0 0 1 1\r\nc\r\nget k\r\n"
    ),
    "incr-decr": (
        b"incr n 1\r\nset n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\ndecr n 1\r\nget n\r\n"
        b"set big 0 0 20\r\n18446744073709551615\r\nincr big 2\r\n"
        b"set s 0 0 3\r\nabc\r\nincr s 1\r\nincr n abc\r\n"
        b"set d 0 0 3\r\n100\r\ndecr d 91\r\nget d\r\n"
    ),
    # More digits than int() converts (4300): still memcached's non-numeric error.
    "incr-huge-value": (
        b"set h 0 0 5000\r\n" + b"7" * 5000 + b"\r\nincr h 1\r\ndecr h 1\r\nma h\r\n"
        b"set z 0 0 25\r\n" + b"0" * 24 + b"9\r\nincr z 1\r\nget z\r\n"
    ),
    "delete-touch": (
        b"set k 0 0 1\r\nx\r\ntouch k 100\r\ntouch nope 10\r\ndelete k\r\ndelete k\r\n"
        b"get k\r\ndelete k 0\r\ndelete k noreply\r\n"
    ),
    "gat-gats": b"set k 3 0 1\r\nx\r\ngat 100 k\r\ngats 100 k nope\r\ngat 100 nope\r\n",
    "noreply": (
        b"set k 0 0 1 noreply\r\nx\r\nadd k 0 0 1 noreply\r\ny\r\nappend k 0 0 1 noreply\r\nz\r\n"
        b"incr k 1 noreply\r\ntouch k 10 noreply\r\nget k\r\ndelete k noreply\r\nget k\r\n"
    ),
    "negative-exptime": b"set k 0 -1 1\r\nx\r\nget k\r\n",
    "flush": b"set k 0 0 1\r\nx\r\nflush_all\r\nget k\r\nflush_all noreply\r\nflush_all 0\r\n",
    "version-verbosity": b"verbosity 1\r\nverbosity\r\n",
    "unknown": b"bogus\r\nGET k\r\nget\r\n\r\n",
    "bad-storage-lines": (
        b"set k abc 0 1\r\nx\r\nset k 0 0 abc\r\nset k 0 0 -1\r\nset k 0 0\r\n"
        b"set k 0 abc 1\r\nx\r\n"
    ),
    "bad-data-chunk": b"set k 0 0 3\r\nabcdef\r\nget k\r\nset j 0 0 1\r\nxy\r\nget j\r\n",
    # Separate cases: memcached 1.6.18 drops the replies queued before a long-key get's
    # error (we keep them; see tests/protocol/test_reader_memcached.py).
    "long-key-set": b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\n",
    "long-key-get": b"get " + b"k" * 251 + b"\r\n",
    "key-250": b"set " + b"k" * 250 + b" 0 0 1\r\nx\r\nget " + b"k" * 250 + b"\r\n",
    "bare-newline": b"set k 0 0 1\nx\r\nget k\n",
    "meta-basic": (
        b"ms mk 2 T0 F5\r\nhi\r\nmg mk v f s\r\nmg mk k O123 q\r\nmg nope v\r\nmg nope v q\r\n"
        b"md mk q\r\nmd mk\r\nma cnt N0 J10 v\r\nma cnt v\r\n"
    ),
}


def converse(addr: tuple[str, int], data: bytes) -> bytes:
    c = Client(addr)
    try:
        c.send(data + b"mn\r\n")
        return c.read_until(b"MN\r\n")
    finally:
        c.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_embedded_matches_memcached(
    name: str,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    expected = converse(memcached_factory().addr, CASES[name])
    got = converse(mcpframe_factory().addr, CASES[name])
    assert got == expected


def test_quit_closes_after_earlier_replies(mcpframe_factory: Callable[..., Mcpframe]) -> None:
    c = Client(mcpframe_factory().addr)
    c.send(b"set k 0 0 1\r\nx\r\nget k\r\nquit\r\nget k\r\n")
    assert c.read_until(b"END\r\n") == b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n"
    assert c.is_closed()


def test_stats_reports_items_and_connections(mcpframe_factory: Callable[..., Mcpframe]) -> None:
    c = Client(mcpframe_factory().addr)
    c.send(b"set k 0 0 1\r\nx\r\nget k\r\nget nope\r\nstats\r\n")
    assert c.read_until(b"END\r\n") == b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n"
    assert c.read_until(b"END\r\n") == b"END\r\n"
    out = c.read_until(b"\r\nEND\r\n")
    stats = dict(
        line.split(b" ", 2)[1:] for line in out.split(b"\r\n") if line.startswith(b"STAT ")
    )
    assert stats[b"curr_items"] == b"1"
    assert stats[b"get_hits"] == b"1"
    assert stats[b"get_misses"] == b"1"
    assert stats[b"version"] == b"1.6.45"
    assert int(stats[b"curr_connections"]) >= 1


def test_disconnect_mid_value_leaves_server_serving(
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    server = mcpframe_factory()
    dropped = Client(server.addr)
    dropped.send(b"set k 0 0 100\r\nonly-part")
    dropped.close()
    half = Client(server.addr)
    half.send(b"get k k2 k3")  # no newline, then gone
    half.close()
    c = Client(server.addr)
    c.send(b"get k\r\nset k 0 0 1\r\nx\r\nget k\r\n")
    assert c.read_until(b"END\r\n") == b"END\r\n"
    assert c.read_until(b"END\r\n") == b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n"


def test_memory_limit_evicts(mcpframe_factory: Callable[..., Mcpframe]) -> None:
    c = Client(mcpframe_factory("--memory", "1").addr)
    value = b"v" * 10_000
    for i in range(300):  # 3 MB into a 1 MB cache
        c.send(b"set key%d 0 0 %d noreply\r\n%s\r\n" % (i, len(value), value))
    c.send(b"get key0\r\nget key299\r\nstats\r\n")
    assert c.read_until(b"END\r\n") == b"END\r\n"
    assert c.read_until(b"END\r\n").startswith(b"VALUE key299 0 10000\r\n")
    out = c.read_until(b"\r\nEND\r\n")
    stats = dict(
        line.split(b" ", 2)[1:] for line in out.split(b"\r\n") if line.startswith(b"STAT ")
    )
    assert int(stats[b"evictions"]) > 0
    assert int(stats[b"bytes"]) <= 1024 * 1024
