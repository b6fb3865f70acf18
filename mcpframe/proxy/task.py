"""A routed request in flight: its reply slot, its task, and the bytes its client reads.

Shared by the router and the modules beside it (multigets, awaits, ``mcp.internal``) and by
the client connection, which reserves the slots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from mcpframe.protocol import commands as c
from mcpframe.protocol.request import Request
from mcpframe.proxy.backend import Backend, Ticket

if TYPE_CHECKING:
    from mcpframe.protocol.response import Response
    from mcpframe.proxy.hooks import FastPlan

# Reply modes, recorded per request sent and carried by its response (spec 4.4). The Lua
# driver uses the same numbers.
MODE_NORMAL: Final = 0
MODE_NOREPLY: Final = 1  # classic noreply: only SERVER_ERROR lines reach the client
MODE_QUIET: Final = 2  # meta q: suppress EN and OK codes
# 3: meta q on mg: suppress EN only (set by the Lua driver; quiet here)
#: A request of a fan-out (an allfastest run without Lua) carries ``MODE_CHILD + i``, i the
#: child's index, instead of a reply mode: its reply comes back to the route's own handle,
#: and the mode says which child answered (its reply mode is normal).
MODE_CHILD: Final = 8


def data_of(req: Request) -> bytes:
    """The bytes a client request is sent to a backend as."""
    value = req.value
    return req.line if value is None else req.line + value


class Slot:
    """A client's reply slot, reserved in request order and filled when the reply is ready."""

    __slots__ = ("close", "data")

    def __init__(self, data: bytes | None = None, close: bool = False) -> None:
        self.data = data
        self.close = close


class Task(Ticket):
    """One running route: where its reply goes, the client request it serves, the bytes it
    holds (buffer memory) and the backend of its pending pool call. It is the ticket
    (``proxy/backend.py``) of an allfastest's or a split's requests to its children, dropped
    when the route completes: the replies that come later are read, but not handed on."""

    __slots__ = (
        "attempt",
        "backend",
        "deliver",
        "hook",
        "mem",
        "mget",
        "missed",
        "pass_error",
        "plan",
        "rank",
        "req",
        "series",
        "slot",
        "t0",
    )

    backend: Backend
    #: the route, set only for a retry route's first call (``Router._on_retry_response``)
    hook: Any

    def __init__(
        self, req: Request, slot: Slot, mget: bool, deliver: Callable[[Slot], None], mem: int
    ) -> None:
        self.req = req
        self.slot = slot
        self.mget = mget
        self.deliver = deliver
        self.mem = mem
        #: (pool, error text) of a pass-through call that could not be placed: the route
        #: then runs in Lua, and raises this at its pool call (see ``Router.run``).
        self.pass_error: tuple[int, bytes] | None = None
        #: with route latency recorded (``latency.py``): its series and when it started.
        self.series = -1
        self.t0 = 0.0
        #: a failover or allfastest run without Lua (``hooks.FastPlan``): the plan, the
        #: attempt under way (from 0) and the last miss (kept when misses move on); for an
        #: allfastest (or a zfailover's other zones), the replies arrived so far, and of
        #: those that did not answer, the one the handler would answer with if no other
        #: does, and its rank (``Router._on_fastest_response``, ``_on_zone_response``).
        self.plan: FastPlan | None = None
        self.attempt = 0
        self.missed: Response | None = None
        self.rank = -1
        # (Ticket's fields, set here: no call of its __init__ per task.)
        self.handle = 0
        self.dropped = False
        # ``backend`` (the backend of its pending pool call) is set by the pool call.


def reply_bytes(raw: bytes, status: int, code: int, mode: int, mget: bool) -> bytes:
    """What the client reads when its route returns a response (``raw``, ``status``, ``code``):
    the bytes its reply mode wants (``mget``: a piece of a multiget split per key)."""
    if mode == MODE_NOREPLY:
        # A noreply client reads no reply: like memcached itself, send nothing but
        # server errors (a backend failure, out of memory...).
        if not raw.startswith(b"SERVER_ERROR"):
            raw = b""
    elif status == 0:
        if mode and (code == c.MCMC_CODE_END or (mode == MODE_QUIET and code == c.MCMC_CODE_OK)):
            raw = b""
        elif mget:
            # A multiget piece: a miss says nothing, a hit comes without its END.
            if code == c.MCMC_CODE_END:
                raw = b""
            elif raw.endswith(b"END\r\n") and raw.startswith(b"VALUE "):
                raw = raw[:-5]
    return raw
