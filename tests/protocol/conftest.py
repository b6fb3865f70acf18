from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import MEMCACHED, Memcached


@pytest.fixture(scope="module")
def memcached_for_protocol() -> Iterator[tuple[str, int]]:
    """A real memcached for the protocol module's differential tests (skipped without the
    binary). memcached refuses to run as root without ``-u``."""
    if not os.path.exists(MEMCACHED):
        pytest.skip("memcached binary not available")
    m = Memcached(*(["-u", "root"] if os.geteuid() == 0 else []))
    yield m.addr
    m.stop()
