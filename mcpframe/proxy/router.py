"""The route executor: runs Lua routes for client requests and services their calls.

One request's life (DESIGN.md "One request, end to end"): ``run`` queues the route, and at
the end of the loop turn ``_run_starts`` starts every queued route with one call to the Lua
driver (``start_batch``); a route runs until it returns or calls a pool, ``mcp.await`` or
``mcp.internal``. For the common pool call (the route sends its client's request unchanged)
the batch answers (YIELD_POOL, pool id); any other answer is held in Lua and taken whole
(``take``): the request's current line, value, key, reply mode and command when the route
built or edited it (the Lua side parsed it, so nothing is parsed again here), or what the
route returned. The pool picks a backend from the key, the bytes are queued there, and the
backend's reply comes back through ``_on_response``, which queues it for ``_run_resumes``
(one ``resume_batch`` call per turn). When the route returns, the reply is put in the
client's slot, honouring the noreply/quiet and multiget rules (spec 4.3, 4.4, 6.4).

Beside it, each in its own module of the same compiled group (so calls between them are
direct): the route table and pass-through routes (``hooks.py``) and the request and buffer
memory limits (``limits.py``), both of which the router inherits; multigets on pass-through
routes (``multiget.py``), ``mcp.await`` (``awaits.py``), ``mcp.internal`` (``internal.py``);
the task and reply slot of a request in flight (``task.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from random import random
from time import monotonic
from typing import Any, Final, cast

from mcpframe.cache import Cache
from mcpframe.config import LoadedConfig
from mcpframe.events import EventLog
from mcpframe.placement import Selector
from mcpframe.protocol import commands as c
from mcpframe.protocol.replies import (
    ACTIVE_LIMIT,
    BAD_RESPONSE,
    INTERNAL_ERROR,
    LUA_FAILURE,
    OUT_OF_MEMORY,
    SHUTTING_DOWN,
)
from mcpframe.protocol.request import Request
from mcpframe.protocol.response import Response, failure_response
from mcpframe.proxy.awaits import Awaits
from mcpframe.proxy.backend import Backend
from mcpframe.proxy.funcgens import FuncGens
from mcpframe.proxy.hooks import FAST, FastPlan, Hooks
from mcpframe.proxy.internal import run_internal
from mcpframe.proxy.latency import COMMANDS, RouteLatency
from mcpframe.proxy.multiget import MultiGets
from mcpframe.proxy.task import MODE_CHILD, MODE_NORMAL, Slot, Task, data_of, reply_bytes
from mcpframe.proxy.turn import TURN

#: Lua error texts in proxy_error log lines are capped like memcached's log entries.
MAX_LOG_TEXT: Final = 512

#: Values per route in the driver's batch calls (``start_batch``, ``resume_batch``).
START_ARGS: Final = 6
RESUME_ARGS: Final = 9
#: Routes per batch call at most (the Lua stack holds every argument of one call).
MAX_BATCH: Final = 256


class Pool:
    """A pool as the executor sees it: a key -> backend function over live connections."""

    __slots__ = ("backends", "select", "selector")

    def __init__(self, select: Callable[[bytes], int], backends: list[Backend]) -> None:
        self.select = select
        #: ``select`` when it is placement's own (called directly, as compiled code)
        self.selector = select if isinstance(select, Selector) else None
        self.backends = backends

    def backend_for(self, key: bytes) -> Backend:
        """The backend ``key`` goes to (raises as ``select`` does when it cannot say)."""
        selector = self.selector
        return self.backends[selector.place(key) if selector is not None else self.select(key)]


class Router(Hooks):
    """Runs the routes of one loaded config."""

    def __init__(
        self,
        config: LoadedConfig,
        pools: list[Pool],
        cache: Cache,
        events: EventLog,
        workers: int = 1,
    ) -> None:
        vm = config.routes
        logged = frozenset(i for i, p in enumerate(pools) if any(b.spec.log for b in p.backends))
        super().__init__(vm, config.tunables, workers, logged)
        self.config = config
        self.resume = vm.resume
        self.fail = vm.fail
        self.resume_await = vm.resume_await
        self.abandon = vm.abandon
        self.start_batch = vm.start_batch
        self.resume_batch = vm.resume_batch
        self.take = vm.take
        self.loop = asyncio.get_running_loop()
        #: Routes to start, and backend replies to resume routes with, at the end of this
        #: turn of the event loop: one driver call for all (flat argument lists).
        self.starts: list[Any] = []
        self.resumes: list[Any] = []
        #: Bound once: every request sent to a backend carries it.
        self.on_response: Callable[[int, int, Response, int, bytes], None] = self._on_response
        self.on_pass_response: Callable[[int, int, Response, int, bytes], None] = (
            self._on_pass_response
        )
        self.on_failover_response: Callable[[int, int, Response, int, bytes], None] = (
            self._on_failover_response
        )
        self.on_fastest_response: Callable[[Any, int, Response, int, bytes], None] = (
            self._on_fastest_response
        )
        self.on_zone_response: Callable[[int, int, Response, int, bytes], None] = (
            self._on_zone_response
        )
        #: the backends an allfastest run here sends to (``_fan_out``; empty between calls)
        self.placed: list[Backend] = []
        self.on_retry_response: Callable[[int, int, Response, int, bytes], None] = (
            self._on_retry_response
        )
        self.retry_start = vm.state[b"retry_start"]
        codes = vm.codes
        self.YIELD_POOL = codes["YIELD_POOL"]
        self.YIELD_INTERNAL = codes["YIELD_INTERNAL"]
        self.YIELD_AWAIT = codes["YIELD_AWAIT"]
        self.DONE_RES = codes["DONE_RES"]
        self.DONE_STR = codes["DONE_STR"]
        self.DONE_ERR = codes["DONE_ERR"]
        self.DONE_SAME = codes["DONE_SAME"]
        self.HELD = codes["HELD"]
        self.pools = pools
        self.cache = cache
        self.events = events
        self.tasks: dict[int, Task] = {}
        self.next_handle = 1
        self.requests_started = 0
        #: routed requests per command code (``stats proxy`` cmd_*), refusals included.
        self.cmd_counts = [0] * (c.CMD_ANY + 1)
        self.multigets = MultiGets(self)
        self.awaits = Awaits(self)
        #: Route latency histograms (``--metrics``), and the tag row of each hook.
        self.latency: RouteLatency | None = None
        self.lat_rows: dict[Any, int] = {}
        self.funcgens = FuncGens(self)
        #: The hooks that are function generators (API v2), run by ``funcgens``.
        self.fgen_hooks = self.funcgens.hooks

    def record_latency(self, latency: RouteLatency) -> None:
        """Record every route's latency in ``latency`` from now on."""
        rows = {fn: latency.row("") for fn in self.hooks.values()}
        for tag, table in self.tagged.items():
            for fn in table.values():
                rows[fn] = latency.row(tag)
        self.lat_rows = rows
        self.latency = latency

    def latency_series(self, hook: Any, cmd: int) -> int:
        """The route latency series of ``hook`` serving ``cmd``."""
        return self.lat_rows.get(hook, 0) * COMMANDS + cmd

    @property
    def await_active(self) -> int:
        """Awaits with replies still owed (``proxy_await_active``)."""
        return self.awaits.active

    # -- running routes ----------------------------------------------------------------

    def run(
        self, hook: Any, req: Request, slot: Slot, mget: bool, deliver: Callable[[Slot], None]
    ) -> None:
        """Start the route ``hook`` for ``req``. ``slot`` gets the reply, and then
        ``deliver(slot)`` is called exactly once: maybe before this returns (a refusal, or a
        route that answers without waiting), usually later."""
        self.cmd_counts[req.cmd] += 1
        self.requests_started += 1
        if self.active >= self.active_limit:
            slot.data = ACTIVE_LIMIT
            deliver(slot)
            return
        value = req.value
        mem = 0
        if value is not None:
            if self.mem_used > self.mem_limit:
                slot.data = OUT_OF_MEMORY
                deliver(slot)
                return
            mem = len(value)
            self.mem_used += mem
        handle = self.next_handle
        self.next_handle = handle + 1
        task = Task(req, slot, mget, deliver, mem)
        latency = self.latency
        if latency is not None:
            task.series = self.latency_series(hook, req.cmd)
        self.tasks[handle] = task
        self.active += 1
        starts = self.starts
        pool_id = self.passthrough_pool_for(hook, req.cmd, req.key)
        callback = self.on_pass_response
        if pool_id == -1 and self.retry:
            pool_id = self.retry_pool(hook)
            callback = self.on_retry_response
            task.hook = hook
        if (
            pool_id >= 0
            and not starts
            and not req.noreply
            and req.cmd in c.KEYED
            and not self.funcgens.starts
        ):
            # A pass-through route: what it would do, done here (the reply comes back to
            # _on_pass_response). Noreply requests, which the route rewrites, go through it,
            # and so does every request after one queued for Lua this turn (requests reach
            # their backends in the order they came). A retry route's first call likewise
            # (_on_retry_response).
            error = self._send(task, handle, pool_id, req.key, data_of(req), callback)
            if error is None:
                return
            # Not placed: the route runs after all, and its pool call raises this error.
            task.pass_error = (pool_id, error)
        elif (
            pool_id <= FAST
            and not starts
            and not req.noreply
            and req.cmd in c.KEYED
            and not self.funcgens.starts
        ):
            # A route library failover, allfastest, split, zfailover or random over pools
            # (hooks.FastPlan), done here (the replies come back to _on_failover_response,
            # _on_fastest_response, _on_zone_response, _on_pass_response). Not placed: it
            # runs in Lua.
            plan = self.fast_plans[FAST - pool_id]
            task.plan = plan
            if plan.fastest:
                if self._fan_out(task, handle, plan, req):
                    return
            elif plan.pick:
                pools = plan.pools
                pool = pools[int(random() * len(pools))]
                done = self.on_pass_response  # (its reply is the route's)
                if self._send(task, handle, pool, req.key, data_of(req), done) is None:
                    return
            else:
                first = self.on_zone_response if plan.zone else self.on_failover_response
                if self._send(task, handle, plan.pools[0], req.key, data_of(req), first) is None:
                    return
            task.plan = None
        if latency is not None:
            # (A pass-through route's latency is its backend request's: _on_pass_response.)
            task.t0 = time.monotonic()
        if hook in self.fgen_hooks:
            self.funcgens.start(handle, hook, req)
            return
        if not starts:
            self.loop.call_soon(self._run_starts)
        starts += (handle, hook, req.cmd, req.line, req.key, req.noreply)

    def _run_starts(self) -> None:
        """Start the routes queued this turn (``start_batch``)."""
        batch, self.starts = self.starts, []
        self._run_batch(batch, START_ARGS, self.start_batch)

    def _run_resumes(self) -> None:
        """Resume the routes whose backend replies arrived this turn (``resume_batch``)."""
        batch, self.resumes = self.resumes, []
        self._run_batch(batch, RESUME_ARGS, self.resume_batch)

    def _run_batch(self, batch: list[Any], width: int, call: Any) -> None:
        """One driver call per MAX_BATCH routes (``width`` values each), then act on the two
        values answered per route. Flushes the routes schedule run when the batch ends."""
        TURN.active = True
        self.lua_ran = True
        try:
            step = width * MAX_BATCH
            for first in range(0, len(batch), step):
                chunk = self._live(batch[first : first + step], width)
                if not chunk:
                    continue
                try:
                    answers = call(*chunk)
                except Exception as e:
                    self._batch_failed(chunk, width, e)
                    continue
                for k in range(0, len(answers), 2):
                    i = (k >> 1) * width
                    handle = chunk[i]
                    try:
                        self._answered(handle, answers[k], answers[k + 1], chunk, i)
                    except Exception as e:
                        self._internal_error(handle, e)
        finally:
            TURN.end_batch()

    def _answered(self, handle: int, kind: int, pool_id: int, chunk: list[Any], i: int) -> None:
        if kind == self.YIELD_POOL:
            self._pool_call(handle, pool_id)
        elif kind == self.DONE_SAME:
            # Only a resume answers this: the route returned the response it was resumed
            # with (``return pool(r)``), whose (raw, status, code, mode) are in its chunk.
            task = self.tasks.pop(handle, None)
            if task is not None:
                raw, status, code, mode = chunk[i + 1], chunk[i + 2], chunk[i + 3], chunk[i + 5]
                self._done(task, reply_bytes(raw, status, code, mode, task.mget))
        elif kind == self.HELD:
            self.advance(handle, self.take(handle))
        else:
            self.advance(handle, (kind,))

    def _pool_call(self, handle: int, pool_id: int) -> None:
        """The common pool call, answered in two values by a batch: the route sends its own
        client request, unchanged (``_send_to_pool`` handles every form)."""
        task = self.tasks.get(handle)
        if task is None:
            return
        req = task.req
        error = None
        failed = task.pass_error
        if failed is not None:
            task.pass_error = None
            if failed[0] == pool_id:
                error = failed[1]
        if error is None:
            error = self._send(task, handle, pool_id, req.key, data_of(req), self.on_response)
        if error is not None:
            self.advance(handle, self.fail(handle, error))

    def _live(self, chunk: list[Any], width: int) -> list[Any]:
        """``chunk`` without the routes that ended since they were queued (shutdown)."""
        tasks = self.tasks
        for i in range(0, len(chunk), width):
            if chunk[i] not in tasks:
                return [
                    v
                    for j in range(0, len(chunk), width)
                    if chunk[j] in tasks
                    for v in chunk[j : j + width]
                ]
        return chunk

    def _batch_failed(self, chunk: list[Any], width: int, e: Exception) -> None:
        """The driver itself raised (a bug of ours): every route of the call fails."""
        self.events.emit("proxy_error", msg=f"internal error running a route: {e!r}")
        for i in range(0, len(chunk), width):
            handle = chunk[i]
            self.abandon(handle)
            self.complete(handle, INTERNAL_ERROR)

    def advance(self, handle: int, result: Any) -> None:
        """Act on what the driver answered, until the route waits or is done."""
        self.lua_ran = True
        try:
            # The driver answers with a tuple whose first element says what happened (lupa
            # hands back a bare value when the driver returned only one).
            while True:
                if type(result) is not tuple:
                    result = (result,)
                kind = result[0]
                if kind == self.YIELD_POOL:
                    error = self._send_to_pool(handle, result)
                    if error is None:
                        return
                    result = self.fail(handle, error)
                elif kind == self.YIELD_INTERNAL:
                    result = run_internal(self, handle, result)
                    if result is None:
                        return
                elif kind == self.YIELD_AWAIT:
                    result = self.awaits.start(handle, result)
                    if result is None:
                        return
                else:
                    self._finish(handle, result)
                    return
        except Exception as e:  # a bug of ours must cost one request, not a connection
            self._internal_error(handle, e)

    def _internal_error(self, handle: int, e: Exception) -> None:
        self.events.emit("proxy_error", msg=f"internal error running a route: {e!r}")
        self.abandon(handle)
        self.complete(handle, INTERNAL_ERROR)

    def request_of(self, result: Any) -> tuple[bytes, bytes | None, bytes, int, int]:
        """(line, value, key, reply mode, command) of the request a route passed to a call.

        The long form of the driver's answer is (kind, id, handle, line, value, value handle,
        key, mode, command, ...); ``line`` is nil for a client request sent unchanged.
        """
        h = result[2]
        line = result[3]
        if line is None:
            req = self.tasks[h].req
            return req.line, req.value, req.key, MODE_NORMAL, req.cmd
        value = result[4]
        if value is None:
            # A client request keeps its data block through edits; mcp.request(line, r)
            # borrows r's (spec 2.12). Payload bytes never travel through Lua.
            vh = result[5] or h
            if vh:
                task = self.tasks.get(vh)
                value = task.req.value if task is not None else None
        return line, value, result[6], result[7], result[8]

    def placement_error(self, e: Exception) -> bytes:
        """The error text a route gets when its key could not be placed on a backend."""
        if isinstance(e, IndexError):
            return str(e).encode()
        # A plugin (hasher, filter, dist) raised: this request fails, nothing else does.
        self.events.emit("proxy_error", msg=f"key placement failed in plugin code: {e}")
        return f"key placement failed: {e}".encode()

    def _send_to_pool(self, handle: int, result: Any) -> bytes | None:
        task = self.tasks[handle]
        if len(result) == 3:
            # The common case: the route's own client request, unchanged.
            h = result[2]
            req = task.req if h == handle else self.tasks[h].req
            key = req.key
            data = data_of(req)
            mode = MODE_NORMAL
        else:
            line, value, key, mode, _ = self.request_of(result)
            data = line if value is None else line + value
        return self._send(task, handle, result[1], key, data, self.on_response, mode)

    def _send(
        self,
        task: Task,
        handle: int,
        pool_id: int,
        key: bytes,
        data: bytes,
        callback: Callable[[int, int, Response, int, bytes], None],
        mode: int = MODE_NORMAL,
    ) -> bytes | None:
        """Place ``key`` in the pool and queue ``data`` on that backend; the error text for
        the route when the key could not be placed."""
        pool = self.pools[pool_id]
        try:
            backend = pool.backend_for(key)
        except Exception as e:
            return self.placement_error(e)
        task.backend = backend
        backend.send(data, callback, handle, mode)
        return None

    def _on_pass_response(
        self, handle: int, mode: int, res: Response, elapsed: int, be: bytes
    ) -> None:
        """A pass-through route's reply: the route would return it as it is. (Its bytes would
        be held only until then, so buffer memory only decides whether it is taken.)"""
        task = self.tasks.pop(handle, None)
        if task is not None:
            self._reply(task, mode, res, elapsed)

    def _reply(self, task: Task, mode: int, res: Response, elapsed: int) -> None:
        """``res`` answers ``task`` (taken out of ``tasks``) as a pass-through route's reply."""
        latency = self.latency
        if latency is not None and task.series >= 0:
            latency.observe(task.series, elapsed)
            task.series = -1
        if self.count_replies and self.mem_used > self.mem_limit and res.type:
            res = self.out_of_memory(task.backend)
        self._done(task, reply_bytes(res.raw, res.status, res.code, mode, task.mget))

    def _on_failover_response(
        self, handle: int, mode: int, res: Response, elapsed: int, be: bytes
    ) -> None:
        """A reply to an attempt of a failover run here (``route_failover.lua`` in Python): a
        hit, or a miss unless misses move on, is the answer; otherwise the next pool is
        asked, and after the last attempt the client gets the last miss, else this reply.
        (The task is taken out of ``tasks`` at once, and put back only while it waits for
        another attempt: one dict operation for the usual first answer.)"""
        task = self.tasks.pop(handle, None)
        if task is None:
            return
        plan = task.plan
        assert plan is not None
        if res.status == 0:
            if res.code != c.MCMC_CODE_END or not plan.miss:
                self._reply(task, mode, res, elapsed)
                return
            task.missed = res
        attempt = task.attempt + 1
        if attempt < plan.limit:
            task.attempt = attempt
            req = task.req
            pool = plan.pools[attempt]
            if self._send(task, handle, pool, req.key, data_of(req), self.on_failover_response):
                # (a key no pool of the plan can place: answered with what came back so far)
                self._reply(task, mode, task.missed or res, elapsed)
            else:
                self.tasks[handle] = task  # (a send never calls back before it returns)
            return
        self._reply(task, mode, task.missed or res, elapsed)

    def start_failover(
        self,
        plan: FastPlan,
        req: Request,
        slot: Slot,
        deliver: Callable[[Slot], None],
        res: Response,
        elapsed: int,
        be: bytes,
    ) -> None:
        """Go on with the failover ``plan`` for ``req``, a key of a multiget whose first
        attempt was made as part of one get per backend and answered ``res`` (a failure, or
        a miss that moves on), as ``_on_failover_response`` goes on from a first attempt
        made alone (``multiget.py``). The multiget counted the request already."""
        handle = self.next_handle
        self.next_handle = handle + 1
        task = Task(req, slot, True, deliver, 0)
        task.plan = plan
        self.tasks[handle] = task
        self.active += 1
        self._on_failover_response(handle, MODE_NORMAL, res, elapsed, be)

    def _fan_out(self, task: Task, handle: int, plan: FastPlan, req: Request) -> bool:
        """Send an allfastest's request to every pool of ``plan`` (False, with nothing sent,
        when a pool cannot place the key: the route then runs in Lua). Each reply comes
        back to the task's own handle, with ``MODE_CHILD + i`` for the i-th child."""
        key = req.key
        pools = self.pools
        placed = self.placed
        placed.clear()
        if plan.one_hash < 0:
            plan.one_hash = 1 if self._hash_alike(plan) else 0
        try:
            if plan.one_hash:
                # Pools that hash alike (the usual case: the default hasher, no seed): the
                # key is hashed once, each pool places that hash (xxhash's argument parsing
                # alone costs about 1,200 instructions a call).
                first = pools[plan.pools[0]].selector
                assert first is not None
                h = first.hash_key(key)
                for pool_id in plan.pools:
                    pool = pools[pool_id]
                    selector = pool.selector
                    assert selector is not None
                    placed.append(pool.backends[selector.place_hash(key, h)])
            else:
                for pool_id in plan.pools:
                    placed.append(pools[pool_id].backend_for(key))
        except Exception:
            return False
        task.backend = placed[0]
        task.handle = handle
        data = data_of(req)
        callback = self.on_fastest_response
        mode = MODE_CHILD
        t0 = monotonic()
        for backend in placed:
            # The task is its requests' ticket: the replies that come after the route has
            # answered (``_done`` drops it) are read without a callback.
            backend.send(data, callback, task, mode, t0)
            mode += 1
        placed.clear()
        return True

    def _hash_alike(self, plan: FastPlan) -> bool:
        """Whether every pool of ``plan`` places keys with placement's own selector, all
        hashing alike (``Selector.hashes_like``)."""
        first = self.pools[plan.pools[0]].selector
        if first is None:
            return False
        for pool_id in plan.pools:
            selector = self.pools[pool_id].selector
            if selector is None or not first.hashes_like(selector):
                return False
        return True

    def _on_fastest_response(
        self, ticket: Any, mode: int, res: Response, elapsed: int, be: bytes
    ) -> None:
        """A reply to an allfastest run here (``route_allfastest.lua`` in Python) from child
        ``mode - MODE_CHILD``. The first useful one (a non-error, or with ``miss`` a hit)
        answers: the handler, woken by it, finds no other useful reply among those arrived,
        so it returns this one. A reply that is not useful is kept if the handler would
        prefer it to the one kept (a miss to an error; of two alike, the later child's);
        when every child has answered, the kept one answers. Replies after the answer are
        read but do not come here (the task, their ticket, is dropped); a failure after it
        finds no task. (The task is taken out of ``tasks`` at once and put back while it
        waits for more: one dict operation for the answer.)"""
        handle = cast(Task, ticket).handle
        task = self.tasks.pop(handle, None)
        if task is None:
            return
        plan = task.plan
        assert plan is not None
        if plan.split:
            # a split: child A's reply (the second sent) is the answer, B's is dropped
            if mode != MODE_CHILD:
                self._reply(task, MODE_NORMAL, res, elapsed)
            else:
                self.tasks[handle] = task
            return
        ok = res.status == 0
        if ok and (not plan.miss or res.code != c.MCMC_CODE_END):
            self._reply(task, MODE_NORMAL, res, elapsed)
            return
        n = len(plan.pools)
        rank = mode - MODE_CHILD + (n if ok else 0)
        if rank > task.rank:
            task.rank = rank
            task.missed = res
        arrived = task.attempt + 1
        if arrived < n:
            task.attempt = arrived
            self.tasks[handle] = task
            return
        kept = task.missed
        assert kept is not None
        self._reply(task, MODE_NORMAL, kept, elapsed)

    def _on_zone_response(
        self, handle: int, mode: int, res: Response, elapsed: int, be: bytes
    ) -> None:
        """A reply to a zfailover run here (``route_zfailover.lua`` in Python): the local
        zone's (mode normal), or the i-th other zone's (``MODE_CHILD + i``, i from 1). A
        local hit answers, and a local miss unless ``miss``; otherwise every other zone is
        asked at once. The first remote hit answers; when every zone has answered without
        one, the kept reply does: the first remote miss (in the handler's order), else a
        local miss, else the first remote error. Replies after the answer are dropped."""
        task = self.tasks.get(handle)
        if task is None:
            return
        plan = task.plan
        assert plan is not None
        ok = res.status == 0
        hit = ok and res.code != c.MCMC_CODE_END
        n = len(plan.pools)
        if mode < MODE_CHILD:
            if hit or (ok and not plan.miss) or n == 1:
                self._on_pass_response(handle, mode, res, elapsed, be)
                return
            # kept unless a remote zone has better: ranks 2n (a miss) or 0 (an error)
            task.rank = 2 * n if ok else 0
            task.missed = res
            self._ask_zones(task, handle, plan)
            return
        if hit:
            self._on_pass_response(handle, MODE_NORMAL, res, elapsed, be)
            return
        # a remote miss ranks above the local miss, a remote error between the local miss and
        # a local error; of two alike, the earlier zone's
        i = mode - MODE_CHILD
        rank = (3 * n if ok else 2 * n) - i
        if rank > task.rank:
            task.rank = rank
            task.missed = res
        arrived = task.attempt + 1
        if arrived < n - 1:
            task.attempt = arrived
            return
        kept = task.missed
        assert kept is not None
        self._on_pass_response(handle, MODE_NORMAL, kept, elapsed, be)

    def _ask_zones(self, task: Task, handle: int, plan: FastPlan) -> None:
        """Send a zfailover's request to every zone but the local one (``plan.pools[1:]``),
        each reply to come back to the task's handle with ``MODE_CHILD + i``. A zone that
        cannot place the key answers with a failure, as a handle of the route's would."""
        req = task.req
        key = req.key
        data = data_of(req)
        callback = self.on_zone_response
        pools = self.pools
        t0 = time.monotonic()
        for i in range(1, len(plan.pools)):
            try:
                backend = pools[plan.pools[i]].backend_for(key)
            except Exception as e:
                self.placement_error(e)
                self.loop.call_soon(callback, handle, MODE_CHILD + i, failure_response(), 0, b"")
                continue
            task.backend = backend
            backend.send(data, callback, handle, MODE_CHILD + i, t0)

    def _on_retry_response(
        self, handle: int, mode: int, res: Response, elapsed: int, be: bytes
    ) -> None:
        """The first call of a retry route (``local res = p(r) if res:ok() then return res
        end return p(r)``) was answered: an ok answer is the route's reply; any other starts
        the route in Lua, its first call answered with ``res`` (mcp_routes.lua)."""
        task = self.tasks.get(handle)
        if task is None:
            return
        if self.count_replies:
            res = self._held(task, res)  # (until the route returns it)
        latency = self.latency
        if res.status == 0:
            del self.tasks[handle]
            if latency is not None and task.series >= 0:
                latency.observe(task.series, elapsed)
                task.series = -1
            self._done(task, reply_bytes(res.raw, res.status, res.code, mode, task.mget))
            return
        if latency is not None:
            task.t0 = time.monotonic() - elapsed / 1_000_000
        self._retry_in_lua(handle, task, res, mode, elapsed, be)

    def start_retry(
        self,
        hook: Any,
        req: Request,
        slot: Slot,
        deliver: Callable[[Slot], None],
        res: Response,
        elapsed: int,
        be: bytes,
    ) -> None:
        """Run the retry route ``hook`` for ``req``, a key of a multiget whose first call was
        made as part of one get per backend and answered ``res`` (not ok): its route starts
        in Lua, its first call answered with ``res`` (``multiget.py``). The multiget counted
        the request already (commands, active requests)."""
        handle = self.next_handle
        self.next_handle = handle + 1
        task = Task(req, slot, True, deliver, 0)
        task.hook = hook
        self.tasks[handle] = task
        self.active += 1
        self._retry_in_lua(handle, task, res, MODE_NORMAL, elapsed, be)

    def _retry_in_lua(
        self, handle: int, task: Task, res: Response, mode: int, elapsed: int, be: bytes
    ) -> None:
        req = task.req
        self.lua_ran = True
        try:
            result = self.retry_start(
                handle, task.hook, req.cmd, req.line, req.key, res.raw, res.status, res.code,
                res.vlen, mode, elapsed, res.type, be,
            )  # fmt: skip
        except Exception as e:
            self._internal_error(handle, e)
            return
        self.advance(handle, result)

    def _held(self, task: Task, res: Response) -> Response:
        """A reply ``task``'s route will hold, counted in buffer memory (spec 6.6); past the
        limit, the failure its backend connection gets instead."""
        if self.mem_used > self.mem_limit and res.type:
            return self.out_of_memory(task.backend)
        n = len(res.raw)
        task.mem += n
        self.mem_used += n
        return res

    def _on_response(self, handle: int, mode: int, res: Response, elapsed: int, be: bytes) -> None:
        task = self.tasks.get(handle)
        if task is None:
            return
        if self.count_replies:
            res = self._held(task, res)
        resumes = self.resumes
        if not resumes:
            self.loop.call_soon(self._run_resumes)
        resumes += (handle, res.raw, res.status, res.code, res.vlen, mode, elapsed, res.type, be)

    # -- replies ---------------------------------------------------------------------

    def _finish(self, handle: int, result: Any) -> None:
        task = self.tasks.pop(handle, None)
        if task is None:
            return
        kind = result[0]
        if kind == self.DONE_RES:
            self._done(task, reply_bytes(result[1], result[2], result[3], result[4], task.mget))
        elif kind == self.DONE_STR:
            self._done(task, result[1])
        elif kind == self.DONE_ERR:
            msg = _text(result[1])
            self.events.emit(
                "proxy_error",
                msg=msg[:MAX_LOG_TEXT],
                traceback=_text(result[2]) if len(result) > 2 else msg,
            )
            self._done(task, LUA_FAILURE)
        else:
            self._done(task, BAD_RESPONSE)

    def complete(self, handle: int, data: bytes) -> None:
        task = self.tasks.pop(handle, None)
        if task is not None:
            self._done(task, data)

    def _done(self, task: Task, data: bytes) -> None:
        """The route of ``task`` completed (its slot is released): ``data`` is the reply."""
        self.active -= 1
        task.dropped = True  # (the replies still owed to it, an allfastest's, go unread)
        if task.mem:
            self.mem_used -= task.mem
        latency = self.latency
        if latency is not None and task.series >= 0:
            latency.observe(task.series, int((time.monotonic() - task.t0) * 1_000_000))
        slot = task.slot
        slot.data = data
        task.deliver(slot)

    def abort_all(self) -> None:
        """Fail every running route (shutdown)."""
        for handle in list(self.tasks):
            self.abandon(handle)
            self.complete(handle, SHUTTING_DOWN)
        self.funcgens.abort_all()
        self.multigets.abort_all(
            Response(0, c.MCMC_CODE_SERVER_ERROR, c.STATUS_FAILED, SHUTTING_DOWN)
        )


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
