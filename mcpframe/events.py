"""Log events: one place where proxy events are emitted and fanned out.

Events are dicts with at least ``type`` (``proxy_error``, ``proxy_backend``, ``proxy_conf``,
``proxy_user``, ``proxy_req``). They go to the logger plugins the operator chose and to the
client connections that ``watch`` the matching stream (memcached's ``watch proxyevents``,
``proxyuser``, ``proxyreqs``). Lua's logging functions learn who listens through
``on_wants_change`` so that, when nobody does, ``mcp.log_req`` costs no Python call at all.

It sits below the layers, importing only protocol constants: the Lua layer emits events
(``mcp.log``, ``mcp.log_req``) as the proxy does.

``proxy_req`` lines come in two formats, both built by :meth:`EventLog.proxy_req`: 1.6.20's
(``mcp.log_req`` in API v1 configs) and 1.6.45's, which adds ``res=`` and ``cfd=`` after
``status=`` (``mcp.log_req`` in API v2 configs, automatic backend logging).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from mcpframe.protocol.commands import MCMC_CODE_END, STATUS_OK

#: Which ``watch`` stream each event type belongs to (memcached's names).
STREAM_OF = {
    "proxy_conf": "proxyevents",
    "proxy_error": "proxyevents",
    "proxy_backend": "proxyevents",
    "proxy_user": "proxyuser",
    "proxy_req": "proxyreqs",
}
STREAMS = frozenset(STREAM_OF.values())
#: Every stream name memcached 1.6.20's ``watch`` accepts.
WATCH_NAMES = STREAMS | {
    "rawcmds",
    "evictions",
    "fetchers",
    "mutations",
    "sysevents",
    "connevents",
    "deletions",
}
#: What a logger plugin receives unless told otherwise: everything but per-request lines,
#: which only flow when a route calls mcp.log_req and someone asked for them.
DEFAULT_SINK_STREAMS = frozenset({"proxyevents", "proxyuser"})


class Sink(Protocol):
    def emit(self, event: Mapping[str, object]) -> None: ...

    def close(self) -> None: ...


class StderrSink:
    """The fallback sink: ``ts=... type=... k=v`` lines on stderr."""

    def emit(self, event: Mapping[str, object]) -> None:
        sys.stderr.write(format_event(event) + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        pass


#: The fields memcached prints for each event type, in its order (spec 9.3, 7.4). Other
#: fields an event carries (a Lua traceback, ...) reach the logger plugins only.
WATCH_FIELDS: dict[str, tuple[str, ...]] = {
    "proxy_conf": ("status",),
    "proxy_error": ("msg",),
    "proxy_user": ("msg",),
    # label and retry: 1.6.45's markedbadflap line (the 1.6.20 lines carry neither).
    "proxy_backend": ("error", "name", "port", "label", "depth", "rbuf", "retry"),
    # res and cfd: 1.6.45's (spec v2 10.6), see EventLog.proxy_req.
    "proxy_req": ("elapsed", "res_type", "code", "status", "res", "cfd", "be", "detail", "req"),
}


#: ``req=`` holds at most this much of the request line, ``detail=`` of the detail text
#: (memcached's limits).
MAX_REQ = 300
MAX_DETAIL = 150


def res_word(status: int, code: int) -> str:
    """1.6.45's ``res=``: ``good`` for an OK result that is not a miss (``MCMC_CODE_END``),
    ``ok`` for an OK miss, ``any`` for a failure. A missing response (status and code 0)
    is ``good``, as 1.6.45 prints it."""
    if status != STATUS_OK:
        return "any"
    return "ok" if code == MCMC_CODE_END else "good"


def format_event(event: Mapping[str, object]) -> str:
    """memcached's log line (without its newline): ``ts=<s>.<us> gid=<n> type=<t> k=v ...``.

    This is what ``watch`` streams carry. The microseconds are printed as a plain integer,
    without zero padding, as memcached prints them; ``res_type`` prints as the second
    ``type=`` of ``proxy_req`` lines. Values are written as they are (no quoting).
    """
    ts = event.get("ts")
    if not isinstance(ts, float | int):
        ts = time.time()
    sec = int(ts)
    usec = int((ts - sec) * 1_000_000)
    etype = str(event.get("type", ""))
    parts = [f"ts={sec}.{usec}", f"gid={event.get('gid', 0)}", f"type={etype}"]
    fields = WATCH_FIELDS.get(etype)
    if fields is None:
        fields = tuple(k for k in event if k not in ("ts", "gid", "type"))
    for k in fields:
        if k in event:
            parts.append(f"{'type' if k == 'res_type' else k}={event[k]}")
    return " ".join(parts)


Watcher = Callable[[Mapping[str, object]], None]


class EventLog:
    """Fans events out to sinks (logger plugins) and to watchers (``watch`` connections)."""

    def __init__(self, sinks: Iterable[tuple[Sink, frozenset[str]]] | None = None) -> None:
        self.sinks: list[tuple[Sink, frozenset[str]]] = (
            list(sinks) if sinks is not None else [(StderrSink(), DEFAULT_SINK_STREAMS)]
        )
        self.watchers: dict[object, tuple[frozenset[str], Watcher]] = {}
        self.gid = 0
        self._wants_listeners: list[Callable[[dict[str, bool]], None]] = []

    def wants_by_stream(self) -> dict[str, bool]:
        wants = dict.fromkeys(STREAMS, False)
        for _, streams in self.sinks:
            for s in streams:
                wants[s] = True
        for streams, _ in self.watchers.values():
            for s in streams:
                wants[s] = True
        return wants

    def on_wants_change(self, fn: Callable[[dict[str, bool]], None]) -> None:
        self._wants_listeners.append(fn)
        fn(self.wants_by_stream())

    def _changed(self) -> None:
        wants = self.wants_by_stream()
        for fn in self._wants_listeners:
            fn(wants)

    def watch(self, owner: object, streams: frozenset[str], fn: Watcher) -> None:
        self.watchers[owner] = (streams, fn)
        self._changed()

    def unwatch(self, owner: object) -> None:
        if self.watchers.pop(owner, None) is not None:
            self._changed()

    def emit(self, type: str, **fields: object) -> None:
        stream = STREAM_OF.get(type, "proxyevents")
        self.gid += 1
        event: dict[str, object] = {"ts": time.time(), "gid": self.gid, "type": type, **fields}
        for sink, streams in self.sinks:
            if stream in streams:
                try:
                    sink.emit(event)
                except Exception as e:  # a broken logger must not take the proxy down
                    sys.stderr.write(f"mcpframe: logger {sink!r} failed: {e}\n")
        for streams, fn in list(self.watchers.values()):
            if stream in streams:
                fn(event)

    def proxy_req(
        self,
        req: str,
        elapsed: int,
        rtype: int,
        code: int,
        status: int,
        be: str,
        detail: str,
        cfd: int | None = None,
    ) -> None:
        """A ``proxy_req`` event: ``req`` the request line without its terminator, ``be``
        ``host:port`` (``:`` without a response). With ``cfd`` the line is 1.6.45's, with
        ``res=`` (from ``status`` and ``code``) and ``cfd=``; without, 1.6.20's."""
        fields: dict[str, object] = {
            "elapsed": elapsed,
            "res_type": rtype,
            "code": code,
            "status": status,
        }
        if cfd is not None:
            fields["res"] = res_word(status, code)
            fields["cfd"] = cfd
        fields.update(be=be, detail=detail[:MAX_DETAIL], req=req[:MAX_REQ])
        self.emit("proxy_req", **fields)

    def close(self) -> None:
        for sink, _ in self.sinks:
            sink.close()
