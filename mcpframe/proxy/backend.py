"""Backend connections: persistent, pipelined TCP connections (one per backend, or N).

A backend whose host is a path (``mcp.backend("label", "/run/memcached.sock")``) is reached
over a unix socket instead, and one with ``tls = true`` over TLS (``proxy/tls.py``; the
handshake counts against the connect timeout, its failure is failure ``connecting``);
everything else below holds for them too.

Rules (spec section 7, with the fixes later memcached versions made):

- Resolution uses the OS resolver, IPv4 first, IPv6 only when IPv4 finds nothing, and only
  the first address. A name that does not resolve is failure ``connecting`` (spec 7.1 [R]);
  resolution counts against the connect timeout and happens again on every reconnect.
- A connection is validated with ``version`` before any request is written; requests routed
  to it meanwhile wait in order.
- Requests are written in queue order (coalesced into one write per loop turn) and replies
  matched FIFO. Every callback runs from the event loop, never from inside :meth:`send`.
- The read timeout measures inactivity while replies are owed (or while ``version`` is owed);
  it fails the connection.
- On any failure every queued request completes as failed (``SERVER_ERROR backend failure``
  for its client), the event is logged (unless the backend is already bad), the socket is
  closed and the failure counter goes up. Past the failure limit the backend is marked bad:
  requests fail at once, without network activity, until a retry ``retrytimeout`` seconds
  later connects **and validates** again.
- Deviation from 1.6.20, taken from later memcached versions: the failure counter is reset
  and the bad mark cleared only when a connection passes the ``version`` check, not as soon
  as the TCP connect succeeds. In 1.6.20 a backend that accepts connections but never
  validates (a stopped process whose kernel still accepts, a port forwarder with a dead
  target, a server that closes at once) is never marked bad and costs every request routed
  to it a full read timeout, forever; here it is marked bad after ``failurelimit + 1``
  attempts and then fails fast until a retry validates. While a bad backend is being retried
  it stays bad, so requests never wait behind the probe.

memcached 1.6.45's backend options (spec v2 8.3-8.7):

- ``connections = N``: the backend object (the first connection) holds N - 1 more
  connections of its own (``siblings``), each with its own queue, failures and bad mark. Each
  batch of requests (those routed to the backend in one loop turn) goes to one of them: the
  first that is not bad and has nothing outstanding, else the one with the fewest requests
  outstanding (the first when all are bad), so under a light load only the first connection
  is used, as in 1.6.45. ``proxy_backend_total`` counts the backend once; ``stats proxybe``
  counts bad connections.

- ``down``: the backend never connects; every request fails at once. It is not counted as
  marked bad and logs nothing.
- ``depthlimit``: a batch of requests (those routed to the backend before its next flush)
  that finds more than ``depthlimit`` requests outstanding fails whole, at once, and counts
  in ``proxy_request_failed_depth``. A batch admitted at or below the limit is admitted whole.
- ``flaptime``: a ``timeout``, ``disconnected``, ``writing`` or ``reading`` failure within
  ``flaptime`` seconds of the previous one (or of the connection being made) is a flap;
  more flaps than ``failurelimit`` mark the backend bad for ``retrytimeout * ramp ** flaps``
  seconds (truncated, at most ``flapbackoffmax``), logged as ``markedbadflap``. The flap
  count survives a successful retry.

Each TCP connection has its own :class:`_Link` protocol object, so events of a connection
already given up (a late ``connection_lost``, a read that raced a timeout) can never be
mistaken for events of its replacement.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from time import monotonic
from typing import Any, ClassVar, Final, cast

from mcpframe.config import BackendSpec
from mcpframe.events import EventLog
from mcpframe.protocol.backend import ResponseReader
from mcpframe.protocol.commands import RES_MULTI_GET, RES_VERSION, STATUS_OK
from mcpframe.protocol.response import Response, failure_response
from mcpframe.proxy.latency import BOUNDS_US, BUCKETS, bucket
from mcpframe.proxy.tls import client_context
from mcpframe.proxy.turn import TURN

#: The callback gets (handle, mode, response, elapsed microseconds, backend "host:port"); the
#: handle is what the request was sent with: an int, or a :class:`Ticket`.
Callback = Callable[[Any, int, Response, int, bytes], None]
#: (callback, route handle, reply mode, time queued). The handle is typed ``Any`` so that
#: compiled code hands the callback the object the entry holds, rather than unboxing it and
#: boxing a new one for every reply.
Entry = tuple[Callback, Any, int, float]

#: Answered entries kept at the front of a backend's ``pending`` list at most, while some are
#: still owed.
PENDING_COMPACT: Final = 1024

#: Connection states. ``bad`` is a separate flag: a bad backend is in RETRY_WAIT, or in
#: CONNECTING/VALIDATING while a retry probes it.
IDLE: Final = 0
CONNECTING: Final = 1
VALIDATING: Final = 2
READY: Final = 3
RETRY_WAIT: Final = 4
CLOSED: Final = 5
#: The reply mode of a multi-key get the router sends itself (``proxy.multiget``): only
#: such a request may be answered by several VALUE blocks (the router's other modes are 0-3).
MODE_MULTIGET: Final = 4

STATE_NAMES: Final = ("idle", "connecting", "validating", "ready", "retry_wait", "closed")

#: Failure reasons (spec 7.5), in the order memcached lists them; ``markedbad`` is not one.
REASONS: Final = (
    "timeout",
    "disconnected",
    "connecting",
    "conntimeout",
    "readvalidate",
    "badvalidate",
    "writing",
    "reading",
    "parsing",
    "closedsock",
    "unhandledres",
    "outofmemory",
    "missingend",
    "trailingdata",
    "invalidprotocol",
)

#: Upper bounds (microseconds) of the per-backend latency histogram buckets (``latency.py``).
LATENCY_BOUNDS_US: Final = BOUNDS_US

_SAFE: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def log_rbuf(unparsed: bytes) -> bytes:
    """What memcached's ``rbuf=`` shows for a connection's unparsed bytes (first 100).

    memcached copies a reply's header and value out of its read buffer as they arrive, so
    while it waits for the rest of a value its buffer is empty, and once a ``VALUE`` block is
    complete it holds only the start of the ``END`` that should follow (spec 6.8:
    ``VALUE /b/a 0 2\\r\\nhi\\r\\nEN`` then a timeout logs ``rbuf=EN``).
    """
    if unparsed.startswith((b"VA ", b"VALUE ")):
        nl = unparsed.find(b"\n")
        if nl > 0:
            tokens = unparsed[:nl].split()
            index = 1 if tokens[0] == b"VA" else 3
            size = tokens[index] if len(tokens) > index else b""
            if size.isdigit():
                data_end = nl + 1 + int(size) + 2
                return unparsed[data_end : data_end + 100] if len(unparsed) >= data_end else b""
    return unparsed[:100]


def uri_encode(data: bytes) -> str:
    """memcached's rbuf= encoding: unreserved bytes as is, the rest as %XX (upper-case)."""
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in data)


#: The failures that count for flap detection (spec v2 8.5).
FLAP_REASONS: Final = frozenset({"timeout", "disconnected", "writing", "reading"})


class Ticket:
    """A handle that can say its replies will not be read. A request sent with a ticket
    (:meth:`Backend.send`) whose ``dropped`` is set by the time its reply arrives is consumed
    from the stream as every reply is (its bytes, its latency, a failure it brings), but
    its callback is not called. An allfastest's slower children: their replies come after
    the client was answered (the route's task, ``proxy/task.py``, is the ticket of its
    children's requests, and is dropped when the route completes)."""

    __slots__ = ("dropped", "handle")

    def __init__(self) -> None:
        #: the router's handle of the request (what the callback looks the route up by)
        self.handle = 0
        #: nobody reads the replies still owed to this ticket's requests
        self.dropped = False


class BackendStats:
    """Process-wide backend counters shown in ``stats``."""

    __slots__ = ("failed", "failed_depth", "marked_bad", "total")

    def __init__(self) -> None:
        self.total = 0
        self.marked_bad = 0
        self.failed = 0
        #: requests failed by a backend's depth limit (``proxy_request_failed_depth``).
        self.failed_depth = 0


class _Link:
    """The protocol of one TCP connection; forwards its events to the backend while current.
    (asyncio's ``Protocol`` interface, not its class: see ``ClientConnection``.)"""

    __slots__ = ("backend", "transport")

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they have its methods.
        self.transport = transport  # type: ignore[assignment]
        self.backend._link_up(self)

    def data_received(self, data: bytes) -> None:
        self.backend._data(self, data)

    def eof_received(self) -> bool | None:
        return None  # close our side too: connection_lost(None) -> "disconnected"

    def pause_writing(self) -> None:
        pass  # the send queue is bounded by the routes in flight, not by the socket

    def resume_writing(self) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.backend._link_lost(self, exc)


class Backend:
    """One backend connection object and its request queue."""

    #: Feed the latency histogram (set by the metrics endpoint before backends are created).
    record_latency: ClassVar[bool] = False
    #: Where connections come from when set: a function handing a backend a connected
    #: transport (asyncio's ``Transport`` interface) instead of a TCP connection; the rest
    #: (the ``version`` check, pipelining, failures, reconnects) runs as usual. For the
    #: socket-free unit tests of the proxy layer (tests/proxy).
    open_transport: ClassVar[Callable[[Backend], Any] | None] = None

    def __init__(
        self,
        spec: BackendSpec,
        events: EventLog,
        stats: BackendStats,
        tcp_keepalive: bool = False,
        sibling: bool = False,
    ) -> None:
        self.spec = spec
        self.name = spec.name.encode()
        self.events = events
        self.stats = stats
        # spec.tcpkeepalive already holds the global mcp.tcp_keepalive value in force when
        # mcp.backend was called, unless the table form overrode it (spec 2.3 [R]: honour the
        # per-backend flag). ``tcp_keepalive`` (the global value at the end of the config)
        # is accepted for compatibility and also enables it.
        self.keepalive = bool(spec.tcpkeepalive or tcp_keepalive)
        self.loop = asyncio.get_running_loop()
        self.state = IDLE
        self.bad = False
        self.link: _Link | None = None
        self.reader = ResponseReader()
        # Requests written (or about to be, in outbuf) awaiting a reply, oldest first:
        # ``pending[phead:]``. A list and an index rather than a deque: compiled code indexes
        # and appends to a list directly, where every deque method is a generic call.
        self.pending: list[Entry] = []
        self.phead = 0
        # Requests routed here while connecting or validating.
        self.waiting: list[tuple[Entry, bytes]] = []
        self.outbuf: list[bytes] = []
        self.flush_scheduled = False
        self.failures = 0
        self.last_activity = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.connect_task: asyncio.Task[None] | None = None
        self.retry_handle: asyncio.TimerHandle | None = None
        self.connected_to: tuple[Any, ...] | str | None = None
        # Counters read by the metrics endpoint (never on the per-request path, except the
        # latency histogram when enabled).
        self.requests = 0
        self.errors: dict[str, int] = {}
        self.timeouts = 0
        self.connects = 0
        self.latency: list[int] | None = [0] * BUCKETS if Backend.record_latency else None
        self.latency_sum_us = 0
        self.closed = False
        #: depth limit: 0 (none), or whether the batch being routed here was refused.
        self.depthlimit = spec.depthlimit
        self.batch_open = False
        self.batch_refused = False
        #: flap detection: flaps so far and when the last qualifying failure (or connect) was.
        self.flaps = 0
        self.last_flap = 0.0
        #: connections = N: the other N - 1 connections (None: just this one), and the one
        #: the batch being routed here goes to.
        self.siblings: list[Backend] | None = None
        self.batch_conn: Backend | None = None
        self.counted = not sibling
        if not sibling:
            stats.total += 1
            if spec.connections > 1:
                self.siblings = [
                    Backend(spec, events, stats, tcp_keepalive, sibling=True)
                    for _ in range(spec.connections - 1)
                ]
        if spec.down:
            # Bad from the start and never retried: start() does not connect, send() fails.
            self.bad = True
            self.state = RETRY_WAIT

    # -- public ----------------------------------------------------------------------

    def start(self) -> None:
        """Connect now (at config load) rather than on the first request."""
        if self.state == IDLE:
            self._connect_soon()
        if self.siblings is not None:
            for conn in self.siblings:
                conn.start()

    def connections(self) -> list[Backend]:
        """This backend's connections: itself, and its siblings (``connections = N``)."""
        return [self] if self.siblings is None else [self, *self.siblings]

    def queued(self) -> int:
        """Requests queued on all of this backend's connections."""
        return sum(conn.depth for conn in self.connections())

    def send(
        self, data: bytes, callback: Callback, handle: Any, mode: int, t0: float = 0.0
    ) -> None:
        """Queue ``data`` (request line + value) and call back with the reply. ``handle``:
        an int, or a :class:`Ticket` (whose reply then goes unread once it is dropped).
        ``t0``: when the request was queued (``time.monotonic()``; read here when 0), which
        the reply's elapsed time counts from: a route sending one request to several
        backends at once reads the clock once."""
        if self.siblings is not None:
            conn = self.batch_conn
            if conn is None:
                conn = self.batch_conn = self._choose()
                TURN.later(self._end_conn_batch)
            if conn is not self:
                conn.send(data, callback, handle, mode, t0)
                return
        entry = (callback, handle, mode, t0 if t0 else monotonic())
        self.requests += 1
        state = self.state
        if self.depthlimit and self._over_depth():
            self.stats.failed_depth += 1
            self.loop.call_soon(callback, handle, mode, failure_response(), 0, self.name)
            return
        if state == READY:
            if self.phead >= len(self.pending):
                self.last_activity = entry[3]
                if self.timer is None:
                    self._arm_timer(self.spec.readtimeout)
            self.pending.append(entry)
            self.outbuf.append(data)
            if not self.flush_scheduled:
                self.flush_scheduled = True
                TURN.later(self._flush)
        elif self.bad or state == CLOSED:
            self.loop.call_soon(callback, handle, mode, failure_response(), 0, self.name)
        else:
            self.waiting.append((entry, data))
            if state == IDLE:
                self._connect_soon()

    def _over_depth(self) -> bool:
        """Whether the batch this request belongs to is refused by the depth limit: the
        first request of a batch decides for all of it (spec v2 8.6)."""
        if not self.batch_open:
            self.batch_open = True
            self.batch_refused = self.depth > self.depthlimit
            TURN.later(self._end_batch)
        return self.batch_refused

    def _end_batch(self) -> None:
        self.batch_open = False

    def _choose(self) -> Backend:
        """The connection for a new batch (1.6.45's choice, see the module docstring)."""
        best = self
        least = -1
        for conn in self.connections():
            if conn.bad:
                continue
            depth = conn.depth
            if depth == 0:
                return conn
            if least < 0 or depth < least:
                least = depth
                best = conn
        return best

    def _end_conn_batch(self) -> None:
        self.batch_conn = None

    def fail(self, reason: str) -> None:
        """Fail the current connection now, for ``reason`` (one of REASONS): its queued
        requests fail, the failure is logged and counted, and it reconnects as after any
        other failure. The router does this when a reply cannot be held (``outofmemory``)."""
        self._failed(reason, self.link)

    def close(self) -> None:
        """Stop for good (the config that used it is gone); queued requests fail."""
        if self.closed:
            return
        self.closed = True
        self.state = CLOSED
        self._cancel_timers()
        if self.connect_task is not None:
            self.connect_task.cancel()
            self.connect_task = None
        self._drop_link()
        self._fail_entries(*self._take_queue())
        if self.counted:
            self.stats.total -= 1
        if self.siblings is not None:
            for conn in self.siblings:
                conn.close()

    @property
    def depth(self) -> int:
        """Requests queued on this backend: written and unanswered, or waiting to be."""
        return len(self.pending) - self.phead + len(self.waiting)

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    # -- connecting ------------------------------------------------------------------

    def _connect_soon(self) -> None:
        self.state = CONNECTING
        link = _Link(self)
        self.link = link
        opener = Backend.open_transport
        if opener is not None:
            self.loop.call_soon(link.connection_made, opener(self))
            return
        self.connect_task = self.loop.create_task(self._connect(link))

    async def _resolve(self) -> tuple[int, Any]:
        """(family, sockaddr) of the first address: IPv4 first, then IPv6 (spec 7.1)."""
        spec = self.spec
        port = int(spec.port)
        if not 0 <= port <= 65535:
            raise ValueError(f"bad port {spec.port!r}")
        loop = self.loop
        try:
            infos = await loop.getaddrinfo(
                spec.host, port, family=socket.AF_INET, type=socket.SOCK_STREAM
            )
        except OSError:
            infos = []
        if not infos:
            infos = await loop.getaddrinfo(
                spec.host, port, family=socket.AF_INET6, type=socket.SOCK_STREAM
            )
        if not infos:
            raise OSError(f"no address for {spec.host}")
        family, _, _, _, sockaddr = infos[0]
        return family, sockaddr

    async def _connect(self, link: _Link) -> None:
        spec = self.spec
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout(spec.connecttimeout if spec.connecttimeout > 0 else None):
                family: int
                sockaddr: Any
                if spec.unix:
                    family, sockaddr = socket.AF_UNIX, spec.host
                else:
                    family, sockaddr = await self._resolve()
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
                if family != socket.AF_UNIX:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.keepalive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                await self.loop.sock_connect(sock, sockaddr)
                self.connected_to = sockaddr
                factory = cast("Callable[[], asyncio.Protocol]", lambda: link)
                tls = client_context(spec.tls) if spec.tls is not None else None
                if family == socket.AF_UNIX:
                    await self.loop.create_unix_connection(
                        factory, sock=sock, ssl=tls, server_hostname=spec.host if tls else None
                    )
                else:
                    await self.loop.create_connection(
                        factory, sock=sock, ssl=tls, server_hostname=spec.host if tls else None
                    )
                sock = None  # the transport owns it now
        except TimeoutError:
            self.timeouts += 1
            self._failed("conntimeout", link)
        except (OSError, ValueError, UnicodeError):
            self._failed("connecting", link)
        finally:
            if sock is not None:
                sock.close()
            if self.link is link or self.link is None:
                self.connect_task = None

    def _link_up(self, link: _Link) -> None:
        """TCP connected: send the ``version`` check and wait for its answer."""
        if link is not self.link or self.state == CLOSED:
            if link.transport is not None:
                link.transport.abort()
            return
        self.connects += 1
        self.last_flap = time.monotonic()
        self.state = VALIDATING
        self.reader = ResponseReader()
        assert link.transport is not None
        link.transport.write(b"version\r\n")
        self.last_activity = time.monotonic()
        self._arm_timer(self.spec.readtimeout)

    def _validated(self) -> None:
        # A validated connection clears the bad mark and the failure count.
        self.bad = False
        self.failures = 0
        self.state = READY
        self.reader = ResponseReader()
        waiting, self.waiting = self.waiting, []
        if waiting:
            self.last_activity = time.monotonic()
            for entry, data in waiting:
                self.pending.append(entry)
                self.outbuf.append(data)
            self._flush()
        else:
            self._cancel_timer()

    # -- traffic ---------------------------------------------------------------------

    def _flush(self) -> None:
        self.flush_scheduled = False
        link = self.link
        if self.outbuf and self.state == READY and link is not None and link.transport:
            out = self.outbuf
            self.outbuf = []
            link.transport.write(out[0] if len(out) == 1 else b"".join(out))
            if self.timer is None:
                self._arm_timer(self.spec.readtimeout)

    def _data(self, link: _Link, data: bytes) -> None:
        if link is not self.link:
            return
        self.last_activity = now = monotonic()
        state = self.state
        if state == VALIDATING:
            self._validation_data(link, data)
            return
        if state != READY:
            return
        pending = self.pending
        if self.phead >= len(pending):
            # Nothing is owed: the backend is talking out of turn.
            self._failed("closedsock", link, rbuf=data)
            return
        reader = self.reader
        hist = self.latency
        if reader.load(data):
            # Reply by reply: a callback may drop the ticket of a request whose reply comes
            # later in this same read (an allfastest's other child), which is then parsed
            # without a response object.
            while True:
                # (``phead`` is read and stored each time: a callback may send here again,
                # or look at ``depth``.)
                head = self.phead
                if head >= len(pending):
                    res = reader.next_reply(False)
                    if res is not None:
                        self._failed("trailingdata", link, rbuf=res.raw + reader.rbuf())
                        return
                    break
                callback, handle, mode, t0 = pending[head]
                skip = isinstance(handle, Ticket) and handle.dropped
                res = reader.next_reply(skip)
                if res is None:
                    break
                self.phead = head + 1
                if res.type == RES_MULTI_GET and mode != MODE_MULTIGET:
                    # Several values for a one-key request: the backend is out of step.
                    self.phead = head
                    self._failed("missingend", link, rbuf=res.raw)
                    return
                elapsed = int((now - t0) * 1_000_000)
                if hist is not None:
                    hist[bucket(elapsed)] += 1
                    self.latency_sum_us += elapsed
                if skip:
                    continue  # its route has answered (maybe with a reply of this same read)
                callback(handle, mode, res, elapsed, self.name)
                if link is not self.link:
                    return  # a callback closed us (config gone)
        head = self.phead
        owed = head < len(pending)
        if not owed:
            pending.clear()
            self.phead = 0
        elif head > PENDING_COMPACT:
            del pending[:head]
            self.phead = 0
        failure = reader.failure
        if failure is not None and (owed or failure == "invalidprotocol"):
            self._failed(failure, link)
        elif not owed and (reader.buffered() or failure is not None):
            # Whatever follows the last reply owed is trailing data, parseable or not.
            self._failed("trailingdata", link)
        # Nothing owed: the read timer stays armed (it finds nothing pending when it fires),
        # rather than being cancelled here and made again by the next turn's first request.

    def _validation_data(self, link: _Link, data: bytes) -> None:
        reader = self.reader
        responses = reader.feed(data)
        if responses:
            first = responses[0]
            if first.type == RES_VERSION and first.status == STATUS_OK:
                # Bytes after a valid VERSION line in the same read are dropped (spec 7.2).
                self._validated()
                return
            reason = "readvalidate" if first.status != STATUS_OK else "badvalidate"
            self._failed(reason, link, rbuf=first.raw)
        elif reader.failure is not None:
            self._failed("readvalidate", link)

    def _link_lost(self, link: _Link, exc: Exception | None) -> None:
        if link is not self.link:
            return
        link.transport = None
        if exc is None:
            reason = "disconnected"
        elif isinstance(exc, BrokenPipeError):
            reason = "writing"
        else:
            reason = "reading"
        self._failed(reason, link)

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
        state = self.state
        if not (state == VALIDATING or (state == READY and self.phead < len(self.pending))):
            return
        idle = time.monotonic() - self.last_activity
        limit = self.spec.readtimeout
        if idle >= limit * 0.999:
            self.timeouts += 1
            self._failed("readvalidate" if state == VALIDATING else "timeout", self.link)
        else:
            self._arm_timer(limit - idle)

    def _cancel_timers(self) -> None:
        self._cancel_timer()
        if self.retry_handle is not None:
            self.retry_handle.cancel()
            self.retry_handle = None

    # -- failures --------------------------------------------------------------------

    def _drop_link(self) -> None:
        link, self.link = self.link, None
        if link is not None and link.transport is not None:
            transport, link.transport = link.transport, None
            transport.abort()

    def _take_queue(self) -> tuple[list[Entry], list[tuple[Entry, bytes]]]:
        pending = self.pending[self.phead :]
        self.pending = []
        self.phead = 0
        waiting, self.waiting = self.waiting, []
        self.outbuf = []
        return pending, waiting

    def _fail_entries(self, pending: list[Entry], waiting: list[tuple[Entry, bytes]]) -> None:
        if not pending and not waiting:
            return
        fail = failure_response()
        name = self.name
        for callback, handle, mode, _ in pending:
            callback(handle, mode, fail, 0, name)
        for (callback, handle, mode, _), _data in waiting:
            callback(handle, mode, fail, 0, name)

    def _failed(self, reason: str, link: _Link | None, rbuf: bytes | None = None) -> None:
        """The current connection failed: fail its queue, log, close, count, reconnect."""
        if self.state == CLOSED or link is not self.link:
            return
        depth = self.depth
        buffered = rbuf if rbuf is not None else log_rbuf(self.reader.unparsed())
        self._cancel_timer()
        self._drop_link()
        self.reader = ResponseReader()
        self.connected_to = None
        queue = self._take_queue()
        self.errors[reason] = self.errors.get(reason, 0) + 1
        spec = self.spec
        if not self.bad:
            self.events.emit(
                "proxy_backend",
                error=reason,
                name=spec.host,
                port=spec.port,
                depth=depth,
                rbuf=uri_encode(buffered[:100]),
            )
        self.failures += 1
        if spec.flaptime > 0 and reason in FLAP_REASONS:
            now = time.monotonic()
            self.flaps = 0 if now - self.last_flap > spec.flaptime else self.flaps + 1
            self.last_flap = now
        if spec.flaptime > 0 and self.flaps > spec.failurelimit:
            wait = min(
                int(spec.retrytimeout * spec.flapbackofframp**self.flaps), spec.flapbackoffmax
            )
            if not self.bad:
                self.bad = True
                self.stats.marked_bad += 1
                self.events.emit(
                    "proxy_backend",
                    error="markedbadflap",
                    name=spec.host,
                    port=spec.port,
                    label=spec.label,
                    retry=wait,
                )
            self.state = RETRY_WAIT
            self.retry_handle = self.loop.call_later(wait, self._retry)
        elif self.failures > spec.failurelimit:
            if not self.bad:
                self.bad = True
                self.stats.marked_bad += 1
                self.events.emit(
                    "proxy_backend",
                    error="markedbad",
                    name=spec.host,
                    port=spec.port,
                    depth=0,
                    rbuf="",
                )
            self.state = RETRY_WAIT
            self.retry_handle = self.loop.call_later(spec.retrytimeout, self._retry)
        else:
            self.stats.failed += 1
            self._connect_soon()
        # Callbacks last: a route resumed here may send again, and must find the new state.
        self._fail_entries(*queue)

    def _retry(self) -> None:
        self.retry_handle = None
        if self.state == RETRY_WAIT:
            self._connect_soon()


def backend_key(spec: BackendSpec, beprefix: str = "") -> Any:
    """The connection cache key (spec 1.7): equal keys share one connection."""
    return (beprefix, spec)
