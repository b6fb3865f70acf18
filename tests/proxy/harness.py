"""An in-process proxy for the socket-free unit tests of the proxy layer.

The fakes here exist because these are unit tests: no socket, no process, no memcached. The
proxy itself is the real one (a Lua config loaded as ``serve`` loads it, the server, the
router, client connections, ``Backend`` objects), but every transport is a fake that records
what is written and whether reading is paused, and every backend connection is made through
``Backend.open_transport`` (the seam for exactly this), so that a test reads what the proxy
queued on each backend and answers it itself: in any order across backends, whole or split
into pieces, or not at all, or with a failure. The event loop turns only when the test says
(``Proxy.turn``), so a test states exactly what happens between two turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcpframe.events import STREAMS, EventLog
from mcpframe.proxy.app import build_server
from mcpframe.proxy.backend import Backend
from mcpframe.proxy.client import ClientConnection
from mcpframe.proxy.router import Router
from mcpframe.proxy.server import ServerOptions
from mcpframe.registry import build_registry


class FakeTransport:
    """asyncio's ``Transport`` interface: keeps what is written, counts pauses."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.reading = True
        self.pauses = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.out.append(bytes(data))

    def take(self) -> bytes:
        """What was written since the last call."""
        data = b"".join(self.out)
        self.out.clear()
        return data

    def pause_reading(self) -> None:
        self.reading = False
        self.pauses += 1

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class FakeBackend:
    """One backend as memcached sees it: the bytes the proxy wrote on the current
    connection, and replies fed back. A reconnect makes a new connection (``connections``)."""

    def __init__(self) -> None:
        self.backend: Backend | None = None
        self.transport = FakeTransport()
        self.connections = 0

    def connect(self, backend: Backend) -> FakeTransport:
        self.backend = backend
        self.transport = FakeTransport()
        self.connections += 1
        return self.transport

    def received(self) -> bytes:
        return self.transport.take()

    def reply(self, *pieces: bytes) -> None:
        """Answer with ``pieces``, each one read of the socket."""
        assert self.backend is not None and self.backend.link is not None
        for piece in pieces:
            self.backend.link.data_received(piece)

    def disconnect(self) -> None:
        assert self.backend is not None and self.backend.link is not None
        self.backend.link.connection_lost(None)

    def validate(self) -> None:
        assert self.received() == b"version\r\n"
        self.reply(b"VERSION 1.6.20\r\n")


class FakeClient:
    """A client connection whose socket is a FakeTransport."""

    def __init__(self, conn: ClientConnection, transport: FakeTransport) -> None:
        self.conn = conn
        self.transport = transport

    def send(self, data: bytes) -> None:
        self.conn.data_received(data)

    def received(self) -> bytes:
        return self.transport.take()


class Recorder:
    """A logger sink keeping every event."""

    def __init__(self) -> None:
        self.events: list[Mapping[str, object]] = []

    def emit(self, event: Mapping[str, object]) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


class Proxy:
    """The proxy for the config at ``path``, its backends validated and idle.
    ``backends[label]``: the fake of each ``mcp.backend`` label."""

    def __init__(self, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.backends: dict[str, FakeBackend] = {}
        Backend.open_transport = self._open
        self.log = Recorder()
        events = EventLog([(self.log, STREAMS)])
        self.server = build_server(ServerOptions(listens=[]), path, build_registry(), events)
        self.loop.run_until_complete(self.server.start())
        self.turn()
        for fake in self.backends.values():
            fake.validate()
        self.turn()

    def _open(self, backend: Backend) -> FakeTransport:
        return self.backends.setdefault(backend.spec.label, FakeBackend()).connect(backend)

    @property
    def router(self) -> Router:
        assert self.server.router is not None
        return self.server.router

    def turn(self, times: int = 10) -> None:
        """Let the event loop run what is ready, and what that makes ready, a few times."""
        for _ in range(times):
            self.loop.run_until_complete(asyncio.sleep(0))

    def client(self, tag: str | None = None) -> FakeClient:
        async def connect() -> FakeClient:
            conn = ClientConnection(self.server, tag)
            transport = FakeTransport()
            conn.connection_made(transport)  # type: ignore[arg-type]
            return FakeClient(conn, transport)

        return self.loop.run_until_complete(connect())

    def close(self) -> None:
        Backend.open_transport = None
        self.loop.close()
