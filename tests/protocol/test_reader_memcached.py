"""Bad client input: what memcached 1.6.18 answers, and what RequestReader emits for it.

``CASES`` holds the replies the real memcached sent for each input (recorded from
/usr/bin/memcached 1.6.18, and checked again by ``test_memcached_still_agrees`` whenever the
binary is available). After each input, ``mn\\r\\n`` is sent so that every swallowed or
unswallowed byte shows: memcached answers ``MN`` only once it parses that line as a command.
Cases marked ``closes`` are inputs after which memcached closes the connection silently.

``test_reader_agrees`` turns the reader's output into the bytes a proxy would send (error
replies verbatim; for the few valid requests, the reply of an empty memcached), so the table
is the contract for the reader, offline.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Sequence

import pytest

from mcpframe.protocol import commands as c
from mcpframe.protocol.reader import RequestReader
from mcpframe.protocol.request import ErrorReply, Request
from mcpframe.protocol.tokens import tokenize
from tests.protocol.helpers import feed_chunks

K251 = b"k" * 251
K250 = b"k" * 250
BIG = 2 * 1024 * 1024  # over memcached's 1 MiB item limit and the reader's max_value

# (id, chunks sent with a pause between them, memcached's reply before the MN, closes)
CASES: list[tuple[str, list[bytes], bytes, bool]] = [
    ("unknown command", [b"foo bar\r\n"], b"ERROR\r\n", False),
    ("empty line crlf", [b"\r\n"], b"ERROR\r\n", False),
    ("empty line lf", [b"\n"], b"ERROR\r\n", False),
    ("only spaces", [b"   \r\n"], b"ERROR\r\n", False),
    ("upper case", [b"GET k\r\n"], b"ERROR\r\n", False),
    ("tab is not a separator", [b"get\tk\r\n"], b"ERROR\r\n", False),
    ("one letter", [b"s\r\n"], b"ERROR\r\n", False),
    ("nul cuts the line", [b"get k\x00" + K251 + b"\r\n"], b"END\r\n", False),
    ("nul before command", [b"\x00version\r\n"], b"ERROR\r\n", False),
    ("leading spaces", [b"   get k\r\n"], b"END\r\n", False),
    ("bare lf", [b"get k\n"], b"END\r\n", False),
    ("get no key", [b"get\r\n"], b"ERROR\r\n", False),
    ("get only space", [b"get \r\n"], b"ERROR\r\n", False),
    ("gets no key", [b"gets\r\n"], b"ERROR\r\n", False),
    ("gat no args", [b"gat\r\n"], b"ERROR\r\n", False),
    ("gat no key", [b"gat 10\r\n"], b"END\r\n", False),
    ("gat bad exptime", [b"gat abc k\r\n"], b"CLIENT_ERROR invalid exptime argument\r\n", False),
    (
        "gat bad exptime no key",
        [b"gat abc\r\n"],
        b"CLIENT_ERROR invalid exptime argument\r\n",
        False,
    ),
    (
        "gats bad exptime long key",
        [b"gats abc " + K251 + b"\r\n"],
        b"CLIENT_ERROR invalid exptime argument\r\n",
        False,
    ),
    ("get key 251", [b"get " + K251 + b"\r\n"], b"CLIENT_ERROR bad command line format\r\n", False),
    ("get key 250", [b"get " + K250 + b"\r\n"], b"END\r\n", False),
    (
        "gets key 251",
        [b"gets " + K251 + b"\r\n"],
        b"CLIENT_ERROR bad command line format\r\n",
        False,
    ),
    (
        "gat key 251",
        [b"gat 10 " + K251 + b"\r\n"],
        b"CLIENT_ERROR bad command line format\r\n",
        False,
    ),
    (
        "multiget key 251",
        [b"get a " + K251 + b"\r\n"],
        b"CLIENT_ERROR bad command line format\r\n",
        False,
    ),
    (
        "set bad flags",
        [b"set s abc 0 5\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "set negative flags",
        [b"set s -1 0 5\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "set bad exptime",
        [b"set s 0 x 5\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "set bad bytes",
        [b"set s 0 0 5x\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "set hex bytes",
        [b"set s 0 0 0x5\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "set underscore bytes",
        [b"set s 0 0 1_0\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "set negative bytes",
        [b"set s 0 0 -1\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "set bytes too big",
        [b"set s 0 0 2147483646\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "set bytes overflow 64",
        [b"set s 0 0 9223372036854775808\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    ("set bytes wrap to 5", [b"set s 0 0 4294967301\r\nhello\r\n"], b"STORED\r\n", False),
    (
        "set bytes wrap to 0",
        [b"set s 0 0 -9223372036854775808\r\nhello\r\n"],
        b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        False,
    ),
    ("set bytes plus sign", [b"set s 0 0 +5\r\nhello\r\n"], b"STORED\r\n", False),
    ("set bytes tab suffix", [b"set s 0 0 5\tx\r\nhello\r\n"], b"STORED\r\n", False),
    ("set flags 2**64-1", [b"set s 18446744073709551615 0 5\r\nhello\r\n"], b"STORED\r\n", False),
    (
        "set flags 2**64",
        [b"set s 18446744073709551616 0 5\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    ("set too few tokens", [b"set s 0 0\r\nhello\r\n"], b"ERROR\r\nERROR\r\n", False),
    ("set too many tokens", [b"set s 0 0 5 noreply x\r\nhello\r\n"], b"ERROR\r\nERROR\r\n", False),
    ("set bad flags noreply", [b"set s abc 0 5 noreply\r\nhello\r\n"], b"ERROR\r\n", False),
    ("set noreply as bytes", [b"set s 0 0 noreply\r\nhello\r\n"], b"ERROR\r\n", False),
    (
        "set key 251",
        [b"set " + K251 + b" 0 0 5\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    ("set key 251 noreply", [b"set " + K251 + b" 0 0 5 noreply\r\nhello\r\n"], b"ERROR\r\n", False),
    ("set ok", [b"set s 0 0 5\r\nhello\r\n"], b"STORED\r\n", False),
    ("set ok noreply", [b"set s 0 0 5 noreply\r\nhello\r\n"], b"", False),
    ("set ok extra token", [b"set s 0 0 5 foo\r\nhello\r\n"], b"STORED\r\n", False),
    ("set noreply lf", [b"set s 0 0 5 noreply\nhello\r\n"], b"", False),
    ("set noreply cr cr lf", [b"set s 0 0 5 noreply\r\r\nhello\r\n"], b"STORED\r\n", False),
    ("bad data chunk", [b"set s 0 0 3\r\nabcXY"], b"CLIENT_ERROR bad data chunk\r\n", False),
    (
        "bad data chunk resync",
        [b"set s 0 0 3\r\nabcde\r\n"],
        b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        False,
    ),
    ("bad data chunk lf", [b"set s 0 0 3\r\nabc\nX"], b"CLIENT_ERROR bad data chunk\r\n", False),
    ("bad data chunk noreply", [b"set s 0 0 3 noreply\r\nabcXY"], b"", False),
    ("bad data chunk zero", [b"set s 0 0 0\r\nXY"], b"CLIENT_ERROR bad data chunk\r\n", False),
    ("cas too few", [b"cas s 0 0 5\r\nhello\r\n"], b"ERROR\r\nERROR\r\n", False),
    (
        "cas bad unique",
        [b"cas s 0 0 5 abc\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "cas negative unique",
        [b"cas s 0 0 5 -1\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "cas unique overflow",
        [b"cas s 0 0 5 18446744073709551616\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "add bad bytes",
        [b"add s 0 0 x\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "append key 251",
        [b"append " + K251 + b" 0 0 5\r\nhello\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    ("incr no args", [b"incr\r\n"], b"ERROR\r\n", False),
    ("incr no delta", [b"incr k\r\n"], b"ERROR\r\n", False),
    (
        "incr bad delta",
        [b"incr k abc\r\n"],
        b"CLIENT_ERROR invalid numeric delta argument\r\n",
        False,
    ),
    (
        "decr negative delta",
        [b"decr k -1\r\n"],
        b"CLIENT_ERROR invalid numeric delta argument\r\n",
        False,
    ),
    ("incr bad delta noreply", [b"incr k abc noreply\r\n"], b"", False),
    ("incr noreply as delta", [b"incr k noreply\r\n"], b"", False),
    ("incr too many", [b"incr k 1 2 3\r\n"], b"ERROR\r\n", False),
    (
        "incr key 251",
        [b"incr " + K251 + b" 1\r\n"],
        b"CLIENT_ERROR bad command line format\r\n",
        False,
    ),
    (
        "incr key 251 bad delta",
        [b"incr " + K251 + b" abc\r\n"],
        b"CLIENT_ERROR bad command line format\r\n",
        False,
    ),
    ("incr ok extra token", [b"incr k 1 foo\r\n"], b"NOT_FOUND\r\n", False),
    ("touch no args", [b"touch\r\n"], b"ERROR\r\n", False),
    ("touch no exptime", [b"touch k\r\n"], b"ERROR\r\n", False),
    (
        "touch bad exptime",
        [b"touch k abc\r\n"],
        b"CLIENT_ERROR invalid exptime argument\r\n",
        False,
    ),
    ("touch bad exptime noreply", [b"touch k abc noreply\r\n"], b"", False),
    ("touch too many", [b"touch k 10 x y\r\n"], b"ERROR\r\n", False),
    (
        "touch key 251",
        [b"touch " + K251 + b" 10\r\n"],
        b"CLIENT_ERROR bad command line format\r\n",
        False,
    ),
    ("delete no key", [b"delete\r\n"], b"ERROR\r\n", False),
    (
        "delete hold 5",
        [b"delete k 5\r\n"],
        b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        False,
    ),
    ("delete hold 0", [b"delete k 0\r\n"], b"NOT_FOUND\r\n", False),
    ("delete hold 5 noreply", [b"delete k 5 noreply\r\n"], b"", False),
    (
        "delete 0 foo",
        [b"delete k 0 foo\r\n"],
        b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        False,
    ),
    ("delete too many", [b"delete k 0 noreply x\r\n"], b"ERROR\r\n", False),
    (
        "delete key 251",
        [b"delete " + K251 + b"\r\n"],
        b"CLIENT_ERROR bad command line format\r\n",
        False,
    ),
    ("delete key 251 noreply", [b"delete " + K251 + b" noreply\r\n"], b"", False),
    (
        "delete key 251 hold 5",
        [b"delete " + K251 + b" 5\r\n"],
        b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        False,
    ),
    ("delete key noreply", [b"delete noreply\r\n"], b"NOT_FOUND\r\n", False),
    ("mg no key", [b"mg\r\n"], b"ERROR\r\n", False),
    ("mg only space", [b"mg \r\n"], b"ERROR\r\n", False),
    ("md no key", [b"md\r\n"], b"ERROR\r\n", False),
    ("ma no key", [b"ma\r\n"], b"ERROR\r\n", False),
    ("me no key", [b"me\r\n"], b"CLIENT_ERROR bad command line format\r\n", False),
    ("ms no key", [b"ms\r\n"], b"ERROR\r\n", False),
    ("ms no datalen", [b"ms s\r\n"], b"CLIENT_ERROR bad command line format\r\n", False),
    (
        "ms bad datalen",
        [b"ms s abc\r\nhi\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "ms negative datalen",
        [b"ms s -1\r\nhi\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "ms datalen suffix",
        [b"ms s 2x\r\nhi\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "ms datalen too big",
        [b"ms s 2147483646\r\nhi\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "ms key 251",
        [b"ms " + K251 + b" 2\r\nhi\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    ("ms bad chunk quiet", [b"ms s 2 q\r\nhiXY"], b"CLIENT_ERROR bad data chunk\r\n", False),
    ("ms ok quiet", [b"ms s 2 q\r\nhi\r\n"], b"", False),
    ("ms ok", [b"ms s 2 T0\r\nhi\r\n"], b"HD\r\n", False),
    ("mg key 251", [b"mg " + K251 + b" v\r\n"], b"CLIENT_ERROR bad command line format\r\n", False),
    ("me key 251", [b"me " + K251 + b"\r\n"], b"CLIENT_ERROR bad command line format\r\n", False),
    (
        "mg 20 tokens",
        [b"mg k " + b" ".join(b"O%d" % i for i in range(18)) + b"\r\n"],
        b"CLIENT_ERROR options flags are too long\r\n",
        False,
    ),
    (
        "md 20 tokens",
        [b"md k " + b" ".join(b"O%d" % i for i in range(18)) + b"\r\n"],
        b"CLIENT_ERROR options flags too long\r\n",
        False,
    ),
    (
        "ma 20 tokens",
        [b"ma k " + b" ".join(b"O%d" % i for i in range(18)) + b"\r\n"],
        b"CLIENT_ERROR options flags too long\r\n",
        False,
    ),
    (
        "ms 20 tokens",
        [b"ms s 2 " + b" ".join(b"O%d" % i for i in range(17)) + b"\r\nhi\r\n"],
        b"CLIENT_ERROR options flags too long\r\nERROR\r\n",
        False,
    ),
    (
        "ms 20 tokens bad datalen",
        [b"ms s x " + b" ".join(b"O%d" % i for i in range(17)) + b"\r\nhi\r\n"],
        b"CLIENT_ERROR options flags too long\r\nERROR\r\n",
        False,
    ),
    (
        "ms key 251 20 tokens",
        [b"ms " + K251 + b" 2 " + b" ".join(b"O%d" % i for i in range(17)) + b"\r\nhi\r\n"],
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
        False,
    ),
    (
        "me 25 tokens",
        [b"me k " + b" ".join(b"O%d" % i for i in range(23)) + b"\r\n"],
        b"EN\r\n",
        False,
    ),
    ("mg quiet miss", [b"mg k v q\r\n"], b"", False),
    ("mn with args", [b"mn foo bar\r\n"], b"MN\r\n", False),
    (
        "too large value",
        [b"set s 0 0 %d\r\n" % BIG, b"x" * BIG + b"\r\n"],
        b"SERVER_ERROR object too large for cache\r\n",
        False,
    ),
    (
        "too large value noreply",
        [b"set s 0 0 %d noreply\r\n" % BIG + b"x" * BIG + b"\r\n"],
        b"",
        False,
    ),
    (
        "too large value no crlf check",
        [b"set s 0 0 %d\r\n" % BIG + b"x" * BIG + b"XY"],
        b"SERVER_ERROR object too large for cache\r\n",
        False,
    ),
    (
        "too large ms",
        [b"ms s %d\r\n" % BIG + b"x" * BIG + b"\r\n"],
        b"SERVER_ERROR object too large for cache\r\n",
        False,
    ),
    (
        "too large ms quiet",
        [b"ms s %d q\r\n" % BIG + b"x" * BIG + b"\r\n"],
        b"SERVER_ERROR object too large for cache\r\n",
        False,
    ),
    ("line 2048 no lf yet", [b"x" * 2048, b"\r\n"], b"ERROR\r\n", False),
    (
        "get 100 spaces long",
        [b" " * 100 + b"get " + b"x" * 3000, b"\r\n"],
        b"CLIENT_ERROR bad command line format\r\n",
        False,
    ),
    (
        "gets long multiget",
        [b"gets " + b"x" * 3000, b" y\r\n"],
        b"CLIENT_ERROR bad command line format\r\n",
        False,
    ),
    (
        "get long multiget short keys",
        [b"get " + b" ".join([b"k"] * 1500), b" k\r\n"],
        b"END\r\n",
        False,
    ),
    ("line 2049 no lf", [b"x" * 2049], b"", True),
    ("line 5000 no lf", [b"set s 0 0 5 " + b"x" * 5000], b"", True),
    ("get 101 spaces long", [b" " * 101 + b"get " + b"x" * 3000], b"", True),
    ("gat long", [b"gat 10 " + b"x" * 3000], b"", True),
    ("mg long", [b"mg " + b"x" * 3000], b"", True),
    ("getx long", [b"getx" + b"x" * 3000], b"", True),
]

MN = b"mn\r\n"
STORED_KEYS = {b"s"}  # valid stores in CASES use this key; reads use others (misses)


def render(items: Sequence[Request | ErrorReply]) -> tuple[bytes, bool]:
    """The bytes a client gets for the reader's output, against an empty memcached."""
    out = b""
    for item in items:
        if isinstance(item, ErrorReply):
            out += item.reply
            if item.close:
                return out, True
            continue
        out += _reply(item)
    return out, False


def _reply(req: Request) -> bytes:
    cmd = req.cmd
    if cmd == c.CMD_MN:
        return b"MN\r\n"
    if cmd in c.STORAGE_WITH_VALUE:
        assert req.key in STORED_KEYS, req
        if req.value is None:
            # Classic noreply silences it; the meta q flag does not.
            silent = req.noreply and cmd != c.CMD_MS
            return b"" if silent else b"SERVER_ERROR object too large for cache\r\n"
        assert cmd in (c.CMD_SET, c.CMD_MS), req
        return b"" if req.noreply else (b"HD\r\n" if cmd == c.CMD_MS else b"STORED\r\n")
    assert req.key not in STORED_KEYS, req
    if cmd in c.MULTIGET:
        # The local engine's job for a multiget: a key over 250 bytes ends it with an error.
        keys = tokenize(req.line)[2 if cmd in (c.CMD_GAT, c.CMD_GATS) else 1 :]
        if req.multiget and any(len(k) > 250 for k in keys):
            return b"CLIENT_ERROR bad command line format\r\n"
        return b"END\r\n"
    if cmd in (c.CMD_MG, c.CMD_ME):
        return b"" if req.noreply else b"EN\r\n"
    if cmd in (c.CMD_INCR, c.CMD_DECR, c.CMD_TOUCH, c.CMD_DELETE):
        return b"" if req.noreply else b"NOT_FOUND\r\n"
    raise AssertionError(f"no canned reply for {req!r}")


def _ids() -> list[str]:
    return [case[0] for case in CASES]


def test_case_ids_unique() -> None:
    assert len(set(_ids())) == len(CASES)


@pytest.mark.parametrize(("chunks", "reply", "closes"), [c[1:] for c in CASES], ids=_ids())
def test_reader_agrees(chunks: list[bytes], reply: bytes, closes: bool) -> None:
    marker = [] if closes else [MN]
    expected = (reply + (b"" if closes else b"MN\r\n"), closes)
    whole = b"".join(chunks) + b"".join(marker)
    assert render(RequestReader().feed(whole)) == expected
    assert render(feed_chunks(RequestReader(), [*chunks, *marker])) == expected
    if len(whole) < 10_000:
        pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
        assert render(feed_chunks(RequestReader(), pieces)) == expected


# -- the same table against the real binary -------------------------------------------------


def _exchange(
    addr: tuple[str, int], chunks: list[bytes], closes: bool, mns: int = 1
) -> tuple[bytes, bool]:
    """Send the chunks (pausing so memcached reads them separately); return the reply and
    whether memcached closed the connection. Unless it closes, the reply ends with the
    ``mns``-th ``MN``."""
    with socket.create_connection(addr, 5) as sock:
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(0.05)
            sock.sendall(chunk)
        if not closes:
            sock.sendall(MN)
        out = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            sock.settimeout(3)
            while closes or not (out.endswith(b"MN\r\n") and out.count(b"MN\r\n") >= mns):
                data = sock.recv(65536)
                if not data:
                    return out, True
                out += data
        return out, False


@pytest.mark.parametrize(("chunks", "reply", "closes"), [c[1:] for c in CASES], ids=_ids())
def test_memcached_still_agrees(
    memcached_for_protocol: tuple[str, int], chunks: list[bytes], reply: bytes, closes: bool
) -> None:
    expected = (reply + (b"" if closes else b"MN\r\n"), closes)
    got = _exchange(memcached_for_protocol, chunks, closes, expected[0].count(b"MN\r\n"))
    assert got == expected
