"""Fixtures for the route library tests: mcpframe started through its CLI with
``serve --routelib tests/configs/routelib/<name>``, in front of real memcached servers
(routing) or of scripted fake backends (failover, timing, misses).

The expected bytes were recorded from memcached 1.6.45's proxy started with
``-o proxy_config=routelib,proxy_arg=<the same file>`` on the same requests. To record again,
point MCPFRAME_ROUTELIB_REFERENCE at that binary: the same tests then run against it (the
suite itself never needs it); tests of the places where mcpframe fixes a defect of 1.6.45's
library are marked ``fixed`` and skipped there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import Mcpframe, Memcached
from tests.route_api.conftest import Mocks, Proxy
from tests.route_api.conftest import mocks as mocks  # (fixtures shared with those tests)
from tests.v2.conftest import Reference
from tests.v2.conftest import three_memcached as three_memcached

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "routelib"
REFERENCE = os.environ.get("MCPFRAME_ROUTELIB_REFERENCE")
#: Developer check: run mcpframe on memcached's own library file (``--config STOCK
#: --start-arg FILE``) instead of its own (docs/routelib.md, "memcached's file on mcpframe").
STOCK = os.environ.get("MCPFRAME_ROUTELIB_STOCK")


def config(name: str) -> str:
    return str(CONFIGS / name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if REFERENCE or STOCK:
        skip = pytest.mark.skip(reason="mcpframe fixes 1.6.45's library here")
        for item in items:
            if item.get_closest_marker("fixed") is not None:
                item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fixed: mcpframe differs from 1.6.45 on purpose")


StartRoutelib = Callable[..., Proxy]


@pytest.fixture
def start_routelib(mcpframe_factory: Callable[..., Mcpframe]) -> Iterator[StartRoutelib]:
    """Start a proxy on ``tests/configs/routelib/<name>`` with the environment ``env``, also
    listening on the ports of ``tags`` (tag name -> port) for those listener tags; ``extra``:
    more ``serve`` arguments (mcpframe only)."""
    started: list[Proxy] = []
    refs: list[Reference] = []

    def start(
        name: str, env: dict[str, str], tags: dict[str, int] | None = None, *extra: str
    ) -> Proxy:
        tags = tags or {}
        if REFERENCE:
            listens = [f"-ltag_{tag}_:127.0.0.1:{port}" for tag, port in tags.items()]
            ref = Reference(f"routelib,proxy_arg={config(name)}", env, *listens, binary=REFERENCE)
            refs.append(ref)
            p = Proxy(ref)  # type: ignore[arg-type]
        else:
            listens = [
                a for tag, port in tags.items() for a in ("--listen", f"127.0.0.1:{port}:{tag}")
            ]
            lib = ["--config", STOCK, "--start-arg"] if STOCK else ["--routelib"]
            p = Proxy(mcpframe_factory(*lib, config(name), *listens, *extra, env=env))
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()
    for r in refs:
        r.stop()


def backends_env(servers: list[Memcached]) -> dict[str, str]:
    return {f"MCP_B{i + 1}": str(m.port) for i, m in enumerate(servers)}


@pytest.fixture
def faults(start_routelib: StartRoutelib, mocks: Mocks) -> Proxy:
    """faults.lua in front of three fake backends, all connected and validated."""
    proxy = start_routelib("faults.lua", mocks.env())
    mocks.accept_all()
    return proxy
