"""A coarse clock for the request path: whole seconds, advanced once a second by the loop.

memcached keeps ``current_time`` the same way (a timer event ticks it), and reads it where
second resolution is enough. Here that is a connection's last command (``stats conns``'s
``secs_since_last_cmd``): reading ``CLOCK.now`` is an attribute load, where ``loop.time()``
on every socket read would cost a Python-level call and a clock read.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final


class Clock:
    __slots__ = ("handle", "now")

    def __init__(self) -> None:
        #: Whole seconds of the monotonic clock, as of the last tick.
        self.now = int(time.monotonic())
        self.handle: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tick on ``loop`` from now on (a server calls it when it starts; a second server
        in the same process takes the clock over)."""
        if self.handle is not None:
            self.handle.cancel()
        self.tick(loop)

    def tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.now = int(time.monotonic())
        self.handle = loop.call_later(1.0, self.tick, loop)


#: One per process, like the event loop it ticks on.
CLOCK: Final = Clock()
