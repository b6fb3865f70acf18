"""Work deferred to the end of a batch, or else to the end of the event loop's turn.

Writes are coalesced: a backend queues the requests routed to it and writes them all once,
a client writes every reply that is ready once. Outside a batch, "once" is one ``call_soon``
callback for all of them, which the event loop runs after the I/O callbacks of its current
turn (one callback per turn rather than one per connection to flush). The router
runs the routes of a whole turn in one batch (one call into Lua), itself from a
``call_soon`` callback; flushes scheduled from there with ``call_soon`` would wait for the
loop's *next* turn (an extra poll and a later write), so inside a batch they are queued here
and run as soon as the batch ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final


class Turn:
    __slots__ = ("active", "loop", "queue", "scheduled")

    def __init__(self) -> None:
        #: A batch is running: defer to its end.
        self.active = False
        #: ``run`` is due: a ``call_soon`` is pending, or it is running.
        self.scheduled = False
        self.queue: list[Callable[[], None]] = []
        #: The event loop (``attach``; asking asyncio for the running loop on every call
        #: would cost a getpid() system call each time).
        self.loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve ``loop`` from now on, forgetting what a previous loop left behind (one
        closed with a run still pending). A server calls it when it starts."""
        self.loop = loop
        self.active = False
        self.scheduled = False
        self.queue = []

    def later(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` after the current batch, or else later in this loop turn."""
        self.queue.append(fn)
        if not self.active and not self.scheduled:
            self.scheduled = True
            loop = self.loop
            if loop is None:
                loop = self.loop = asyncio.get_running_loop()
            loop.call_soon(self.run)

    def end_batch(self) -> None:
        """The batch is over: run what it deferred (and what those defer in turn)."""
        self.active = False
        self.run()

    def run(self) -> None:
        """Run what was deferred, and what that defers in turn, until nothing is left."""
        self.scheduled = True  # what runs now and defers more is run by this loop
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
        self.scheduled = False


#: One per process: batches never nest, and everything runs on the event loop's thread.
TURN: Final = Turn()
