"""The internal cache's front door: run one parsed request on the store, get reply bytes.

``Cache`` is the ``Store`` plus ``execute``, which picks the command's function from
``classic`` or ``meta`` by its code and hands it the line's tokens (the protocol's one
tokeniser) and the clock second.
"""

from __future__ import annotations

from collections.abc import Callable

from mcpframe.cache import classic, meta
from mcpframe.cache.store import Store
from mcpframe.protocol.commands import (
    CMD_ADD,
    CMD_APPEND,
    CMD_CAS,
    CMD_DECR,
    CMD_DELETE,
    CMD_FLUSH_ALL,
    CMD_GAT,
    CMD_GATS,
    CMD_GET,
    CMD_GETS,
    CMD_INCR,
    CMD_MA,
    CMD_MD,
    CMD_ME,
    CMD_MG,
    CMD_MN,
    CMD_MS,
    CMD_PREPEND,
    CMD_REPLACE,
    CMD_SET,
    CMD_TOUCH,
    CMD_VERBOSITY,
    CMD_VERSION,
)
from mcpframe.protocol.replies import ERROR
from mcpframe.protocol.request import Request
from mcpframe.protocol.tokens import tokenize

#: A command: (store, request, its tokens, clock second) -> reply bytes.
Handler = Callable[[Store, Request, list[bytes], int], bytes]

_DISPATCH: dict[int, Handler] = {
    CMD_GET: classic.cmd_get,
    CMD_GETS: classic.cmd_gets,
    CMD_GAT: classic.cmd_gat,
    CMD_GATS: classic.cmd_gats,
    CMD_SET: classic.cmd_set,
    CMD_ADD: classic.cmd_add,
    CMD_REPLACE: classic.cmd_replace,
    CMD_APPEND: classic.cmd_append,
    CMD_PREPEND: classic.cmd_prepend,
    CMD_CAS: classic.cmd_cas,
    CMD_INCR: classic.cmd_incr,
    CMD_DECR: classic.cmd_decr,
    CMD_TOUCH: classic.cmd_touch,
    CMD_DELETE: classic.cmd_delete,
    CMD_FLUSH_ALL: classic.cmd_flush_all,
    CMD_VERBOSITY: classic.cmd_verbosity,
    CMD_VERSION: classic.cmd_version,
    CMD_MN: classic.cmd_mn,
    CMD_MG: meta.mg,
    CMD_MS: meta.ms,
    CMD_MD: meta.md,
    CMD_MA: meta.ma,
    CMD_ME: meta.me,
}


class Cache(Store):
    """An in-process memcached: execute parsed requests, get memcached's reply bytes."""

    __slots__ = ()

    def execute(self, req: Request) -> bytes:
        """Run one request; return the reply bytes (``b""`` when noreply/quiet hides it)."""
        # get and set, the commonest, are called directly: compiled, a direct C call, where a
        # function taken from the table goes through Python's calling convention.
        cmd = req.cmd
        if cmd == CMD_GET:
            return classic.cmd_get(self, req, tokenize(req.line), self.tick())
        if cmd == CMD_SET:
            return classic.cmd_set(self, req, tokenize(req.line), self.tick())
        handler = _DISPATCH.get(cmd)
        if handler is None:
            return ERROR
        return handler(self, req, tokenize(req.line), self.tick())
