"""The proxy process: listeners, the loaded config, backend connections, reloads, shutdown.

With no config, mcpframe is a memcached-compatible cache: there are no routes, so every
command goes to the local engine (the internal cache), exactly as an unhooked command does
under a config.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

from mcpframe.cache import Cache
from mcpframe.config import ConfigSource, LoadedConfig, TlsClient
from mcpframe.errors import ConfigError, PluginError, ServeError
from mcpframe.events import STREAMS, WATCH_NAMES, EventLog, format_event
from mcpframe.lua.config import ConfigLoader
from mcpframe.protocol.replies import ERROR
from mcpframe.protocol.request import Request
from mcpframe.proxy.backend import Backend, BackendStats, backend_key
from mcpframe.proxy.broadcast import targets as broadcast_targets
from mcpframe.proxy.client import ClientConnection
from mcpframe.proxy.clock import CLOCK
from mcpframe.proxy.crons import CronTimer
from mcpframe.proxy.latency import RouteLatency
from mcpframe.proxy.listeners import Listen, UnixSocketFile, inherited_unix_fds, parse_listen
from mcpframe.proxy.router import Pool, Router
from mcpframe.proxy.stats import general_stats, lua_stats, proxy_stats
from mcpframe.proxy.tls import (
    TlsServer,
    refresh_client_contexts,
    reload_server_context,
    server_context,
)
from mcpframe.proxy.turn import TURN
from mcpframe.proxy.workers import (
    ENV_STATS_DIR,
    PUBLISH_INTERVAL,
    StatsBoard,
    worker_count,
    worker_index,
)

__all__ = ["Listen", "ProxyServer", "ServerOptions", "parse_listen"]


@dataclass
class ServerOptions:
    listens: list[Listen] = field(default_factory=lambda: [Listen("127.0.0.1", 11211)])
    memory_mb: int = 64
    max_item_size: int = 1024 * 1024
    verbose: int = 0
    pid_file: str | None = None
    drain_timeout: float = 5.0
    reuse_port: bool = False
    #: client connections open at once (0: no limit); past it a new one is told
    #: ``ERROR Too many open connections`` and closed, as memcached does (``-c``).
    max_connections: int = 0
    #: What client connections speak: ``auto`` (from each one's first byte, as memcached
    #: does), ``ascii`` or ``binary`` (memcached's ``-B``).
    protocol: str = "auto"
    #: the ``tls:`` listeners' certificate settings (``--tls-*``).
    tls: TlsServer | None = None


class ProxyServer:
    def __init__(
        self,
        options: ServerOptions,
        config: LoadedConfig | None,
        events: EventLog,
        loader: ConfigLoader | None = None,
    ) -> None:
        self.options = options
        self.config = config
        self.events = events
        self.cache = Cache(
            memory_limit=options.memory_mb * 1024 * 1024, item_size_max=options.max_item_size
        )
        self.max_value = options.max_item_size
        self.backend_stats = BackendStats()
        self.backends: dict[Any, Backend] = {}
        self.router: Router | None = None
        #: under a config: the backends each keyless command is sent to (mcp.broadcast).
        self.broadcasts: dict[int, list[Backend]] = {}
        self.servers: list[asyncio.base_events.Server] = []
        #: the unix socket files this process made (removed on exit).
        self.socket_files: list[UnixSocketFile] = []
        self.connections: set[ClientConnection] = set()
        self.curr_connections = 0
        self.total_connections = 0
        self.rejected_connections = 0
        self.conn_errors = 0
        self.started = time.time()
        self.reloads = 0
        self.reload_fails = 0
        self.loader = loader
        #: runs the config's crons (spec v2 7.2), when it registers any.
        self.crons: CronTimer | None = None
        if loader is not None:
            loader.server_stats = partial(lua_stats, self)
            self.crons = CronTimer(loader, self.events, self.request_reload)
        self.config_path: str | None = None
        self.config_source: ConfigSource | None = None
        if config is not None:
            self.use_config(config)
        self.reload_task: asyncio.Task[None] | None = None
        self.reload_again = False
        self.retired_routers: list[Router] = []
        self.stopping: asyncio.Event | None = None
        #: with --workers: where the workers' stats meet (None in a single process).
        self.board: StatsBoard | None = None
        #: the context of the tls: listeners (certificates read again on reload).
        self.tls_context: ssl.SSLContext | None = None
        if any(x.tls for x in options.listens):
            if options.tls is None:
                raise ServeError("a tls: listener needs --tls-cert (and --tls-key)")
            self.tls_context = server_context(options.tls)
        elif options.tls is not None:
            raise ServeError("--tls-cert is given but no listener is tls: (e.g. tls:HOST:PORT)")
        if config is not None:
            refresh_client_contexts(_backend_tls(config))
        index, stats_dir = worker_index(), os.environ.get(ENV_STATS_DIR)
        if index is not None and stats_dir:
            self.board = StatsBoard(stats_dir, index)
        #: route latency histograms, when recorded (``--metrics``; set before start).
        self.route_latency: RouteLatency | None = None
        #: more sections to publish with the stats (the metrics endpoint's snapshot).
        self.publish_extra: Callable[[], dict[str, object]] | None = None

    # -- lifecycle -------------------------------------------------------------------

    def use_config(self, config: LoadedConfig) -> None:
        """Serve ``config`` once started, and reload it from the same files (raises
        ServeError when the TLS files of its backends do not load)."""
        refresh_client_contexts(_backend_tls(config))
        self.config = config
        self.config_path = config.path
        self.config_source = config.source

    def _apply_config(self, config: LoadedConfig) -> None:
        """Swap in a loaded config: new routes, reused or new backend connections.

        A backend whose label, host, port and options did not change keeps its connection
        (spec 1.7). In-flight requests finish on the routes and connections they started
        with: the old router stays alive through their callbacks, and a connection that no
        pool uses any more is closed once nothing is queued on it.
        """
        keep: dict[Any, Backend] = {}
        pools: list[Pool] = []
        for spec in config.pools:
            conns: list[Backend] = []
            for be in spec.backends:
                key = backend_key(be, spec.beprefix)
                conn = keep.get(key) or self.backends.get(key)
                if conn is None:
                    conn = Backend(
                        be, self.events, self.backend_stats, bool(config.tunables["tcpkeepalive"])
                    )
                keep[key] = conn
                conns.append(conn)
            pools.append(Pool(spec.select, conns))
        for key, conn in self.backends.items():
            if key not in keep:
                self._retire(conn)
        self.backends = keep
        for conn in keep.values():
            conn.start()
        self.broadcasts = broadcast_targets(config, pools)
        old = self.router
        self.router = Router(config, pools, self.cache, self.events, workers=worker_count())
        if self.route_latency is not None:
            self.router.record_latency(self.route_latency)
        if old is not None:
            # Counters live on across reloads: user stats (spec 2.7), cmd_*, requests.
            config.routes.carry_user_stats(old.config.routes)
            self.router.cmd_counts = old.cmd_counts
            self.router.requests_started = old.requests_started
            if old.active:
                self.retired_routers.append(old)
        self.config = config
        config.routes.set_wants(self.events.wants_by_stream())
        self.reloads += 1

    def _retire(self, conn: Backend) -> None:
        if conn.queued() == 0:
            conn.close()
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + conn.spec.readtimeout + conn.spec.connecttimeout + 1

        def check() -> None:
            if conn.queued() == 0 or loop.time() >= deadline:
                conn.close()
            else:
                loop.call_later(0.05, check)

        loop.call_later(0.05, check)

    def _reload_certificates(self) -> None:
        if self.tls_context is None or self.options.tls is None:
            return
        try:
            reload_server_context(self.tls_context, self.options.tls)
        except (ServeError, OSError, ssl.SSLError) as e:
            self.events.emit("proxy_error", msg=f"TLS certificates not reloaded, old kept: {e}")

    async def reload(self) -> bool:
        """Load the config file again; on success swap it in, on failure keep the old one.
        The listeners' TLS certificates are read again too."""
        self._reload_certificates()
        if self.loader is None or self.config_path is None:
            return False
        self.events.emit("proxy_conf", status="start")
        try:
            config = self.loader.load(self.config_source or self.config_path)
            refresh_client_contexts(_backend_tls(config))
        except (ConfigError, PluginError, ServeError) as e:
            self.reloads += 1
            self.reload_fails += 1
            self.events.emit("proxy_error", msg=f"reload failed, old config kept: {e}")
            self.events.emit("proxy_conf", status="failed")
            return False
        finally:
            if self.crons is not None:
                self.crons.schedule()
        self._apply_config(config)
        self.events.emit("proxy_conf", status="done")
        return True

    def request_reload(self) -> None:
        """SIGHUP: reload soon; signals arriving during a reload cause one more."""
        if self.reload_task is not None and not self.reload_task.done():
            self.reload_again = True
            return
        self.reload_task = asyncio.get_running_loop().create_task(self._reload_loop())

    async def _reload_loop(self) -> None:
        while True:
            self.reload_again = False
            await self.reload()
            if not self.reload_again:
                return

    async def start(self) -> None:
        TURN.attach(asyncio.get_running_loop())
        CLOCK.start(asyncio.get_running_loop())
        self.stopping = asyncio.Event()
        self.events.on_wants_change(self._wants_changed)
        if self.config is not None:
            self.events.emit("proxy_conf", status="start")
            self._apply_config(self.config)
            self.events.emit("proxy_conf", status="done")
        if self.crons is not None:
            self.crons.schedule()
        loop = asyncio.get_running_loop()
        inherited = inherited_unix_fds()
        try:
            for listen in self.options.listens:
                self.servers.append(await self._listen(loop, listen, inherited))
        except ServeError:
            self._close_listeners()
            raise

    async def _listen(
        self,
        loop: asyncio.AbstractEventLoop,
        listen: Listen,
        inherited: dict[str, int],
    ) -> asyncio.base_events.Server:
        tag = listen.tag
        factory = cast(
            "Callable[[], asyncio.Protocol]", lambda tag=tag: ClientConnection(self, tag)
        )
        if listen.path is not None:
            fd = inherited.get(listen.path)
            if fd is not None:  # a worker: the supervisor bound it (listeners.py)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=fd)
            else:
                made = UnixSocketFile(listen)
                self.socket_files.append(made)
                sock = made.sock
            return await loop.create_unix_server(
                factory, sock=sock, ssl=self.tls_context if listen.tls else None
            )
        try:
            server = await loop.create_server(
                factory,
                listen.host,
                listen.port,
                reuse_address=True,
                reuse_port=self.options.reuse_port or None,
                backlog=1024,
                ssl=self.tls_context if listen.tls else None,
            )
        except OSError as e:
            reason = os.strerror(e.errno) if e.errno else str(e)
            raise ServeError(f"cannot listen on {listen}: {reason.lower()}") from None
        for sock in server.sockets:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return server

    def _close_listeners(self) -> None:
        for s in self.servers:
            s.close()
        for made in self.socket_files:
            made.sock.close()
            made.remove()
        self.socket_files = []

    async def serve_forever(self) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        assert self.stopping is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        if self.board is not None:
            self._publish_stats()
        if self.options.pid_file:
            Path(self.options.pid_file).write_text(f"{os.getpid()}\n")
        try:
            await self.stopping.wait()
            await self.stop()
        finally:
            self._close_listeners()  # the unix socket files go even if stop() did not run
            if self.options.pid_file:
                with contextlib.suppress(OSError):
                    Path(self.options.pid_file).unlink()

    def _publish_stats(self) -> None:
        assert self.board is not None
        with contextlib.suppress(OSError):
            sections: dict[str, object] = {
                "general": general_stats(self),
                "proxy": proxy_stats(self),
            }
            if self.publish_extra is not None:
                sections.update(self.publish_extra())
            self.board.publish(sections)
        if self.stopping is not None and not self.stopping.is_set():
            asyncio.get_running_loop().call_later(PUBLISH_INTERVAL, self._publish_stats)

    def routers(self) -> list[Router]:
        """The live router and the retired ones still finishing requests (after a reload)."""
        return [r for r in (self.router, *self.retired_routers) if r is not None]

    def in_flight(self) -> int:
        return sum(r.active for r in self.routers()) + sum(c.owed() for c in self.connections)

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the drain timeout), close."""
        if self.crons is not None:
            self.crons.cancel()
        self._close_listeners()
        for conn in list(self.connections):
            conn.stop_reading()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.drain_timeout
        while self.in_flight() and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        for router in self.routers():
            router.abort_all()
        for b in self.backends.values():
            b.close()
        self.events.close()

    def connection_opened(self, conn: ClientConnection) -> None:
        limit = self.options.max_connections
        if limit and self.curr_connections >= limit and conn.transport is not None:
            self.rejected_connections += 1
            conn.transport.write(b"ERROR Too many open connections\r\n")
            conn.transport.close()  # no more data is read; connection_closed ignores it
            return
        self.connections.add(conn)
        self.curr_connections += 1
        self.total_connections += 1

    def connection_closed(self, conn: ClientConnection) -> None:
        self.events.unwatch(conn)
        if conn in self.connections:
            self.connections.discard(conn)
            self.curr_connections -= 1

    # -- local commands --------------------------------------------------------------

    def watch(self, conn: ClientConnection, req: Request) -> bytes:
        """``watch [stream...]``: turn the connection into a log stream (spec 9.3).

        Each line is memcached's ``ts=<s>.<us> gid=<n> type=...`` followed by ``\n``. Any of
        memcached's stream names is accepted (those about items, fetchers, mutations...,
        produce nothing here); another name is answered ``ERROR`` as memcached does.
        """
        names = [t.decode("ascii", "replace") for t in req.tokens()[1:]]
        if any(name not in WATCH_NAMES for name in names):
            return ERROR
        streams = frozenset(names) & STREAMS

        def write(event: Mapping[str, object]) -> None:
            conn.write_event((format_event(event) + "\n").encode())

        self.events.watch(conn, streams, write)
        return b"OK\r\n"

    def _wants_changed(self, wants: dict[str, bool]) -> None:
        if self.router is not None:
            self.router.config.routes.set_wants(wants)


def _backend_tls(config: LoadedConfig) -> set[TlsClient]:
    """The TLS settings the config's backends connect with."""
    return {be.tls for pool in config.pools for be in pool.backends if be.tls is not None}
