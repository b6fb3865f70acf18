"""Latency histograms recorded on the request path (with ``--metrics``): their buckets and
the per-route table.

Buckets (microseconds, Prometheus ``le`` bounds) resolve tens of microseconds near the
bottom, where a local memcached answers, and reach seconds for timeouts. Finding a bucket is
a table look-up for anything under 4 ms (the common case) and a bisection above, so that
recording costs a few list operations per request; nothing here runs without ``--metrics``.

Route histograms are kept per attached route: the listener tag the route was attached with
(``""`` untagged) and the command. One :class:`RouteLatency` lives as long as the process, so
a reload does not reset them (the routers of old and new configs record into it).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from mcpframe.protocol import commands as c

#: Upper bounds (microseconds) of the buckets; the last bucket (index ``len(BOUNDS_US)``)
#: is +Inf.
BOUNDS_US: Final = (
    10, 25, 50, 75, 100, 150, 250, 500, 750, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000,
    100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
)  # fmt: skip
BUCKETS: Final = len(BOUNDS_US) + 1
#: Bucket of each elapsed time under TABLE_SIZE microseconds.
TABLE_SIZE: Final = 4096
_TABLE: Final = [bisect_left(BOUNDS_US, us) for us in range(TABLE_SIZE)]
#: Command codes per tag row.
COMMANDS: Final = c.CMD_ANY + 1


def bucket(us: int) -> int:
    """The bucket an elapsed time of ``us`` microseconds falls in."""
    if us < TABLE_SIZE:
        return _TABLE[us] if us >= 0 else 0
    return bisect_left(BOUNDS_US, us)


class RouteLatency:
    """Histograms of route latency per (listener tag, command): from the moment the router
    takes a request to the moment its reply is ready for the client."""

    def __init__(self) -> None:
        #: tag of each row; a row holds every command's histogram.
        self.tags: list[str] = []
        self.rows: dict[str, int] = {}
        #: bucket counts, series after series (series = row * COMMANDS + command).
        self.counts: list[int] = []
        #: microseconds summed, per series.
        self.sums: list[int] = []
        self.row("")  # row 0: untagged routes

    def row(self, tag: str) -> int:
        """The row of ``tag`` (made on first use)."""
        r = self.rows.get(tag)
        if r is None:
            r = len(self.tags)
            self.rows[tag] = r
            self.tags.append(tag)
            self.counts.extend([0] * (COMMANDS * BUCKETS))
            self.sums.extend([0] * COMMANDS)
        return r

    def observe(self, series: int, us: int) -> None:
        self.counts[series * BUCKETS + bucket(us)] += 1
        self.sums[series] += us

    def series(self) -> list[tuple[str, int, list[int], int]]:
        """(tag, command code, bucket counts, microseconds summed) of every series used."""
        out = []
        for r, tag in enumerate(self.tags):
            for cmd in range(COMMANDS):
                s = r * COMMANDS + cmd
                counts = self.counts[s * BUCKETS : (s + 1) * BUCKETS]
                if any(counts):
                    out.append((tag, cmd, counts, self.sums[s]))
        return out
