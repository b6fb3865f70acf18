"""Fixtures for the API v2 tests: mcpframe started through its CLI with a config from
tests/configs/v2/, in front of real memcached servers (routing) or of scripted fake backends
(timing and failures a real memcached cannot produce).

The expected bytes were recorded from memcached 1.6.45's proxy on the same configs and the
same requests. To record again, point MCPFRAME_V2_REFERENCE at that binary: the same tests
then run against it (the suite itself never needs it).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT_ARGS, Mcpframe, Memcached, free_port, wait_port
from tests.route_api.conftest import Mocks, Proxy, stop_all

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "v2"
REFERENCE = os.environ.get("MCPFRAME_V2_REFERENCE")


class Reference:
    """memcached 1.6.45's proxy, for recording expected bytes (see the module docstring)."""

    def __init__(
        self, config: str, env: dict[str, str], *extra: str, binary: str | None = None
    ) -> None:
        """``config``: the ``proxy_config`` value; ``extra``: more arguments (``-l ...``)."""
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary or REFERENCE or "", *ROOT_ARGS, "-U", "0", "-l", "127.0.0.1", "-p",
             str(self.port), "-t", "1", "-o", f"proxy_config={config}", *extra],
            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port, self.proc)

    @property
    def addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


StartProxy = Callable[..., Proxy]


@pytest.fixture
def start_v2(mcpframe_factory: Callable[..., Mcpframe]) -> Iterator[StartProxy]:
    """Start a proxy on ``tests/configs/v2/<name>`` with the environment ``env``."""
    started: list[Proxy] = []
    refs: list[Reference] = []

    def start(name: str, env: dict[str, str]) -> Proxy:
        path = str(CONFIGS / name)
        if REFERENCE:
            ref = Reference(path, env)
            refs.append(ref)
            p = Proxy(ref)  # type: ignore[arg-type]
        else:
            p = Proxy(mcpframe_factory("--config", path, env=env))
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()
    for r in refs:
        r.stop()


@pytest.fixture(scope="module")
def three_memcached() -> Iterator[list[Memcached]]:
    servers = [Memcached() for _ in range(3)]
    yield servers
    stop_all(servers)


@pytest.fixture
def units(start_v2: StartProxy, three_memcached: list[Memcached]) -> Proxy:
    """funcgen.lua in front of three real memcached servers."""
    env = {f"MCP_B{i + 1}": str(m.port) for i, m in enumerate(three_memcached)}
    return start_v2("funcgen.lua", env)


@pytest.fixture
def mocks() -> Iterator[Mocks]:
    m = Mocks(3)
    yield m
    m.close()


@pytest.fixture
def faked(start_v2: StartProxy, mocks: Mocks) -> Proxy:
    """funcgen.lua in front of three fake backends, all connected and validated."""
    proxy = start_v2("funcgen.lua", mocks.env())
    mocks.accept_all()
    return proxy
