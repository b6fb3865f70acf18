"""Fixtures for the route API tests: mcpframe started through its CLI with a config from
tests/configs/route_api/, in front of real memcached servers (forwarding behaviour) or of
scripted fake backends (faults a real memcached cannot produce)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakebackend import FakeBackend, FakeConn
from tests.helpers import Client, Mcpframe, Memcached

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "route_api"


def config(name: str) -> str:
    return str(CONFIGS / name)


class Mocks:
    """Fake backends b1..bN; ``conns[i]`` is the proxy's current connection to backend i."""

    def __init__(self, n: int = 3) -> None:
        self.fakes = [FakeBackend() for _ in range(n)]
        self.conns: list[FakeConn] = []

    def env(self) -> dict[str, str]:
        return {f"MCP_B{i + 1}": str(f.port) for i, f in enumerate(self.fakes)}

    def accept_all(self) -> None:
        """Accept (and validate) the proxy's first connection to each backend."""
        self.conns = [f.accept() for f in self.fakes]

    def reaccept(self, i: int) -> FakeConn:
        """The proxy reconnected to backend ``i`` (after a failure): accept and validate."""
        self.conns[i] = self.fakes[i].accept()
        return self.conns[i]

    def __getitem__(self, i: int) -> FakeConn:
        return self.conns[i]

    def close(self) -> None:
        for f in self.fakes:
            f.close()


class Watcher:
    """A client connection turned into a log stream with ``watch``."""

    def __init__(self, addr: tuple[str, int], *streams: str) -> None:
        self.client = Client(addr)
        self.client.send(b"watch " + " ".join(streams).encode() + b"\r\n")
        assert self.client.readline() == b"OK\r\n"

    def line(self, timeout: float = 3.0) -> str:
        self.client.sock.settimeout(timeout)
        try:
            return self.client.readline().decode()
        finally:
            self.client.sock.settimeout(5.0)

    def expect(self, pattern: str, timeout: float = 3.0) -> re.Match[str]:
        """The next line must match ``pattern`` (a regex searched in the line)."""
        line = self.line(timeout)
        m = re.search(pattern, line)
        assert m is not None, f"{line!r} does not match {pattern!r}"
        return m

    def wait_for(self, pattern: str, timeout: float = 3.0) -> re.Match[str]:
        """Skip lines until one matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no line matching {pattern!r}"
            m = re.search(pattern, self.line(left))
            if m is not None:
                return m

    def quiet(self, wait: float = 0.2) -> bytes:
        """Whatever arrives within ``wait`` seconds (nothing, normally)."""
        return self.client.read_available(wait)

    def close(self) -> None:
        self.client.close()


class Proxy:
    """A started mcpframe and a client connected to it."""

    def __init__(self, proc: Mcpframe) -> None:
        self.proc = proc
        self.addr = proc.addr
        self.client = Client(proc.addr)
        self.extra: list[Client | Watcher] = []

    def connect(self) -> Client:
        c = Client(self.addr)
        self.extra.append(c)
        return c

    def watch(self, *streams: str) -> Watcher:
        w = Watcher(self.addr, *streams)
        self.extra.append(w)
        return w

    def send(self, data: bytes) -> None:
        self.client.send(data)

    def readline(self) -> bytes:
        return self.client.readline()

    def read_until(self, end: bytes) -> bytes:
        return self.client.read_until(end)

    def nothing(self, wait: float = 0.25) -> None:
        """Assert the client received nothing within ``wait`` seconds."""
        got = self.client.read_available(wait)
        assert got == b"", got

    def check_version(self) -> None:
        """memcached's check: a local ``version`` answers, so nothing was left in the pipe."""
        self.client.send(b"version\r\n")
        assert self.client.readline() == b"VERSION 1.6.45\r\n"

    def stats(self, sub: str = "") -> dict[str, str]:
        self.client.send(f"stats {sub}".strip().encode() + b"\r\n")
        out: dict[str, str] = {}
        while True:
            line = self.client.readline().decode().rstrip("\r\n")
            if line == "END":
                return out
            _, k, v = line.split(" ", 2)
            out[k] = v

    def stat_lines(self, sub: str = "") -> list[str]:
        self.client.send(f"stats {sub}".strip().encode() + b"\r\n")
        lines = []
        while True:
            line = self.client.readline().decode().rstrip("\r\n")
            if line == "END":
                return lines
            lines.append(line)

    def close(self) -> None:
        for c in self.extra:
            c.close()
        self.client.close()


StartProxy = Callable[..., Proxy]


@pytest.fixture
def start_proxy(mcpframe_factory: Callable[..., Mcpframe]) -> Iterator[StartProxy]:
    """Start mcpframe with ``--config <route_api config>`` (and more CLI args); the process
    is stopped after the test."""
    started: list[Proxy] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> Proxy:
        proc = mcpframe_factory("--config", config(name), *args, env=env)
        p = Proxy(proc)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


@pytest.fixture
def mocks() -> Iterator[Mocks]:
    m = Mocks(3)
    yield m
    m.close()


@pytest.fixture
def units(start_proxy: StartProxy, mocks: Mocks) -> Proxy:
    """units.lua in front of three fake backends, all connected and validated."""
    proxy = start_proxy("units.lua", env=mocks.env())
    mocks.accept_all()
    return proxy


def stop_all(servers: list[Memcached]) -> None:
    """Stop memcached servers together (each takes most of a second once it has served a
    connection)."""
    for m in servers:
        if m.proc.poll() is None:
            m.proc.terminate()
    for m in servers:
        m.stop()


@pytest.fixture(scope="module")
def module_memcached() -> Iterator[Memcached]:
    """One real memcached shared by a module's tests."""
    m = Memcached()
    yield m
    m.stop()


def refused_port() -> int:
    """A loopback port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
