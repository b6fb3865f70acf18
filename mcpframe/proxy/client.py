"""Client connections: parse, route or answer locally, reply in request order.

Every request reserves a reply slot when it is parsed; routes fill their slots whenever their
backends answer, and the connection writes the filled prefix of its slot queue, once per loop
turn (all the replies of a pipelined batch leave in one write). A parse error becomes the
memcached error line in its slot; it never raises into the event loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from mcpframe.protocol import commands as c
from mcpframe.protocol.reader import RequestReader, split_multiget
from mcpframe.protocol.request import Request
from mcpframe.proxy.router import Slot

if TYPE_CHECKING:
    from mcpframe.proxy.server import ProxyServer

#: memcached proxy limit: hooked request lines must be shorter than this (spec 3.4).
MAX_ROUTED_LINE = 500
TOO_LONG = b"CLIENT_ERROR request too long\r\n"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
END = b"END\r\n"
#: Pipelined requests a client may have in flight before we stop reading from it.
MAX_SLOTS = 4096


class ClientConnection(asyncio.Protocol):
    __slots__ = (
        "closing",
        "flush_scheduled",
        "loop",
        "paused",
        "reader",
        "server",
        "slots",
        "tag",
        "transport",
        "write_paused",
    )

    def __init__(self, server: ProxyServer, tag: str | None = None) -> None:
        self.server = server
        self.tag = tag
        self.reader = RequestReader(max_value=server.max_value)
        self.slots: deque[Slot] = deque()
        self.transport: asyncio.Transport | None = None
        self.flush_scheduled = False
        self.closing = False
        self.paused = False
        self.write_paused = False
        self.loop = asyncio.get_running_loop()

    # -- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.closing = True
        self.slots.clear()
        self.server.connection_closed(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        server = self.server
        router = server.router
        slots = self.slots
        for item in self.reader.feed(data):
            if type(item) is not Request:
                slots.append(Slot(item.reply, item.close))  # type: ignore[union-attr]
                if item.close:  # type: ignore[union-attr]
                    self.closing = True
                    break
                continue
            req: Request = item
            hook = router.hook_for(req.cmd, self.tag) if router is not None else None
            if hook is None:
                slots.append(self._local(req))
                if self.closing:
                    break
                continue
            # Multigets are split into one short request per key, so their line may be long
            # (memcached lets get/gets lines grow for the same reason); refusing a 15-key get
            # of 32-byte keys would break every client that batches.
            if len(req.line) >= MAX_ROUTED_LINE and not req.multiget:
                server.conn_errors += 1
                slots.append(Slot(TOO_LONG, close=True))
                self.closing = True
                break
            if req.value is None and req.cmd in c.STORAGE_WITH_VALUE:
                slots.append(Slot(TOO_LARGE))
                continue
            if req.multiget:
                for part in split_multiget(req):
                    if type(part) is bytes:
                        slots.append(Slot(part))
                    else:
                        slot = Slot()
                        slots.append(slot)
                        router.run(hook, part, slot, True, self._deliver)  # type: ignore[union-attr, arg-type]
                slots.append(Slot(END))
                continue
            slot = Slot()
            slots.append(slot)
            router.run(hook, req, slot, False, self._deliver)  # type: ignore[union-attr]
        self._flush()
        self._update_reading()

    # -- local engine ------------------------------------------------------------------

    def _local(self, req: Request) -> Slot:
        cmd = req.cmd
        if cmd == c.CMD_QUIT:
            self.closing = True
            return Slot(b"", close=True)
        if cmd == c.CMD_STATS:
            return Slot(self.server.stats_reply(req))
        if cmd == c.CMD_WATCH:
            return Slot(self.server.watch(self, req))
        return Slot(self.server.cache.execute(req))

    # -- replies -----------------------------------------------------------------------

    def _deliver(self, slot: Slot) -> None:
        if not self.flush_scheduled and self.slots and self.slots[0].data is not None:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        slots = self.slots
        transport = self.transport
        if transport is None:
            return
        out: list[bytes] = []
        close = False
        while slots:
            slot = slots[0]
            data = slot.data
            if data is None:
                break
            slots.popleft()
            if data:
                out.append(data)
            if slot.close:
                close = True
                break
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if close:
            slots.clear()
            transport.close()
        else:
            self._update_reading()

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
        want_pause = self.write_paused or self.closing or len(self.slots) > MAX_SLOTS
        if want_pause and not self.paused:
            self.paused = True
            transport.pause_reading()
        elif not want_pause and self.paused:
            self.paused = False
            transport.resume_reading()
