"""Running the config's crons (``mcp.register_cron``, spec v2 7.2) from the event loop.

One timer per server, set for the second the next cron is due (memcached's config thread
sleeps the same way, in whole seconds of the wall clock). When it fires, the due crons run in
the config VM, one after another; a cron that raises is logged (``proxy_error``) and counted
in ``proxy_config_cron_fails``, and keeps its schedule. A cron that called
``mcp.schedule_config_reload()`` gets a reload after the pass (spec v2 7.3). Loads and crons
never overlap: both run on the loop, and a load does not yield. Nothing here runs unless a
config registered a cron.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mcpframe.events import EventLog
from mcpframe.lua.config import ConfigLoader


class CronTimer:
    """Fires the crons of ``loader`` when due; ``on_reload`` when a cron asked for one."""

    def __init__(
        self, loader: ConfigLoader, events: EventLog, on_reload: Callable[[], None]
    ) -> None:
        self.loader = loader
        self.events = events
        self.on_reload = on_reload
        self.runs = 0
        self.fails = 0
        self._handle: asyncio.TimerHandle | None = None
        self._at: int | None = None

    def schedule(self) -> None:
        """Set the timer for the next cron due (call after every load)."""
        due = self.loader.crons.next_due()
        if due == self._at and self._handle is not None:
            return
        self.cancel()
        if due is None:
            return
        self._at = due
        # (a little after the second starts: the wall clock must read `due` by then)
        delay = max(0.0, due - time.time()) + 0.005
        self._handle = asyncio.get_running_loop().call_later(delay, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._at = None

    def _fire(self) -> None:
        self._handle = None
        self._at = None
        loader = self.loader
        done = loader.crons.run_due()
        self.runs += done.runs
        self.fails += len(done.errors)
        for msg in done.errors:
            self.events.emit("proxy_error", msg=msg[:512])
        if loader.reload_requested:
            loader.reload_requested = False
            self.on_reload()
        self.schedule()
