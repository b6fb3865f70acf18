"""``mcp.internal``: a route's request run against the proxy's own cache (spec 2.10, 8)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from mcpframe.protocol import commands as c
from mcpframe.protocol.backend import ResponseReader
from mcpframe.protocol.reader import RequestReader
from mcpframe.protocol.replies import BAD_DATA_CHUNK, BAD_REQUEST
from mcpframe.protocol.request import Request
from mcpframe.protocol.response import Response

if TYPE_CHECKING:
    from mcpframe.proxy.router import Router

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


def run_internal(router: Router, handle: int, result: Any) -> Any:
    """Run the request of the route ``handle`` (the driver's answer ``result``) against the
    cache and resume the route with the reply; what the driver answered, or None when the
    route was abandoned (an unsupported command).

    The request arrives without noreply/quiet (the driver rewrote it, as for a backend),
    so the cache always answers; the reply mode then decides what the client sees
    ([R]: 1.6.20 ignored classic noreply and ``ma``'s ``q`` here).
    """
    line, value, _key, mode, cmd = router.request_of(result)
    if cmd not in INTERNAL_COMMANDS:
        # The route is abandoned (not resumed), as in memcached; its slot is released.
        router.abandon(handle)
        router.complete(handle, BAD_REQUEST)
        return None
    if result[3] is None:
        reply = router.cache.execute(router.tasks[result[2]].req)
    else:
        items = RequestReader(max_value=_INTERNAL_MAX_VALUE).feed(
            line if value is None else line + value
        )
        if not items:
            reply = BAD_DATA_CHUNK  # the data block is shorter than the line says
        elif type(items[0]) is Request:
            reply = router.cache.execute(items[0])
        else:
            reply = items[0].reply  # type: ignore[union-attr]
    res = classify(reply)
    result = router.resume(handle, reply, 0, res.code, res.vlen, mode, 0, res.type, _INTERNAL_BE)
    if result == router.DONE_SAME:
        return (router.DONE_RES, reply, 0, res.code, mode)
    return result


def classify(reply: bytes) -> Response:
    """Parse a locally generated reply the way a backend reply is parsed."""
    responses = ResponseReader().feed(reply)
    if not responses:
        return Response(0, c.MCMC_CODE_SERVER_ERROR, -1, reply)
    first = responses[0]
    return Response(first.type, first.code, first.status, reply, first.vlen)
