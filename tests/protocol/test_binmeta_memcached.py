"""Differential: random binary requests sent to one memcached in binary, and translated to
text for a second memcached whose replies are translated back, give the same bytes (CAS
values included: both start empty and see the same mutations)."""

from __future__ import annotations

import os
import random

import pytest

from mcpframe.protocol import binary as b
from mcpframe.protocol.binary import BinaryRequest, BinaryResponseReader, encode_request
from mcpframe.protocol.binmeta import to_binary, to_text
from tests.helpers import MEMCACHED, Client, Memcached
from tests.protocol.binary_helpers import binary_exchange, text_exchange

KEYS = [b"a", b"b", b"n", b"a b", b"\x00\x01", b"k" * 250, b"\xff", b"\r\n"]
VALUES = [b"", b"0", b"1", b"42", b"18446744073709551615", b"abc", b" 7", b"x" * 1000]
EXPTIMES = [0, 0, 1000, 2**32 - 1]
CAS = [0, 0, 0, 1, 2, 3, 5, 8, 99999]


def random_request(rng: random.Random) -> BinaryRequest:
    key, opaque, cas = rng.choice(KEYS), rng.randrange(2**32), rng.choice(CAS)
    kind = rng.choice(["get", "store", "concat", "arith", "touch", "delete", "bare", "flush"])
    if kind == "get":
        return BinaryRequest(
            rng.choice([b.OP_GET, b.OP_GETQ, b.OP_GETK, b.OP_GETKQ]), key, b"", opaque
        )
    if kind == "store":
        op = rng.choice([b.OP_SET, b.OP_ADD, b.OP_REPLACE, b.OP_SETQ, b.OP_ADDQ, b.OP_REPLACEQ])
        flags = rng.choice([0, 1, 2**32 - 1])
        return BinaryRequest(op, key, rng.choice(VALUES), opaque, cas, flags, rng.choice(EXPTIMES))
    if kind == "concat":
        op = rng.choice([b.OP_APPEND, b.OP_PREPEND, b.OP_APPENDQ, b.OP_PREPENDQ])
        return BinaryRequest(op, key, rng.choice(VALUES), opaque, cas)
    if kind == "arith":
        op = rng.choice([b.OP_INCREMENT, b.OP_DECREMENT, b.OP_INCREMENTQ, b.OP_DECREMENTQ])
        delta = rng.choice([0, 1, 5, 2**64 - 1])
        initial = rng.choice([0, 7, 2**64 - 1])
        exptime = rng.choice([0, 100, b.NO_CREATE])
        return BinaryRequest(op, key, b"", opaque, cas, 0, exptime, delta, initial)
    if kind == "touch":
        op = rng.choice([b.OP_TOUCH, b.OP_GAT, b.OP_GATQ, b.OP_GATK, b.OP_GATKQ])
        return BinaryRequest(op, key, b"", opaque, 0, 0, rng.choice(EXPTIMES))
    if kind == "delete":
        return BinaryRequest(rng.choice([b.OP_DELETE, b.OP_DELETEQ]), key, b"", opaque, cas)
    if kind == "bare":
        return BinaryRequest(rng.choice([b.OP_NOOP, b.OP_VERSION]), b"", b"", opaque)
    return BinaryRequest(rng.choice([b.OP_FLUSH, b.OP_FLUSHQ]), b"", b"", opaque)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_requests_same_bytes_as_memcached(seed: int) -> None:
    if not os.path.exists(MEMCACHED):
        pytest.skip("memcached binary not available")
    rng = random.Random(seed)
    m1, m2 = Memcached(), Memcached()
    binary, text = Client(m1.addr), Client(m2.addr)
    try:
        for i in range(600):
            req = random_request(rng)
            expected = binary_exchange(binary, encode_request(req))
            request = to_text(req)
            got = to_binary(req, text_exchange(text, request) if request else b"")
            assert got == expected, (
                i,
                req,
                request,
                BinaryResponseReader().feed(expected),
                BinaryResponseReader().feed(got),
            )
    finally:
        binary.close()
        text.close()
        m1.stop()
        m2.stop()
