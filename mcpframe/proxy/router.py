"""The route executor: runs Lua routes for client requests and services their pool calls.

One request's life (DESIGN.md "One request, end to end"): ``run`` calls the Lua driver's
``start``; the route runs until it returns or calls a pool. For a pool call the driver hands
back (pool id, request handle[, edited line, value]); the pool picks a backend from the key,
the request bytes are queued there, and the backend's reply comes back through
``_on_response`` which calls the driver's ``resume``. When the route returns, the reply is
put in the client's slot, honouring noreply/quiet and multiget rules (spec 4.3, 4.4, 6.4).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from mcpframe.cache import Cache
from mcpframe.lua.config import LoadedConfig
from mcpframe.protocol import commands as c
from mcpframe.protocol.backend import ResponseReader
from mcpframe.protocol.reader import parse_request_line
from mcpframe.protocol.request import Request
from mcpframe.protocol.response import Response
from mcpframe.proxy.backend import Backend
from mcpframe.proxy.events import EventLog

LUA_FAILURE = b"SERVER_ERROR lua failure\r\n"
BAD_RESPONSE = b"SERVER_ERROR bad response\r\n"
BAD_REQUEST = b"SERVER_ERROR bad request\r\n"

# Reply modes, recorded per request sent and carried by its response (spec 4.4).
MODE_NORMAL = 0
MODE_NOREPLY = 1  # classic noreply: suppress any OK reply
MODE_QUIET = 2  # meta q: suppress EN and OK codes
MODE_QUIET_MG = 3  # meta q on mg: suppress EN only

INTERNAL_COMMANDS = frozenset(
    {
        c.CMD_MG, c.CMD_MS, c.CMD_MD, c.CMD_MA, c.CMD_GET, c.CMD_GETS, c.CMD_GAT, c.CMD_GATS,
        c.CMD_SET, c.CMD_ADD, c.CMD_APPEND, c.CMD_PREPEND, c.CMD_CAS, c.CMD_REPLACE,
        c.CMD_INCR, c.CMD_DECR, c.CMD_DELETE, c.CMD_TOUCH,
    }
)  # fmt: skip

META = frozenset({c.CMD_MG, c.CMD_MS, c.CMD_MD, c.CMD_MA, c.CMD_ME})


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


def wire_bytes(line: bytes, value: bytes | None, cmd: int, noreply: bool) -> tuple[bytes, int]:
    """The bytes sent to a backend and the reply mode, after the noreply/quiet rewrite.

    The backend must answer every request we send it, so replies stay matched FIFO and a
    failure can be told from a success; the proxy then suppresses the reply on the way out.
    Classic noreply: memcached 1.6.20 turns ``noreply`` into ``noreplY``; we drop the token
    instead, because real memcached servers reject ``delete <key> noreplY`` with
    ``CLIENT_ERROR bad command line format`` (which would also reset the connection).
    Meta quiet: every flag token starting with ``q`` has its ``q`` blanked, as memcached does.
    """
    if not noreply:
        return (line + value if value is not None else line), MODE_NORMAL
    if cmd in META:
        toks = line.split(b" ")
        first = 3 if cmd == c.CMD_MS else 2
        for i in range(first, len(toks)):
            if toks[i][:1] == b"q":
                toks[i] = b" " + toks[i][1:]
        line = b" ".join(toks)
        mode = MODE_QUIET_MG if cmd == c.CMD_MG else MODE_QUIET
    else:
        body = line.rstrip(b"\r\n")
        if body.endswith(b"noreply"):
            body = body[: -len(b"noreply")].rstrip(b" ")
        line = body + b"\r\n"
        mode = MODE_NOREPLY
    if value is not None:
        return line + value, mode
    return line, mode


AWAIT_GOOD, AWAIT_ANY, AWAIT_OK, AWAIT_FIRST, AWAIT_FASTGOOD, AWAIT_BACKGROUND = range(6)


class Await:
    """One pending mcp.await: responses in arrival order until its condition holds."""

    __slots__ = (
        "arrived", "detail", "done", "handle", "line", "logerrors", "mode", "n", "remaining",
        "results", "subs",
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
        self.subs: list[int] = []


class Task:
    """One running route: where its reply goes and the client request it serves."""

    __slots__ = ("deliver", "mget", "req", "slot")

    def __init__(
        self, req: Request, slot: Slot, mget: bool, deliver: Callable[[Slot], None]
    ) -> None:
        self.req = req
        self.slot = slot
        self.mget = mget
        self.deliver = deliver


class Router:
    """Runs the routes of one loaded config."""

    def __init__(
        self,
        config: LoadedConfig,
        pools: list[Pool],
        cache: Cache,
        events: EventLog,
    ) -> None:
        self.config = config
        vm = config.routes
        self.start = vm.start
        self.resume = vm.resume
        self.fail = vm.fail
        codes = vm.codes
        self.YIELD_POOL = codes["YIELD_POOL"]
        self.YIELD_INTERNAL = codes["YIELD_INTERNAL"]
        self.YIELD_AWAIT = codes["YIELD_AWAIT"]
        self.resume_await = vm.resume_await
        self.DONE_RES = codes["DONE_RES"]
        self.DONE_STR = codes["DONE_STR"]
        self.DONE_ERR = codes["DONE_ERR"]
        self.hooks: dict[int, Any] = vm.hooks.get("", {})
        self.tagged: dict[str, dict[int, Any]] = {t: h for t, h in vm.hooks.items() if t}
        self.pools = pools
        self.cache = cache
        self.events = events
        self.tasks: dict[int, Task] = {}
        self.awaits: dict[int, Await] = {}
        self.await_active = 0
        self.next_handle = 1
        self.active = 0
        self.requests_started = 0
        #: routed requests per command code (``stats proxy`` cmd_*), refusals included.
        self.cmd_counts = [0] * (c.CMD_ANY + 1)

    def hook_for(self, cmd: int, tag: str | None) -> Any:
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
        handle = self.next_handle
        self.next_handle = handle + 1
        self.tasks[handle] = Task(req, slot, mget, deliver)
        self.active += 1
        self.requests_started += 1
        self.cmd_counts[req.cmd] += 1
        self._advance(handle, self.start(handle, hook, req.cmd, req.line, req.key))

    def _advance(self, handle: int, result: Any) -> None:
        try:
            self._step(handle, result)
        except Exception as e:  # a bug of ours must cost one request, not a connection
            self.events.emit("proxy_error", msg=f"internal error running a route: {e!r}")
            self._complete(handle, b"SERVER_ERROR internal error\r\n")

    def _step(self, handle: int, result: Any) -> None:
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
                continue
            if kind == self.YIELD_INTERNAL:
                result = self._internal(handle, result)
                if result is None:
                    return
                continue
            if kind == self.YIELD_AWAIT:
                result = self._await(handle, result)
                if result is None:
                    return
                continue
            self._finish(handle, result)
            return

    def _request_bytes(self, result: Any) -> tuple[bytes, bytes | None, int, bytes, bool]:
        """(line, value, cmd, key, noreply) of the request a route passed to a call.

        The driver sends (kind, id, handle) for an unedited client request, whose bytes we
        hold; otherwise (kind, id, handle, line, value, value-handle, ...).
        """
        rh = result[2]
        line = result[3] if len(result) > 3 else None
        if line is None:
            req = self.tasks[rh].req
            return req.line, req.value, req.cmd, req.key, req.noreply
        parsed = parse_request_line(line)
        value = result[4]
        if rh:
            # An edited client request keeps its data block.
            value = self.tasks[rh].req.value
        elif value is None and result[5]:
            task = self.tasks.get(result[5])
            value = task.req.value if task is not None else None
        return parsed.line, value, parsed.cmd, parsed.key, parsed.noreply

    def _send_to_pool(self, handle: int, result: Any) -> bytes | None:
        pool = self.pools[result[1]]
        try:
            line, value, cmd, key, noreply = self._request_bytes(result)
        except ValueError as e:
            return str(e).encode()
        try:
            index = pool.select(key)
        except IndexError as e:
            return str(e).encode()
        except Exception as e:
            # A plugin (hasher, filter, dist) raised: this request fails, nothing else does.
            self.events.emit("proxy_error", msg=f"key placement failed in plugin code: {e!r}")
            return f"key placement failed: {e}".encode()
        data, mode = wire_bytes(line, value, cmd, noreply)
        pool.backends[index].send(data, self._on_response, handle, mode)
        return None

    def _on_response(self, handle: int, mode: int, res: Response, elapsed: int, be: bytes) -> None:
        if handle not in self.tasks:
            return
        self._advance(
            handle,
            self.resume(
                handle, res.raw, res.status, res.code, res.vlen, mode, elapsed, res.type, be
            ),
        )

    # -- mcp.await -------------------------------------------------------------------

    def _await(self, handle: int, result: Any) -> Any:
        pool_ids = [int(x) for x in result[1].split(b",")]
        wait_for, mode, detail, logerrors = result[6], result[7], result[8], result[9]
        try:
            line, value, cmd, key, noreply = self._request_bytes(result)
        except ValueError as e:
            return self.fail(handle, str(e).encode())
        targets = []
        for pid in pool_ids:
            pool = self.pools[pid]
            try:
                targets.append(pool.backends[pool.select(key)])
            except Exception as e:
                return self.fail(handle, str(e).encode())
        data, rmode = wire_bytes(line, value, cmd, noreply)
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
            self.awaits[sub] = aw
            aw.subs.append(sub)
            backend.send(data, self._on_await_response, sub, rmode | (index << 8))
        if mode == AWAIT_BACKGROUND:
            aw.done = True
            return self.resume_await(handle)
        return None

    def _on_await_response(
        self, sub: int, mode: int, res: Response, elapsed: int, be: bytes
    ) -> None:
        aw = self.awaits.pop(sub, None)
        if aw is None:
            return
        index = mode >> 8
        mode &= 0xFF
        aw.arrived += 1
        if aw.arrived == aw.n:
            self.await_active -= 1
        if aw.done:
            if aw.logerrors and res.status != 0:
                self.events.emit(
                    "proxy_req",
                    elapsed=elapsed,
                    res_type=res.type,
                    code=res.code,
                    status=res.status,
                    be=be.decode(),
                    detail=aw.detail.decode("utf-8", "replace"),
                    req=aw.line.rstrip(b"\r\n").decode("utf-8", "replace")[:300],
                )
            return
        ok = res.status == 0
        hit = ok and res.code != c.MCMC_CODE_END
        amode = aw.mode
        if amode == AWAIT_FIRST:
            if index != 0:
                return
            aw.results.append((res, mode, elapsed, be))
            aw.remaining = 0
        else:
            aw.results.append((res, mode, elapsed, be))
            if aw.remaining > 0:
                if amode == AWAIT_GOOD:
                    good = hit
                elif amode == AWAIT_OK:
                    good = ok
                elif amode == AWAIT_ANY:
                    good = True
                else:  # AWAIT_FASTGOOD
                    if hit:
                        aw.remaining = 0
                    good = ok
                if good and aw.remaining > 0:
                    aw.remaining -= 1
        if aw.remaining <= 0 or aw.arrived == aw.n:
            aw.done = True
            if aw.handle not in self.tasks:
                return
            flat: list[Any] = []
            for r, m, el, name in aw.results:
                flat += (r.raw, r.status, r.code, r.vlen, m, el, r.type, name)
            self._advance(aw.handle, self.resume_await(aw.handle, *flat))

    def _internal(self, handle: int, result: Any) -> Any:
        try:
            line, value, cmd, _key, noreply = self._request_bytes(result)
        except ValueError as e:
            return self.fail(handle, str(e).encode())
        if cmd not in INTERNAL_COMMANDS:
            self._complete(handle, BAD_REQUEST)
            return None
        req = parse_request_line(line)
        req.value = value
        _, mode = wire_bytes(line, None, cmd, noreply)
        # The local engine honours noreply/quiet itself; here the route must see the reply,
        # so ask without it and let the mode suppress it on the way out.
        req.noreply = False
        reply = self.cache.execute(req)
        res = classify(reply)
        return self.resume(
            handle, reply, res.status, res.code, res.vlen, mode, 0, res.type, b"internal:0"
        )

    def _finish(self, handle: int, result: Any) -> None:
        kind = result[0]
        if kind == self.DONE_RES:
            raw, status, code, mode = result[1], result[2], result[3], result[4]
            task = self.tasks.get(handle)
            if mode == MODE_NOREPLY and code != c.MCMC_CODE_SERVER_ERROR:
                # A noreply client never reads a reply: like memcached itself, send nothing
                # but server errors (a backend failure, out of memory).
                raw = b""
            elif status == 0 and task is not None:
                if mode and _suppressed(mode, code):
                    raw = b""
                elif task.mget:
                    if code == c.MCMC_CODE_END:
                        raw = b""
                    elif raw.endswith(b"END\r\n") and raw.startswith(b"VALUE "):
                        raw = raw[:-5]
            self._complete(handle, raw)
        elif kind == self.DONE_STR:
            self._complete(handle, result[1])
        elif kind == self.DONE_ERR:
            msg = result[1]
            text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
            self.events.emit("proxy_error", msg=text)
            self._complete(handle, LUA_FAILURE)
        else:
            self._complete(handle, BAD_RESPONSE)

    def _complete(self, handle: int, data: bytes) -> None:
        task = self.tasks.pop(handle, None)
        if task is None:
            return
        self.active -= 1
        task.slot.data = data
        task.deliver(task.slot)

    def abort_all(self) -> None:
        """Fail every running route (shutdown)."""
        for handle in list(self.tasks):
            self._complete(handle, b"SERVER_ERROR shutting down\r\n")


def _suppressed(mode: int, code: int) -> bool:
    if mode == MODE_NOREPLY:
        return True
    if code == c.MCMC_CODE_END:
        return True
    return mode == MODE_QUIET and code == c.MCMC_CODE_OK


def classify(reply: bytes) -> Response:
    """Parse a locally generated reply the way a backend reply is parsed."""
    if not reply:
        return Response(0, c.MCMC_CODE_OK, 0, b"")
    responses = ResponseReader().feed(reply)
    if not responses:
        return Response(0, c.MCMC_CODE_SERVER_ERROR, -1, reply)
    first = responses[0]
    return Response(first.type, first.code, first.status, reply, first.vlen)


def format_exception(e: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(e), e)).strip()
