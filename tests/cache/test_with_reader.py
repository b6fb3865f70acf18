"""End to end without a proxy: client bytes -> RequestReader -> Cache, against memcached.

Same cases as ``test_differential``, but the requests come from the real protocol reader and
memcached's reply is compared raw: where memcached does not skip a data block after an error,
the reader does not either, so its ``mn`` blocks come back as ``MN`` from the cache too.
"""

from __future__ import annotations

import pytest

from mcpframe.cache import Cache
from mcpframe.protocol.request import ErrorReply
from tests.cache.test_differential import CASES, check_against_memcached
from tests.cache.wire import FakeClock

reader_module = pytest.importorskip("mcpframe.protocol.reader")


def through_reader(cache: Cache, data: bytes, chunk: int | None = None) -> bytes:
    reader = reader_module.RequestReader()
    out = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        for item in reader.feed(piece):
            out.append(item.reply if isinstance(item, ErrorReply) else cache.execute(item))
    return b"".join(out)


@pytest.mark.parametrize("data", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_reader_and_cache_same_as_memcached(data: bytes) -> None:
    check_against_memcached(data, through_reader)


def test_byte_at_a_time_gives_the_same_replies() -> None:
    small = [c for c in CASES if len(c[1]) < 4096]
    for _, data, _ in small:
        whole = through_reader(Cache(clock=FakeClock()), data)
        assert through_reader(Cache(clock=FakeClock()), data, chunk=1) == whole
