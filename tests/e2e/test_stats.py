"""The embedded cache's ``stats`` sub-commands against a real memcached, on the same bytes.

Each case goes to a fresh memcached and a fresh mcpframe (no config). The replies must have
the same lines in the same order: the same field names, and the same values except for the
fields below, whose values depend on what each side is (a segmented LRU and its background
threads, slab pages, descriptors and ports); those must still be numbers where memcached's
are. docs/operations.md ("Stats") says what each of those reports in mcpframe.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.helpers import Client, Mcpframe, Memcached

#: Fields whose values are compared by shape only (the last ``:``-part of the name).
SHAPE_ONLY = frozenset(
    {
        # stats items: memcached's LRU maintainer moves items between its LRUs on its own
        # schedule; mcpframe has one LRU (every item is cold) and no crawler.
        "number_hot", "number_warm", "number_cold", "age_hot", "age_warm", "age",
        "crawler_items_checked", "moves_to_cold", "moves_to_warm", "moves_within_lru",
        "hits_to_hot", "hits_to_warm", "hits_to_cold", "hits_to_temp",
        # stats slabs: hits are counted for the whole cache only; no pages are allocated.
        "get_hits", "cmd_set", "delete_hits", "incr_hits", "decr_hits", "cas_hits",
        "cas_badval", "touch_hits", "total_malloced",
        # stats conns
        "secs_since_last_cmd",
    }
)  # fmt: skip
_STAT = re.compile(rb"STAT (\S+) ([^\r]*)")
_ADDR = re.compile(rb"tcp:127\.0\.0\.1:(\d+)")

#: Counters that ``stats reset`` starts again from zero, and gauges it leaves alone.
AFTER_RESET = (
    "cmd_get", "cmd_set", "cmd_touch", "get_hits", "get_misses", "delete_hits",
    "delete_misses", "incr_hits", "touch_misses", "total_items", "total_connections",
    "evictions", "reclaimed", "curr_items", "bytes", "curr_connections",
)  # fmt: skip


def converse(addr: tuple[str, int], data: bytes) -> bytes:
    c = Client(addr)
    try:
        c.send(data + b"mn\r\n")
        return c.read_until(b"MN\r\n")
    finally:
        c.close()


def normalise(reply: bytes, port: int) -> list[tuple[bytes, bytes | None]]:
    """Lines as (line, None), ``STAT`` lines as (name, value) with the descriptors of
    ``stats conns`` renumbered in order of appearance and the server's own port named."""
    fds: dict[bytes, bytes] = {}
    out: list[tuple[bytes, bytes | None]] = []
    for line in reply.split(b"\r\n"):
        m = _STAT.fullmatch(line)
        if m is None:
            out.append((line, None))
            continue
        name, value = m.groups()
        head, sep, field = name.partition(b":")
        if (
            sep
            and head.isdigit()
            and field in (b"addr", b"listen_addr", b"state", b"secs_since_last_cmd")
        ):
            name = fds.setdefault(head, b"%d" % len(fds)) + b":" + field
            value = _ADDR.sub(
                lambda a: b"tcp:127.0.0.1:" + (b"PORT" if a.group(1) == b"%d" % port else b"N"),
                value,
            )
        out.append((name, value))
    return out


def assert_same_stats(ours: bytes, theirs: bytes, our_port: int, their_port: int) -> None:
    mine, real = normalise(ours, our_port), normalise(theirs, their_port)
    assert [n for n, _ in mine] == [n for n, _ in real], ours.decode()
    for (name, got), (_, want) in zip(mine, real, strict=True):
        if name.rsplit(b":", 1)[-1].decode() in SHAPE_ONLY:
            assert got is not None and want is not None and got.isdigit() == want.isdigit()
        else:
            assert got == want, name


def both(
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
    data: bytes,
) -> None:
    real, ours = memcached_factory(), mcpframe_factory()
    assert_same_stats(converse(ours.addr, data), converse(real.addr, data), ours.port, real.port)


def stats_of(reply: bytes) -> dict[str, str]:
    return {m[1].decode(): m[2].decode() for m in _STAT.finditer(reply)}


VALUES = b"".join(
    b"set k%d %d 0 %d\r\n%s\r\n" % (i, i % 2, n, b"v" * n)
    for i, n in enumerate((1, 1, 30, 300, 301, 5000, 100_000, 400_000))
)

CASES: dict[str, bytes] = {
    "items": VALUES + b"get k1 k2 k3\r\nset k3 0 0 2000\r\n" + b"w" * 2000 + b"\r\n"
    b"stats items\r\nstats items extra tokens\r\n",
    "items-empty": b"stats items\r\n",
    "slabs": VALUES + b"get k1 k7\r\nset k2 0 0 3\r\nabc\r\nstats slabs\r\nstats slabs x\r\n",
    "slabs-empty": b"stats slabs\r\n",
    "sizes": VALUES + b"stats sizes\r\nstats sizes x\r\n",
    "detail": b"stats detail\r\nstats detail x\r\nstats detail off\r\nstats detail dump\r\n"
    b"stats detail on\r\nstats detail off extra\r\nstats detail dump\r\n",
    "unknown": b"stats foo\r\nstats foo bar\r\nstats itemsx\r\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_stats_section_matches_memcached(
    name: str,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    both(memcached_factory, mcpframe_factory, CASES[name])


def test_stats_conns_lists_listeners_and_clients(
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    replies = []
    for server in (memcached_factory(), mcpframe_factory()):
        idle = Client(server.addr)
        idle.send(b"version\r\n")
        idle.readline()
        replies.append(converse(server.addr, b"stats conns\r\nstats conns x\r\n"))
        idle.close()
    assert b"conn_read" in replies[1] and b"conn_parse_cmd" in replies[1]
    # Compared as a set of per-descriptor blocks: which client got the lower descriptor
    # depends on when each side closed the factory's readiness probe, not on the reply.
    real, ours = (
        connection_blocks(r, int(r.split(b"tcp:127.0.0.1:")[1].split(b"\r")[0])) for r in replies
    )
    assert ours == real


def connection_blocks(reply: bytes, port: int) -> list[list[tuple[bytes, object]]]:
    """``stats conns`` as its per-descriptor blocks (descriptor dropped, shape-only values
    reduced to "is a number"), sorted; the other lines last, in order."""
    blocks: dict[bytes, list[tuple[bytes, object]]] = {}
    rest: list[tuple[bytes, object]] = []
    for name, value in normalise(reply, port):
        head, sep, field = name.partition(b":")
        shown: object = value
        if field.decode() in SHAPE_ONLY and value is not None:
            shown = value.isdigit()
        if sep:
            blocks.setdefault(head, []).append((field, shown))
        else:
            rest.append((name, shown))
    return [*sorted(blocks.values(), key=repr), rest]


def test_stats_reset_restarts_the_counters(
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    data = (
        b"set a 0 0 1\r\n1\r\nset b 0 0 2\r\n22\r\nget a b c\r\ndelete b\r\ndelete b\r\n"
        b"incr a 1\r\ntouch c 1\r\nstats reset\r\nstats reset extra\r\nget a\r\nstats\r\n"
    )
    real, ours = memcached_factory(), mcpframe_factory()
    theirs, mine = converse(real.addr, data), converse(ours.addr, data)
    assert mine.count(b"RESET\r\n") == theirs.count(b"RESET\r\n") == 2
    want, got = stats_of(theirs), stats_of(mine)
    assert {k: got[k] for k in AFTER_RESET} == {k: want[k] for k in AFTER_RESET}
    assert got["get_hits"] == "1" and got["curr_items"] == "1"


def test_a_nul_ends_the_stats_line(
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    """memcached reads the line as a C string: ``stats reset\\0junk`` is ``stats reset``."""
    both(
        memcached_factory,
        mcpframe_factory,
        b"set a 0 0 1\r\n1\r\nstats reset\0junk\r\nstats items\0 junk\r\nstats detail\0 on\r\n",
    )
    for server in (memcached_factory(), mcpframe_factory()):
        plain = [k for k in stats_of(converse(server.addr, b"stats\r\n")) if k != "pid"]
        cut = [k for k in stats_of(converse(server.addr, b"stats\0junk\r\n")) if k != "pid"]
        assert cut == plain
