"""Client connections: parse, route or answer locally, reply in request order.

Every request reserves a reply slot when it is parsed; routes fill their slots whenever their
backends answer, and the connection writes the filled prefix of its slot queue, once per loop
turn (all the replies of a pipelined batch leave in one write). A parse error becomes the
memcached error line in its slot; it never raises into the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from mcpframe.config import BROADCAST
from mcpframe.protocol import commands as c
from mcpframe.protocol.reader import RequestReader, split_multiget
from mcpframe.protocol.replies import END, REQUEST_TOO_LONG, ROUTED_LINE_MAX, TOO_LARGE
from mcpframe.protocol.request import ErrorReply, Request
from mcpframe.proxy.broadcast import broadcast
from mcpframe.proxy.clock import CLOCK
from mcpframe.proxy.stats import stats_reply
from mcpframe.proxy.task import Slot
from mcpframe.proxy.turn import TURN

if TYPE_CHECKING:
    from mcpframe.proxy.server import ProxyServer

#: Pipelined requests a client may have in flight before we stop reading from it.
MAX_SLOTS: Final = 4096
#: Written slots kept at the front of the slot list at most, when some are still owed.
SLOTS_COMPACT: Final = 1024
#: Local replies computed in one go before they are written (see ``_dispatch``).
LOCAL_FLUSH_BYTES: Final = 256 * 1024
#: Reply bytes a connection may have owed at once: with large replies the number of
#: requests in flight shrinks to about this divided by the largest reply seen (at least
#: MIN_INFLIGHT), and a new connection starts at INITIAL_INFLIGHT until it has seen replies.
INFLIGHT_BYTES: Final = 8 * 1024 * 1024
INITIAL_INFLIGHT: Final = 32
MIN_INFLIGHT: Final = 16
#: With ``active_req_limit`` in force, routed requests one connection may have running at
#: once: memcached runs a connection's pipeline in batches of ``-R`` (20) requests, so a
#: deep pipeline never trips the limit by itself (spec 6.7).
LIMITED_BATCH: Final = 20


def _ignore_slot(slot: Slot) -> None:
    pass


def _ignore() -> None:
    pass


class ClientConnection:
    """A client connection's protocol (asyncio's ``Protocol`` interface). It does not
    inherit ``asyncio.Protocol``: a plain class compiles to a native one under mypyc
    (``mcpframe/native.py``), whose attribute accesses are direct."""

    __slots__ = (
        "backlog",
        "biggest",
        "closing",
        "deliver",
        "flush",
        "flush_scheduled",
        "head",
        "last_cmd",
        "max_inflight",
        "paused",
        "reader",
        "routed",
        "server",
        "shead",
        "slots",
        "tag",
        "transport",
        "write_paused",
    )

    def __init__(self, server: ProxyServer, tag: str | None = None) -> None:
        self.server = server
        self.tag = tag
        self.reader = RequestReader(max_value=server.max_value)
        #: Reply slots owed: ``slots[shead:]`` (a list and an index, as ``backlog``; the
        #: written prefix is dropped when it is all written or grows past SLOTS_COMPACT).
        self.slots: list[Slot] = []
        self.shead = 0
        #: Parsed requests not handled yet (the client must read its replies first).
        #: ``backlog[head:]``. A list and an index rather than a deque: compiled code indexes
        #: a list directly, where every deque method is a generic call.
        self.backlog: list[Request | ErrorReply] = []
        self.head = 0
        #: Largest reply written so far, and the requests in flight that allows.
        self.biggest = 0
        self.max_inflight = INITIAL_INFLIGHT
        #: Routes started for this connection and not completed yet.
        self.routed = 0
        self.transport: asyncio.Transport | None = None
        self.flush_scheduled = False
        self.closing = False
        self.paused = False
        self.write_paused = False
        #: Loop time of the last read from the client (``stats conns``).
        self.last_cmd = CLOCK.now
        # Bound once (each request hands them on): compiled code makes a bound method object
        # at every ``self._deliver`` otherwise.
        self.deliver: Callable[[Slot], None] = self._deliver
        self.flush: Callable[[], None] = self._flush

    # -- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.closing = True
        self._drop_slots()
        self._drop_backlog()
        # The bound callbacks refer back to this object: drop them so that a closed
        # connection is freed by its reference count, not left to a full GC pass (a
        # long-lived connection sits in the oldest generation). Routes still running keep
        # their own reference and finish harmlessly.
        self.deliver = _ignore_slot
        self.flush = _ignore
        self.server.connection_closed(self)

    def eof_received(self) -> bool | None:
        return None  # close the connection (replies still owed are lost, as in memcached)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.head < len(self.backlog) and not self.closing:
            self._dispatch()
        else:
            self._update_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_cmd = CLOCK.now
        items = self.reader.feed(data)
        if self.head < len(self.backlog):
            self.backlog.extend(items)
        else:
            self.backlog = items  # (the usual case: nothing was waiting)
            self.head = 0
        self._dispatch()

    def _dispatch(self) -> None:
        """Handle parsed requests until none is left or the client must catch up first.

        One read can hold tens of thousands of small requests, each of which may earn a large
        reply (``get`` of a 1 MB value): requests stay in ``backlog`` (parsed, not yet run)
        while the client does not read its replies (``write_paused``) or has ``MAX_SLOTS``
        replies owed, so a client that never reads holds at most that much memory. Reading
        from the socket is paused meanwhile; it resumes once the backlog is empty.
        """
        server = self.server
        router = server.router
        slots = self.slots
        backlog = self.backlog
        head = self.head
        local_bytes = 0
        limited = router is not None and router.active_req_limit
        while head < len(backlog):
            if self.write_paused or len(slots) - self.shead >= self.max_inflight:
                # Write what is ready; go on only if that made room.
                self._write()
                if (
                    self.closing
                    or self.write_paused
                    or len(slots) - self.shead >= self.max_inflight
                ):
                    break
            if local_bytes > LOCAL_FLUSH_BYTES:
                # Large local replies: write them now so a client that does not read is
                # noticed (pause_writing) before more are computed.
                local_bytes = 0
                self._write()
                continue
            if limited and self.routed >= LIMITED_BATCH:
                break  # resumed by _flush once routes complete
            item = backlog[head]
            head += 1
            if type(item) is not Request:
                reply: bytes = item.reply  # type: ignore[union-attr]
                if router is not None and reply.startswith((b"CLIENT_ERROR", b"ERROR")):
                    server.conn_errors += 1  # proxy_conn_errors: client parse errors
                slots.append(Slot(reply, item.close))  # type: ignore[union-attr]
                if item.close:  # type: ignore[union-attr]
                    self.closing = True
                    break
                continue
            req: Request = item
            hook = router.hook_for(req.cmd, self.tag) if router is not None else None
            if hook is None:
                slot = self._local(req)
                slots.append(slot)
                if self.closing:
                    break
                local_bytes += len(slot.data or b"")
                continue
            # Multigets are split into one short request per key, so their line may be long
            # (memcached lets get/gets lines grow for the same reason); refusing a 15-key get
            # of 32-byte keys would break every client that batches.
            if len(req.line) >= ROUTED_LINE_MAX and not req.multiget:
                server.conn_errors += 1
                slots.append(Slot(REQUEST_TOO_LONG, close=True))
                self.closing = True
                break
            if req.value is None and req.cmd in c.STORAGE_WITH_VALUE:
                slots.append(Slot(TOO_LARGE))
                continue
            if req.multiget:
                slot = Slot()
                if router.multigets.start(hook, req, slot, self.deliver):  # type: ignore[union-attr]
                    slots.append(slot)
                    self.routed += 1
                    continue
                for part in split_multiget(req):
                    if type(part) is bytes:
                        slots.append(Slot(part))
                    else:
                        slot = Slot()
                        slots.append(slot)
                        self.routed += 1
                        router.run(hook, part, slot, True, self.deliver)  # type: ignore[union-attr, arg-type]
                slots.append(Slot(END))
                continue
            slot = Slot()
            slots.append(slot)
            self.routed += 1
            router.run(hook, req, slot, False, self.deliver)  # type: ignore[union-attr]
        if self.closing or head >= len(backlog):
            self._drop_backlog()
        else:
            self.head = head
        self._write()
        self._update_reading()

    # -- local engine ------------------------------------------------------------------

    def _local(self, req: Request) -> Slot:
        cmd = req.cmd
        if cmd == c.CMD_QUIT:
            self.closing = True
            return Slot(b"", close=True)
        if cmd == c.CMD_STATS:
            return Slot(stats_reply(self.server, req, self))
        if cmd == c.CMD_WATCH:
            return Slot(self.server.watch(self, req))
        if cmd in BROADCAST and self.server.router is not None:
            slot = broadcast(req, self.server.broadcasts.get(cmd), self.deliver)
            if slot.data is None:
                self.routed += 1  # (its deliver counts it down)
            return slot
        return Slot(self.server.cache.execute(req))

    # -- replies -----------------------------------------------------------------------

    def _deliver(self, slot: Slot) -> None:
        self.routed -= 1
        slots = self.slots
        shead = self.shead
        if not self.flush_scheduled and shead < len(slots) and slots[shead].data is not None:
            self.flush_scheduled = True
            TURN.later(self.flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self._write():
            return
        if self.head < len(self.backlog) and not self.closing and not self.write_paused:
            self._dispatch()  # replies went out: run the requests that waited
        else:
            self._update_reading()

    def _write(self) -> bool:
        """Write the filled prefix of the reply slots; True when the connection closed."""
        slots = self.slots
        transport = self.transport
        if transport is None:
            return True
        out: list[bytes] = []
        close = False
        biggest = self.biggest
        first = i = self.shead
        n = len(slots)
        while i < n:
            slot = slots[i]
            data = slot.data
            if data is None:
                break
            i += 1
            if data:
                out.append(data)
                if len(data) > biggest:
                    biggest = len(data)
            if slot.close:
                close = True
                break
        if i >= n:
            slots.clear()
            self.shead = 0
        elif i > SLOTS_COMPACT:
            del slots[:i]
            self.shead = 0
        else:
            self.shead = i
        if biggest != self.biggest or (self.max_inflight == INITIAL_INFLIGHT and i > first):
            # Replies seen: size the pipeline by the largest one.
            self.biggest = biggest
            self.max_inflight = max(MIN_INFLIGHT, min(MAX_SLOTS, INFLIGHT_BYTES // (biggest or 1)))
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if close:
            self._drop_slots()
            self._drop_backlog()
            transport.close()
        return close

    def owed(self) -> int:
        """Replies owed to this client (slots not written yet)."""
        return len(self.slots) - self.shead

    def _drop_slots(self) -> None:
        self.slots.clear()
        self.shead = 0

    def _drop_backlog(self) -> None:
        # In place: a _dispatch running (which called _write, which closed) sees it.
        self.backlog.clear()
        self.head = 0

    def stop_reading(self) -> None:
        """Shutdown: take no new requests; replies already owed still go out."""
        self.closing = True
        if self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def write_event(self, data: bytes) -> None:
        """A watch stream line (outside the request/reply order)."""
        if self.transport is not None and not self.write_paused:
            self.transport.write(data)

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None:
            return
        want_pause = (
            self.write_paused
            or self.closing
            or len(self.slots) - self.shead > MAX_SLOTS
            or self.head < len(self.backlog)
        )
        if want_pause and not self.paused:
            self.paused = True
            transport.pause_reading()
        elif not want_pause and self.paused:
            self.paused = False
            transport.resume_reading()
