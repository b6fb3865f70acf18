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

Resource limits (spec 6.5, 6.6), per worker process:
* ``active_req_limit``: a routed request that would make more than the limit active is
  refused with ``SERVER_ERROR active request limit reached`` (it still counts in ``cmd_*``
  and ``proxy_conn_requests``). Its slot is released at once, and every started route
  releases its slot when it completes, however it completes ([R]: including ``mcp.internal``
  on an unsupported command).
* ``buffer_memory_limit``: bytes held for routes: client data blocks, and backend replies
  while the route that asked for them runs; released when the route completes (memcached
  releases them when Lua collects the objects). Replies are only counted while a limit is
  set, so that the unlimited default costs nothing per reply. A request with a data block
  arriving while the bytes in use already exceed the limit is refused with
  ``SERVER_ERROR out of memory``; a backend reply arriving then fails its backend connection
  (``error=outofmemory``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

from mcpframe.cache import Cache
from mcpframe.lua.config import LoadedConfig
from mcpframe.protocol import commands as c
from mcpframe.protocol.backend import ResponseReader
from mcpframe.protocol.reader import (
    BAD_DATA_CHUNK,
    END,
    KEY_MAX_LENGTH,
    RequestReader,
    multiget_keys,
)
from mcpframe.protocol.request import Request
from mcpframe.protocol.response import MultiGetResponse, Response, failure_response
from mcpframe.proxy.backend import MODE_MULTIGET, Backend
from mcpframe.proxy.events import EventLog
from mcpframe.proxy.turn import TURN

LUA_FAILURE: Final = b"SERVER_ERROR lua failure\r\n"
BAD_RESPONSE: Final = b"SERVER_ERROR bad response\r\n"
BAD_REQUEST: Final = b"SERVER_ERROR bad request\r\n"
ACTIVE_LIMIT: Final = b"SERVER_ERROR active request limit reached\r\n"
OUT_OF_MEMORY: Final = b"SERVER_ERROR out of memory\r\n"
#: A limit of 0 means unlimited; this compares greater than any real count.
UNLIMITED: Final = 1 << 62
#: Lua error texts in proxy_error log lines are capped like memcached's log entries.
MAX_LOG_TEXT: Final = 512

# Reply modes, recorded per request sent and carried by its response (spec 4.4). The Lua
# driver uses the same numbers.
MODE_NORMAL: Final = 0
MODE_NOREPLY: Final = 1  # classic noreply: only SERVER_ERROR lines reach the client
MODE_QUIET: Final = 2  # meta q: suppress EN and OK codes
# 3: meta q on mg: suppress EN only (the Lua driver sets it; ``_reply`` treats it as quiet)

INTERNAL_COMMANDS: Final = frozenset(
    {
        c.CMD_MG, c.CMD_MS, c.CMD_MD, c.CMD_MA, c.CMD_GET, c.CMD_GETS, c.CMD_GAT, c.CMD_GATS,
        c.CMD_SET, c.CMD_ADD, c.CMD_APPEND, c.CMD_PREPEND, c.CMD_CAS, c.CMD_REPLACE,
        c.CMD_INCR, c.CMD_DECR, c.CMD_DELETE, c.CMD_TOUCH,
    }
)  # fmt: skip
#: mcp.internal hands values of any size to the cache, which applies its own item limit.
_INTERNAL_MAX_VALUE: Final = (1 << 31) - 3
_INTERNAL_BE: Final = b"internal:0"

AWAIT_GOOD: Final = 0
AWAIT_ANY: Final = 1
AWAIT_OK: Final = 2
AWAIT_FIRST: Final = 3
AWAIT_FASTGOOD: Final = 4
AWAIT_BACKGROUND: Final = 5

#: Values per route in the driver's batch calls (``start_batch``, ``resume_batch``).
START_ARGS: Final = 6
RESUME_ARGS: Final = 9
#: Routes per batch call at most (the Lua stack holds every argument of one call).
MAX_BATCH: Final = 256
#: What ``passthrough_pools`` answers for a route that is not a pass-through route.
NOT_PASSTHROUGH: Final = -2
#: A multiget sent one get per backend (``Router.multiget``) puts at most this many bytes
#: of keys on one line (memcached reads get lines this long in one go); more make two.
MULTIGET_LINE: Final = 2048
SHUTTING_DOWN: Final = b"SERVER_ERROR shutting down\r\n"


def data_of(req: Request) -> bytes:
    """The bytes a client request is sent to a backend as."""
    value = req.value
    return req.line if value is None else req.line + value


def per_worker(limit: int, workers: int) -> int:
    """memcached's split of a process-wide limit over T workers (spec 2.6); 0 = unlimited."""
    if limit <= 0:
        return 0
    return limit // workers if limit > 2 * workers else limit


class Slot:
    """A client's reply slot, reserved in request order and filled when the reply is ready."""

    __slots__ = ("close", "data")

    def __init__(self, data: bytes | None = None, close: bool = False) -> None:
        self.data = data
        self.close = close


class Pool:
    """A pool as the executor sees it: a key -> backend function over live connections."""

    __slots__ = ("backends", "select")

    def __init__(self, select: Callable[[bytes], int], backends: list[Backend]) -> None:
        self.select = select
        self.backends = backends


class Await:
    """One pending mcp.await: responses in arrival order until its condition holds."""

    __slots__ = (
        "arrived", "detail", "done", "handle", "line", "logerrors", "mode", "n", "remaining",
        "results", "t0",
    )  # fmt: skip

    def __init__(
        self, handle: int, n: int, wait_for: int, mode: int, logerrors: bool, detail: bytes,
        line: bytes,
    ) -> None:  # fmt: skip
        self.handle = handle
        self.n = n
        self.remaining = wait_for
        self.mode = mode
        self.logerrors = logerrors
        self.detail = detail
        self.line = line
        self.arrived = 0
        self.done = False
        self.results: list[tuple[Response, int, int, bytes]] = []
        self.t0 = time.monotonic()


class Task:
    """One running route: where its reply goes, the client request it serves, the bytes it
    holds (buffer memory) and the backend of its pending pool call."""

    __slots__ = ("backend", "deliver", "mem", "mget", "pass_error", "req", "slot")

    backend: Backend

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
        # ``backend`` (the backend of its pending pool call) is set by the pool call.


class MultiGet:
    """A multi-key get whose route is a pass-through route, sent as one get per backend:
    each key's piece of the reply (a hit without its END, nothing for a miss, the error line
    of a failed backend), filled as the backends answer."""

    __slots__ = ("deliver", "keys", "pieces", "remaining", "slot")

    def __init__(self, slot: Slot, deliver: Callable[[Slot], None], keys: list[bytes]) -> None:
        self.slot = slot
        self.deliver = deliver
        self.keys = keys
        self.pieces = [b""] * len(keys)
        self.remaining = 0  # backend requests not answered yet


class Router:
    """Runs the routes of one loaded config."""

    def __init__(
        self,
        config: LoadedConfig,
        pools: list[Pool],
        cache: Cache,
        events: EventLog,
        workers: int = 1,
    ) -> None:
        self.config = config
        vm = config.routes
        self.resume = vm.resume
        self.fail = vm.fail
        self.resume_await = vm.resume_await
        self.abandon = vm.abandon
        self.start_batch = vm.start_batch
        self.resume_batch = vm.resume_batch
        self.take = vm.take
        self.passthrough_pools = vm.passthrough_pools
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
        codes = vm.codes
        self.YIELD_POOL = codes["YIELD_POOL"]
        self.YIELD_INTERNAL = codes["YIELD_INTERNAL"]
        self.YIELD_AWAIT = codes["YIELD_AWAIT"]
        self.DONE_RES = codes["DONE_RES"]
        self.DONE_STR = codes["DONE_STR"]
        self.DONE_ERR = codes["DONE_ERR"]
        self.DONE_SAME = codes["DONE_SAME"]
        self.HELD = codes["HELD"]
        self.hooks: dict[int, Any] = vm.hooks.get("", {})
        self.tagged: dict[str, dict[int, Any]] = {t: h for t, h in vm.hooks.items() if t}
        self.pools = pools
        self.cache = cache
        self.events = events
        self.tasks: dict[int, Task] = {}
        #: await sub-request handle -> (its await, pool index, backend).
        self.awaits: dict[int, tuple[Await, int, Backend]] = {}
        self.await_active = 0
        self.next_handle = 1
        self.active = 0
        self.requests_started = 0
        #: routed requests per command code (``stats proxy`` cmd_*), refusals included.
        self.cmd_counts = [0] * (c.CMD_ANY + 1)
        tunables = config.tunables
        self.workers = max(1, workers)
        #: per-worker limits (spec 2.6); ``stats proxy`` shows them times the workers.
        self.active_req_limit = per_worker(int(tunables["active_req_limit"]), self.workers)
        self.buffer_memory_limit = per_worker(
            int(tunables["buffer_memory_limit"]) * 1024, self.workers
        )
        self.active_limit = self.active_req_limit or UNLIMITED
        self.mem_limit = self.buffer_memory_limit or UNLIMITED
        #: Backend replies are counted in ``mem_used`` only while a limit is set (counting
        #: costs on every reply); client data blocks always are.
        self.count_replies = bool(self.buffer_memory_limit)
        self.mem_used = 0
        #: Pass-through routes (``return pool(r)``): hook -> pool index, run without Lua.
        #: ``lua_ran`` says Lua code ran since the pools were read: a route may have
        #: reassigned what a pass-through route names, so they are read again before use.
        self.pass_hooks: list[Any] = []
        self.passthrough: dict[Any, int] = {}
        self.lua_ran = False
        #: backend request handle -> (its multiget, the key positions it asked for).
        self.multigets: dict[int, tuple[MultiGet, list[int]]] = {}
        self.on_multiget_response: Callable[[int, int, Response, int, bytes], None] = (
            self._on_multiget_response
        )
        self._find_passthrough()

    def _find_passthrough(self) -> None:
        hooks = [fn for table in (self.hooks, *self.tagged.values()) for fn in table.values()]
        if not hooks:
            return
        pools = self._as_tuple(self.passthrough_pools(*hooks))
        found = zip(hooks, pools, strict=True)
        self.pass_hooks = [fn for fn, pool in found if pool != NOT_PASSTHROUGH]
        self._read_passthrough()

    def _read_passthrough(self) -> None:
        """(Re)read the pool of every pass-through route."""
        self.lua_ran = False
        hooks = self.pass_hooks
        if not hooks:
            return
        pools = self._as_tuple(self.passthrough_pools(*hooks))
        self.passthrough = {fn: pool for fn, pool in zip(hooks, pools, strict=True) if pool >= 0}

    def _passthrough_pool(self, hook: Any) -> int:
        """The pool ``hook`` passes its requests to, or -1 when it is not a pass-through
        route (now)."""
        if self.lua_ran:
            self._read_passthrough()
        return self.passthrough.get(hook, -1)

    @staticmethod
    def _as_tuple(values: Any) -> tuple[Any, ...]:
        # lupa hands back a bare value when Lua returned only one.
        return values if type(values) is tuple else (values,)

    def hook_for(self, cmd: int, tag: str | None) -> Any:
        """The hook for a command on a connection (spec 2.8): tagged first, then untagged."""
        if tag is not None:
            hooks = self.tagged.get(tag)
            if hooks is not None:
                fn = hooks.get(cmd)
                if fn is not None:
                    return fn
        return self.hooks.get(cmd)

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
        self.tasks[handle] = task
        self.active += 1
        starts = self.starts
        pool_id = self._passthrough_pool(hook)
        if pool_id >= 0 and not starts and not req.noreply and req.cmd in c.KEYED:
            # A pass-through route: what it would do, done here (the reply comes back to
            # _on_pass_response). Noreply requests, which the route rewrites, go through it,
            # and so does every request after one queued for Lua this turn (requests reach
            # their backends in the order they came).
            error = self._send(task, handle, pool_id, req.key, data_of(req), self.on_pass_response)
            if error is None:
                return
            # Not placed: the route runs after all, and its pool call raises this error.
            task.pass_error = (pool_id, error)
        if not starts:
            self.loop.call_soon(self._run_starts)
        starts += (handle, hook, req.cmd, req.line, req.key, req.noreply)

    def multiget(
        self, hook: Any, req: Request, slot: Slot, deliver: Callable[[Slot], None]
    ) -> bool:
        """Serve a multi-key get or gets whose route is a pass-through route with one get per
        backend instead of one routed request per key. The client reads the same bytes: each
        key's route would send ``get <key>`` to the backend its key maps to and return the
        answer (spec 6.4); a backend answers a multi-key get with the same values, in key
        order. The keys still count one by one (``cmd_get``, active requests).

        False, with nothing done, when the per-key way must be taken: another route, a
        request limit or buffer memory limit in force (they count per key), a route queued
        for Lua this turn (backend order), a key too long or not placeable.
        """
        cmd = req.cmd
        if (
            (cmd != c.CMD_GET and cmd != c.CMD_GETS)
            or self.starts
            or self.active_limit != UNLIMITED
            or self.count_replies
        ):
            return False
        pool_id = self._passthrough_pool(hook)
        if pool_id < 0:
            return False
        prefix, keys = multiget_keys(req)
        pool = self.pools[pool_id]
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
        self.cmd_counts[cmd] += n
        self.requests_started += n
        self.active += n
        mg = MultiGet(slot, deliver, keys)
        for index, positions in groups.items():
            backend = backends[index]
            first = 0
            size = 0
            for j, p in enumerate(positions):
                size += len(keys[p]) + 1
                if size > MULTIGET_LINE and j > first:
                    self._send_multiget(mg, backend, prefix, positions[first:j])
                    first = j
                    size = len(keys[p]) + 1
            self._send_multiget(mg, backend, prefix, positions[first:] if first else positions)
        return True

    def _send_multiget(
        self, mg: MultiGet, backend: Backend, prefix: bytes, positions: list[int]
    ) -> None:
        keys = mg.keys
        line = prefix + b" ".join([keys[p] for p in positions]) + b"\r\n"
        handle = self.next_handle
        self.next_handle = handle + 1
        self.multigets[handle] = (mg, positions)
        mg.remaining += 1
        backend.send(line, self.on_multiget_response, handle, MODE_MULTIGET)

    def _on_multiget_response(
        self, handle: int, mode: int, res: Response, elapsed: int, be: bytes
    ) -> None:
        entry = self.multigets.pop(handle, None)
        if entry is None:
            return
        mg, positions = entry
        rtype = res.type
        if res.status == 0 and type(res) is MultiGetResponse:
            split_values(res.raw, res.ends, mg.keys, positions, mg.pieces)
        elif res.status == 0 and rtype == c.RES_GET:
            split_values(res.raw, [len(res.raw) - 5], mg.keys, positions, mg.pieces)
        elif rtype != c.RES_END:
            # A failed backend (or an answer a get cannot have): what each key's route
            # would have returned, the same line for every key it held.
            raw = res.raw
            pieces = mg.pieces
            for p in positions:
                pieces[p] = raw
        mg.remaining -= 1
        if mg.remaining == 0:
            self._multiget_done(mg)

    def _multiget_done(self, mg: MultiGet) -> None:
        self.active -= len(mg.keys)
        slot = mg.slot
        slot.data = b"".join(mg.pieces) + END
        mg.deliver(slot)

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
                self._reply(task, chunk[i + 1], chunk[i + 2], chunk[i + 3], chunk[i + 5])
        elif kind == self.HELD:
            self._advance(handle, self.take(handle))
        else:
            self._advance(handle, (kind,))

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
            self._advance(handle, self.fail(handle, error))

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
            self._complete(handle, b"SERVER_ERROR internal error\r\n")

    def _advance(self, handle: int, result: Any) -> None:
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
                    result = self._internal(handle, result)
                    if result is None:
                        return
                elif kind == self.YIELD_AWAIT:
                    result = self._await(handle, result)
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
        self._complete(handle, b"SERVER_ERROR internal error\r\n")

    def _request(self, result: Any) -> tuple[bytes, bytes | None, bytes, int, int]:
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

    def _placement_error(self, e: Exception) -> bytes:
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
            line, value, key, mode, _ = self._request(result)
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
            backend = pool.backends[pool.select(key)]
        except Exception as e:
            return self._placement_error(e)
        task.backend = backend
        backend.send(data, callback, handle, mode)
        return None

    def _on_pass_response(
        self, handle: int, mode: int, res: Response, elapsed: int, be: bytes
    ) -> None:
        """A pass-through route's reply: the route would return it as it is. (Its bytes would
        be held only until then, so buffer memory only decides whether it is taken.)"""
        task = self.tasks.pop(handle, None)
        if task is None:
            return
        if self.count_replies and self.mem_used > self.mem_limit and res.type:
            res = self._out_of_memory(task.backend)
        self._reply(task, res.raw, res.status, res.code, mode)

    def _on_response(self, handle: int, mode: int, res: Response, elapsed: int, be: bytes) -> None:
        task = self.tasks.get(handle)
        if task is None:
            return
        if self.count_replies:
            if self.mem_used > self.mem_limit and res.type:
                res = self._out_of_memory(task.backend)
            else:
                n = len(res.raw)
                task.mem += n
                self.mem_used += n
        resumes = self.resumes
        if not resumes:
            self.loop.call_soon(self._run_resumes)
        resumes += (handle, res.raw, res.status, res.code, res.vlen, mode, elapsed, res.type, be)

    def _out_of_memory(self, backend: Backend | None) -> Response:
        """A reply arrived while buffer memory is over the limit (spec 6.6): it cannot be
        held, so its backend connection fails (``outofmemory``), and with it every request
        queued there; this one gets the failure too. (Only parsed replies get here: the
        failures that connection then hands out have ``type`` 0 and pass as they are.)"""
        if backend is not None:
            backend.fail("outofmemory")
        return failure_response()

    # -- mcp.await -------------------------------------------------------------------

    def _await(self, handle: int, result: Any) -> Any:
        pool_ids = [int(x) for x in result[1].split(b",")]
        wait_for, mode, detail, logerrors = result[9], result[10], result[11], result[12]
        line, value, key, rmode, _ = self._request(result)
        targets: list[Backend] = []
        for pid in pool_ids:
            pool = self.pools[pid]
            try:
                targets.append(pool.backends[pool.select(key)])
            except Exception as e:
                return self.fail(handle, self._placement_error(e))
        data = line if value is None else line + value
        n = len(targets)
        if mode == AWAIT_FIRST:
            wait_for = 1
        elif wait_for <= 0 or wait_for > n:
            wait_for = n
        aw = Await(handle, n, wait_for, mode, logerrors, detail, line)
        self.await_active += 1
        for index, backend in enumerate(targets):
            sub = self.next_handle
            self.next_handle = sub + 1
            self.awaits[sub] = (aw, index, backend)
            backend.send(data, self._on_await_response, sub, rmode)
        if mode == AWAIT_BACKGROUND:
            # The route goes on at once, with an empty table; every reply is discarded.
            aw.done = True
            return self.resume_await(handle)
        return None

    def _on_await_response(
        self, sub: int, mode: int, res: Response, elapsed: int, be: bytes
    ) -> None:
        entry = self.awaits.pop(sub, None)
        if entry is None:
            return
        aw, index, backend = entry
        aw.arrived += 1
        if aw.arrived == aw.n:
            self.await_active -= 1
        if res.status != 0 and not elapsed:
            # Responses collected by an await are stamped on arrival, failures included.
            elapsed = int((time.monotonic() - aw.t0) * 1_000_000)
        if aw.done:
            # Late: discarded (its backend IO has completed); mcp.await_logerrors logs the
            # failed ones.
            if aw.logerrors and res.status != 0:
                self.events.emit(
                    "proxy_req",
                    elapsed=elapsed,
                    res_type=res.type,
                    code=res.code,
                    status=res.status,
                    be=be.decode("utf-8", "replace"),
                    detail=aw.detail.decode("utf-8", "replace")[:150],
                    req=_log_line(aw.line),
                )
            return
        task = self.tasks.get(aw.handle)
        if task is None:
            aw.done = True
            return
        if self.count_replies and self.mem_used > self.mem_limit and res.type:
            res = self._out_of_memory(backend)
        amode = aw.mode
        if amode == AWAIT_FIRST:
            # Only the first pool's reply counts, whatever its status; others are dropped.
            if index != 0:
                return
            aw.results.append((res, mode, elapsed, be))
            aw.remaining = 0
        else:
            aw.results.append((res, mode, elapsed, be))
            if aw.remaining > 0:
                ok = res.status == 0
                if amode == AWAIT_GOOD:
                    good = ok and res.code != c.MCMC_CODE_END
                elif amode == AWAIT_OK:
                    good = ok
                elif amode == AWAIT_ANY:
                    good = True
                else:  # AWAIT_FASTGOOD: a hit completes at once; an ok miss counts
                    if ok and res.code != c.MCMC_CODE_END:
                        aw.remaining = 0
                    good = ok
                if good and aw.remaining > 0:
                    aw.remaining -= 1
        if self.count_replies:
            n = len(res.raw)
            task.mem += n
            self.mem_used += n
        if aw.remaining <= 0 or aw.arrived == aw.n:
            aw.done = True
            flat: list[Any] = []
            for r, m, el, name in aw.results:
                flat += (r.raw, r.status, r.code, r.vlen, m, el, r.type, name)
            self._advance(aw.handle, self.resume_await(aw.handle, *flat))

    # -- mcp.internal ----------------------------------------------------------------

    def _internal(self, handle: int, result: Any) -> Any:
        """Run the request against the proxy's own cache (spec 2.10, 8).

        The request arrives without noreply/quiet (the driver rewrote it, as for a backend),
        so the cache always answers; the reply mode then decides what the client sees
        ([R]: 1.6.20 ignored classic noreply and ``ma``'s ``q`` here).
        """
        line, value, _key, mode, cmd = self._request(result)
        if cmd not in INTERNAL_COMMANDS:
            # The route is abandoned (not resumed), as in memcached; its slot is released.
            self.abandon(handle)
            self._complete(handle, BAD_REQUEST)
            return None
        if result[3] is None:
            reply = self.cache.execute(self.tasks[result[2]].req)
        else:
            items = RequestReader(max_value=_INTERNAL_MAX_VALUE).feed(
                line if value is None else line + value
            )
            if not items:
                reply = BAD_DATA_CHUNK  # the data block is shorter than the line says
            elif type(items[0]) is Request:
                reply = self.cache.execute(items[0])
            else:
                reply = items[0].reply  # type: ignore[union-attr]
        res = classify(reply)
        result = self.resume(handle, reply, 0, res.code, res.vlen, mode, 0, res.type, _INTERNAL_BE)
        if result == self.DONE_SAME:
            return (self.DONE_RES, reply, 0, res.code, mode)
        return result

    # -- replies ---------------------------------------------------------------------

    def _finish(self, handle: int, result: Any) -> None:
        task = self.tasks.pop(handle, None)
        if task is None:
            return
        kind = result[0]
        if kind == self.DONE_RES:
            self._reply(task, result[1], result[2], result[3], result[4])
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

    def _reply(self, task: Task, raw: bytes, status: int, code: int, mode: int) -> None:
        """The route returned a response: its bytes, as the client's reply mode wants them."""
        if mode == MODE_NOREPLY:
            # A noreply client reads no reply: like memcached itself, send nothing but
            # server errors (a backend failure, out of memory...).
            if not raw.startswith(b"SERVER_ERROR"):
                raw = b""
        elif status == 0:
            if mode and (
                code == c.MCMC_CODE_END or (mode == MODE_QUIET and code == c.MCMC_CODE_OK)
            ):
                raw = b""
            elif task.mget:
                # A multiget piece: a miss says nothing, a hit comes without its END.
                if code == c.MCMC_CODE_END:
                    raw = b""
                elif raw.endswith(b"END\r\n") and raw.startswith(b"VALUE "):
                    raw = raw[:-5]
        self._done(task, raw)

    def _complete(self, handle: int, data: bytes) -> None:
        task = self.tasks.pop(handle, None)
        if task is not None:
            self._done(task, data)

    def _done(self, task: Task, data: bytes) -> None:
        """The route of ``task`` completed (its slot is released): ``data`` is the reply."""
        self.active -= 1
        if task.mem:
            self.mem_used -= task.mem
        slot = task.slot
        slot.data = data
        task.deliver(slot)

    def abort_all(self) -> None:
        """Fail every running route (shutdown)."""
        for handle in list(self.tasks):
            self.abandon(handle)
            self._complete(handle, SHUTTING_DOWN)
        shutdown = Response(0, c.MCMC_CODE_SERVER_ERROR, c.STATUS_FAILED, SHUTTING_DOWN)
        for handle in list(self.multigets):
            self._on_multiget_response(handle, MODE_MULTIGET, shutdown, 0, b"")


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


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _log_line(line: bytes) -> str:
    """A request line as proxy_req log lines show it: no terminator, at most 300 bytes."""
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return line[:300].decode("utf-8", "replace")


def classify(reply: bytes) -> Response:
    """Parse a locally generated reply the way a backend reply is parsed."""
    responses = ResponseReader().feed(reply)
    if not responses:
        return Response(0, c.MCMC_CODE_SERVER_ERROR, -1, reply)
    first = responses[0]
    return Response(first.type, first.code, first.status, reply, first.vlen)
