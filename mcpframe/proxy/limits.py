"""Resource limits of routed requests (spec 6.5, 6.6): the limits in force per worker process
and what counts against them.

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

from typing import Any, Final

from mcpframe.protocol.response import Response, failure_response
from mcpframe.proxy.backend import Backend

#: A limit of 0 means unlimited; this compares greater than any real count.
UNLIMITED: Final = 1 << 62


def per_worker(limit: int, workers: int) -> int:
    """memcached's split of a process-wide limit over T workers (spec 2.6); 0 = unlimited."""
    if limit <= 0:
        return 0
    return limit // workers if limit > 2 * workers else limit


class Limits:
    """The counters the limits apply to, and the limits. The router inherits them (rather
    than holding a Limits object) so that its request path reads them without a hop: the
    checks themselves stay inline there, where they cost a comparison."""

    def __init__(self, tunables: dict[str, Any], workers: int) -> None:
        #: Routes started and not completed (refusals excluded).
        self.active = 0
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

    def out_of_memory(self, backend: Backend | None) -> Response:
        """A reply arrived while buffer memory is over the limit (spec 6.6): it cannot be
        held, so its backend connection fails (``outofmemory``), and with it every request
        queued there; this one gets the failure too. (Only parsed replies get here: the
        failures that connection then hands out have ``type`` 0 and pass as they are.)"""
        if backend is not None:
            backend.fail("outofmemory")
        return failure_response()
