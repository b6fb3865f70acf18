"""The text of ``stats`` replies: one public function per section, shared with ``/metrics``.

Each section is a list of ``(name, value)`` pairs in memcached's order; :func:`stats_reply`
turns the one a ``stats ...`` line asks for into ``STAT name value`` lines, and
``proxy/metrics.py`` and the workers' stats board read the same lists, so the numbers a
scraper sees are the numbers ``stats`` prints.
"""

from __future__ import annotations

import os
import resource
import time
from typing import TYPE_CHECKING

from mcpframe import MEMCACHED_VERSION
from mcpframe.protocol import commands as c

if TYPE_CHECKING:
    from mcpframe.protocol.request import Request
    from mcpframe.proxy.server import ProxyServer

Lines = list[tuple[str, object]]

#: The ``cmd_*`` lines of ``stats proxy``, in memcached's order (not quite the codes' order).
PROXY_CMD_STATS = (
    c.CMD_MG, c.CMD_MS, c.CMD_MD, c.CMD_MN, c.CMD_MA, c.CMD_ME, c.CMD_GET, c.CMD_GAT,
    c.CMD_SET, c.CMD_ADD, c.CMD_CAS, c.CMD_GETS, c.CMD_GATS, c.CMD_INCR, c.CMD_DECR,
    c.CMD_TOUCH, c.CMD_APPEND, c.CMD_PREPEND, c.CMD_DELETE, c.CMD_REPLACE,
)  # fmt: skip


def stats_reply(server: ProxyServer, req: Request) -> bytes:
    """The reply to a ``stats`` request answered locally."""
    toks = req.tokens()
    sub = toks[1] if len(toks) > 1 else b""
    if sub == b"":
        lines = general_stats(server)
        if server.board is not None:
            lines = server.board.total("general", lines)
    elif sub == b"proxy":
        lines = proxy_stats(server)
        if server.board is not None:
            lines = server.board.total("proxy", lines)
    elif sub == b"settings":
        lines = settings_stats(server)
    else:
        return b"ERROR\r\n" if len(toks) > 2 else b"END\r\n" if sub == b"reset" else b"ERROR\r\n"
    return format_lines(lines)


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
        ("max_connections", 65536),
        ("curr_connections", server.curr_connections),
        ("total_connections", server.total_connections),
        ("rejected_connections", 0),
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
            ("proxy_backend_total", backends.total),
            ("proxy_backend_marked_bad", backends.marked_bad),
            ("proxy_backend_failed", backends.failed),
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


def settings_stats(server: ProxyServer) -> Lines:
    """``stats settings``: the few settings mcpframe has, under memcached's names."""
    options = server.options
    return [
        ("maxbytes", options.memory_mb * 1024 * 1024),
        ("item_size_max", options.max_item_size),
        ("proxy_enabled", "yes" if server.config is not None else "no"),
        ("proxy_uring_enabled", "no"),
    ]
