from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.helpers import Mcpframe, Memcached


@pytest.fixture
def memcached_server() -> Iterator[Memcached]:
    """One real memcached on a free loopback port, stopped after the test."""
    m = Memcached()
    yield m
    m.stop()


@pytest.fixture
def memcached_factory() -> Iterator[Callable[..., Memcached]]:
    """Start as many real memcached processes as a test needs; all stopped after it."""
    started: list[Memcached] = []

    def start(*args: str) -> Memcached:
        m = Memcached(*args)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


@pytest.fixture
def mcpframe_factory() -> Iterator[Callable[..., Mcpframe]]:
    """Start mcpframe through its CLI (`python -m mcpframe serve ...`); stopped after the test."""
    started: list[Mcpframe] = []

    def start(*args: str, **kw: object) -> Mcpframe:
        p = Mcpframe(*args, **kw)  # type: ignore[arg-type]
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
