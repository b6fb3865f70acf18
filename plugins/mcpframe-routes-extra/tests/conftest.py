from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import Process, mcpframe_routelib, memcached


@pytest.fixture
def backends() -> Iterator[Callable[[int], list[int]]]:
    """``backends(n)`` starts n memcached servers and returns their ports."""
    started: list[Process] = []

    def start(count: int) -> list[int]:
        procs = [memcached() for _ in range(count)]
        started.extend(procs)
        return [p.port for p in procs]

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Callable[[str], int]]:
    """``proxy(config_text)`` serves a route-library config; returns the port."""
    started: list[Process] = []

    def start(config_text: str) -> int:
        proc = mcpframe_routelib(config_text, tmp_path)
        started.append(proc)
        return proc.port

    yield start
    for proc in started:
        proc.stop()
