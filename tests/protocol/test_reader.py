"""RequestReader: one table of cases, each fed whole, byte by byte, cut in two everywhere, and
followed by bytes that must stay buffered (STYLE item 11). The replies for bad input are the
ones memcached 1.6.18 sends; test_reader_memcached.py checks them against the real binary."""

from __future__ import annotations

from typing import Any

import pytest

from mcpframe.protocol import commands as c
from mcpframe.protocol.reader import TABLE, RequestReader
from mcpframe.protocol.request import ErrorReply, Request
from tests.protocol.helpers import check_three_ways, feed_chunks

ERROR = ErrorReply(b"ERROR\r\n")
BAD_FORMAT = ErrorReply(b"CLIENT_ERROR bad command line format\r\n")
BAD_CHUNK = ErrorReply(b"CLIENT_ERROR bad data chunk\r\n")
BAD_EXPTIME = ErrorReply(b"CLIENT_ERROR invalid exptime argument\r\n")
BAD_DELTA = ErrorReply(b"CLIENT_ERROR invalid numeric delta argument\r\n")
DELETE_USAGE = ErrorReply(
    b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
)
SILENT = ErrorReply(b"")  # a CLIENT_ERROR silenced by noreply
CLOSE = ErrorReply(b"", close=True)
K250 = b"k" * 250
K251 = b"k" * 251
FLAGS18 = b" ".join(b"O%d" % i for i in range(18))


def R(
    cmd: int,
    line: bytes,
    key: bytes = b"",
    value: bytes | None = None,
    noreply: bool = False,
    multiget: bool = False,
) -> Request:
    return Request(cmd, line, key, value, noreply, multiget)


# (id, input, expected, RequestReader kwargs)
CASES: list[tuple[str, bytes, list[Any], dict[str, int]]] = [
    # -- retrieval ---------------------------------------------------------------------------
    ("get", b"get foo\r\n", [R(c.CMD_GET, b"get foo\r\n", b"foo")], {}),
    ("get bare lf", b"get foo\n", [R(c.CMD_GET, b"get foo\n", b"foo")], {}),
    ("get cr in key", b"get k\r\r\n", [R(c.CMD_GET, b"get k\r\r\n", b"k\r")], {}),
    ("get leading spaces", b"   get foo\r\n", [R(c.CMD_GET, b"   get foo\r\n", b"foo")], {}),
    ("get trailing space", b"get foo \r\n", [R(c.CMD_GET, b"get foo \r\n", b"foo")], {}),
    ("get nul cuts", b"get k\0x y\r\n", [R(c.CMD_GET, b"get k\0x y\r\n", b"k")], {}),
    ("get key noreply", b"get noreply\r\n", [R(c.CMD_GET, b"get noreply\r\n", b"noreply")], {}),
    ("get key 250", b"get " + K250 + b"\r\n", [R(c.CMD_GET, b"get " + K250 + b"\r\n", K250)], {}),
    ("get key 251", b"get " + K251 + b"\r\n", [BAD_FORMAT], {}),
    ("gets", b"gets foo\r\n", [R(c.CMD_GETS, b"gets foo\r\n", b"foo")], {}),
    ("gets key 251", b"gets " + K251 + b"\r\n", [BAD_FORMAT], {}),
    ("multiget", b"get a b c\r\n", [R(c.CMD_GET, b"get a b c\r\n", b"a", multiget=True)], {}),
    ("multiget spaces", b"get  a  b \n", [R(c.CMD_GET, b"get  a  b \n", b"a", multiget=True)], {}),
    (
        "multiget long key is not checked here",
        b"gets a " + K251 + b"\r\n",
        [R(c.CMD_GETS, b"gets a " + K251 + b"\r\n", b"a", multiget=True)],
        {},
    ),
    ("gat", b"gat 10 foo\r\n", [R(c.CMD_GAT, b"gat 10 foo\r\n", b"foo")], {}),
    ("gat negative", b"gat -1 foo\r\n", [R(c.CMD_GAT, b"gat -1 foo\r\n", b"foo")], {}),
    ("gats multi", b"gats 0 a b\r\n", [R(c.CMD_GATS, b"gats 0 a b\r\n", b"a", multiget=True)], {}),
    ("gat key 251", b"gat 1 " + K251 + b"\r\n", [BAD_FORMAT], {}),
    ("gat no key", b"gat 10\r\n", [ErrorReply(b"END\r\n")], {}),
    ("gat bad exptime", b"gat x k\r\n", [BAD_EXPTIME], {}),
    ("gat bad exptime no key", b"gat x\r\n", [BAD_EXPTIME], {}),
    ("gat bad exptime multi", b"gats x a b\r\n", [BAD_EXPTIME], {}),
    ("gat no args", b"gat\r\n", [ERROR], {}),
    ("get no key", b"get\r\n", [ERROR], {}),
    ("get space no key", b"get  \r\n", [ERROR], {}),
    ("gets no key", b"gets\n", [ERROR], {}),
    # -- storage -----------------------------------------------------------------------------
    (
        "set",
        b"set foo 0 0 5\r\nhello\r\n",
        [R(c.CMD_SET, b"set foo 0 0 5\r\n", b"foo", b"hello\r\n")],
        {},
    ),
    (
        "set value with crlf inside",
        b"set k 1 2 4\r\na\r\nb\r\n",
        [R(c.CMD_SET, b"set k 1 2 4\r\n", b"k", b"a\r\nb\r\n")],
        {},
    ),
    (
        "set empty value",
        b"set k 0 0 0\r\n\r\n",
        [R(c.CMD_SET, b"set k 0 0 0\r\n", b"k", b"\r\n")],
        {},
    ),
    (
        "set bare lf line",
        b"set k 0 0 2\nhi\r\n",
        [R(c.CMD_SET, b"set k 0 0 2\n", b"k", b"hi\r\n")],
        {},
    ),
    (
        "set noreply",
        b"set k 0 0 2 noreply\r\nhi\r\n",
        [R(c.CMD_SET, b"set k 0 0 2 noreply\r\n", b"k", b"hi\r\n", noreply=True)],
        {},
    ),
    (
        "set noreply bare lf",
        b"set k 0 0 2 noreply\nhi\r\n",
        [R(c.CMD_SET, b"set k 0 0 2 noreply\n", b"k", b"hi\r\n", noreply=True)],
        {},
    ),
    (
        "set noreply cr is not noreply",
        b"set k 0 0 2 noreply\r\r\nhi\r\n",
        [R(c.CMD_SET, b"set k 0 0 2 noreply\r\r\n", b"k", b"hi\r\n")],
        {},
    ),
    (
        "set other 6th token",
        b"set k 0 0 2 foo\r\nhi\r\n",
        [R(c.CMD_SET, b"set k 0 0 2 foo\r\n", b"k", b"hi\r\n")],
        {},
    ),
    (
        "set C-style numbers",
        b"set k +1 -5 +2\t\r\nhi\r\n",
        [R(c.CMD_SET, b"set k +1 -5 +2\t\r\n", b"k", b"hi\r\n")],
        {},
    ),
    (
        "set bytes wrap to 2",
        b"set k 0 0 4294967298\r\nhi\r\n",
        [R(c.CMD_SET, b"set k 0 0 4294967298\r\n", b"k", b"hi\r\n")],
        {},
    ),
    (
        "set flags 2**64-1",
        b"set k 18446744073709551615 0 2\r\nhi\r\n",
        [R(c.CMD_SET, b"set k 18446744073709551615 0 2\r\n", b"k", b"hi\r\n")],
        {},
    ),
    ("add", b"add k 0 0 1\r\nx\r\n", [R(c.CMD_ADD, b"add k 0 0 1\r\n", b"k", b"x\r\n")], {}),
    (
        "replace",
        b"replace k 0 0 1\r\nx\r\n",
        [R(c.CMD_REPLACE, b"replace k 0 0 1\r\n", b"k", b"x\r\n")],
        {},
    ),
    (
        "append",
        b"append k 0 0 1\r\nx\r\n",
        [R(c.CMD_APPEND, b"append k 0 0 1\r\n", b"k", b"x\r\n")],
        {},
    ),
    (
        "prepend noreply",
        b"prepend k 0 0 1 noreply\r\nx\r\n",
        [R(c.CMD_PREPEND, b"prepend k 0 0 1 noreply\r\n", b"k", b"x\r\n", noreply=True)],
        {},
    ),
    ("cas", b"cas k 0 0 1 99\r\nx\r\n", [R(c.CMD_CAS, b"cas k 0 0 1 99\r\n", b"k", b"x\r\n")], {}),
    (
        "cas noreply",
        b"cas k 0 0 1 99 noreply\r\nx\r\n",
        [R(c.CMD_CAS, b"cas k 0 0 1 99 noreply\r\n", b"k", b"x\r\n", noreply=True)],
        {},
    ),
    ("set bad flags", b"set k x 0 2\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    ("set negative flags", b"set k -1 0 2\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    ("set bad exptime", b"set k 0 1x 2\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    ("set bad bytes", b"set k 0 0 2x\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    ("set negative bytes", b"set k 0 0 -1\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    ("set bytes > 2**31-3", b"set k 0 0 2147483646\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    ("set bytes out of range", b"set k 0 0 9223372036854775808\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    ("set bytes wrap to 0", b"set k 0 0 -9223372036854775808\r\nhi\r\n", [BAD_CHUNK, ERROR], {}),
    ("set too few tokens", b"set k 0 0\r\nhi\r\n", [ERROR, ERROR], {}),
    ("set too many tokens", b"set k 0 0 2 noreply x\r\nhi\r\n", [ERROR, ERROR], {}),
    ("set bad flags noreply", b"set k x 0 2 noreply\r\nhi\r\n", [SILENT, ERROR], {}),
    ("set noreply as bytes", b"set k 0 0 noreply\r\nhi\r\n", [SILENT, ERROR], {}),
    ("set key 251", b"set " + K251 + b" 0 0 2\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    ("set key 251 noreply", b"set " + K251 + b" 0 0 2 noreply\r\nhi\r\n", [SILENT, ERROR], {}),
    ("cas too few", b"cas k 0 0 2\r\nhi\r\n", [ERROR, ERROR], {}),
    ("cas bad unique", b"cas k 0 0 2 x\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    ("cas negative unique", b"cas k 0 0 2 -1\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    (
        "set data line parsed as a command",
        b"set k x 0 4\r\nmn\r\n\r\n",
        [BAD_FORMAT, R(c.CMD_MN, b"mn\r\n"), ERROR],
        {},
    ),
    ("bad data chunk", b"set k 0 0 3\r\nabcXY", [BAD_CHUNK], {}),
    (
        "bad data chunk resync",
        b"set k 0 0 3\r\nabcdemn\r\n",
        [BAD_CHUNK, R(c.CMD_MN, b"mn\r\n")],
        {},
    ),
    ("bad data chunk lf only", b"set k 0 0 3\r\nabc\nX", [BAD_CHUNK], {}),
    ("bad data chunk noreply", b"set k 0 0 3 noreply\r\nabcXY", [SILENT], {}),
    # -- too large values (max_value=4 here) -------------------------------------------------
    (
        "value at max_value",
        b"set k 0 0 4\r\nabcd\r\n",
        [R(c.CMD_SET, b"set k 0 0 4\r\n", b"k", b"abcd\r\n")],
        {"max_value": 4},
    ),
    (
        "value too large",
        b"set k 0 0 5\r\nhello\r\n",
        [R(c.CMD_SET, b"set k 0 0 5\r\n", b"k")],
        {"max_value": 4},
    ),
    (
        "value too large, crlf not checked",
        b"set k 0 0 5 noreply\r\nhelloXY",
        [R(c.CMD_SET, b"set k 0 0 5 noreply\r\n", b"k", noreply=True)],
        {"max_value": 4},
    ),
    (
        "ms value too large",
        b"ms k 5 q\r\nhello\r\nmn\r\n",
        [R(c.CMD_MS, b"ms k 5 q\r\n", b"k", noreply=True), R(c.CMD_MN, b"mn\r\n")],
        {"max_value": 4},
    ),
    # -- arithmetic, touch, delete -----------------------------------------------------------
    ("incr", b"incr k 1\r\n", [R(c.CMD_INCR, b"incr k 1\r\n", b"k")], {}),
    (
        "decr noreply",
        b"decr k 1 noreply\r\n",
        [R(c.CMD_DECR, b"decr k 1 noreply\r\n", b"k", noreply=True)],
        {},
    ),
    ("incr 4th token", b"incr k 1 foo\r\n", [R(c.CMD_INCR, b"incr k 1 foo\r\n", b"k")], {}),
    ("incr no delta", b"incr k\r\n", [ERROR], {}),
    ("incr too many", b"incr k 1 2 3\r\n", [ERROR], {}),
    ("incr bad delta", b"incr k x\r\n", [BAD_DELTA], {}),
    ("decr negative delta", b"decr k -1\r\n", [BAD_DELTA], {}),
    ("incr noreply as delta", b"incr k noreply\r\n", [SILENT], {}),
    ("incr key 251 bad delta", b"incr " + K251 + b" x\r\n", [BAD_FORMAT], {}),
    ("touch", b"touch k 10\r\n", [R(c.CMD_TOUCH, b"touch k 10\r\n", b"k")], {}),
    (
        "touch noreply",
        b"touch k 10 noreply\n",
        [R(c.CMD_TOUCH, b"touch k 10 noreply\n", b"k", noreply=True)],
        {},
    ),
    ("touch no exptime", b"touch k\r\n", [ERROR], {}),
    ("touch bad exptime", b"touch k x\r\n", [BAD_EXPTIME], {}),
    ("touch bad exptime noreply", b"touch k x noreply\r\n", [SILENT], {}),
    ("touch key 251", b"touch " + K251 + b" 1\r\n", [BAD_FORMAT], {}),
    ("delete", b"delete k\r\n", [R(c.CMD_DELETE, b"delete k\r\n", b"k")], {}),
    ("delete 0", b"delete k 0\r\n", [R(c.CMD_DELETE, b"delete k 0\r\n", b"k")], {}),
    (
        "delete noreply",
        b"delete k noreply\r\n",
        [R(c.CMD_DELETE, b"delete k noreply\r\n", b"k", noreply=True)],
        {},
    ),
    (
        "delete 0 noreply",
        b"delete k 0 noreply\r\n",
        [R(c.CMD_DELETE, b"delete k 0 noreply\r\n", b"k", noreply=True)],
        {},
    ),
    (
        "delete key noreply",
        b"delete noreply\r\n",
        [R(c.CMD_DELETE, b"delete noreply\r\n", b"noreply")],
        {},
    ),
    ("delete no key", b"delete\r\n", [ERROR], {}),
    ("delete hold 5", b"delete k 5\r\n", [DELETE_USAGE], {}),
    ("delete hold 5 noreply", b"delete k 5 noreply\r\n", [SILENT], {}),
    ("delete 0 foo", b"delete k 0 foo\r\n", [DELETE_USAGE], {}),
    ("delete too many", b"delete k 0 noreply x\r\n", [ERROR], {}),
    ("delete key 251", b"delete " + K251 + b"\r\n", [BAD_FORMAT], {}),
    ("delete key 251 noreply", b"delete " + K251 + b" noreply\r\n", [SILENT], {}),
    ("delete key 251 hold 5", b"delete " + K251 + b" 5\r\n", [DELETE_USAGE], {}),
    # -- meta --------------------------------------------------------------------------------
    ("mg", b"mg foo v\r\n", [R(c.CMD_MG, b"mg foo v\r\n", b"foo")], {}),
    ("mg no flags", b"mg foo\r\n", [R(c.CMD_MG, b"mg foo\r\n", b"foo")], {}),
    ("mg quiet", b"mg foo v q\r\n", [R(c.CMD_MG, b"mg foo v q\r\n", b"foo", noreply=True)], {}),
    ("mg key starting with q", b"mg qfoo v\r\n", [R(c.CMD_MG, b"mg qfoo v\r\n", b"qfoo")], {}),
    ("mg opaque holding q", b"mg foo Oq\r\n", [R(c.CMD_MG, b"mg foo Oq\r\n", b"foo")], {}),
    (
        "mg 19 tokens",
        b"mg k " + FLAGS18[:-4] + b"\r\n",
        [R(c.CMD_MG, b"mg k " + FLAGS18[:-4] + b"\r\n", b"k")],
        {},
    ),
    (
        "mg 20 tokens",
        b"mg k " + FLAGS18 + b"\r\n",
        [ErrorReply(b"CLIENT_ERROR options flags are too long\r\n")],
        {},
    ),
    (
        "md 20 tokens",
        b"md k " + FLAGS18 + b"\r\n",
        [ErrorReply(b"CLIENT_ERROR options flags too long\r\n")],
        {},
    ),
    ("md quiet", b"md foo q\r\n", [R(c.CMD_MD, b"md foo q\r\n", b"foo", noreply=True)], {}),
    ("ma", b"ma foo N0 J1\r\n", [R(c.CMD_MA, b"ma foo N0 J1\r\n", b"foo")], {}),
    ("me", b"me foo\r\n", [R(c.CMD_ME, b"me foo\r\n", b"foo")], {}),
    (
        "me many tokens",
        b"me k " + FLAGS18 + b" x y\r\n",
        [R(c.CMD_ME, b"me k " + FLAGS18 + b" x y\r\n", b"k")],
        {},
    ),
    ("mn", b"mn\r\n", [R(c.CMD_MN, b"mn\r\n")], {}),
    ("mn args", b"mn a b\n", [R(c.CMD_MN, b"mn a b\n")], {}),
    ("ms", b"ms foo 2\r\nhi\r\n", [R(c.CMD_MS, b"ms foo 2\r\n", b"foo", b"hi\r\n")], {}),
    (
        "ms flags quiet",
        b"ms foo 2 T10 q\r\nhi\r\n",
        [R(c.CMD_MS, b"ms foo 2 T10 q\r\n", b"foo", b"hi\r\n", noreply=True)],
        {},
    ),
    (
        "ms key starting with q",
        b"ms qk 2\r\nhi\r\n",
        [R(c.CMD_MS, b"ms qk 2\r\n", b"qk", b"hi\r\n")],
        {},
    ),
    ("mg no key", b"mg\r\n", [ERROR], {}),
    ("md only space", b"md \r\n", [ERROR], {}),
    ("ma no key", b"ma\n", [ERROR], {}),
    ("me no key", b"me\r\n", [BAD_FORMAT], {}),
    ("ms no key", b"ms\r\n", [ERROR], {}),
    ("ms no datalen", b"ms k\r\n", [BAD_FORMAT], {}),
    ("ms bad datalen", b"ms k x\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    ("ms negative datalen", b"ms k -1\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    ("ms key 251", b"ms " + K251 + b" 2\r\nhi\r\n", [BAD_FORMAT, ERROR], {}),
    (
        "ms 20 tokens",
        b"ms k 2 " + FLAGS18[:-4] + b"\r\nhi\r\n",
        [ErrorReply(b"CLIENT_ERROR options flags too long\r\n"), ERROR],
        {},
    ),
    ("ms bad chunk quiet", b"ms k 2 q\r\nhiXY", [BAD_CHUNK], {}),
    ("mg key 251", b"mg " + K251 + b" v q\r\n", [BAD_FORMAT], {}),
    # -- local commands ----------------------------------------------------------------------
    ("version", b"version\r\n", [R(c.CMD_VERSION, b"version\r\n")], {}),
    ("version bare lf", b"version\n", [R(c.CMD_VERSION, b"version\n")], {}),
    ("stats", b"stats\r\n", [R(c.CMD_STATS, b"stats\r\n")], {}),
    ("stats args", b"stats slabs\r\n", [R(c.CMD_STATS, b"stats slabs\r\n")], {}),
    ("stats proxy bare lf", b"stats proxy\n", [R(c.CMD_STATS, b"stats proxy\n")], {}),
    ("flush_all", b"flush_all\r\n", [R(c.CMD_FLUSH_ALL, b"flush_all\r\n")], {}),
    (
        "flush_all noreply",
        b"flush_all 0 noreply\r\n",
        [R(c.CMD_FLUSH_ALL, b"flush_all 0 noreply\r\n", noreply=True)],
        {},
    ),
    ("verbosity", b"verbosity 1\r\n", [R(c.CMD_VERBOSITY, b"verbosity 1\r\n")], {}),
    (
        "verbosity noreply",
        b"verbosity 1 noreply\r\n",
        [R(c.CMD_VERBOSITY, b"verbosity 1 noreply\r\n", noreply=True)],
        {},
    ),
    ("verbosity no args", b"verbosity\r\n", [R(c.CMD_VERBOSITY, b"verbosity\r\n")], {}),
    ("quit", b"quit\r\n", [R(c.CMD_QUIT, b"quit\r\n")], {}),
    ("watch", b"watch proxyevents\n", [R(c.CMD_WATCH, b"watch proxyevents\n")], {}),
    ("slabs", b"slabs reassign 1 2\r\n", [R(c.CMD_SLABS, b"slabs reassign 1 2\r\n")], {}),
    ("lru", b"lru mode flat\r\n", [R(c.CMD_LRU, b"lru mode flat\r\n")], {}),
    (
        "lru_crawler",
        b"lru_crawler metadump all\r\n",
        [R(c.CMD_LRU_CRAWLER, b"lru_crawler metadump all\r\n")],
        {},
    ),
    ("shutdown", b"shutdown\r\n", [R(c.CMD_SHUTDOWN, b"shutdown\r\n")], {}),
    (
        "extstore",
        b"extstore free_memchunks 0 0\r\n",
        [R(c.CMD_EXTSTORE, b"extstore free_memchunks 0 0\r\n")],
        {},
    ),
    ("refresh_certs", b"refresh_certs\r\n", [R(c.CMD_REFRESH_CERTS, b"refresh_certs\r\n")], {}),
    (
        "cache_memlimit",
        b"cache_memlimit 100\r\n",
        [R(c.CMD_CACHE_MEMLIMIT, b"cache_memlimit 100\r\n")],
        {},
    ),
    # -- garbage -----------------------------------------------------------------------------
    ("unknown command", b"foo bar\r\n", [ERROR], {}),
    ("empty line", b"\r\n", [ERROR], {}),
    ("empty line lf", b"\n", [ERROR], {}),
    ("only spaces", b"   \r\n", [ERROR], {}),
    ("upper case", b"GET k\r\n", [ERROR], {}),
    ("tab is no separator", b"get\tk\r\n", [ERROR], {}),
    ("nul first", b"\0version\r\n", [ERROR], {}),
    ("binary protocol bytes", b"\x80\x00\x00\x01\r\n", [ERROR], {}),
    # -- line length (max_line=16, max_multiget_line=40 here) --------------------------------
    ("line at max_line", b"x" * 16 + b"\r\n", [ERROR], {"max_line": 16}),
    ("line over max_line", b"x" * 17 + b"\n", [CLOSE], {"max_line": 16}),
    ("line over max_line no lf", b"x" * 17, [CLOSE], {"max_line": 16}),
    ("line over max_line cr", b"x" * 17 + b"\r", [CLOSE], {"max_line": 16}),
    ("line over max_line crlf", b"x" * 17 + b"\r\n", [CLOSE], {"max_line": 16}),
    ("line at max_line lf", b"x" * 16 + b"\n", [ERROR], {"max_line": 16}),
    (
        "close after earlier requests",
        b"mn\r\n" + b"x" * 17,
        [R(c.CMD_MN, b"mn\r\n"), CLOSE],
        {"max_line": 16},
    ),
    (
        "long multiget may grow",
        b"get " + b"a " * 15 + b"b\r\n",
        [R(c.CMD_GET, b"get " + b"a " * 15 + b"b\r\n", b"a", multiget=True)],
        {"max_line": 16, "max_multiget_line": 40},
    ),
    (
        "long gets after 100 spaces",
        b" " * 100 + b"gets a b\r\n",
        [R(c.CMD_GETS, b" " * 100 + b"gets a b\r\n", b"a", multiget=True)],
        {"max_line": 16},
    ),
    ("long get after 101 spaces", b" " * 101 + b"get a b\r\n", [CLOSE], {"max_line": 16}),
    (
        "long multiget over its cap",
        b"get " + b"a " * 20 + b"\r\n",
        [CLOSE],
        {"max_line": 16, "max_multiget_line": 40},
    ),
    ("long gat", b"gat 10 " + b"a " * 10 + b"\r\n", [CLOSE], {"max_line": 16}),
    ("long mg", b"mg " + b"a" * 20 + b"\r\n", [CLOSE], {"max_line": 16}),
    ("long getx", b"getx " + b"a " * 10 + b"\r\n", [CLOSE], {"max_line": 16}),
    (
        "long data block is not a long line",
        b"set k 0 0 40\r\n" + b"v" * 40 + b"\r\n",
        [R(c.CMD_SET, b"set k 0 0 40\r\n", b"k", b"v" * 40 + b"\r\n")],
        {"max_line": 16},
    ),
    # -- pipelines ---------------------------------------------------------------------------
    (
        "pipeline",
        b"get a\r\nset b 0 0 1\r\nx\r\nbogus\r\nmg c v\nms d 1 q\r\ny\r\ndelete e\r\n",
        [
            R(c.CMD_GET, b"get a\r\n", b"a"),
            R(c.CMD_SET, b"set b 0 0 1\r\n", b"b", b"x\r\n"),
            ERROR,
            R(c.CMD_MG, b"mg c v\n", b"c"),
            R(c.CMD_MS, b"ms d 1 q\r\n", b"d", b"y\r\n", noreply=True),
            R(c.CMD_DELETE, b"delete e\r\n", b"e"),
        ],
        {},
    ),
]

TRAILING = b"get trai"
COMPLETION = b"ling\r\n"
COMPLETED = [R(c.CMD_GET, b"get trailing\r\n", b"trailing")]


@pytest.mark.parametrize(
    ("data", "expected", "kwargs"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_cases(data: bytes, expected: list[Any], kwargs: dict[str, int]) -> None:
    closes = bool(expected) and isinstance(expected[-1], ErrorReply) and expected[-1].close
    check_three_ways(
        lambda: RequestReader(**kwargs),
        data,
        expected,
        TRAILING,
        COMPLETION,
        COMPLETED,
        ends=closes,
    )


def test_case_ids_unique() -> None:
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


def test_every_command_word_is_recognised() -> None:
    assert {word: code for word, (code, _) in TABLE.items()} == c.COMMANDS
    args = {
        b"incr": b" k 1\r\n",
        b"decr": b" k 1\r\n",
        b"touch": b" k 1\r\n",
        b"delete": b" k\r\n",
        b"ms": b" k 1\r\nx\r\n",
    }
    for word, code in c.COMMANDS.items():
        # Storage commands take the data block; the others ignore it or answer it with ERROR.
        out = RequestReader().feed(word + args.get(word, b" 1 0 1 1 2\r\nx\r\n"))
        first = out[0]
        assert isinstance(first, Request), (word, out)
        assert first.cmd == code


def test_closed_reader_ignores_input() -> None:
    reader = RequestReader(max_line=8)
    assert reader.feed(b"version\r\n" + b"x" * 9) == [R(c.CMD_VERSION, b"version\r\n"), CLOSE]
    assert reader.closed
    assert reader.feed(b"\r\nversion\r\n") == []
    assert reader.buffered() == 0


def test_too_large_value_is_streamed_not_buffered() -> None:
    reader = RequestReader()  # max_value 1 MiB
    size = 3 * 1024 * 1024
    assert reader.feed(b"set k 0 0 %d\r\n" % size + b"x" * 1000) == []
    chunk = b"x" * 65536
    sent = 1000
    while sent + len(chunk) < size:
        assert reader.feed(chunk) == []
        assert reader.buffered() == 0
        sent += len(chunk)
    tail = b"x" * (size - sent) + b"\r\n"
    out = reader.feed(tail[:-1])
    assert out == [] and reader.buffered() == 0
    assert reader.feed(tail[-1:] + b"mn\r\n") == [
        R(c.CMD_SET, b"set k 0 0 %d\r\n" % size, b"k"),
        R(c.CMD_MN, b"mn\r\n"),
    ]


def test_large_value_in_chunks_is_complete() -> None:
    reader = RequestReader()
    value = bytes(range(256)) * 4096  # exactly 1 MiB, the default max_value
    data = b"set k 0 0 %d\r\n" % len(value) + value + b"\r\n"
    out = feed_chunks(reader, [data[i : i + 4096] for i in range(0, len(data), 4096)])
    assert out == [R(c.CMD_SET, b"set k 0 0 1048576\r\n", b"k", value + b"\r\n")]
    assert reader.buffered() == 0


def test_partial_long_line_closes_when_it_passes_the_limit() -> None:
    reader = RequestReader()
    assert reader.feed(b"x" * 2048) == []
    assert reader.buffered() == 2048
    assert reader.feed(b"x") == [CLOSE]


def test_partial_multiget_grows_until_its_cap() -> None:
    reader = RequestReader(max_multiget_line=10_000)
    assert reader.feed(b"get " + b"k " * 3000) == []  # 6004 bytes
    assert reader.feed(b"k " * 1998) == []  # 10000 bytes
    assert reader.buffered() == 10_000
    assert reader.feed(b"k") == [CLOSE]


def test_accepts_bytearray_and_memoryview() -> None:
    reader = RequestReader()
    out = reader.feed(bytearray(b"get a\r\n")) + reader.feed(memoryview(b"get b\r\n"))  # type: ignore[arg-type]
    assert out == [R(c.CMD_GET, b"get a\r\n", b"a"), R(c.CMD_GET, b"get b\r\n", b"b")]
    assert all(
        type(r.line) is bytes and type(r.key) is bytes for r in out if isinstance(r, Request)
    )


def test_value_is_bytes() -> None:
    reader = RequestReader()
    reader.feed(b"set k 0 0 2\r\nh")
    (req,) = reader.feed(b"i\r\n")
    assert isinstance(req, Request)
    assert type(req.value) is bytes and type(req.line) is bytes
