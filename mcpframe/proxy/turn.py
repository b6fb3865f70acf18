"""Work deferred to the end of a batch, or else to the end of the event loop's turn.

Writes are coalesced: a backend queues the requests routed to it and writes them all once,
a client writes every reply that is ready once. Outside a batch, "once" is a ``call_soon``
callback, which the event loop runs after the I/O callbacks of its current turn. The router
runs the routes of a whole turn in one batch (one call into Lua), itself from a
``call_soon`` callback; flushes scheduled from there with ``call_soon`` would wait for the
loop's *next* turn (an extra poll and a later write), so inside a batch they are queued here
and run as soon as the batch ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Turn:
    __slots__ = ("active", "queue")

    def __init__(self) -> None:
        #: A batch is running: defer to its end.
        self.active = False
        self.queue: list[Callable[[], None]] = []

    def later(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` after the current batch, or else later in this loop turn."""
        if self.active:
            self.queue.append(fn)
        else:
            asyncio.get_running_loop().call_soon(fn)

    def end_batch(self) -> None:
        """The batch is over: run what it deferred (and what those defer in turn)."""
        self.active = False
        queue = self.queue
        while queue:
            self.queue = []
            for fn in queue:
                try:
                    fn()
                except Exception as e:  # a bug: report it, and still run the others
                    asyncio.get_running_loop().call_exception_handler(
                        {"message": f"deferred callback {fn!r} failed", "exception": e}
                    )
            queue = self.queue


#: One per process: batches never nest, and everything runs on the event loop's thread.
TURN = Turn()
