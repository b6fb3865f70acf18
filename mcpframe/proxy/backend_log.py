"""Automatic backend logging (``mcp.backend{log = {...}}``, spec v2 8.8).

A backend with a ``log`` option has the results it delivers to API v2 routes (through a
request context) written to the ``proxyreqs`` stream, as 1.6.45 writes them: every result
with ``rate = 1``; else every failed one with ``errors``; else those slower than
``deadline`` milliseconds; else about one in ``rate`` at random. The line is 1.6.45's
``type=proxy_req`` (:meth:`EventLog.proxy_req`, as ``mcp.log_req`` in API v2 configs) with
``res=`` (good, ok or any, from the result) and ``cfd=`` (the client's descriptor),
``detail=`` the log ``tag``.

Only requests sent while someone watches ``proxyreqs`` to such a backend are remembered (by
their sub-request id); nothing else pays for it.
"""

from __future__ import annotations

import random

from mcpframe.config import BackendLog
from mcpframe.events import MAX_REQ, EventLog
from mcpframe.protocol.commands import STATUS_OK
from mcpframe.protocol.response import Response


def wanted(log: BackendLog, res: Response, elapsed_us: int) -> bool:
    """Whether ``log`` asks for this result (1.6.45's order of checks)."""
    if log.rate == 1:
        return True
    if log.errors and res.status != STATUS_OK:
        return True
    if log.deadline > 0 and elapsed_us > log.deadline * 1000:
        return True
    return log.rate > 0 and random.randrange(log.rate) == 0


def request_line(data: bytes) -> str:
    """The request line of what was sent, without its terminator."""
    end = data.find(b"\n")
    line = data if end < 0 else data[:end]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line[:MAX_REQ].decode("utf-8", "replace")


class BackendLogs:
    """The sub-requests of API v2 routes whose result may be logged, until it arrives."""

    def __init__(self, events: EventLog) -> None:
        self.events = events
        #: sub-request id -> (its backend's log option, the bytes sent, the client's
        #: descriptor, the backend's host:port)
        self.pending: dict[int, tuple[BackendLog, bytes, int, str]] = {}

    def sent(self, sub: int, log: BackendLog, data: bytes, cfd: int, be: str) -> None:
        self.pending[sub] = (log, data, cfd, be)

    def arrived(self, sub: int, res: Response, elapsed_us: int) -> None:
        entry = self.pending.pop(sub, None)
        if entry is None:
            return
        log, data, cfd, be = entry
        if not wanted(log, res, elapsed_us):
            return
        self.events.proxy_req(
            request_line(data), elapsed_us, res.type, res.code, res.status, be, log.tag, cfd
        )
