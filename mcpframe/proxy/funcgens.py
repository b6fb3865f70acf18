"""API v2 routes: requests attached to a function generator (spec v2 sections 2 and 3).

The Lua half (``mcp_funcgen.lua``) runs the slots; this half does their I/O. Requests that
start in one loop turn go to the driver in one call (``start``), replies and fired timers of
one turn in another (``events``); each call answers a flat list of actions (see the Lua
file): requests to send to a pool or to the proxy's own cache, timers to set, client replies,
slot releases and log lines. A request counts as active (``active_req_limit``) from its start
to its slot's release, which may come after its reply (requests still in flight when the
route returned, spec 3.15). The task, reply slot, placement and reply rules are the router's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from mcpframe.protocol.reader import RequestReader
from mcpframe.protocol.replies import (
    BAD_DATA_CHUNK,
    BAD_REQUEST,
    BAD_RESPONSE,
    INTERNAL_ERROR,
    LUA_FAILURE,
    START_FAILURE,
)
from mcpframe.protocol.request import Request
from mcpframe.protocol.response import Response, failure_response
from mcpframe.proxy.backend import Backend
from mcpframe.proxy.backend_log import BackendLogs
from mcpframe.proxy.internal import _INTERNAL_BE, _INTERNAL_MAX_VALUE, INTERNAL_COMMANDS, classify
from mcpframe.proxy.task import MODE_NORMAL, Task, data_of, reply_bytes
from mcpframe.proxy.turn import TURN

if TYPE_CHECKING:
    from mcpframe.proxy.router import Router

START_ARGS: Final = 6
EVENT_ARGS: Final = 9
MAX_BATCH: Final = 256


class FuncGens:
    """The router's v2 requests: starts and events of this turn, and replied requests whose
    slots are still busy."""

    def __init__(self, router: Router) -> None:
        self.router = router
        vm = router.config.routes
        state = vm.state
        v2 = state[b"v2"]
        self.start_fn = v2[b"start"]
        self.events_fn = v2[b"events"]
        self._funcs_stats = v2[b"funcs_stats"]
        codes = vm.codes
        #: values per action, by kind (index 0 unused)
        widths = state[b"action_widths"]
        self.widths: list[int] = [0] + [int(widths[k]) for k in range(1, len(widths) + 1)]
        self.A_SEND = codes["A_SEND"]
        self.A_SEND_REQ = codes["A_SEND_REQ"]
        self.A_SEND_OWN = codes["A_SEND_OWN"]
        self.A_TIMER = codes["A_TIMER"]
        self.A_REPLY = codes["A_REPLY"]
        self.A_REPLY_EV = codes["A_REPLY_EV"]
        self.A_REPLY_OWN = codes["A_REPLY_OWN"]
        self.A_RELEASE = codes["A_RELEASE"]
        self.INTERNAL_POOL = codes["INTERNAL_POOL"]
        self.DONE_RES = codes["DONE_RES"]
        self.DONE_STR = codes["DONE_STR"]
        self.DONE_ERR = codes["DONE_ERR"]
        self.START_FAIL = codes["START_FAIL"]
        is_funcgen = v2[b"is_funcgen"]
        #: The hooks that are function generators (the others are v1 route functions).
        self.hooks: set[Any] = {
            fn
            for table in (router.hooks, *router.tagged.values())
            for fn in table.values()
            if is_funcgen(fn)
        }
        self.starts: list[Any] = []
        self.events: list[Any] = []
        #: Replied, slot not yet released: task handle -> task.
        self.replied: dict[int, Task] = {}
        #: While a buffer memory limit is set: sub-request -> (task handle, its backend).
        self.holders: dict[int, tuple[int, Backend]] = {}
        self.on_response: Callable[[int, int, Response, int, bytes], None] = self._on_response
        state[b"py_cfd"] = self._cfd
        state[b"py_tls_peer_cn"] = self._tls_peer_cn
        self._state = state
        #: automatic backend logging (spec v2 8.8): only when a backend asks for it.
        self.logs = BackendLogs(router.events)
        self.log_pending = self.logs.pending  # (read per reply: one attribute, not two)
        self.log_backends = any(b.spec.log for p in router.pools for b in p.backends)
        state[b"py_value"] = self._value

    def start(self, handle: int, hook: Any, req: Request) -> None:
        """Queue the request of task ``handle`` for a slot of the funcgen ``hook``."""
        starts = self.starts
        if not starts:
            self.router.loop.call_soon(self._run_starts)
        starts += (handle, hook, req.cmd, req.line, req.key, req.noreply)

    def _run_starts(self) -> None:
        batch, self.starts = self.starts, []
        tasks = self.router.tasks
        for i in range(0, len(batch), START_ARGS):
            if batch[i] not in tasks:  # ended since (shutdown): leave it out
                batch = [
                    v
                    for j in range(0, len(batch), START_ARGS)
                    if batch[j] in tasks
                    for v in batch[j : j + START_ARGS]
                ]
                break
        self._run(batch, START_ARGS, self.start_fn, True)

    def _run_events(self) -> None:
        batch, self.events = self.events, []
        self._run(batch, EVENT_ARGS, self.events_fn, False)

    def _run(self, batch: list[Any], width: int, call: Any, starting: bool) -> None:
        router = self.router
        TURN.active = True
        router.lua_ran = True
        try:
            step = width * MAX_BATCH
            for first in range(0, len(batch), step):
                chunk = batch[first : first + step]
                try:
                    actions = call(*chunk)
                except Exception as e:  # a bug of ours: these requests fail, nothing else
                    router.events.emit("proxy_error", msg=f"internal error running a route: {e!r}")
                    if starting:
                        for i in range(0, len(chunk), width):
                            router.complete(chunk[i], INTERNAL_ERROR)
                    continue
                if actions is not None:
                    self._act(actions, chunk)
        finally:
            TURN.end_batch()

    def _act(self, actions: tuple[Any, ...], chunk: list[Any]) -> None:
        """Do the driver's ``actions`` (see the Lua file); ``chunk``: the call's arguments."""
        widths = self.widths
        i = 0
        j = 0
        n = len(actions)
        while i < n:
            kind: int = actions[i]
            try:
                if kind == self.A_SEND_OWN:
                    handle = actions[i + 1]
                    self._send_req(handle, handle, actions[i + 2], handle)
                elif kind == self.A_SEND_REQ:
                    self._send_req(actions[i + 1], actions[i + 2], actions[i + 3], actions[i + 4])
                elif kind == self.A_REPLY_OWN:
                    # REPLY_EV for the reply whose id is the task's handle, released
                    j = actions[i + 1]
                    self._reply_with(
                        chunk[j - 1],
                        self.DONE_RES,
                        chunk[j],
                        chunk[j + 1],
                        chunk[j + 2],
                        chunk[j + 4],
                        True,
                    )
                elif kind == self.A_REPLY_EV:
                    # the response made from the reply at chunk[j - 1:j - 1 + EVENT_ARGS]
                    # (1-based j), unedited
                    j = actions[i + 2]
                    self._reply_with(
                        actions[i + 1],
                        self.DONE_RES,
                        chunk[j],
                        chunk[j + 1],
                        chunk[j + 2],
                        chunk[j + 4],
                        actions[i + 3],
                    )
                elif kind == self.A_SEND:
                    self._send(actions, i)
                elif kind == self.A_REPLY:
                    self._reply(actions, i)
                elif kind == self.A_RELEASE:
                    self._release(actions[i + 1])
                elif kind == self.A_TIMER:
                    self.router.loop.call_later(
                        float(actions[i + 3]), self._on_timer, actions[i + 2]
                    )
                else:  # A_LOG
                    self.router.events.emit("proxy_error", msg=_text(actions[i + 2])[:512])
            except Exception as e:  # a bug of ours must cost one request, not the batch
                self.router.events.emit("proxy_error", msg=f"internal error running a route: {e!r}")
            i += widths[kind]

    # -- sending -------------------------------------------------------------------------

    def _send_req(self, handle: int, sub: int, pool_id: int, h: int) -> None:
        """A SEND_REQ action: the client request of task ``h``, unchanged (Python holds its
        bytes), to a pool or to the proxy's own cache."""
        task = self._task(h)
        if task is None:
            return
        req = task.req
        if pool_id >= 0:
            self._to_pool(handle, sub, pool_id, req.key, data_of(req), MODE_NORMAL)
        else:
            self._run_internal(sub, req, b"", None, MODE_NORMAL, req.cmd)

    def _send(self, a: tuple[Any, ...], i: int) -> None:
        """A SEND action: a request a route built or edited (its form: see the Lua driver)
        to a pool, or to the proxy's own cache."""
        sub = a[i + 2]
        pool_id = a[i + 3]
        line = a[i + 4]
        vh = a[i + 6]
        mode = a[i + 8]
        value = a[i + 5]
        if value is None and vh:
            # A client request keeps its data block through edits (payload stays here).
            task = self._task(vh)
            value = task.req.value if task is not None else None
        if pool_id >= 0:
            data = line if value is None else line + value
            self._to_pool(a[i + 1], sub, pool_id, a[i + 7], data, mode)
        else:
            self._run_internal(sub, None, line, value, mode, a[i + 9])

    def _to_pool(
        self, handle: int, sub: int, pool_id: int, key: bytes, data: bytes, mode: int
    ) -> None:
        router = self.router
        pool = router.pools[pool_id]
        try:
            backend = pool.backends[pool.select(key)]
        except Exception as e:
            # a failed result for the handle (v1 routes raise the text at their pool call)
            router.placement_error(e)
            self._event(sub, failure_response(), mode, 0, b"")
            return
        if router.count_replies:
            self.holders[sub] = (handle, backend)
        if self.log_backends:
            log = backend.spec.log
            if log is not None and self._state[b"want_reqs"]:
                self.logs.sent(sub, log, data, self._cfd(handle), backend.spec.name)
        backend.send(data, self.on_response, sub, mode)

    def _run_internal(
        self, sub: int, req: Request | None, line: bytes, value: bytes | None, mode: int, cmd: int
    ) -> None:
        """``mcp.internal_handler`` (and ``mcp.internal``): run against the proxy's cache now;
        the reply arrives as an event, like a backend's."""
        cache = self.router.cache
        if cmd not in INTERNAL_COMMANDS:
            reply = BAD_REQUEST
        elif req is not None:
            reply = cache.execute(req)
        else:
            items = RequestReader(max_value=_INTERNAL_MAX_VALUE).feed(
                line if value is None else line + value
            )
            if not items:
                reply = BAD_DATA_CHUNK
            elif type(items[0]) is Request:
                reply = cache.execute(items[0])
            else:
                reply = items[0].reply  # type: ignore[union-attr]
        self._event(sub, classify(reply), mode, 0, _INTERNAL_BE)

    def _on_response(self, sub: int, mode: int, res: Response, elapsed: int, be: bytes) -> None:
        router = self.router
        if self.log_pending:
            self.logs.arrived(sub, res, elapsed)
        if router.count_replies:
            # buffer_memory_limit (spec 6.6): the reply is held by its request until the
            # request's slot is released; past the limit, its backend connection fails.
            holder = self.holders.pop(sub, None)
            if holder is not None:
                task = self._task(holder[0])
                if router.mem_used > router.mem_limit and res.type:
                    res = router.out_of_memory(holder[1])
                elif task is not None:
                    n = len(res.raw)
                    task.mem += n
                    router.mem_used += n
        self._event(sub, res, mode, elapsed, be)

    def _event(self, sub: int, res: Response, mode: int, elapsed: int, be: bytes) -> None:
        events = self.events
        if not events:
            self.router.loop.call_soon(self._run_events)
        events += (sub, res.raw, res.status, res.code, res.vlen, mode, elapsed, res.type, be)

    def _on_timer(self, token: int) -> None:
        events = self.events
        if not events:
            self.router.loop.call_soon(self._run_events)
        events += (token, False, None, None, None, None, None, None, None)

    # -- replies -------------------------------------------------------------------------

    def _task(self, handle: int) -> Task | None:
        task = self.router.tasks.get(handle)
        return task if task is not None else self.replied.get(handle)

    def _reply(self, a: tuple[Any, ...], i: int) -> None:
        self._reply_with(a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7])

    def _reply_with(
        self, handle: int, kind: int, x1: Any, x2: Any, x3: Any, x4: Any, released: bool
    ) -> None:
        """The route of task ``handle`` returned: a REPLY action's values (see the Lua
        driver)."""
        router = self.router
        task = router.tasks.pop(handle, None)
        if task is None:
            return
        if released:
            # released with its reply (nothing left in flight): no longer active
            router.active -= 1
            if task.mem:
                router.mem_used -= task.mem
        else:
            self.replied[handle] = task
        if kind == self.DONE_RES:
            data = reply_bytes(x1, x2, x3, x4, task.mget)
        elif kind == self.DONE_STR:
            data = x1
            if task.mget and data.startswith(b"VALUE ") and data.endswith(b"END\r\n"):
                data = data[:-5]  # a multiget piece, as a response's (spec v2 2.8)
        elif kind == self.DONE_ERR or kind == self.START_FAIL:
            msg = _text(x1)
            router.events.emit(
                "proxy_error",
                msg=msg[:512],
                traceback=_text(x2) if x2 is not None else msg,
            )
            data = START_FAILURE if kind == self.START_FAIL else LUA_FAILURE
        else:
            data = BAD_RESPONSE
        latency = router.latency
        if latency is not None and task.series >= 0:
            latency.observe(task.series, int((time.monotonic() - task.t0) * 1_000_000))
        slot = task.slot
        slot.data = data
        task.deliver(slot)

    def _release(self, handle: int) -> None:
        """The slot of task ``handle`` is free: the request stops counting as active."""
        task = self.replied.pop(handle, None)
        if task is None:
            return
        router = self.router
        router.active -= 1
        if task.mem:
            router.mem_used -= task.mem

    @staticmethod
    def _transport(task: Task | None) -> Any:
        """The client connection's transport of ``task`` (None when gone)."""
        conn = getattr(task.deliver, "__self__", None) if task is not None else None
        return getattr(conn, "transport", None)

    def _cfd(self, handle: int) -> int:
        """``rctx:cfd()``: the client connection's file descriptor."""
        transport = self._transport(self._task(handle))
        sock = transport.get_extra_info("socket") if transport is not None else None
        return sock.fileno() if sock is not None else 0

    def _tls_peer_cn(self, handle: int) -> bytes | None:
        """``rctx:tls_peer_cn()``: the common name of the client's certificate, while the
        request is not yet answered (None: no TLS, no certificate, or answered)."""
        transport = self._transport(self.router.tasks.get(handle))
        cert = transport.get_extra_info("peercert") if transport is not None else None
        for rdn in cert.get("subject", ()) if cert else ():
            for name, value in rdn:
                if name == "commonName":
                    return str(value).encode()
        return None

    def _value(self, handle: int) -> bytes | None:
        """A mutator's ``valcopy`` from a client request: its data block (CRLF included)."""
        task = self._task(handle)
        return task.req.value if task is not None else None

    def funcs_stats(self) -> tuple[Any, ...]:
        """(name, funcgens, slots) flattened, per funcgen name (``stats proxyfuncs``)."""
        flat = self._funcs_stats()
        if flat is None:
            return ()
        return flat if type(flat) is tuple else (flat,)

    def abort_all(self) -> None:
        """Shutdown: replied requests stop counting."""
        for handle in list(self.replied):
            self._release(handle)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
