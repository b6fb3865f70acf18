"""The text of ``stats`` replies: one public function per section, shared with ``/metrics``.

Each section is a list of ``(name, value)`` pairs in memcached's order; :func:`stats_reply`
turns the one a ``stats ...`` line asks for into ``STAT name value`` lines, and
``proxy/metrics.py`` and the workers' stats board read the same lists, so the numbers a
scraper sees are the numbers ``stats`` prints.

The sub-commands answer as memcached 1.6 does (field names, their order, extra tokens
ignored, ``ERROR`` for an unknown one); where mcpframe's store has no such thing (slab pages,
a segmented LRU, per-class hit counters) the figure is derived or 0, as docs/operations.md
("Stats") lists.
"""

from __future__ import annotations

import os
import resource
import socket
import time
from typing import TYPE_CHECKING

from mcpframe import MEMCACHED_VERSION
from mcpframe.protocol import commands as c
from mcpframe.protocol.replies import DETAIL_USAGE, END, ERROR, RESET
from mcpframe.proxy.clock import CLOCK

if TYPE_CHECKING:
    from collections.abc import Callable

    from mcpframe.protocol.request import Request
    from mcpframe.proxy.client import ClientConnection
    from mcpframe.proxy.server import ProxyServer

Lines = list[tuple[str, object]]

#: The ``cmd_*`` lines of ``stats proxy``, in memcached's order (not quite the codes' order).
PROXY_CMD_STATS = (
    c.CMD_MG, c.CMD_MS, c.CMD_MD, c.CMD_MN, c.CMD_MA, c.CMD_ME, c.CMD_GET, c.CMD_GAT,
    c.CMD_SET, c.CMD_ADD, c.CMD_CAS, c.CMD_GETS, c.CMD_GATS, c.CMD_INCR, c.CMD_DECR,
    c.CMD_TOUCH, c.CMD_APPEND, c.CMD_PREPEND, c.CMD_DELETE, c.CMD_REPLACE,
)  # fmt: skip


#: memcached's slab page: what ``chunks_per_page`` divides.
SLAB_PAGE_SIZE = 1024 * 1024

#: ``stats items`` fields per class, in memcached's order (with its LRU maintainer on).
ITEMS_FIELDS = (
    "number", "number_hot", "number_warm", "number_cold", "age_hot", "age_warm", "age",
    "mem_requested", "evicted", "evicted_nonzero", "evicted_time", "outofmemory",
    "tailrepairs", "reclaimed", "expired_unfetched", "evicted_unfetched", "evicted_active",
    "crawler_reclaimed", "crawler_items_checked", "lrutail_reflocked", "moves_to_cold",
    "moves_to_warm", "moves_within_lru", "direct_reclaims", "hits_to_hot", "hits_to_warm",
    "hits_to_cold", "hits_to_temp",
)  # fmt: skip
#: ``stats slabs`` per-class hit counters: kept for the whole cache only (``stats``), so 0.
SLAB_HIT_FIELDS = (
    "get_hits", "cmd_set", "delete_hits", "incr_hits", "decr_hits", "cas_hits", "cas_badval",
    "touch_hits",
)  # fmt: skip


def stats_reply(server: ProxyServer, req: Request, conn: ClientConnection | None = None) -> bytes:
    """The reply to a ``stats`` request answered locally (``conn`` is the client asking)."""
    toks = req.tokens()
    if len(toks) < 2:
        lines = general_stats(server)
        if server.board is not None:
            lines = server.board.total("general", lines)
        return format_lines(lines)
    sub = toks[1]
    if sub == b"reset":
        reset_stats(server)
        return RESET
    if sub == b"detail":
        return detail_reply(toks[2] if len(toks) > 2 else b"")
    if sub == b"conns":
        return format_lines(conns_stats(server, conn))
    section = SECTIONS.get(sub)
    if section is None:
        return ERROR
    lines = section(server)
    if server.board is not None and sub == b"proxy":
        lines = server.board.total("proxy", lines)
    return format_lines(lines)


def reset_stats(server: ProxyServer) -> None:
    """``stats reset``: what memcached 1.6.20 resets starts again from zero: the cache's
    counters (``cmd_*``, hits and misses, ``total_items``, evictions...), the accepted
    connections and the proxy's per-thread counters (``proxy_conn_requests``,
    ``proxy_conn_errors``). Gauges, ``stats proxy`` and the config and backend counters
    keep counting, as there. With ``--workers``, only the worker that got the request."""
    server.cache.reset_stats()
    server.total_connections = 0
    server.rejected_connections = 0
    server.conn_errors = 0
    for router in server.routers():
        router.requests_started = 0


def detail_reply(arg: bytes) -> bytes:
    """``stats detail on|off|dump``: mcpframe keeps no per-prefix stats, so it answers as
    memcached does with detail off and nothing recorded."""
    if arg in (b"on", b"off"):
        return b"OK\r\n"
    return END if arg == b"dump" else DETAIL_USAGE


def format_lines(lines: Lines) -> bytes:
    """``STAT name value`` lines and the closing ``END``."""
    out = [f"STAT {k} {v}\r\n" for k, v in lines]
    out.append("END\r\n")
    return "".join(out).encode()


def general_stats(server: ProxyServer) -> Lines:
    """``stats``: memcached's lines, in memcached's order, with the proxy lines where
    1.6.20 prints them (spec 9.1): the request gauges after the connection lines, the
    config and backend counters after the log watcher lines."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    now = time.time()
    lines: Lines = [
        ("pid", os.getpid()),
        ("uptime", int(now - server.started)),
        ("time", int(now)),
        ("version", MEMCACHED_VERSION),
        ("pointer_size", 64),
        ("rusage_user", f"{ru.ru_utime:.6f}"),
        ("rusage_system", f"{ru.ru_stime:.6f}"),
        ("max_connections", server.options.max_connections or 65536),
        ("curr_connections", server.curr_connections),
        ("total_connections", server.total_connections),
        ("rejected_connections", server.rejected_connections),
        ("connection_structures", server.curr_connections),
    ]
    routers = server.routers()
    if routers:
        lines += [
            ("proxy_conn_requests", routers[0].requests_started),
            ("proxy_conn_errors", server.conn_errors),
            ("proxy_conn_oom", 0),
            ("proxy_req_active", sum(r.active for r in routers)),
            ("proxy_await_active", sum(r.await_active for r in routers)),
        ]
    cache = server.cache.stats()
    items = ("bytes", "curr_items", "total_items", "evicted_unfetched", "evictions")
    tail = ("reclaimed",)
    lines += [
        (k, v)
        for k, v in cache.items()
        if k not in items and k not in tail and k not in ("limit_maxbytes", "item_size_max")
    ]
    lines += [
        ("limit_maxbytes", cache["limit_maxbytes"]),
        ("threads", 1),
        ("log_watchers", len(server.events.watchers)),
    ]
    if routers:
        backends = server.backend_stats
        lines += [
            ("proxy_config_reloads", server.reloads),
            ("proxy_config_reload_fails", server.reload_fails),
            ("proxy_config_cron_runs", server.crons.runs if server.crons else 0),
            ("proxy_config_cron_fails", server.crons.fails if server.crons else 0),
            ("proxy_backend_total", backends.total),
            ("proxy_backend_marked_bad", backends.marked_bad),
            ("proxy_backend_failed", backends.failed),
            ("proxy_request_failed_depth", backends.failed_depth),
        ]
    lines += [(k, cache[k]) for k in (*items, *tail) if k in cache]
    return lines


def proxy_stats(server: ProxyServer) -> Lines:
    """``stats proxy`` (spec 9.2): user stats by slot, the limits, buffer memory in use,
    then the routed request counts per command."""
    router = server.router
    lines: Lines = []
    if router is not None:
        cfg = router.config
        counters = cfg.routes.user_stats()
        for i in sorted(cfg.stat_names):
            if cfg.stat_names[i]:  # a blank name hides the slot (spec v2 10.5)
                lines.append((f"user_{cfg.stat_names[i]}", counters.get(i, 0)))
        lines.append(("active_req_limit", router.active_req_limit * router.workers))
        lines.append(("buffer_memory_limit", router.buffer_memory_limit * router.workers))
        lines.append(("buffer_memory_used", sum(r.mem_used for r in server.routers())))
    else:
        lines += [("active_req_limit", 0), ("buffer_memory_limit", 0)]
        lines.append(("buffer_memory_used", 0))
    counts = router.cmd_counts if router is not None else None
    for code in PROXY_CMD_STATS:
        lines.append((f"cmd_{c.NAMES[code]}", counts[code] if counts else 0))
    return lines


def proxybe_stats(server: ProxyServer) -> Lines:
    """``stats proxybe`` (spec v2 10.4): per label, the backends now marked bad (those
    configured ``down`` are not listed). With --workers: this worker's backends."""
    bad: dict[str, int] = {}
    for backend in server.backends.values():
        for conn in backend.connections():
            if conn.bad and not conn.spec.down:
                bad[conn.spec.label] = bad.get(conn.spec.label, 0) + 1
    return [(f"bad_{label}", n) for label, n in bad.items()]


def proxyfuncs_stats(server: ProxyServer) -> Lines:
    """``stats proxyfuncs`` (spec v2 10.3): per function generator name, the generators in
    use and their slots (``proxy/funcgens.py``). With --workers: this worker's."""
    router = server.router
    if router is None:
        return []
    flat = router.funcgens.funcs_stats()
    return [
        (f"{kind}_{bytes(flat[i]).decode('utf-8', 'replace')}", int(flat[i + offset]))
        for i in range(0, len(flat), 3)
        for kind, offset in (("funcs", 1), ("slots", 2))
    ]


def settings_stats(server: ProxyServer) -> Lines:
    """``stats settings``: the few settings mcpframe has, under memcached's names."""
    options = server.options
    return [
        ("maxbytes", options.memory_mb * 1024 * 1024),
        ("item_size_max", options.max_item_size),
        ("proxy_enabled", "yes" if server.config is not None else "no"),
        ("proxy_uring_enabled", "no"),
    ]


def items_stats(server: ProxyServer) -> Lines:
    """``stats items``: per slab class holding items (``Cache.slab_classes``). One LRU and no
    background maintainer: every item counts as cold, and the LRU counters are 0."""
    lines: Lines = []
    for figures in server.cache.slab_classes():
        prefix = f"items:{figures['class']}:"
        figures["number_cold"] = figures["number"]
        lines += [(prefix + name, figures.get(name, 0)) for name in ITEMS_FIELDS]
    return lines


def slabs_stats(server: ProxyServer) -> Lines:
    """``stats slabs``: per slab class holding items, its pages counted as if its items were
    packed into memcached's 1 MiB pages (nothing is allocated by page here);
    ``total_malloced`` is what the items really cost, the figure ``limit_maxbytes`` bounds."""
    lines: Lines = []
    classes = server.cache.slab_classes()
    for figures in classes:
        prefix = f"{figures['class']}:"
        chunk, used = figures["chunk_size"], figures["number"]
        per_page = SLAB_PAGE_SIZE // chunk
        total = -(-used // per_page) * per_page
        lines += [
            (prefix + "chunk_size", chunk),
            (prefix + "chunks_per_page", per_page),
            (prefix + "total_pages", total // per_page),
            (prefix + "total_chunks", total),
            (prefix + "used_chunks", used),
            (prefix + "free_chunks", total - used),
            (prefix + "free_chunks_end", 0),
        ]
        lines += [(prefix + name, 0) for name in SLAB_HIT_FIELDS]
    lines += [("active_slabs", len(classes)), ("total_malloced", server.cache.memory_used())]
    return lines


def sizes_stats(server: ProxyServer) -> Lines:
    """``stats sizes``: the item size histogram, which memcached keeps only when asked."""
    return [("sizes_status", "disabled")]


def conns_stats(server: ProxyServer, asking: ClientConnection | None = None) -> Lines:
    """``stats conns``: the listening sockets and the client connections, by descriptor."""
    now = time.time()
    entries: list[tuple[int, Lines]] = []
    for listener in server.servers:
        for sock in listener.sockets:
            entries.append(
                (
                    sock.fileno(),
                    [
                        ("addr", _address(sock.family, sock.getsockname())),
                        ("state", "conn_listening"),
                        ("secs_since_last_cmd", int(now - server.started)),
                    ],
                )
            )
    for conn in list(server.connections):
        transport = conn.transport
        client = transport.get_extra_info("socket") if transport is not None else None
        if transport is None or client is None:
            continue
        family = client.family
        entries.append(
            (
                client.fileno(),
                [
                    ("addr", _address(family, transport.get_extra_info("peername"))),
                    ("listen_addr", _address(family, transport.get_extra_info("sockname"))),
                    ("state", "conn_parse_cmd" if conn is asking else "conn_read"),
                    ("secs_since_last_cmd", CLOCK.now - conn.last_cmd),
                ],
            )
        )
    return [(f"{fd}:{name}", value) for fd, lines in sorted(entries) for name, value in lines]


def _address(family: int, address: str | tuple[str, int] | tuple[str, int, int, int]) -> str:
    """memcached's ``tcp:HOST:PORT`` / ``tcp6:[HOST]:PORT`` / ``unix:PATH`` (a unix client has
    no address of its own: memcached shows ``unix:<AF 1>``)."""
    if isinstance(address, (str, bytes)):
        text = address.decode("utf-8", "replace") if isinstance(address, bytes) else address
        return f"unix:{text}" if len(text) >= 2 else f"unix:<AF {int(socket.AF_UNIX)}>"
    if family == socket.AF_INET6:
        return f"tcp6:[{address[0]}]:{address[1]}"
    return f"tcp:{address[0]}:{address[1]}"


def lua_stats(server: ProxyServer, sub: str | None) -> tuple[Lines, bool] | None:
    """What ``mcp.server_stats(sub)`` reads (spec v2 7.4): the lines of ``stats [sub]`` and
    whether their names are per item or connection (``<n>:<name>``); None for a section
    memcached's ``server_stats`` does not know."""
    if sub is None:
        return general_stats(server), False
    if sub == "conns":
        return conns_stats(server), True
    if sub in ("items", "slabs", "sizes"):
        return SECTIONS[sub.encode()](server), True
    if sub in ("settings", "proxy", "proxybe"):
        return SECTIONS[sub.encode()](server), False
    if sub == "proxyfuncs":
        return proxyfuncs_stats(server), False
    return None


#: The sections answered as plain ``STAT`` lists, by sub-command.
SECTIONS: dict[bytes, Callable[[ProxyServer], Lines]] = {
    b"proxy": proxy_stats,
    b"proxybe": proxybe_stats,
    b"proxyfuncs": proxyfuncs_stats,
    b"settings": settings_stats,
    b"items": items_stats,
    b"slabs": slabs_stats,
    b"sizes": sizes_stats,
}
