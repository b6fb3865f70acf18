"""Backend connections: one persistent, pipelined TCP connection per backend.

Rules (spec section 7):
- A connection is validated with ``version`` before any request is written; requests routed
  to it meanwhile wait in order.
- Requests are written in queue order (coalesced into one write per loop turn) and replies
  matched FIFO.
- The read timeout measures inactivity while replies are owed; it fails the connection.
- On any failure every queued request completes as failed (``SERVER_ERROR backend failure``
  for its client), the event is logged, the socket is closed and the failure counter goes
  up. Only consecutive failed TCP connects accumulate (a successful connect resets it); past
  the failure limit the backend is marked bad: requests fail at once, without network
  activity, until a retry ``retrytimeout`` seconds later connects again.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from mcpframe.lua.config import BackendSpec
from mcpframe.protocol.backend import ResponseReader
from mcpframe.protocol.commands import RES_VERSION, STATUS_OK
from mcpframe.protocol.response import Response, failure_response
from mcpframe.proxy.events import EventLog

#: The callback gets (handle, mode, response, elapsed microseconds, backend "host:port").
Callback = Callable[[int, int, Response, int, bytes], None]
#: (callback, route handle, reply mode, time queued).
Entry = tuple[Callback, int, int, float]

DOWN, CONNECTING, VALIDATING, READY, BAD, CLOSED = range(6)
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def uri_encode(data: bytes) -> str:
    """memcached's rbuf= encoding: unreserved bytes as is, the rest as %XX (upper-case)."""
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in data)


class BackendStats:
    """Process-wide backend counters shown in ``stats``."""

    __slots__ = ("failed", "marked_bad", "total")

    def __init__(self) -> None:
        self.total = 0
        self.marked_bad = 0
        self.failed = 0


class Backend(asyncio.Protocol):
    """One backend connection object and its request queue."""

    def __init__(
        self,
        spec: BackendSpec,
        events: EventLog,
        stats: BackendStats,
        tcp_keepalive: bool = False,
    ) -> None:
        self.spec = spec
        self.name = f"{spec.host}:{spec.port}".encode()
        self.events = events
        self.stats = stats
        self.keepalive = tcp_keepalive or spec.tcpkeepalive
        self.loop = asyncio.get_running_loop()
        self.state = DOWN
        self.transport: asyncio.Transport | None = None
        self.reader = ResponseReader()
        # Written requests awaiting a reply, oldest first.
        self.pending: deque[Entry] = deque()
        # Requests routed here before the connection was validated.
        self.waiting: list[tuple[Entry, bytes]] = []
        self.outbuf: list[bytes] = []
        self.flush_scheduled = False
        self.failures = 0
        self.last_activity = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.connect_task: asyncio.Task[None] | None = None
        self.retry_handle: asyncio.TimerHandle | None = None
        stats.total += 1

    # -- public ----------------------------------------------------------------------

    def start(self) -> None:
        if self.state == DOWN:
            self._connect_soon()

    def send(
        self,
        data: bytes,
        callback: Callback,
        handle: int,
        mode: int,
    ) -> None:
        """Queue ``data`` (request line + value) and call back with the reply."""
        entry = (callback, handle, mode, time.monotonic())
        state = self.state
        if state == READY:
            if not self.pending:
                self.last_activity = entry[3]
                if self.timer is None:
                    self._arm_timer(self.spec.readtimeout)
            self.pending.append(entry)
            self.outbuf.append(data)
            if not self.flush_scheduled:
                self.flush_scheduled = True
                self.loop.call_soon(self._flush)
        elif state in (BAD, CLOSED):
            self.loop.call_soon(callback, handle, mode, failure_response(), 0, self.name)
        else:
            self.waiting.append((entry, data))
            if state == DOWN:
                self._connect_soon()

    def close(self) -> None:
        """Stop for good (the config that used it is gone); queued requests fail."""
        self._fail_all()
        self.state = CLOSED
        self._cancel_timers()
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
        self.stats.total -= 1

    @property
    def depth(self) -> int:
        return len(self.pending) + len(self.waiting)

    # -- connecting ------------------------------------------------------------------

    def _connect_soon(self) -> None:
        self.state = CONNECTING
        self.connect_task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        spec = self.spec
        try:
            await asyncio.wait_for(
                self.loop.create_connection(lambda: self, spec.host, int(spec.port)),
                timeout=spec.connecttimeout or None,
            )
        except TimeoutError:
            self._failed("conntimeout", connecting=True)
        except (OSError, ValueError):
            self._failed("connecting", connecting=True)

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they have its methods.
        transport: asyncio.Transport = base  # type: ignore[assignment]
        if self.state == CLOSED:
            transport.abort()
            return
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.keepalive:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # A successful TCP connect clears the failure count, even before validation.
        self.failures = 0
        self.state = VALIDATING
        self.reader = ResponseReader()
        transport.write(b"version\r\n")
        self.last_activity = time.monotonic()
        self._arm_timer(self.spec.readtimeout)

    def _validated(self) -> None:
        self.state = READY
        waiting, self.waiting = self.waiting, []
        if waiting:
            now = time.monotonic()
            self.last_activity = now
            for entry, data in waiting:
                self.pending.append(entry)
                self.outbuf.append(data)
            self._flush()
        else:
            self._cancel_timer()

    # -- traffic ---------------------------------------------------------------------

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.outbuf and self.transport is not None:
            out = self.outbuf
            self.outbuf = []
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            if self.timer is None:
                self._arm_timer(self.spec.readtimeout)

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        reader = self.reader
        responses = reader.feed(data)
        if self.state == VALIDATING:
            if responses:
                first = responses[0]
                if first.type == RES_VERSION and first.status == STATUS_OK:
                    # Bytes after a valid VERSION line in the same read are dropped.
                    self.reader = ResponseReader()
                    self._validated()
                    return
                reason = "readvalidate" if first.status != STATUS_OK else "badvalidate"
                self._failed(reason, rbuf=first.raw)
            elif reader.failure is not None:
                self._failed("readvalidate")
            return
        pending = self.pending
        now = self.last_activity
        for res in responses:
            if not pending:
                self._failed("closedsock" if res is responses[0] else "trailingdata")
                return
            callback, handle, mode, t0 = pending.popleft()
            callback(handle, mode, res, int((now - t0) * 1_000_000), self.name)
        if reader.failure is not None:
            self._failed(reader.failure)
        elif not pending:
            if reader.buffered():
                self._failed("trailingdata")
            else:
                self._cancel_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None or self.state in (CLOSED, DOWN, BAD):
            return
        self.transport = None
        self._failed("disconnected" if exc is None else "reading")

    def eof_received(self) -> bool | None:
        return None

    # -- timers ----------------------------------------------------------------------

    def _arm_timer(self, delay: float) -> None:
        self._cancel_timer()
        if delay > 0:
            self.timer = self.loop.call_later(delay, self._check_timeout)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check_timeout(self) -> None:
        self.timer = None
        if self.state != VALIDATING and not self.pending:
            return
        idle = time.monotonic() - self.last_activity
        limit = self.spec.readtimeout
        if idle >= limit * 0.999:
            self._failed("readvalidate" if self.state == VALIDATING else "timeout")
        else:
            self._arm_timer(limit - idle)

    def _cancel_timers(self) -> None:
        self._cancel_timer()
        if self.retry_handle is not None:
            self.retry_handle.cancel()
            self.retry_handle = None

    # -- failures --------------------------------------------------------------------

    def _fail_all(self) -> None:
        pending, self.pending = self.pending, deque()
        waiting, self.waiting = self.waiting, []
        self.outbuf = []
        fail = failure_response()
        name = self.name
        for callback, handle, mode, _ in pending:
            callback(handle, mode, fail, 0, name)
        for (callback, handle, mode, _), _data in waiting:
            callback(handle, mode, fail, 0, name)

    def _failed(self, reason: str, connecting: bool = False, rbuf: bytes | None = None) -> None:
        if self.state == CLOSED:
            return
        was_bad = self.state == BAD
        depth = self.depth
        buffered = rbuf if rbuf is not None else self.reader.rbuf()
        transport, self.transport = self.transport, None
        self.state = DOWN
        self._cancel_timer()
        if transport is not None:
            transport.abort()
        if not (was_bad and connecting):
            self.events.emit(
                "proxy_backend",
                error=reason,
                name=self.spec.host,
                port=self.spec.port,
                depth=depth,
                rbuf=uri_encode(buffered[:100]),
            )
        self.failures += 1
        if self.failures > self.spec.failurelimit:
            if not was_bad:
                self.stats.marked_bad += 1
                self.events.emit(
                    "proxy_backend",
                    error="markedbad",
                    name=self.spec.host,
                    port=self.spec.port,
                    depth=0,
                    rbuf="",
                )
            self.state = BAD
            self._fail_all()
            self.retry_handle = self.loop.call_later(self.spec.retrytimeout, self._retry)
        else:
            self.stats.failed += 1
            self._fail_all()
            if self.state == DOWN:
                self._connect_soon()

    def _retry(self) -> None:
        self.retry_handle = None
        if self.state == BAD:
            self._connect_soon_from_bad()

    def _connect_soon_from_bad(self) -> None:
        # Stay "bad" for callers until the TCP connect succeeds (connection_made clears it).
        self.connect_task = self.loop.create_task(self._connect_bad())

    async def _connect_bad(self) -> None:
        spec = self.spec
        try:
            await asyncio.wait_for(
                self.loop.create_connection(lambda: self, spec.host, int(spec.port)),
                timeout=spec.connecttimeout or None,
            )
        except (TimeoutError, OSError, ValueError):
            if self.state == BAD:
                self.retry_handle = self.loop.call_later(spec.retrytimeout, self._retry)


def backend_key(spec: BackendSpec, beprefix: str = "") -> Any:
    """The connection cache key (spec 1.7): equal keys share one connection."""
    return (beprefix, spec)
