"""Parse rates of the protocol readers (not a test).

Run: ``.venv/bin/python -m tests.protocol.bench_reader``.

Best of five runs; 100k pipelined requests fed in fixed-size reads, as a socket would deliver
them. Prints requests per second and the cost of one request."""

from __future__ import annotations

import time
from typing import Any

from mcpframe.protocol.backend import ResponseReader
from mcpframe.protocol.reader import RequestReader

N = 100_000


def rate(
    name: str, data: bytes, chunk: int, expect: int, reader_factory: Any = RequestReader
) -> None:
    best = 0.0
    for _ in range(5):
        reader = reader_factory()
        t0 = time.perf_counter()
        n = 0
        for i in range(0, len(data), chunk):
            n += len(reader.feed(data[i : i + chunk]))
        dt = time.perf_counter() - t0
        assert n == expect, (n, expect)
        best = max(best, n / dt)
    print(f"{name:<44} {best / 1e6:6.2f} M/s  ({1e6 / best:.2f} us each)")


gets = b"".join(b"get key:%04d\r\n" % (i % 10000) for i in range(N))
value = b"v" * 100
sets = b"".join(b"set key:%04d 0 0 100\r\n%s\r\n" % (i % 10000, value) for i in range(N))
mgs = b"".join(b"mg key:%04d v t f\r\n" % (i % 10000) for i in range(N))
hits = b"".join(b"VALUE key:%04d 0 100\r\n%s\r\nEND\r\n" % (i % 10000, value) for i in range(N))
has = b"HD\r\n" * N
for chunk in (16384, 65536):
    rate(f"get key:NNNN, {chunk}-byte reads", gets, chunk, N)
    rate(f"set 100-byte values, {chunk}-byte reads", sets, chunk, N)
    rate(f"mg key:NNNN v t f, {chunk}-byte reads", mgs, chunk, N)
    rate(f"backend VALUE 100B + END, {chunk}-byte reads", hits, chunk, N, ResponseReader)
    rate(f"backend HD, {chunk}-byte reads", has, chunk, N, ResponseReader)
rate("get, whole buffer at once", gets, len(gets), N)
rate("set, whole buffer at once", sets, len(sets), N)
