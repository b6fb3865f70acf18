"""The one tokeniser (``mcpframe.protocol.tokens``): its rules, the layers that use it, and
the same lines replayed against a real memcached and an embedded mcpframe.

One table drives the checks: each line's tokens as memcached splits it, and the key the
reader takes from it (``None`` where the reader answers an error line instead).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mcpframe.cache import Cache
from mcpframe.protocol import commands as c
from mcpframe.protocol.reader import RequestReader
from mcpframe.protocol.request import Request
from mcpframe.protocol.tokens import MAX_TOKENS, content, split, tokenize
from tests.helpers import Client, Mcpframe
from tests.protocol.helpers import bytewise, feed_chunks

K250 = b"k" * 250
K251 = b"k" * 251

# (id, line, tokens, the key the reader takes or None when it answers an error line)
CASES: list[tuple[str, bytes, list[bytes], bytes | None]] = [
    ("plain", b"get k\r\n", [b"get", b"k"], b"k"),
    ("bare lf", b"get k\n", [b"get", b"k"], b"k"),
    ("repeated spaces", b"get   k  \r\n", [b"get", b"k"], b"k"),
    ("leading spaces", b"   mg k  v  t\r\n", [b"mg", b"k", b"v", b"t"], b"k"),
    ("tab inside a token", b"get k\t1\r\n", [b"get", b"k\t1"], b"k\t1"),
    ("tab after the word", b"get\tk\r\n", [b"get\tk"], None),
    ("nul cuts the line", b"get k\x00 j\r\n", [b"get", b"k"], b"k"),
    ("nul inside the key", b"get k\x00junk\r\n", [b"get", b"k"], b"k"),
    ("nul first", b"\x00get k\r\n", [], None),
    ("cr inside", b"get k\rx\r\n", [b"get", b"k\rx"], b"k\rx"),
    ("only spaces", b"   \r\n", [], None),
    ("empty", b"\r\n", [], None),
    ("key of 250", b"get " + K250 + b"\r\n", [b"get", K250], K250),
    ("key of 251", b"get " + K251 + b"\r\n", [b"get", K251], None),
    ("mg key of 251", b"mg " + K251 + b" v\r\n", [b"mg", K251, b"v"], None),
    ("noreply", b"incr k 1 noreply\r\n", [b"incr", b"k", b"1", b"noreply"], b"k"),
    ("noreply then nul", b"delete k noreply\x00x\r\n", [b"delete", b"k", b"noreply"], b"k"),
    ("meta flags", b"mg k s v q Oab\r\n", [b"mg", b"k", b"s", b"v", b"q", b"Oab"], b"k"),
    ("multiget", b"gets a  b\tc\r\n", [b"gets", b"a", b"b\tc"], b"a"),
]
IDS = [case[0] for case in CASES]


@pytest.mark.parametrize(("name", "line", "tokens", "key"), CASES, ids=IDS)
def test_tokenize(name: str, line: bytes, tokens: list[bytes], key: bytes | None) -> None:
    assert tokenize(line) == tokens
    assert split(content(line)) == tokens
    end = -2 if line.endswith(b"\r\n") else -1
    assert split(line[:end]) == tokens  # split cuts at a NUL by itself


@pytest.mark.parametrize(("name", "line", "tokens", "key"), CASES, ids=IDS)
def test_the_reader_keys_on_the_same_tokens(
    name: str, line: bytes, tokens: list[bytes], key: bytes | None
) -> None:
    """Whole and byte by byte: a line's key is its token, however the reads split it."""
    for got in (RequestReader().feed(line), feed_chunks(RequestReader(), bytewise(line))):
        req = got[0]
        if key is None:
            assert not isinstance(req, Request), req
        else:
            assert isinstance(req, Request)
            assert req.key == key
            assert req.line == line  # the raw bytes are kept, NUL and all
            assert req.tokens() == tokens


def test_content() -> None:
    assert content(b"stats\x00junk\r\n") == b"stats"
    assert content(b"a b\r\r\n") == b"a b\r"  # one \r belongs to the terminator
    assert content(b"a b\n") == b"a b"


def test_memcached_reads_at_most_23_tokens() -> None:
    words = [b"w%d" % i for i in range(30)]
    line = b" ".join(words) + b"\r\n"
    assert tokenize(line) == words
    assert tokenize(line, MAX_TOKENS) == words[:23]
    assert tokenize(b" ".join(words[:23]) + b"   \r\n", MAX_TOKENS) == words[:23]
    assert tokenize(b" ".join(words[:22]) + b"\r\n", MAX_TOKENS) == words[:22]


def test_request_tokens_cut_at_nul_and_stop_at_the_table() -> None:
    """The defect of issue 12: ``stats\\0junk``-style lines were split past the NUL."""
    assert Request(c.CMD_STATS, b"stats settings\x00junk\r\n").tokens() == [b"stats", b"settings"]
    assert Request(c.CMD_STATS, b"stats\x00 junk\r\n").tokens() == [b"stats"]
    assert Request(c.CMD_STATS, b"stats\tsettings\r\n").tokens() == [b"stats\tsettings"]
    watch = Request(c.CMD_WATCH, b"watch" + b" proxyevents" * 30 + b"\r\n")
    assert len(watch.tokens()) == 23


def test_the_cache_splits_with_the_same_rules() -> None:
    cache = Cache()
    line = b"set k\t1 0 0 1\r\n"
    assert cache.execute(Request(c.CMD_SET, line, b"k\t1", b"x\r\n")) == b"STORED\r\n"
    assert cache.execute(Request(c.CMD_GET, b"get k\t1\x00 k\r\n", b"k\t1")) == (
        b"VALUE k\t1 0 1\r\nx\r\nEND\r\n"
    )


# -- the same bytes against memcached and the embedded mcpframe --------------------------------

#: Lines whose replies show the tokeniser's rules (only the first reply line is compared, and
#: of a STAT or VERSION line only its name: values differ between servers). ``watch`` with
#: more names than the token table holds: memcached checks 22 names and ignores the rest.
WATCH = b"watch" + b" fetchers" * 21
WIRE: list[tuple[str, bytes]] = [
    ("version nul", b"version\x00junk\r\n"),
    ("stats nul", b"stats\x00 junk\r\n"),
    ("stats settings nul", b"stats settings\x00junk\r\n"),
    ("stats tab", b"stats\tsettings\r\n"),
    ("verbosity tab", b"verbosity\t1\r\n"),
    ("watch 22nd name bad", WATCH + b" bogus\r\n"),
    ("watch 23rd name bad", WATCH + b" fetchers bogus\r\n"),
    ("watch 22 names", WATCH + b" fetchers\r\n"),
]


@pytest.fixture(scope="module")
def embedded() -> Iterator[Mcpframe]:
    """mcpframe with no config (the embedded cache answers every command)."""
    p = Mcpframe()
    yield p
    p.stop()


def _first_line(addr: tuple[str, int], line: bytes) -> bytes:
    client = Client(addr)
    try:
        client.send(line)
        reply = client.readline()
    finally:
        client.close()
    if reply.startswith(b"VERSION "):
        return b"VERSION"
    return b" ".join(reply.split(b" ")[:2]) if reply.startswith(b"STAT ") else reply


def test_the_wire_table_shows_each_rule(memcached_for_protocol: tuple[str, int]) -> None:
    """What memcached answers, so that the table keeps testing something."""
    replies = {name: _first_line(memcached_for_protocol, line) for name, line in WIRE}
    assert replies["version nul"] == b"VERSION"
    assert replies["stats nul"] == b"STAT pid"
    assert replies["stats settings nul"] == b"STAT maxbytes"
    assert replies["stats tab"] == replies["verbosity tab"] == b"ERROR\r\n"
    assert replies["watch 22nd name bad"] == b"ERROR\r\n"
    assert replies["watch 23rd name bad"] == replies["watch 22 names"] == b"OK\r\n"


@pytest.mark.parametrize(("name", "line"), WIRE, ids=[w[0] for w in WIRE])
def test_memcached_and_mcpframe_agree(
    name: str, line: bytes, memcached_for_protocol: tuple[str, int], embedded: Mcpframe
) -> None:
    expected = _first_line(memcached_for_protocol, line)
    assert _first_line(embedded.addr, line) == expected
