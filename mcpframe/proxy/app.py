"""Assembling mcpframe: the one way a config is loaded and a proxy server is built.

``serve`` (and each of its workers), the workers' supervisor when it validates a config before
a restart, ``check``, the plugin authors' ``mcpframe_load_config`` fixture and
``bench/inproc.py`` all go through here, so what they load and run is what ``serve`` runs.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from mcpframe import __version__
from mcpframe.config import ConfigSource, LoadedConfig
from mcpframe.errors import ServeError
from mcpframe.events import DEFAULT_SINK_STREAMS, EventLog, Sink
from mcpframe.lua.config import ConfigLoader
from mcpframe.proxy.allocator import LARGE_BLOCK, map_large_blocks
from mcpframe.proxy.server import ProxyServer, ServerOptions
from mcpframe.registry import Registry

#: Allocations (less frees) between two young-generation garbage collections. CPython's
#: default, 700, makes the collector run every few dozen requests (each request allocates a
#: handful of tracked objects: request, reply slot, route task, response); it then took about
#: 7 % of the request path's CPU (bench/inproc.py). The objects a collection must look at are
#: the requests in flight, about the same number at either threshold, so running it less
#: often costs less in all.
GC_YOUNG_THRESHOLD = 10_000


def load_config(
    path: str | Path | ConfigSource, registry: Registry, events: EventLog | None = None
) -> LoadedConfig:
    """Load a config (one file, or several files and a start argument) against the plugins
    of ``registry``, as ``serve`` does.

    Raises:
        ConfigError: the file does not load (the message names the file and line).
        PluginError: a plugin the config uses is missing or failed.
    """
    return ConfigLoader(registry, events).load(ConfigSource.of(path))


def event_log(registry: Registry, loggers: list[str] | None) -> EventLog:
    """The event log writing to the logger plugins named ``NAME[:ARG]`` (default: stderr)."""
    sinks: list[tuple[Sink, frozenset[str]]] = []
    for spec in loggers or ["stderr"]:
        name, _, arg = spec.partition(":")
        logger = registry.loggers[name]
        try:
            sink = logger.build(arg)
        except (ValueError, TypeError, OSError) as e:
            raise ServeError(f"--logger {spec}: {e}") from None
        sinks.append((sink, DEFAULT_SINK_STREAMS))
    return EventLog(sinks)


def build_server(
    options: ServerOptions,
    config_path: str | Path | ConfigSource | None,
    registry: Registry,
    events: EventLog,
) -> ProxyServer:
    """The proxy server, its config loaded (so a bad config fails before anything listens)
    and reloadable from the same files; with no config, a memcached-compatible cache."""
    if config_path is None:
        return ProxyServer(options, None, events)
    loader = ConfigLoader(registry, events)
    # The server exists before the first load so that the config can read its stats.
    server = ProxyServer(options, None, events, loader)
    server.use_config(loader.load(ConfigSource.of(config_path)))
    return server


def tune_process() -> None:
    """Once the config is loaded and the server built: move what exists to the permanent
    generation (never scanned again) and collect the young generation less often; let the
    internal cache's freed key tables go back to the system (``allocator``)."""
    map_large_blocks(LARGE_BLOCK)
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def run(server: ProxyServer, metrics: str | None = None) -> None:
    """Serve until stopped (SIGTERM, SIGINT), on uvloop where it is installed; with
    ``metrics``, also the Prometheus endpoint at that ``HOST:PORT``."""
    runner: Callable[[Coroutine[Any, Any, None]], None]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        runner = asyncio.run
    tune_process()
    listens = ", ".join(str(x) for x in server.options.listens)
    mode = f"config {server.config_path}" if server.config_path else "embedded cache (no config)"
    sys.stderr.write(f"mcpframe {__version__} listening on {listens}: {mode}\n")
    sys.stderr.flush()
    main: Coroutine[Any, Any, None]
    if metrics is not None:
        from mcpframe.proxy.metrics import serve_with_metrics

        main = serve_with_metrics(server, metrics)
    else:
        main = server.serve_forever()
    runner(main)
