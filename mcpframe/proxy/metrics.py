"""The Prometheus endpoint: ``mcpframe serve --metrics HOST:PORT`` serves ``GET /metrics``.

Everything is collected lazily: :class:`ProxyCollector` reads the counters the proxy keeps
anyway (the ``stats``/``stats proxy`` values, the backend connection objects) when a scrape
arrives, so serving metrics adds nothing to the per-request path. The exceptions are the
latency histograms (``latency.py``, only when ``--metrics`` is on): per backend, fed from the
elapsed time the backend connection already measures for each reply, and per attached route.

The HTTP server runs on the proxy's own event loop (no thread, so every scrape sees one
consistent state) and answers ``GET``/``HEAD`` of ``/metrics`` (and ``/`` with a pointer to
it), closing the connection after each reply. With ``--workers N`` every worker listens on
the same port (SO_REUSEPORT) and answers for the whole group (``metrics_group.py``).

Metrics (labels in braces; type; where the value comes from):

* ``mcpframe_build_info{version,memcached}`` (gauge): always 1
* ``mcpframe_uptime_seconds`` (gauge): ``uptime``
* ``mcpframe_client_connections`` (gauge): ``curr_connections``
* ``mcpframe_client_connections_accepted_total`` (counter): ``total_connections``
* ``mcpframe_routed_requests_total`` (counter): ``proxy_conn_requests`` (each multiget key)
* ``mcpframe_client_errors_total`` (counter): ``proxy_conn_errors``
* ``mcpframe_requests_active`` (gauge): ``proxy_req_active``
* ``mcpframe_awaits_active`` (gauge): ``proxy_await_active``
* ``mcpframe_commands_total{command}`` (counter): ``stats proxy`` ``cmd_*`` (routed requests)
* ``mcpframe_user_stat{name}`` (gauge): ``stats proxy`` ``user_*`` (``mcp.stat``)
* ``mcpframe_active_request_limit`` (gauge): ``active_req_limit`` (0 = unlimited)
* ``mcpframe_buffer_memory_limit_bytes`` (gauge): ``buffer_memory_limit`` (0 = unlimited)
* ``mcpframe_buffer_memory_used_bytes`` (gauge): ``buffer_memory_used``
* ``mcpframe_config_reloads_total`` (counter): ``proxy_config_reloads`` (first load too)
* ``mcpframe_config_reload_failures_total`` (counter): ``proxy_config_reload_fails``
* ``mcpframe_config_cron_runs_total``, ``mcpframe_config_cron_failures_total`` (counters):
  ``proxy_config_cron_runs``, ``proxy_config_cron_fails``
* ``mcpframe_backends`` (gauge): ``proxy_backend_total``
* ``mcpframe_backend_marked_bad_total`` (counter): ``proxy_backend_marked_bad``
* ``mcpframe_backend_failed_total`` (counter): ``proxy_backend_failed``
* ``mcpframe_backend_requests_total{b}`` (counter): requests routed to the backend
* ``mcpframe_backend_errors_total{b,reason}`` (counter): connection failures by spec 7.5 reason
* ``mcpframe_backend_timeouts_total{b}`` (counter): connect, validation and read timeouts
* ``mcpframe_backend_connects_total{b}`` (counter): TCP connects that succeeded
* ``mcpframe_backend_bad{b}`` (gauge): 1 while marked bad (failing fast)
* ``mcpframe_backend_connected{b}`` (gauge): 1 while validated and serving
* ``mcpframe_backend_depth{b}`` (gauge): requests queued or in flight
* ``mcpframe_backend_response_seconds{b}`` (hist.): time from queueing to the reply
* ``mcpframe_route_duration_seconds{command,tag}`` (hist.): route latency per attached route
* ``mcpframe_pool_backends{pool}`` (gauge): backends in the pool
* ``mcpframe_pool_backends_bad{pool}`` (gauge): of which marked bad
* ``mcpframe_pool_depth{pool}`` (gauge): requests queued on its backends
* ``mcpframe_pool_requests_total{pool}`` (counter): requests routed to its backends
* ``mcpframe_cache_items`` (gauge): internal cache ``curr_items``
* ``mcpframe_cache_bytes`` (gauge): internal cache ``bytes``
* ``mcpframe_cache_limit_bytes`` (gauge): internal cache ``limit_maxbytes``
* ``mcpframe_cache_evictions_total`` (counter): internal cache ``evictions``
* ``mcpframe_cache_get_hits_total`` (counter): internal cache ``get_hits``
* ``mcpframe_cache_get_misses_total`` (counter): internal cache ``get_misses``
* ``process_*`` (various): prometheus_client's process collector

``{b}`` stands for the labels ``backend`` (``host:port``), ``label`` (the ``mcp.backend``
label) and ``prefix`` (the pool's ``beprefix``, usually empty).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from mcpframe import MEMCACHED_VERSION, __version__
from mcpframe.errors import ServeError
from mcpframe.protocol import commands as c
from mcpframe.proxy.backend import LATENCY_BOUNDS_US, READY, REASONS, Backend
from mcpframe.proxy.latency import RouteLatency
from mcpframe.proxy.metrics_group import GroupCollector, Snapshot, snapshot
from mcpframe.proxy.stats import general_stats, proxy_stats

if TYPE_CHECKING:
    from mcpframe.proxy.server import ProxyServer

#: The longest HTTP request head we read before giving up on a scraper.
MAX_REQUEST_HEAD = 8192

_GENERAL: tuple[tuple[str, str, str, str], ...] = (
    # (stat, metric, kind, help)
    ("uptime", "mcpframe_uptime_seconds", "gauge", "Seconds since the process started."),
    ("curr_connections", "mcpframe_client_connections", "gauge", "Open client connections."),
    ("total_connections", "mcpframe_client_connections_accepted", "counter", "Accepted."),
    ("proxy_conn_requests", "mcpframe_routed_requests", "counter", "Routed requests started."),
    ("proxy_conn_errors", "mcpframe_client_errors", "counter", "Client parse errors."),
    ("proxy_req_active", "mcpframe_requests_active", "gauge", "Routes running or waiting."),
    ("proxy_await_active", "mcpframe_awaits_active", "gauge", "mcp.await calls pending."),
    ("proxy_config_reloads", "mcpframe_config_reloads", "counter", "Config loads."),
    ("proxy_config_reload_fails", "mcpframe_config_reload_failures", "counter", "Failed loads."),
    ("proxy_config_cron_runs", "mcpframe_config_cron_runs", "counter", "Config cron runs."),
    ("proxy_config_cron_fails", "mcpframe_config_cron_failures", "counter", "Crons that raised."),
    ("proxy_backend_total", "mcpframe_backends", "gauge", "Backend connection objects."),
    ("proxy_backend_marked_bad", "mcpframe_backend_marked_bad", "counter", "Marked bad."),
    ("proxy_backend_failed", "mcpframe_backend_failed", "counter", "Failures then reconnect."),
    ("curr_items", "mcpframe_cache_items", "gauge", "Items in the internal cache."),
    ("bytes", "mcpframe_cache_bytes", "gauge", "Bytes used by the internal cache."),
    ("limit_maxbytes", "mcpframe_cache_limit_bytes", "gauge", "Internal cache memory limit."),
    ("evictions", "mcpframe_cache_evictions", "counter", "Internal cache evictions."),
    ("get_hits", "mcpframe_cache_get_hits", "counter", "Internal cache get hits."),
    ("get_misses", "mcpframe_cache_get_misses", "counter", "Internal cache get misses."),
)
_PROXY: tuple[tuple[str, str, str], ...] = (
    ("active_req_limit", "mcpframe_active_request_limit", "Active request limit (0: none)."),
    ("buffer_memory_limit", "mcpframe_buffer_memory_limit_bytes", "Buffer limit (0: none)."),
    ("buffer_memory_used", "mcpframe_buffer_memory_used_bytes", "Buffer memory in use."),
)
_BUCKETS = [f"{b / 1_000_000:g}" for b in LATENCY_BOUNDS_US] + ["+Inf"]
_BACKEND_LABELS = ["backend", "label", "prefix"]


def parse_metrics_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT``/``PORT`` (host 127.0.0.1)."""
    host, sep, port_s = text.rpartition(":")
    if not sep:
        host, port_s = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ServeError(f"invalid metrics address {text!r} (expected HOST:PORT)")
    return host or "127.0.0.1", int(port_s)


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


class ProxyCollector(Collector):
    """Reads the live counters of one :class:`ProxyServer` at scrape time."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        info = GaugeMetricFamily(
            "mcpframe_build_info", "mcpframe version.", labels=["version", "memcached"]
        )
        info.add_metric([__version__, MEMCACHED_VERSION], 1)
        yield info
        yield from self._stats(dict(general_stats(server)), dict(proxy_stats(server)))
        yield from self._backends(server)
        if server.route_latency is not None:
            yield route_histogram(server.route_latency)

    def _stats(self, general: dict[str, object], proxy: dict[str, object]) -> Iterator[Metric]:
        for stat, name, kind, doc in _GENERAL:
            if stat not in general:
                continue
            family: Metric
            if kind == "counter":
                family = CounterMetricFamily(name, doc, value=_number(general[stat]))
            else:
                family = GaugeMetricFamily(name, doc, value=_number(general[stat]))
            yield family
        for stat, name, doc in _PROXY:
            if stat in proxy:
                yield GaugeMetricFamily(name, doc, value=_number(proxy[stat]))
        commands = CounterMetricFamily(
            "mcpframe_commands",
            "Routed requests by command (stats proxy cmd_*).",
            labels=["command"],
        )
        users = GaugeMetricFamily(
            "mcpframe_user_stat", "User statistics (mcp.add_stat / mcp.stat).", labels=["name"]
        )
        for stat, value in proxy.items():
            if stat.startswith("cmd_"):
                commands.add_metric([stat[4:]], _number(value))
            elif stat.startswith("user_"):
                users.add_metric([stat[5:]], _number(value))
        yield commands
        yield users

    def _backends(self, server: ProxyServer) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "mcpframe_backend_requests", "Requests routed to the backend.", labels=_BACKEND_LABELS
        )
        errors = CounterMetricFamily(
            "mcpframe_backend_errors",
            "Backend connection failures by reason (spec 7.5 names).",
            labels=[*_BACKEND_LABELS, "reason"],
        )
        timeouts = CounterMetricFamily(
            "mcpframe_backend_timeouts",
            "Connect, validation and read timeouts.",
            labels=_BACKEND_LABELS,
        )
        connects = CounterMetricFamily(
            "mcpframe_backend_connects", "TCP connects that succeeded.", labels=_BACKEND_LABELS
        )
        bad = GaugeMetricFamily(
            "mcpframe_backend_bad", "1 while marked bad (failing fast).", labels=_BACKEND_LABELS
        )
        connected = GaugeMetricFamily(
            "mcpframe_backend_connected",
            "1 while validated and serving.",
            labels=_BACKEND_LABELS,
        )
        depth = GaugeMetricFamily(
            "mcpframe_backend_depth", "Requests queued or in flight.", labels=_BACKEND_LABELS
        )
        latency = HistogramMetricFamily(
            "mcpframe_backend_response_seconds",
            "Time from queueing a request on the backend to its reply.",
            labels=_BACKEND_LABELS,
        )
        labels_of: dict[int, list[str]] = {}
        seen: set[tuple[str, ...]] = set()
        conns = [(key, c) for key, b in list(server.backends.items()) for c in b.connections()]
        for key, be in conns:
            prefix = key[0] if isinstance(key, tuple) and isinstance(key[0], str) else ""
            labels = [be.name.decode(), be.spec.label, prefix]
            n = 1
            while tuple(labels) in seen:  # same label/address/prefix, other options
                n += 1
                labels = [be.name.decode(), f"{be.spec.label}#{n}", prefix]
            seen.add(tuple(labels))
            labels_of[id(be)] = labels
            requests.add_metric(labels, be.requests)
            errs = dict(be.errors)
            for reason in REASONS:
                errors.add_metric([*labels, reason], errs.get(reason, 0))
            timeouts.add_metric(labels, be.timeouts)
            connects.add_metric(labels, be.connects)
            bad.add_metric(labels, 1 if be.bad else 0)
            connected.add_metric(labels, 1 if be.state == READY and not be.bad else 0)
            depth.add_metric(labels, be.depth)
            hist = be.latency
            if hist is not None:
                latency.add_metric(
                    labels, _histogram_buckets(list(hist)), be.latency_sum_us / 1_000_000
                )
        yield from (requests, errors, timeouts, connects, bad, connected, depth, latency)
        yield from self._pools(server)

    def _pools(self, server: ProxyServer) -> Iterator[Metric]:
        members = GaugeMetricFamily(
            "mcpframe_pool_backends", "Backends in the pool.", labels=["pool"]
        )
        bad = GaugeMetricFamily(
            "mcpframe_pool_backends_bad", "Backends marked bad.", labels=["pool"]
        )
        depth = GaugeMetricFamily(
            "mcpframe_pool_depth", "Requests queued on the pool's backends.", labels=["pool"]
        )
        requests = CounterMetricFamily(
            "mcpframe_pool_requests",
            "Requests routed to the pool's backends (a backend shared by two pools counts in "
            "both).",
            labels=["pool"],
        )
        for name, backends in _named_pools(server):
            members.add_metric([name], len(backends))
            bad.add_metric([name], sum(1 for b in backends if b.bad))
            depth.add_metric([name], sum(b.depth for b in backends))
            requests.add_metric([name], sum(b.requests for b in backends))
        yield from (members, bad, depth, requests)


def _histogram_buckets(counts: list[int]) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs of per-bucket counts."""
    out: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip(_BUCKETS, counts, strict=True):
        total += count
        out.append((bound, total))
    return out


def route_histogram(latency: RouteLatency) -> Metric:
    """``mcpframe_route_duration_seconds{command,tag}``."""
    family = HistogramMetricFamily(
        "mcpframe_route_duration_seconds",
        "Time from the router taking a request to its reply being ready, per attached route.",
        labels=["command", "tag"],
    )
    for tag, cmd, counts, sum_us in latency.series():
        family.add_metric([c.NAMES[cmd], tag], _histogram_buckets(counts), sum_us / 1_000_000)
    return family


def _named_pools(server: ProxyServer) -> Iterable[tuple[str, list[Backend]]]:
    """(name, backends) of each pool of the live config; names are the pool's path in what
    ``mcp_config_pools`` returned (``main``, ``zones.east``...), else ``pool<i>``."""
    router = server.router
    if router is None:
        return []
    config = router.config
    names: dict[int, str] = {}
    try:
        for name, spec in config.named_pools().items():
            for i, candidate in enumerate(config.pools):
                if candidate is spec:
                    names.setdefault(i, name)
    except Exception:  # naming is a nicety; never fail a scrape over it
        names = {}
    out = []
    used: set[str] = set()
    for i, pool in enumerate(router.pools):
        name = names.get(i, f"pool{i}")
        if name in used:
            name = f"{name}#{i}"
        used.add(name)
        out.append((name, list(pool.backends)))
    return out


def build_registry(server: ProxyServer) -> CollectorRegistry:
    """The registry a scrape reads: this process's collectors, or with ``--workers`` the whole
    group's (this worker's live values merged with the others' published snapshots)."""
    registry = CollectorRegistry(auto_describe=False)
    own: list[Collector] = [ProxyCollector(server), ProcessCollector(registry=None)]
    board = server.board
    if board is None:
        for collector in own:
            registry.register(collector)
        return registry

    def mine() -> Snapshot:
        return snapshot(own)

    server.publish_extra = lambda: {"metrics": mine()}
    group = GroupCollector(board.index, os.getpid(), mine, lambda: board.published("metrics"))
    registry.register(group)
    return registry


class _MetricsHTTP(asyncio.Protocol):
    """One scrape: read the request head, answer, close."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.buf += data
        if b"\r\n\r\n" not in self.buf and b"\n\n" not in self.buf:
            if len(self.buf) > MAX_REQUEST_HEAD:
                self._reply(431, "text/plain", b"request head too large\n")
            return
        request_line = self.buf.split(b"\n", 1)[0].strip()
        parts = request_line.split()
        method = parts[0] if parts else b""
        path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
        if method not in (b"GET", b"HEAD"):
            self._reply(405, "text/plain", b"method not allowed\n")
        elif path == b"/metrics":
            body = generate_latest(self.registry)
            self._reply(200, CONTENT_TYPE_LATEST, body, head=method == b"HEAD")
        elif path == b"/":
            body = b'<html><body><a href="/metrics">metrics</a></body></html>\n'
            self._reply(200, "text/html", body, head=method == b"HEAD")
        else:
            self._reply(404, "text/plain", b"not found\n")

    def _reply(self, status: int, ctype: str, body: bytes, head: bool = False) -> None:
        transport = self.transport
        if transport is None:
            return
        headers = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        transport.write(headers if head else headers + body)
        transport.close()
        self.transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def start_metrics(server: ProxyServer, address: str) -> asyncio.base_events.Server:
    """Listen for scrapes of ``server``'s metrics on ``address`` (see the module docstring)."""
    host, port = parse_metrics_address(address)
    registry = build_registry(server)
    loop = asyncio.get_running_loop()
    try:
        return await loop.create_server(
            lambda: _MetricsHTTP(registry),
            host,
            port,
            reuse_address=True,
            reuse_port=server.board is not None or None,
        )
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise ServeError(f"cannot listen for metrics on {host}:{port}: {reason.lower()}") from None


def record_latency(server: ProxyServer) -> None:
    """Record the latency histograms the endpoint shows (before ``server`` starts)."""
    Backend.record_latency = True  # before any backend connection object exists
    server.route_latency = RouteLatency()


async def serve_with_metrics(server: ProxyServer, address: str) -> None:
    """Run ``server`` with the metrics endpoint; both stop together."""
    record_latency(server)
    http = await start_metrics(server, address)
    try:
        await server.serve_forever()
    finally:
        http.close()
