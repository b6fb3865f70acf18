"""Multi-key gets on pass-through routes, sent as one get per backend and put back together.

Each key's route would send ``get <key>`` to the backend its key maps to and return the
answer (spec 6.4); a backend answers a multi-key get with the same values, in key order, so
the client reads the same bytes from one get per backend. The keys still count one by one
(``cmd_get``, active requests).

Retry routes (``local res = p(r) if res:ok() then return res end return p(r)``, see
``Router._on_retry_response``) too: their first calls go the same way, and each key whose
answer is not ok (its backend failed) runs its route in Lua from there, its first call
answered with that failure, as it would have been on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from mcpframe.protocol import commands as c
from mcpframe.protocol.reader import multiget_keys
from mcpframe.protocol.replies import END, KEY_MAX_LENGTH
from mcpframe.protocol.request import Request
from mcpframe.protocol.response import MultiGetResponse, Response
from mcpframe.proxy.backend import MODE_MULTIGET, Backend
from mcpframe.proxy.limits import UNLIMITED
from mcpframe.proxy.task import Slot

if TYPE_CHECKING:
    from mcpframe.proxy.router import Router

#: At most this many bytes of keys go on one line (memcached reads get lines this long in
#: one go); more make two.
MULTIGET_LINE: Final = 2048


class MultiGet:
    """One multi-key get: each key's piece of the reply (a hit without its END, nothing for
    a miss, the error line of a failed backend), filled as the backends answer."""

    __slots__ = (
        "deliver", "handed", "hook", "keys", "pieces", "prefix", "remaining", "req", "retry",
        "series", "slot",
    )  # fmt: skip

    def __init__(
        self, slot: Slot, deliver: Callable[[Slot], None], keys: list[bytes], req: Request
    ) -> None:
        self.slot = slot
        self.deliver = deliver
        self.keys = keys
        self.req = req
        self.pieces = [b""] * len(keys)
        self.remaining = 0  # backend requests (and retried keys) not answered yet
        #: A retry route's multiget: the route and the line's prefix; keys handed to their
        #: own task (they stop counting as active here).
        self.retry = False
        self.hook: Any = None
        self.prefix = b""
        self.handed = 0
        #: with route latency recorded: its series (its latency is that of the backend
        #: request answered last: they were all sent when it started).
        self.series = -1


class MultiGets:
    """The router's multi-key gets in flight."""

    def __init__(self, router: Router) -> None:
        self.router = router
        #: backend request handle -> (its multiget, the key positions it asked for).
        self.pending: dict[int, tuple[MultiGet, list[int]]] = {}
        #: Bound once: every request sent to a backend carries it.
        self.on_response: Callable[[int, int, Response, int, bytes], None] = self._on_response

    def start(self, hook: Any, req: Request, slot: Slot, deliver: Callable[[Slot], None]) -> bool:
        """Serve the multi-key get or gets ``req`` for the route ``hook`` with one get per
        backend; ``slot`` gets the whole reply, then ``deliver(slot)`` is called.

        False, with nothing done, when the per-key way must be taken: another route, a
        request limit or buffer memory limit in force (they count per key), a route queued
        for Lua this turn (v1 or v2: backend order), a key too long or not placeable.
        """
        router = self.router
        cmd = req.cmd
        if (
            (cmd != c.CMD_GET and cmd != c.CMD_GETS)
            or router.starts
            or router.funcgens.starts
            or router.active_limit != UNLIMITED
            or router.count_replies
        ):
            return False
        pool_id = router.passthrough_pool(hook)
        retry = False
        if pool_id < 0 and router.retry:
            pool_id = router.retry_pool(hook)
            retry = True
        if pool_id < 0:
            return False
        prefix, keys = multiget_keys(req)
        pool = router.pools[pool_id]
        select = pool.select
        backends = pool.backends
        groups: dict[int, list[int]] = {}
        try:
            for i, key in enumerate(keys):
                if len(key) > KEY_MAX_LENGTH:
                    return False
                index = select(key)
                if not 0 <= index < len(backends):
                    return False
                group = groups.get(index)
                if group is None:
                    groups[index] = [i]
                else:
                    group.append(i)
        except Exception:
            return False  # the per-key routes raise it, each where memcached would
        n = len(keys)
        router.cmd_counts[cmd] += n
        router.requests_started += n
        router.active += n
        mg = MultiGet(slot, deliver, keys, req)
        if retry:
            mg.retry = True
            mg.hook = hook
            mg.prefix = prefix
        if router.latency is not None:
            mg.series = router.latency_series(hook, cmd)
        for index, positions in groups.items():
            backend = backends[index]
            first = 0
            size = 0
            for j, p in enumerate(positions):
                size += len(keys[p]) + 1
                if size > MULTIGET_LINE and j > first:
                    self._send(mg, backend, prefix, positions[first:j])
                    first = j
                    size = len(keys[p]) + 1
            self._send(mg, backend, prefix, positions[first:] if first else positions)
        return True

    def _send(self, mg: MultiGet, backend: Backend, prefix: bytes, positions: list[int]) -> None:
        keys = mg.keys
        line = prefix + b" ".join([keys[p] for p in positions]) + b"\r\n"
        router = self.router
        handle = router.next_handle
        router.next_handle = handle + 1
        self.pending[handle] = (mg, positions)
        mg.remaining += 1
        backend.send(line, self.on_response, handle, MODE_MULTIGET)

    def _on_response(self, handle: int, mode: int, res: Response, elapsed: int, be: bytes) -> None:
        entry = self.pending.pop(handle, None)
        if entry is None:
            return
        mg, positions = entry
        rtype = res.type
        if res.status == 0 and type(res) is MultiGetResponse:
            split_values(res.raw, res.ends, mg.keys, positions, mg.pieces)
        elif res.status == 0 and rtype == c.RES_GET:
            split_values(res.raw, [len(res.raw) - 5], mg.keys, positions, mg.pieces)
        elif mg.retry and res.status != 0:
            # Each key's route asks again: in Lua, one task per key (the multiget waits).
            mg.remaining += len(positions)
            mg.handed += len(positions)
            router = self.router
            router.active -= len(positions)  # (each task counts its own)
            keys = mg.keys
            for p in positions:
                key = keys[p]
                piece = Piece(self, mg, p)
                router.start_retry(
                    mg.hook, Request(mg.req.cmd, mg.prefix + key + b"\r\n", key), Slot(),
                    piece.deliver, res, elapsed, be,
                )  # fmt: skip
        elif rtype != c.RES_END:
            # A failed backend (or an answer a get cannot have): what each key's route
            # would have returned, the same line for every key it held.
            raw = res.raw
            pieces = mg.pieces
            for p in positions:
                pieces[p] = raw
        self.answered(mg, elapsed)

    def answered(self, mg: MultiGet, elapsed: int) -> None:
        """One backend request (or retried key) of ``mg`` is answered."""
        mg.remaining -= 1
        if mg.remaining == 0:
            router = self.router
            router.active -= len(mg.keys) - mg.handed
            latency = router.latency
            if latency is not None and mg.series >= 0:
                latency.observe(mg.series, elapsed)
            slot = mg.slot
            slot.data = b"".join(mg.pieces) + END
            mg.deliver(slot)

    def abort_all(self, res: Response) -> None:
        """Answer every backend request still owed with ``res`` (shutdown)."""
        for handle in list(self.pending):
            self._on_response(handle, MODE_MULTIGET, res, 0, b"")


class Piece:
    """Where the reply of a retried key of a multiget goes."""

    __slots__ = ("mg", "multigets", "position")

    def __init__(self, multigets: MultiGets, mg: MultiGet, position: int) -> None:
        self.multigets = multigets
        self.mg = mg
        self.position = position

    def deliver(self, slot: Slot) -> None:
        mg = self.mg
        mg.pieces[self.position] = slot.data or b""
        self.multigets.answered(mg, 0)


def split_values(
    raw: bytes, ends: list[int], keys: list[bytes], positions: list[int], pieces: list[bytes]
) -> None:
    """Hand the VALUE blocks of a backend's reply to a multi-key get (``ends``: where each
    ends in ``raw``) to the keys asked for (``keys[p]`` for ``p`` in ``positions``, in the
    order asked): a backend answers hits in that order and skips misses, so a block belongs
    to the first key from there that it names. Each piece is the block without END, as a
    one-key route's hit is sent in a multiget."""
    start = 0
    i = 0
    n = len(ends)
    for p in positions:
        if i >= n:
            break
        key = keys[p]
        stop = ends[i]
        after = start + 6 + len(key)  # b"VALUE " + key
        if after >= stop or raw[after] != 32 or not raw.startswith(key, start + 6):
            continue  # a miss
        pieces[p] = raw[start:stop]
        start = stop
        i += 1
