"""``mcp.await``: one request sent to several pools, the route resumed when the await's mode
(spec 2.9: GOOD, ANY, OK, FIRST, FASTGOOD, BACKGROUND) is satisfied."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from mcpframe.protocol import commands as c
from mcpframe.protocol.response import Response
from mcpframe.proxy.backend import Backend

if TYPE_CHECKING:
    from mcpframe.proxy.router import Router

AWAIT_GOOD: Final = 0
AWAIT_ANY: Final = 1
AWAIT_OK: Final = 2
AWAIT_FIRST: Final = 3
AWAIT_FASTGOOD: Final = 4
AWAIT_BACKGROUND: Final = 5


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


class Awaits:
    """The router's awaits in flight."""

    def __init__(self, router: Router) -> None:
        self.router = router
        #: await sub-request handle -> (its await, pool index, backend).
        self.pending: dict[int, tuple[Await, int, Backend]] = {}
        #: Awaits with replies still owed (``proxy_await_active``).
        self.active = 0
        #: Bound once: every request sent to a backend carries it.
        self.on_response: Callable[[int, int, Response, int, bytes], None] = self._on_response

    def start(self, handle: int, result: Any) -> Any:
        """The route ``handle`` called ``mcp.await`` (the driver's answer ``result``): send
        the request to each pool. What the driver answered when the route goes on at once,
        else None (it is resumed when the replies are in)."""
        router = self.router
        pool_ids = [int(x) for x in result[1].split(b",")]
        wait_for, mode, detail, logerrors = result[9], result[10], result[11], result[12]
        line, value, key, rmode, _ = router.request_of(result)
        targets: list[Backend] = []
        for pid in pool_ids:
            pool = router.pools[pid]
            try:
                targets.append(pool.backends[pool.select(key)])
            except Exception as e:
                return router.fail(handle, router.placement_error(e))
        data = line if value is None else line + value
        n = len(targets)
        if mode == AWAIT_FIRST:
            wait_for = 1
        elif wait_for <= 0 or wait_for > n:
            wait_for = n
        aw = Await(handle, n, wait_for, mode, logerrors, detail, line)
        self.active += 1
        for index, backend in enumerate(targets):
            sub = router.next_handle
            router.next_handle = sub + 1
            self.pending[sub] = (aw, index, backend)
            backend.send(data, self.on_response, sub, rmode)
        if mode == AWAIT_BACKGROUND:
            # The route goes on at once, with an empty table; every reply is discarded.
            aw.done = True
            return router.resume_await(handle)
        return None

    def _on_response(self, sub: int, mode: int, res: Response, elapsed: int, be: bytes) -> None:
        entry = self.pending.pop(sub, None)
        if entry is None:
            return
        aw, index, backend = entry
        router = self.router
        aw.arrived += 1
        if aw.arrived == aw.n:
            self.active -= 1
        if res.status != 0 and not elapsed:
            # Responses collected by an await are stamped on arrival, failures included.
            elapsed = int((time.monotonic() - aw.t0) * 1_000_000)
        if aw.done:
            # Late: discarded (its backend IO has completed); mcp.await_logerrors logs the
            # failed ones.
            if aw.logerrors and res.status != 0:
                router.events.emit(
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
        task = router.tasks.get(aw.handle)
        if task is None:
            aw.done = True
            return
        if router.count_replies and router.mem_used > router.mem_limit and res.type:
            res = router.out_of_memory(backend)
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
        if router.count_replies:
            n = len(res.raw)
            task.mem += n
            router.mem_used += n
        if aw.remaining <= 0 or aw.arrived == aw.n:
            aw.done = True
            flat: list[Any] = []
            for r, m, el, name in aw.results:
                flat += (r.raw, r.status, r.code, r.vlen, m, el, r.type, name)
            router.advance(aw.handle, router.resume_await(aw.handle, *flat))


def _log_line(line: bytes) -> str:
    """A request line as proxy_req log lines show it: no terminator, at most 300 bytes."""
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return line[:300].decode("utf-8", "replace")
