"""Multi-key gets on pass-through routes, sent as one get per backend and put back together.

Each key's route would send ``get <key>`` to the backend its key maps to and return the
answer (spec 6.4); a backend answers a multi-key get with the same values, in key order, so
the client reads the same bytes from one get per backend. The keys still count one by one
(``cmd_get``, active requests).

Retry routes (``local res = p(r) if res:ok() then return res end return p(r)``, see
``Router._on_retry_response``) too: their first calls go the same way, and each key whose
answer is not ok (its backend failed) runs its route in Lua from there, its first call
answered with that failure, as it would have been on its own.

So do the route library's failovers and allfastests run without Lua (``hooks.FastPlan``), whose
result for a key depends only on the answers each child gives for that key and the order
they arrive in, never on the other keys:

- a failover's first attempts go as one get per backend of its first pool; a key answered
  (a hit, or a miss unless misses move on) takes its piece, and every other key goes on by
  itself from its second attempt (``Router.start_failover``), as if its first had been made
  alone and answered the same;
- an allfastest sends one get per backend of every child; each reply is taken key by key as
  if each key's reply had arrived on its own, in that order (one of the orders they could
  arrive in): a key takes the first useful answer, or when every child has answered, the
  one the handler would pick (``Router._on_fastest_response``); later answers are dropped.
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
from mcpframe.proxy.hooks import FAST, FastPlan
from mcpframe.proxy.limits import UNLIMITED
from mcpframe.proxy.task import Slot

if TYPE_CHECKING:
    from mcpframe.proxy.router import Pool, Router

#: At most this many bytes of keys go on one line (memcached reads get lines this long in
#: one go); more make two.
MULTIGET_LINE: Final = 2048
#: A key's miss, as a failover going on from a batched first attempt was answered.
MISS: Final = Response(c.RES_END, c.MCMC_CODE_END, c.STATUS_OK, END)


class MultiGet:
    """One multi-key get: each key's piece of the reply (a hit without its END, nothing for
    a miss, the error line of a failed backend), filled as the backends answer."""

    __slots__ = (
        "arrived", "deliver", "handed", "hook", "keys", "pieces", "plan", "prefix", "ranks",
        "remaining", "req", "retry", "series", "slot",
    )  # fmt: skip

    def __init__(
        self, slot: Slot, deliver: Callable[[Slot], None], keys: list[bytes], req: Request
    ) -> None:
        self.slot = slot
        self.deliver = deliver
        self.keys = keys
        self.req = req
        self.pieces = [b""] * len(keys)
        #: backend requests (and keys handed on) not answered yet; for an allfastest, keys
        self.remaining = 0
        #: A retry route's multiget: the route; keys handed to their own task (they stop
        #: counting as active here); the line's prefix.
        self.retry = False
        self.hook: Any = None
        self.handed = 0
        self.prefix = b""
        #: A failover's or allfastest's (``hooks.FastPlan``); for an allfastest, per key:
        #: the children that answered (-1 once it has its answer), and the rank of its piece
        #: while that is only the handler's pick if no useful answer comes.
        self.plan: FastPlan | None = None
        self.arrived: list[int] = []
        self.ranks: list[int] = []
        #: with route latency recorded: its series (its latency is that of the backend
        #: request answered last: they were all sent when it started).
        self.series = -1


class MultiGets:
    """The router's multi-key gets in flight."""

    def __init__(self, router: Router) -> None:
        self.router = router
        #: backend request handle -> (its multiget, the key positions it asked for, the
        #: child asked: an allfastest's index of it, else 0).
        self.pending: dict[int, tuple[MultiGet, list[int], int]] = {}
        #: Bound once: every request sent to a backend carries it.
        self.on_response: Callable[[int, int, Response, int, bytes], None] = self._on_response

    def start(self, hook: Any, req: Request, slot: Slot, deliver: Callable[[Slot], None]) -> bool:
        """Serve the multi-key get or gets ``req`` for the route ``hook`` with one get per
        backend; ``slot`` gets the whole reply, then ``deliver(slot)`` is called.

        False, with nothing done, when the per-key way must be taken: another route (or a
        router whose keys go different ways), a request limit or buffer memory limit in
        force (they count per key), a route queued for Lua this turn (v1 or v2: backend
        order), a key too long or not placeable.
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
        prefix = b""
        keys: list[bytes] = []
        # What the route does with each key without Lua (``Hooks.passthrough_pool_for``):
        # forward to a pool, or run a FastPlan; behind a router, the same for every key.
        pool_id = router.passthrough_pool(hook)
        if pool_id < 0 and router.fast_hooks:
            pool_id = router.fast_hooks.get(hook, -1)
        if pool_id == -1 and router.router_plans:
            pick = router.router_plans.get(hook)
            if pick is not None:
                prefix, keys = multiget_keys(req)
                if not keys:
                    return False
                pool_id = pick.pick(cmd, keys[0])
                for key in keys:
                    if pick.pick(cmd, key) != pool_id:
                        return False
        plan: FastPlan | None = None
        if pool_id <= FAST:
            plan = router.fast_plans[FAST - pool_id]
            if plan.split or plan.zone or plan.pick:
                return False  # (its keys each go as single gets)
            pool_id = plan.pools[0]
        retry = False
        if pool_id < 0 and router.retry:
            pool_id = router.retry_pool(hook)
            retry = True
        if pool_id < 0:
            return False
        if not keys:
            prefix, keys = multiget_keys(req)
        pools = router.pools
        # (a failover asks its first pool; an allfastest every pool, each key placed in each)
        children = plan.pools if plan is not None and plan.fastest else [pool_id]
        placed = []
        for child in children:
            groups = _groups(pools[child], keys)
            if groups is None:
                return False
            placed.append(groups)
        n = len(keys)
        router.cmd_counts[cmd] += n
        router.requests_started += n
        router.active += n
        mg = MultiGet(slot, deliver, keys, req)
        mg.prefix = prefix
        if retry:
            mg.retry = True
            mg.hook = hook
        if router.latency is not None:
            mg.series = router.latency_series(hook, cmd)
        mg.plan = plan
        for child, groups in enumerate(placed):
            backends = pools[children[child]].backends
            for index, positions in groups.items():
                backend = backends[index]
                first = 0
                size = 0
                for j, p in enumerate(positions):
                    size += len(keys[p]) + 1
                    if size > MULTIGET_LINE and j > first:
                        self._send(mg, backend, prefix, positions[first:j], child)
                        first = j
                        size = len(keys[p]) + 1
                self._send(mg, backend, prefix, positions[first:] if first else positions, child)
        if plan is not None and plan.fastest:
            mg.remaining = n  # (an allfastest is done when every key has its answer)
            mg.arrived = [0] * n
            mg.ranks = [-1] * n
        return True

    def _send(
        self, mg: MultiGet, backend: Backend, prefix: bytes, positions: list[int], child: int
    ) -> None:
        keys = mg.keys
        line = prefix + b" ".join([keys[p] for p in positions]) + b"\r\n"
        router = self.router
        handle = router.next_handle
        router.next_handle = handle + 1
        self.pending[handle] = (mg, positions, child)
        mg.remaining += 1
        backend.send(line, self.on_response, handle, MODE_MULTIGET)

    def _on_response(self, handle: int, mode: int, res: Response, elapsed: int, be: bytes) -> None:
        entry = self.pending.pop(handle, None)
        if entry is None:
            return
        mg, positions, child = entry
        plan = mg.plan
        if plan is not None and plan.fastest:
            self._fastest(mg, plan, positions, child, res, elapsed)
            return
        rtype = res.type
        ok = res.status == 0
        if ok and type(res) is MultiGetResponse:
            split_values(res.raw, res.ends, mg.keys, positions, mg.pieces)
        elif ok and rtype == c.RES_GET:
            split_values(res.raw, [len(res.raw) - 5], mg.keys, positions, mg.pieces)
        elif (mg.retry or (plan is not None and plan.limit > 1)) and not ok:
            # Each key's route asks again, one task per key (the multiget waits).
            self._hand_on(mg, positions, res, elapsed, be)
        elif rtype != c.RES_END:
            # A failed backend (or an answer a get cannot have): what each key's route
            # would have returned, the same line for every key it held.
            raw = res.raw
            pieces = mg.pieces
            for p in positions:
                pieces[p] = raw
        if ok and plan is not None and plan.miss and plan.limit > 1:
            # a failover whose misses move on: the keys without a hit do
            pieces = mg.pieces
            missed = [p for p in positions if not pieces[p]]
            if missed:
                self._hand_on(mg, missed, MISS, elapsed, be)
        self.answered(mg, elapsed)

    def _hand_on(
        self, mg: MultiGet, positions: list[int], res: Response, elapsed: int, be: bytes
    ) -> None:
        """The keys at ``positions``, whose batched first call was answered ``res``, go on
        each with its own task: a retry route's in Lua, a failover's from its next pool."""
        mg.remaining += len(positions)
        mg.handed += len(positions)
        router = self.router
        router.active -= len(positions)  # (each task counts its own)
        keys = mg.keys
        cmd = mg.req.cmd
        prefix = mg.prefix
        plan = mg.plan
        for p in positions:
            key = keys[p]
            req = Request(cmd, prefix + key + b"\r\n", key)
            deliver = Piece(self, mg, p).deliver
            if plan is not None:
                router.start_failover(plan, req, Slot(), deliver, res, elapsed, be)
            else:
                router.start_retry(mg.hook, req, Slot(), deliver, res, elapsed, be)

    def _fastest(
        self, mg: MultiGet, plan: FastPlan, positions: list[int], child: int, res: Response,
        elapsed: int,
    ) -> None:  # fmt: skip
        """Child ``child``'s reply for the keys at ``positions`` of an allfastest's multiget,
        taken key by key as ``Router._on_fastest_response`` takes a reply."""
        keys = mg.keys
        ok = res.status == 0
        rtype = res.type
        hits: list[bytes] = []
        if ok and (type(res) is MultiGetResponse or rtype == c.RES_GET):
            hits = [b""] * len(keys)
            ends = res.ends if type(res) is MultiGetResponse else [len(res.raw) - 5]
            split_values(res.raw, ends, keys, positions, hits)
        # (an answer a get cannot have is each key's answer, as a hit; an error is none)
        other = b"" if ok and rtype == c.RES_END else res.raw
        useful_miss = ok and not plan.miss
        n = len(plan.pools)
        rank = child + n if ok else child
        arrived = mg.arrived
        ranks = mg.ranks
        pieces = mg.pieces
        done = 0
        for p in positions:
            count = arrived[p]
            if count < 0:
                continue  # it has its answer: this one is dropped
            piece = hits[p] if hits else other
            if ok and (piece or useful_miss):
                pieces[p] = piece
                arrived[p] = -1
                done += 1
                continue
            if rank > ranks[p]:
                ranks[p] = rank
                pieces[p] = piece
            count += 1
            if count < n:
                arrived[p] = count
            else:
                arrived[p] = -1
                done += 1
        if done:
            self.answered(mg, elapsed, done)

    def answered(self, mg: MultiGet, elapsed: int, count: int = 1) -> None:
        """``count`` backend requests (or keys handed on) of ``mg`` are answered; for an
        allfastest, ``count`` keys."""
        mg.remaining -= count
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


def _groups(pool: Pool, keys: list[bytes]) -> dict[int, list[int]] | None:
    """The positions of ``keys`` by the backend of ``pool`` each maps to (its index), or None
    when one cannot be placed there (too long, or the pool's placement fails)."""
    select = pool.select
    count = len(pool.backends)
    groups: dict[int, list[int]] = {}
    try:
        for i, key in enumerate(keys):
            if len(key) > KEY_MAX_LENGTH:
                return None
            index = select(key)
            if not 0 <= index < count:
                return None
            group = groups.get(index)
            if group is None:
                groups[index] = [i]
            else:
                group.append(i)
    except Exception:
        return None  # the per-key routes raise it, each where memcached would
    return groups


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
