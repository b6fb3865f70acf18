"""Keyless commands that change data (``flush_all``) while a config is loaded.

Answered by the internal cache, ``flush_all`` would report ``OK`` while every backend keeps
its items. So with a config loaded it is refused with a ``SERVER_ERROR`` line (the connection
stays open), unless the config names the pools it goes to with ``mcp.broadcast``: then the
line is sent to every backend of those pools (a backend shared by several pools once), and
the client gets ``OK`` when every backend answered ``OK``, else the first other reply in pool
and backend order (``SERVER_ERROR backend failure`` for a dead backend). Classic ``noreply``
is taken off the line sent and, as for routed requests, leaves only ``SERVER_ERROR`` lines
for the client; the delay argument goes along unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from mcpframe.config import LoadedConfig
from mcpframe.protocol import commands as c
from mcpframe.protocol.request import Request
from mcpframe.protocol.response import Response
from mcpframe.proxy.backend import Backend
from mcpframe.proxy.router import Pool
from mcpframe.proxy.task import Slot

OK = b"OK\r\n"


def targets(config: LoadedConfig, pools: list[Pool]) -> dict[int, list[Backend]]:
    """Command code -> the backends ``mcp.broadcast`` sends it to, each once, in order."""
    out: dict[int, list[Backend]] = {}
    for cmd, ids in config.broadcasts.items():
        backends = [b for i in ids for b in pools[i].backends]
        out[cmd] = list(dict.fromkeys(backends))
    return out


class Broadcast:
    """One command sent to several backends: their replies, then the client's."""

    __slots__ = ("deliver", "noreply", "remaining", "replies", "slot")

    def __init__(self, slot: Slot, deliver: Callable[[Slot], None], n: int, noreply: bool):
        self.slot = slot
        self.deliver = deliver
        self.noreply = noreply
        self.replies: list[bytes] = [OK] * n
        self.remaining = n

    def on_response(self, index: int, mode: int, res: Response, elapsed: int, be: bytes) -> None:
        self.replies[index] = res.raw
        self.remaining -= 1
        if self.remaining:
            return
        reply = next((r for r in self.replies if r != OK), OK)
        if self.noreply and not reply.startswith(b"SERVER_ERROR"):
            reply = b""
        self.slot.data = reply
        self.deliver(self.slot)


def broadcast(
    req: Request, backends: list[Backend] | None, deliver: Callable[[Slot], None]
) -> Slot:
    """The reply slot of ``req``: filled now when the command is refused, else once every
    backend answered (then ``deliver(slot)`` is called)."""
    if not backends:
        name = c.NAMES[req.cmd].encode()
        return Slot(b"SERVER_ERROR " + name + b" is not forwarded by this proxy\r\n")
    tokens = req.tokens()
    noreply = tokens[-1] == b"noreply"
    line = b" ".join(tokens[:-1]) + b"\r\n" if noreply else req.line
    slot = Slot()
    call = Broadcast(slot, deliver, len(backends), noreply)
    for index, backend in enumerate(backends):
        backend.send(line, call.on_response, index, 0)
    return slot
