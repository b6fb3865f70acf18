from __future__ import annotations

import pytest

from tests.cache.wire import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A settable clock for the cache (real memcached processes: ``wire.MemcachedConn``)."""
    return FakeClock()
