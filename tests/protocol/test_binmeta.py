"""binmeta: binary request -> text request -> memcached 1.6.18's text reply -> binary reply.

Each case holds the binary request, the text request we make of it, the reply memcached 1.6.18
sent to that text request, and the bytes memcached 1.6.18's own binary path sent to the binary
request (both recorded from the real binary, one instance spoken to in text and one in binary,
the cases run in this order). ``test_memcached_still_agrees`` replays them.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpframe.protocol import binary as b
from mcpframe.protocol.binary import (
    NO_CREATE,
    BinaryRequest,
    BinaryResponseReader,
    encode_request,
    encode_response,
)
from mcpframe.protocol.binmeta import TABLE, _b64encode, key_token, to_binary, to_text
from tests.helpers import MEMCACHED, Client, Memcached
from tests.protocol.binary_helpers import binary_exchange, text_exchange

H = bytes.fromhex
R = BinaryRequest

CASES: list[tuple[str, BinaryRequest, bytes, bytes, bytes]] = [
    (
        "get miss",
        R(b.OP_GET, b"foo", opaque=1),
        b"mg foo v f c\r\n",
        b"EN\r\n",
        H("8100000000000001000000090000000100000000000000004e6f7420666f756e64"),
    ),
    (
        "getk miss: the key is the body",
        R(b.OP_GETK, b"foo", opaque=2),
        b"mg foo v f c\r\n",
        b"EN\r\n",
        H("810c00030000000100000003000000020000000000000000666f6f"),
    ),
    ("getq miss: silence", R(b.OP_GETQ, b"foo"), b"mg foo v f c\r\n", b"EN\r\n", H("")),
    ("getkq miss: silence", R(b.OP_GETKQ, b"foo"), b"mg foo v f c\r\n", b"EN\r\n", H("")),
    (
        "set",
        R(b.OP_SET, b"foo", value=b"bar", opaque=3, flags=0xDEADBEEF),
        b"ms foo 3 F3735928559 c\r\nbar\r\n",
        b"HD c1\r\n",
        H("810100000000000000000000000000030000000000000001"),
    ),
    (
        "get hit",
        R(b.OP_GET, b"foo", opaque=4),
        b"mg foo v f c\r\n",
        b"VA 3 f3735928559 c1\r\nbar\r\n",
        H("810000000400000000000007000000040000000000000001deadbeef626172"),
    ),
    (
        "getk hit",
        R(b.OP_GETK, b"foo"),
        b"mg foo v f c\r\n",
        b"VA 3 f3735928559 c1\r\nbar\r\n",
        H("810c0003040000000000000a000000000000000000000001deadbeef666f6f626172"),
    ),
    (
        "getq hit",
        R(b.OP_GETQ, b"foo"),
        b"mg foo v f c\r\n",
        b"VA 3 f3735928559 c1\r\nbar\r\n",
        H("810900000400000000000007000000000000000000000001deadbeef626172"),
    ),
    (
        "getkq hit",
        R(b.OP_GETKQ, b"foo", opaque=5),
        b"mg foo v f c\r\n",
        b"VA 3 f3735928559 c1\r\nbar\r\n",
        H("810d0003040000000000000a000000050000000000000001deadbeef666f6f626172"),
    ),
    (
        "add exists",
        R(b.OP_ADD, b"foo", value=b"x"),
        b"ms foo 1 ME c\r\nx\r\n",
        b"NS c0\r\n",
        H(
            "810200000000000200000014000000000000000000000000446174612065786973747320666f72206b65792e"
        ),
    ),
    (
        "addq exists",
        R(b.OP_ADDQ, b"foo", value=b"x"),
        b"ms foo 1 ME c\r\nx\r\n",
        b"NS c0\r\n",
        H(
            "811200000000000200000014000000000000000000000000446174612065786973747320666f72206b65792e"
        ),
    ),
    (
        "add",
        R(b.OP_ADD, b"new", value=b"x", flags=7, exptime=100),
        b"ms new 1 F7 T100 ME c\r\nx\r\n",
        b"HD c2\r\n",
        H("810200000000000000000000000000000000000000000002"),
    ),
    (
        "replace miss",
        R(b.OP_REPLACE, b"nokey", value=b"x"),
        b"ms nokey 1 MR c\r\nx\r\n",
        b"NS c0\r\n",
        H("8103000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    (
        "replaceq miss",
        R(b.OP_REPLACEQ, b"nokey", value=b"x"),
        b"ms nokey 1 MR c\r\nx\r\n",
        b"NS c0\r\n",
        H("8113000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    (
        "replace",
        R(b.OP_REPLACE, b"new", value=b"yy"),
        b"ms new 2 MR c\r\nyy\r\n",
        b"HD c3\r\n",
        H("810300000000000000000000000000000000000000000003"),
    ),
    (
        "append miss",
        R(b.OP_APPEND, b"nokey", value=b"x"),
        b"ms nokey 1 MA c\r\nx\r\n",
        b"NS c0\r\n",
        H("810e0000000000050000000b0000000000000000000000004e6f742073746f7265642e"),
    ),
    (
        "append",
        R(b.OP_APPEND, b"foo", value=b"x"),
        b"ms foo 1 MA c\r\nx\r\n",
        b"HD c4\r\n",
        H("810e00000000000000000000000000000000000000000004"),
    ),
    (
        "prependq: silence",
        R(b.OP_PREPENDQ, b"foo", value=b"y"),
        b"ms foo 1 MP c\r\ny\r\n",
        b"HD c5\r\n",
        H(""),
    ),
    (
        "get after append prepend",
        R(b.OP_GET, b"foo"),
        b"mg foo v f c\r\n",
        b"VA 5 f3735928559 c5\r\nybarx\r\n",
        H("810000000400000000000009000000000000000000000005deadbeef7962617278"),
    ),
    (
        "set cas mismatch",
        R(b.OP_SET, b"foo", value=b"zz", cas=0x3039),
        b"ms foo 2 C12345 c\r\nzz\r\n",
        b"EX c0\r\n",
        H(
            "810100000000000200000014000000000000000000000000446174612065786973747320666f72206b65792e"
        ),
    ),
    (
        "set cas miss",
        R(b.OP_SET, b"nokey", value=b"zz", cas=0x3039),
        b"ms nokey 2 C12345 c\r\nzz\r\n",
        b"NF c0\r\n",
        H("8101000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    (
        "add with cas mismatch",
        R(b.OP_ADD, b"foo", value=b"zz", cas=0x3039),
        b"ms foo 2 C12345 c\r\nzz\r\n",
        b"EX c0\r\n",
        H(
            "810200000000000200000014000000000000000000000000446174612065786973747320666f72206b65792e"
        ),
    ),
    (
        "replace with cas miss",
        R(b.OP_REPLACE, b"nokey", value=b"zz", cas=1),
        b"ms nokey 2 C1 c\r\nzz\r\n",
        b"NF c0\r\n",
        H("8103000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    (
        "append cas mismatch",
        R(b.OP_APPEND, b"foo", value=b"zz", cas=0x3039),
        b"ms foo 2 MA C12345 c\r\nzz\r\n",
        b"EX c0\r\n",
        H(
            "810e00000000000200000014000000000000000000000000446174612065786973747320666f72206b65792e"
        ),
    ),
    (
        "append cas miss",
        R(b.OP_APPEND, b"nokey", value=b"zz", cas=0x3039),
        b"ms nokey 2 MA C12345 c\r\nzz\r\n",
        b"NS c0\r\n",
        H("810e0000000000050000000b0000000000000000000000004e6f742073746f7265642e"),
    ),
    (
        "setq cas mismatch is answered",
        R(b.OP_SETQ, b"foo", value=b"zz", cas=0x3039),
        b"ms foo 2 C12345 c\r\nzz\r\n",
        b"EX c0\r\n",
        H(
            "811100000000000200000014000000000000000000000000446174612065786973747320666f72206b65792e"
        ),
    ),
    (
        "add with the right cas is a cas set",
        R(b.OP_ADD, b"foo", value=b"casd", cas=5),
        b"ms foo 4 C5 c\r\ncasd\r\n",
        b"HD c6\r\n",
        H("810200000000000000000000000000000000000000000006"),
    ),
    (
        "get after cas add",
        R(b.OP_GET, b"foo"),
        b"mg foo v f c\r\n",
        b"VA 4 f0 c6\r\ncasd\r\n",
        H("8100000004000000000000080000000000000000000000060000000063617364"),
    ),
    (
        "delete cas mismatch",
        R(b.OP_DELETE, b"foo", cas=0x3039),
        b"md foo C12345\r\n",
        b"EX\r\n",
        H(
            "810400000000000200000014000000000000000000000000446174612065786973747320666f72206b65792e"
        ),
    ),
    (
        "delete",
        R(b.OP_DELETE, b"foo"),
        b"md foo\r\n",
        b"HD\r\n",
        H("810400000000000000000000000000000000000000000000"),
    ),
    (
        "delete miss",
        R(b.OP_DELETE, b"foo"),
        b"md foo\r\n",
        b"NF\r\n",
        H("8104000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    (
        "deleteq miss is answered",
        R(b.OP_DELETEQ, b"foo"),
        b"md foo\r\n",
        b"NF\r\n",
        H("8114000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    ("deleteq: silence", R(b.OP_DELETEQ, b"new"), b"md new\r\n", b"HD\r\n", H("")),
    (
        "incr miss no create",
        R(b.OP_INCREMENT, b"n", exptime=NO_CREATE, delta=5, initial=10),
        b"ma n D5 v c\r\n",
        b"NF\r\n",
        H("8105000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    (
        "incr miss creates initial",
        R(b.OP_INCREMENT, b"n", delta=5, initial=10),
        b"ma n D5 N0 J10 v c\r\n",
        b"VA 2 c7\r\n10\r\n",
        H("810500000000000000000008000000000000000000000007000000000000000a"),
    ),
    (
        "incr",
        R(b.OP_INCREMENT, b"n", delta=5, initial=10),
        b"ma n D5 N0 J10 v c\r\n",
        b"VA 2 c8\r\n15\r\n",
        H("810500000000000000000008000000000000000000000008000000000000000f"),
    ),
    (
        "decr below 0",
        R(b.OP_DECREMENT, b"n", delta=100, initial=10),
        b"ma n MD D100 N0 J10 v c\r\n",
        b"VA 1 c9\r\n0\r\n",
        H("8106000000000000000000080000000000000000000000090000000000000000"),
    ),
    (
        "incrq: silence",
        R(b.OP_INCREMENTQ, b"n", delta=1),
        b"ma n D1 N0 v c\r\n",
        b"VA 1 c10\r\n1\r\n",
        H(""),
    ),
    (
        "decrq miss is answered",
        R(b.OP_DECREMENTQ, b"nn", exptime=NO_CREATE, delta=1),
        b"ma nn MD D1 v c\r\n",
        b"NF\r\n",
        H("8116000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    (
        "incr cas mismatch",
        R(b.OP_INCREMENT, b"n", cas=0x1869F, delta=1),
        b"ma n D1 N0 C99999 v c\r\n",
        b"EX\r\n",
        H(
            "810500000000000200000014000000000000000000000000446174612065786973747320666f72206b65792e"
        ),
    ),
    (
        "set text",
        R(b.OP_SET, b"s", value=b"abc"),
        b"ms s 3 c\r\nabc\r\n",
        b"HD c11\r\n",
        H("81010000000000000000000000000000000000000000000b"),
    ),
    (
        "incr non-numeric",
        R(b.OP_INCREMENT, b"s", delta=1),
        b"ma s D1 N0 v c\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        H(
            "81050000000000060000002e0000000000000000000000004e6f6e2d6e756d65726963207365727665722d736964652076616c756520666f7220696e6372206f722064656372"
        ),
    ),
    (
        "incrq non-numeric is answered",
        R(b.OP_INCREMENTQ, b"s", delta=1),
        b"ma s D1 N0 v c\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        H(
            "81150000000000060000002e0000000000000000000000004e6f6e2d6e756d65726963207365727665722d736964652076616c756520666f7220696e6372206f722064656372"
        ),
    ),
    (
        "set max u64",
        R(b.OP_SET, b"w", value=b"18446744073709551615"),
        b"ms w 20 c\r\n18446744073709551615\r\n",
        b"HD c12\r\n",
        H("81010000000000000000000000000000000000000000000c"),
    ),
    (
        "incr wraps",
        R(b.OP_INCREMENT, b"w", delta=2),
        b"ma w D2 N0 v c\r\n",
        b"VA 1 c13\r\n1\r\n",
        H("81050000000000000000000800000000000000000000000d0000000000000001"),
    ),
    (
        "incr creates with exptime",
        R(b.OP_INCREMENT, b"c", exptime=100, delta=1, initial=42),
        b"ma c D1 N100 J42 v c\r\n",
        b"VA 2 c14\r\n42\r\n",
        H("81050000000000000000000800000000000000000000000e000000000000002a"),
    ),
    (
        "get created",
        R(b.OP_GET, b"c"),
        b"mg c v f c\r\n",
        b"VA 2 f0 c14\r\n42\r\n",
        H("81000000040000000000000600000000000000000000000e000000003432"),
    ),
    (
        "touch",
        R(b.OP_TOUCH, b"c", exptime=100),
        b"mg c T100 f c\r\n",
        b"HD f0 c14\r\n",
        H("811c0000040000000000000400000000000000000000000e00000000"),
    ),
    (
        "touch miss",
        R(b.OP_TOUCH, b"nokey", exptime=100),
        b"mg nokey T100 f c\r\n",
        b"EN\r\n",
        H("811c000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    (
        "gat",
        R(b.OP_GAT, b"c", exptime=100),
        b"mg c T100 v f c\r\n",
        b"VA 2 f0 c14\r\n42\r\n",
        H("811d0000040000000000000600000000000000000000000e000000003432"),
    ),
    (
        "gatk",
        R(b.OP_GATK, b"c", exptime=10),
        b"mg c T10 v f c\r\n",
        b"VA 2 f0 c14\r\n42\r\n",
        H("81230001040000000000000700000000000000000000000e00000000633432"),
    ),
    (
        "gatq miss: silence",
        R(b.OP_GATQ, b"nokey", exptime=10),
        b"mg nokey T10 v f c\r\n",
        b"EN\r\n",
        H(""),
    ),
    (
        "gatkq",
        R(b.OP_GATKQ, b"c", exptime=10),
        b"mg c T10 v f c\r\n",
        b"VA 2 f0 c14\r\n42\r\n",
        H("81240001040000000000000700000000000000000000000e00000000633432"),
    ),
    (
        "gatk miss",
        R(b.OP_GATK, b"nokey", exptime=10),
        b"mg nokey T10 v f c\r\n",
        b"EN\r\n",
        H("8123000500000001000000050000000000000000000000006e6f6b6579"),
    ),
    (
        "gatq",
        R(b.OP_GATQ, b"c", exptime=10),
        b"mg c T10 v f c\r\n",
        b"VA 2 f0 c14\r\n42\r\n",
        H("811e0000040000000000000600000000000000000000000e000000003432"),
    ),
    (
        "set key with a space: base64",
        R(b.OP_SET, b"a b", value=b"sp", flags=3),
        b"ms YSBi 2 F3 c b\r\nsp\r\n",
        b"HD c15\r\n",
        H("81010000000000000000000000000000000000000000000f"),
    ),
    (
        "getk key with a space",
        R(b.OP_GETK, b"a b"),
        b"mg YSBi v f c b\r\n",
        b"VA 2 f3 c15\r\nsp\r\n",
        H("810c0003040000000000000900000000000000000000000f000000036120627370"),
    ),
    (
        "getk control bytes miss",
        R(b.OP_GETK, b"\x01\x02"),
        b"mg AQI= v f c b\r\n",
        b"EN\r\n",
        H("810c000200000001000000020000000000000000000000000102"),
    ),
    (
        "set utf-8 key stays raw",
        R(b.OP_SET, b"u\xc3\xa9", value=b"utf8"),
        b"ms u\xc3\xa9 4 c\r\nutf8\r\n",
        b"HD c16\r\n",
        H("810100000000000000000000000000000000000000000010"),
    ),
    (
        "getk utf-8 key",
        R(b.OP_GETK, b"u\xc3\xa9"),
        b"mg u\xc3\xa9 v f c\r\n",
        b"VA 4 f0 c16\r\nutf8\r\n",
        H("810c0003040000000000000b0000000000000000000000100000000075c3a975746638"),
    ),
    (
        "noop",
        R(b.OP_NOOP, b"", opaque=77),
        b"mn\r\n",
        b"MN\r\n",
        H("810a000000000000000000000000004d0000000000000000"),
    ),
    (
        "version",
        R(b.OP_VERSION, b"", opaque=8),
        b"version\r\n",
        b"VERSION 1.6.18\r\n",
        H("810b00000000000000000006000000080000000000000000312e362e3138"),
    ),
    (
        "flush",
        R(b.OP_FLUSH),
        b"flush_all\r\n",
        b"OK\r\n",
        H("810800000000000000000000000000000000000000000000"),
    ),
    ("flushq: silence", R(b.OP_FLUSHQ), b"flush_all\r\n", b"OK\r\n", H("")),
    (
        "get after flush",
        R(b.OP_GET, b"c"),
        b"mg c v f c\r\n",
        b"EN\r\n",
        H("8100000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    (
        "stat unknown",
        R(b.OP_STAT, b"nope"),
        b"stats nope\r\n",
        b"ERROR\r\n",
        H("8110000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    (
        "stat detail on",
        R(b.OP_STAT, b"detail on"),
        b"stats detail on\r\n",
        b"OK\r\n",
        H("811000000000000000000000000000000000000000000000"),
    ),
    (
        "stat detail bad",
        R(b.OP_STAT, b"detail nope"),
        b"stats detail nope\r\n",
        b"CLIENT_ERROR usage: stats detail on|off|dump\r\n",
        H("8110000000000001000000090000000000000000000000004e6f7420666f756e64"),
    ),
    (
        "stat detail off",
        R(b.OP_STAT, b"detail off"),
        b"stats detail off\r\n",
        b"OK\r\n",
        H("811000000000000000000000000000000000000000000000"),
    ),
    (
        "stat reset",
        R(b.OP_STAT, b"reset"),
        b"stats reset\r\n",
        b"RESET\r\n",
        H("811000000000000000000000000000000000000000000000"),
    ),
]


@pytest.mark.parametrize(
    ("req", "text", "reply", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_translation(req: BinaryRequest, text: bytes, reply: bytes, expected: bytes) -> None:
    assert to_text(req) == text
    assert to_binary(req, reply) == expected


def test_case_ids_are_unique() -> None:
    assert len({c[0] for c in CASES}) == len(CASES)


def test_every_opcode_the_reader_emits_is_translated() -> None:
    assert set(TABLE) == {op for op, rule in b.RULES.items() if rule[1] is not None}


def test_quit_is_answered_on_the_binary_side() -> None:
    assert to_text(R(b.OP_QUIT, opaque=3)) == b""
    assert to_binary(R(b.OP_QUIT, opaque=3), b"") == H(
        "810700000000000000000000000000030000000000000000"  # memcached 1.6.18, then it closes
    )
    assert to_text(R(b.OP_QUITQ)) == b""
    assert to_binary(R(b.OP_QUITQ), b"") == b""
    assert {b.OP_QUIT, b.OP_QUITQ} == b.CLOSING


def test_stats_become_one_packet_per_line_then_an_empty_one() -> None:
    req = R(b.OP_STAT, opaque=4)
    assert to_text(req) == b"stats\r\n"
    got = to_binary(
        req, b"STAT pid 15691\r\nSTAT version 1.6.18\r\nSTAT rusage_user 0.01\r\nEND\r\n"
    )
    # memcached 1.6.18's first two packets and its terminator for the binary stat
    assert got == (
        H("8110000300000000000000080000000400000000000000007069643135363931")
        + encode_response(b.OP_STAT, 0, 4, 0, b"", b"version", b"1.6.18")
        + encode_response(b.OP_STAT, 0, 4, 0, b"", b"rusage_user", b"0.01")
        + H("811000000000000000000000000000040000000000000000")
    )
    assert to_text(R(b.OP_STAT, b"settings")) == b"stats settings\r\n"


def test_stats_detail_dump_is_one_packet() -> None:
    req = R(b.OP_STAT, b"detail dump", opaque=1)
    dump = b"PREFIX foo get 1 hit 0 set 1 del 0\r\nEND\r\n"
    assert to_binary(req, dump) == encode_response(
        b.OP_STAT, 0, 1, 0, b"", b"detailed", dump
    ) + encode_response(b.OP_STAT, 0, 1)


def test_stat_sub_command_the_text_protocol_cannot_carry() -> None:
    req = R(b.OP_STAT, b"items\r\nflush_all", opaque=2)
    assert to_text(req) == b""
    assert to_binary(req, b"") == b.error_response(b.OP_STAT, b.STATUS_KEY_ENOENT, 2)


@pytest.mark.parametrize(
    ("line", "status", "body"),
    [
        (b"SERVER_ERROR object too large for cache", b.STATUS_E2BIG, b"Too large."),
        (b"SERVER_ERROR out of memory storing object", b.STATUS_ENOMEM, b"Out of memory"),
        (b"SERVER_ERROR Out of memory allocating item", b.STATUS_ENOMEM, b"Out of memory"),
        (b"SERVER_ERROR backend failure", b.STATUS_TEMPORARY_FAILURE, b"backend failure"),
        (b"SERVER_ERROR backend timeout", b.STATUS_TEMPORARY_FAILURE, b"backend timeout"),
        (b"CLIENT_ERROR bad command line format", b.STATUS_EINVAL, b"Invalid arguments"),
        (b"ERROR", b.STATUS_UNKNOWN_COMMAND, b"Unknown command"),
    ],
)
def test_error_lines(line: bytes, status: int, body: bytes) -> None:
    for req in (R(b.OP_GET, b"k", opaque=9), R(b.OP_SETQ, b"k", b"v", opaque=9)):
        assert to_binary(req, line + b"\r\n") == encode_response(
            req.opcode, status, 9, 0, b"", b"", body
        )
    # a quiet get drops only misses: errors reach the client
    assert to_binary(R(b.OP_GETQ, b"k"), line + b"\r\n") != b""


def test_flush_all_disabled_is_an_auth_error() -> None:
    # memcached -X answers the text flush_all so, and the binary flush with "Auth failure."
    reply = b"CLIENT_ERROR flush_all not allowed\r\n"
    assert to_binary(R(b.OP_FLUSH), reply) == b.error_response(b.OP_FLUSH, b.STATUS_AUTH_ERROR)
    assert to_binary(R(b.OP_FLUSHQ), reply) == b.error_response(b.OP_FLUSHQ, b.STATUS_AUTH_ERROR)


def test_flush_with_exptime() -> None:
    assert to_text(R(b.OP_FLUSH, exptime=60)) == b"flush_all 60\r\n"
    assert to_binary(R(b.OP_FLUSHQ, exptime=60), b"OK\r\n") == b""


def test_exptimes_above_int32_are_clamped() -> None:
    """memcached reads T and N as signed 32-bit: T4294967295 would expire the item at once."""
    assert to_text(R(b.OP_TOUCH, b"k", exptime=2**32 - 1)) == b"mg k T2147483647 f c\r\n"
    assert to_text(R(b.OP_SET, b"k", b"v", exptime=2**31)) == b"ms k 1 T2147483647 c\r\nv\r\n"
    assert to_text(R(b.OP_INCREMENT, b"k", exptime=2**32 - 2, delta=1)) == (
        b"ma k D1 N2147483647 v c\r\n"
    )


def test_every_mode_and_flag_of_ms() -> None:
    req = R(b.OP_REPLACEQ, b"k", b"v", cas=7, flags=1, exptime=2)
    assert to_text(req) == b"ms k 1 F1 T2 C7 c\r\nv\r\n"
    assert to_text(R(b.OP_PREPEND, b"k", b"v", cas=7)) == b"ms k 1 MP C7 c\r\nv\r\n"
    assert to_text(R(b.OP_APPENDQ, b"a b", b"")) == b"ms YSBi 0 MA c b\r\n\r\n"
    assert to_text(R(b.OP_DELETE, b"a b", cas=3)) == b"md YSBi C3 b\r\n"
    assert to_text(R(b.OP_DECREMENTQ, b"\n", cas=3, delta=2, exptime=NO_CREATE)) == (
        b"ma Cg== MD D2 C3 v c b\r\n"
    )


def test_keys_the_text_protocol_cannot_carry() -> None:
    assert key_token(b"plain:key/\xff") == (b"plain:key/\xff", b"")
    for bad in (b" ", b"\r", b"\n", b"\0", b"\t", b"\x7f", b"\x1f"):
        assert key_token(b"k" + bad) == (base64.b64encode(b"k" + bad), b" b")
    assert key_token(b" " * 186)[1] == b" b"  # 248 bytes of base64
    assert key_token(b" " * 187) == (b"", b"")  # 252: over the text limit of 250
    req = R(b.OP_GETK, b" " * 187, opaque=1)
    assert to_text(req) == b""
    assert to_binary(req, b"") == b.error_response(b.OP_GETK, b.STATUS_EINVAL, 1)
    assert to_binary(R(b.OP_GETKQ, b" " * 187), b"") == b.error_response(
        b.OP_GETKQ, b.STATUS_EINVAL
    )


@given(st.binary(max_size=300))
def test_base64_is_the_standard_one(data: bytes) -> None:
    assert _b64encode(data) == base64.b64encode(data)


def test_a_quiet_batch_ends_at_noop() -> None:
    """Replies keep request order; quiet ones are dropped; the noop reply comes last."""
    batch = [
        (R(b.OP_SETQ, b"a", b"1", opaque=1), b"HD c1\r\n"),
        (R(b.OP_ADDQ, b"a", b"1", opaque=2), b"NS c0\r\n"),
        (R(b.OP_GETKQ, b"a", opaque=3), b"VA 1 f0 c1\r\n1\r\n"),
        (R(b.OP_GETQ, b"b", opaque=4), b"EN\r\n"),
        (R(b.OP_NOOP, opaque=5), b"MN\r\n"),
    ]
    out = b"".join(to_binary(req, reply) for req, reply in batch)
    got = BinaryResponseReader().feed(out)
    assert [(r.opcode, r.status, r.opaque) for r in got] == [
        (b.OP_ADDQ, b.STATUS_KEY_EEXISTS, 2),
        (b.OP_GETKQ, 0, 3),
        (b.OP_NOOP, 0, 5),
    ]


# -- against the real memcached -------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_memcached() -> Iterator[tuple[Client, Client]]:
    """One memcached spoken to in binary, one in text; both fresh, so CAS values match."""
    if not os.path.exists(MEMCACHED):
        pytest.skip("memcached binary not available")
    m1, m2 = Memcached(), Memcached()
    c1, c2 = Client(m1.addr), Client(m2.addr)
    yield c1, c2
    c1.close()
    c2.close()
    m1.stop()
    m2.stop()


def test_memcached_still_agrees(two_memcached: tuple[Client, Client]) -> None:
    binary, text = two_memcached
    for name, req, request, reply, expected in CASES:
        assert binary_exchange(binary, encode_request(req)) == expected, name
        assert text_exchange(text, request) == reply, name
    # stats: the same names, in the same order (the values differ between two processes)
    req = R(b.OP_STAT, b"settings", opaque=6)
    want = BinaryResponseReader().feed(binary_exchange(binary, encode_request(req)))
    got = BinaryResponseReader().feed(to_binary(req, text_exchange(text, to_text(req))))
    assert [(r.opcode, r.opaque, r.key) for r in got] == [(r.opcode, r.opaque, r.key) for r in want]
    assert len(got) > 50 and got[-1].key == b""


#: A quiet batch sent to memcached 1.6.18 in one write: the binary requests, the text replies
#: memcached gave their translations, and its binary reply to the whole batch.
BATCH: list[tuple[BinaryRequest, bytes]] = [
    (R(b.OP_SETQ, b"a", b"1", 1), b"HD c1\r\n"),
    (R(b.OP_ADDQ, b"b", b"2", 2), b"HD c2\r\n"),
    (R(b.OP_REPLACEQ, b"zz", b"3", 3), b"NS c0\r\n"),
    (R(b.OP_DELETEQ, b"zz", opaque=4), b"NF\r\n"),
    (R(b.OP_INCREMENTQ, b"a", opaque=5, delta=1), b"VA 1 c3\r\n2\r\n"),
    (R(b.OP_DECREMENTQ, b"b", opaque=6, delta=1), b"VA 1 c4\r\n1\r\n"),
    (R(b.OP_APPENDQ, b"a", b"x", 7), b"HD c5\r\n"),
    (R(b.OP_PREPENDQ, b"nope", b"x", 8), b"NS c0\r\n"),
    (R(b.OP_GETQ, b"a", opaque=9), b"VA 2 f0 c5\r\n2x\r\n"),
    (R(b.OP_GETKQ, b"b", opaque=10), b"VA 1 f0 c4\r\n1\r\n"),
    (R(b.OP_GETQ, b"nope", opaque=11), b"EN\r\n"),
    (R(b.OP_SETQ, b"a", b"1", 12, cas=777), b"EX c0\r\n"),
    (R(b.OP_NOOP, opaque=13), b"MN\r\n"),
]
BATCH_REPLY = H(
    # replaceq miss, deleteq miss, prependq not stored: answered; the successes: silent
    "8113000000000001000000090000000300000000000000004e6f7420666f756e64"
    "8114000000000001000000090000000400000000000000004e6f7420666f756e64"
    "811a0000000000050000000b0000000800000000000000004e6f742073746f7265642e"
    # getq and getkq hits; the getq miss: silent
    "810900000400000000000006000000090000000000000005000000003278"
    "810d000104000000000000060000000a0000000000000004000000006231"
    # setq with a wrong CAS: answered; then the noop
    "8111000000000002000000140000000c0000000000000000446174612065786973747320666f72206b65792e"
    "810a000000000000000000000000000d0000000000000000"
)


def test_quiet_batch_as_memcached_answers_it() -> None:
    assert b"".join(to_binary(req, reply) for req, reply in BATCH) == BATCH_REPLY


def test_memcached_still_answers_the_batch_so() -> None:
    if not os.path.exists(MEMCACHED):
        pytest.skip("memcached binary not available")
    m1, m2 = Memcached(), Memcached()
    binary, text = Client(m1.addr), Client(m2.addr)
    try:
        binary.send(b"".join(encode_request(req) for req, _ in BATCH))
        assert binary.read_until(BATCH_REPLY[-24:]) == BATCH_REPLY
        for req, reply in BATCH:
            assert text_exchange(text, to_text(req)) == reply
    finally:
        binary.close()
        text.close()
        m1.stop()
        m2.stop()
