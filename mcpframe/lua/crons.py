"""Crons of the config VM (spec v2 7.2, 7.3): what ``mcp.register_cron`` registered, and
running the ones that are due.

Entries are kept per name, with the config generation (the load) that registered them: a load
registers its crons again, and an entry of an older load is dropped, without running, the next
time the crons are looked at. Registering a name again replaces its entry; when its ``every``
is unchanged it keeps its next run time, so that reloads do not keep pushing a cron back. Times
are whole seconds of the wall clock, as memcached's. A failed load leaves the table as it was
(the old config keeps serving, its crons keep running). The proxy (``proxy/crons.py``) runs
them from its event loop, between loads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lupa import lua54

from mcpframe.config import LuaObject
from mcpframe.lua.runtime import first_line


@dataclass
class CronEntry:
    every: int
    #: wall-clock second of its next run
    next: int
    #: run again after running (``rerun``, default true)
    repeat: bool
    #: the generation (load) that registered it
    gen: int
    func: LuaObject = field(repr=False)


@dataclass
class CronPass:
    """What one pass over the due crons did."""

    runs: int = 0
    #: the error message of each cron that raised
    errors: list[str] = field(default_factory=list)


class CronTable:
    """The crons of one config VM, across its loads."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.entries: dict[str, CronEntry] = {}
        self.gen = 0
        self.clock = clock
        self._saved: tuple[dict[str, CronEntry], int] | None = None

    def now(self) -> int:
        return int(self.clock())

    # -- loads ---------------------------------------------------------------------------

    def begin_load(self) -> None:
        """A load starts: a new generation (the table is kept to restore on failure)."""
        self._saved = (dict(self.entries), self.gen)
        self.gen += 1

    def end_load(self, ok: bool) -> None:
        """The load ended; a failed one leaves the table as it was before it."""
        if not ok and self._saved is not None:
            self.entries, self.gen = self._saved
        self._saved = None

    def register(self, name: str, func: LuaObject, every: int, repeat: bool) -> None:
        entry = CronEntry(every, self.now() + every, repeat, self.gen, func)
        old = self.entries.get(name)
        if old is not None and old.every == every:
            entry.next = old.next
        self.entries[name] = entry

    # -- running -------------------------------------------------------------------------

    def next_due(self) -> int | None:
        """The wall-clock second the next cron is due (None: no cron)."""
        return min((e.next for e in self.entries.values()), default=None)

    def run_due(self) -> CronPass:
        """Run every cron that is due, one after another; drop those of older loads and
        those that run once."""
        done = CronPass()
        now = self.now()
        for name, entry in list(self.entries.items()):
            if entry.gen != self.gen:
                del self.entries[name]
                continue
            if entry.next > now:
                continue
            done.runs += 1
            try:
                entry.func()
            except lua54.LuaError as e:
                done.errors.append(first_line(e.args[0]))
            except Exception as e:  # a Python error under a function it called
                done.errors.append(str(e))
            if entry.repeat:
                entry.next = now + entry.every
            elif self.entries.get(name) is entry:
                del self.entries[name]
        return done
