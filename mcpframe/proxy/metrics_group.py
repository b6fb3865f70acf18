"""One Prometheus endpoint for ``--workers N``: any worker answers for the whole group.

Every worker listens on the one ``--metrics`` port with SO_REUSEPORT (the kernel hands each
scrape to one of them), as they share the client ports. Each worker publishes a snapshot of
its own metric families with its stats file (``workers.StatsBoard``, every half second, only
with ``--metrics``); the worker that takes a scrape merges its live families with the others'
snapshots (at most half a second old; a worker silent for 10 s is left out):

- counters, histograms and gauges that count something are summed over the workers;
- gauges that describe the group rather than add up (``MAX_FAMILIES``: build info, uptime,
  limits, pool sizes, a backend's bad mark) take the largest value;
- ``process_*`` families are not summed: each worker's series carry a ``worker`` label;
- ``mcpframe_worker_*{worker}`` give the per-worker view of connections, routed requests and
  requests active, and ``mcpframe_worker_up{worker,pid}`` says which workers reported.

A worker that restarts starts its counters from zero, so the sums go down once: Prometheus'
``rate()`` and ``increase()`` treat that as a counter reset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

#: (family name, type, help, [(sample name, labels, value)]), as published in a stats file.
Family = tuple[str, str, str, list[tuple[str, dict[str, str], float]]]
Snapshot = list[Family]

#: Gauges merged by taking the largest value, not the sum.
MAX_FAMILIES = frozenset(
    {
        "mcpframe_build_info",
        "mcpframe_uptime_seconds",
        "mcpframe_active_request_limit",
        "mcpframe_buffer_memory_limit_bytes",
        "mcpframe_pool_backends",
        "mcpframe_pool_backends_bad",
        "mcpframe_backend_bad",
    }
)
#: Families also shown per worker: (family, per-worker family, type, help).
PER_WORKER = (
    ("mcpframe_client_connections", "mcpframe_worker_client_connections", "gauge",
     "Open client connections of the worker."),
    ("mcpframe_routed_requests", "mcpframe_worker_routed_requests", "counter",
     "Routed requests started by the worker."),
    ("mcpframe_requests_active", "mcpframe_worker_requests_active", "gauge",
     "Routes running or waiting in the worker."),
)  # fmt: skip


def snapshot(collectors: Iterable[Collector]) -> Snapshot:
    """The families ``collectors`` yield now, as plain data (JSON-ready)."""
    out: Snapshot = []
    for collector in collectors:
        for family in collector.collect():
            samples = [(s.name, dict(s.labels), float(s.value)) for s in family.samples]
            out.append((family.name, family.type, family.documentation, samples))
    return out


def _decode(data: Any) -> Snapshot:
    return [
        (str(name), str(kind), str(doc), [(str(s), dict(lb), float(v)) for s, lb, v in samples])
        for name, kind, doc, samples in data
    ]


class GroupCollector(Collector):
    """The whole group's families: this worker's live ones merged with the others' snapshots.

    ``own`` returns this worker's snapshot; ``others`` returns ``(index, pid, data)`` of every
    other live worker (``StatsBoard.published``).
    """

    def __init__(
        self,
        index: int,
        pid: int,
        own: Callable[[], Snapshot],
        others: Callable[[], list[tuple[int, int, Any]]],
    ) -> None:
        self.index = index
        self.pid = pid
        self.own = own
        self.others = others

    def collect(self) -> Iterator[Metric]:
        workers: list[tuple[int, int, Snapshot]] = [(self.index, self.pid, self.own())]
        for index, pid, data in self.others():
            try:
                workers.append((index, pid, _decode(data)))
            except (TypeError, ValueError):
                continue  # a file being replaced: that worker is left out of this scrape
        workers.sort(key=lambda w: w[0])
        yield from merge(workers)


def merge(workers: list[tuple[int, int, Snapshot]]) -> Iterator[Metric]:
    """Merge per-worker snapshots into the group's families (see the module docstring)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    per_worker = {name: Metric(wname, doc, kind) for name, wname, kind, doc in PER_WORKER}
    up = Metric("mcpframe_worker_up", "1 for each worker whose metrics are included.", "gauge")
    for index, pid, snap in workers:
        worker = str(index)
        up.add_sample("mcpframe_worker_up", {"worker": worker, "pid": str(pid)}, 1.0)
        for name, kind, doc, samples in snap:
            if name not in families:
                families[name] = Metric(name, doc, kind)
                values[name] = {}
            if name.startswith("process_"):
                for sname, labels, value in samples:
                    families[name].add_sample(sname, {**labels, "worker": worker}, value)
                continue
            if name in per_worker:
                target = per_worker[name]
                for sname, labels, value in samples:
                    suffix = sname[len(name) :]
                    target.add_sample(target.name + suffix, {**labels, "worker": worker}, value)
            sums = values[name]
            take_max = name in MAX_FAMILIES
            for sname, labels, value in samples:
                key = (sname, tuple(sorted(labels.items())))
                if key in sums:
                    sums[key] = max(sums[key], value) if take_max else sums[key] + value
                else:
                    sums[key] = value
    for name, family in families.items():
        for (sname, label_items), value in values[name].items():
            family.add_sample(sname, dict(label_items), value)
        yield family
    yield up
    yield from per_worker.values()
