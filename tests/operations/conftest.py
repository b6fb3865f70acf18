from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from tests.helpers import Client


@pytest.fixture
def connect() -> Iterator[Callable[[tuple[str, int]], Client]]:
    """Open raw clients; every one is closed after the test."""
    opened: list[Client] = []

    def make(addr: tuple[str, int]) -> Client:
        client = Client(addr)
        opened.append(client)
        return client

    yield make
    for client in opened:
        with contextlib.suppress(OSError):
            client.close()
