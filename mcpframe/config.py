"""The records of a loaded config: what ``lua/`` produces and ``proxy/`` consumes.

Neither layer owns them: the Lua loader fills them from a config file, the proxy opens
connections and runs routes from them, ``check`` prints them. This module imports no layer but
``protocol`` (for the command codes).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from mcpframe.protocol import commands as c

#: The commands that can reach a route: those 1.6.20's proxy parser recognises (spec 2.2),
#: but ``mn``, which is always answered locally.
ROUTABLE: frozenset[int] = (frozenset(range(c.CMD_MG, c.CMD_END_STORAGE)) - {c.CMD_MN}) | {
    c.CMD_QUIT,
    c.CMD_STATS,
    c.CMD_WATCH,
    c.CMD_VERSION,
}

#: The keyless commands that change data on a server and that mcpframe would otherwise answer
#: from its internal cache alone: with a config loaded they are refused, unless the config
#: sends them to its pools with ``mcp.broadcast``. (The other administrative commands,
#: ``cache_memlimit``, ``slabs``, ``lru``, ``shutdown``..., are answered ``ERROR`` anyway.)
BROADCAST: frozenset[int] = frozenset({c.CMD_FLUSH_ALL})

#: A tunable's value: a number of seconds or kilobytes, a count, or a switch.
Tunable: TypeAlias = float | int | bool

#: Global tunables and their memcached defaults (spec 2.6). They persist across reloads.
DEFAULT_TUNABLES: dict[str, Tunable] = {
    "connecttimeout": 5.0,
    "retrytimeout": 3.0,
    "readtimeout": 3.0,
    "failurelimit": 3,
    "tcpkeepalive": False,
    "usetls": False,
    # memcached 1.6.45's (spec v2 7.1): depth limit and flap detection off by default.
    "depthlimit": 0,
    "flaptime": 0.0,
    "flapbackofframp": 1.5,
    "flapbackoffmax": 3600,
    "active_req_limit": 0,
    "buffer_memory_limit": 0,
}


@dataclass(frozen=True)
class TlsClient:
    """What ``mcp.init_tls{...}`` set for backends with ``tls = true``: the CA file to verify
    them against (empty: the system's CAs), whether to verify them (certificate and host name),
    and a client certificate to present (empty: none)."""

    cafile: str = ""
    verify: bool = True
    certfile: str = ""
    keyfile: str = ""


@dataclass(frozen=True)
class ConfigSource:
    """What to load: config files run in order in each VM (memcached's
    ``proxy_config=a.lua:b.lua``, spec v2 1.7) and the start argument every VM sees as
    ``mcp.start_arg`` (``proxy_arg``, spec v2 1.8; None: not given)."""

    paths: tuple[str, ...]
    start_arg: str | None = None

    @property
    def label(self) -> str:
        """The files as memcached spells them: joined with ``:``."""
        return ":".join(self.paths)

    @classmethod
    def of(cls, value: str | os.PathLike[str] | ConfigSource) -> ConfigSource:
        """A source from one path (kept whole: a single path may contain ``:``)."""
        if isinstance(value, ConfigSource):
            return value
        return cls((os.fspath(value),))


#: A Lua value held by the route VM (a function, a table): lupa has no type information.
LuaObject: TypeAlias = Any


@dataclass(frozen=True)
class BackendLog:
    """``mcp.backend{log = {...}}`` (spec v2 8.8): which results of the backend to log."""

    #: log results slower than this many milliseconds (0: off).
    deadline: int = 0
    #: log about one result in ``rate`` (1: every one; 0: off).
    rate: int = 1
    #: log every failed result.
    errors: bool = False
    #: the ``detail=`` text of the log lines.
    tag: str = ""


@dataclass(frozen=True)
class BackendSpec:
    """What ``mcp.backend`` described. Equal specs share one connection (spec 1.7; in 1.6.45
    every option counts, spec v2 8.2)."""

    label: str
    host: str
    port: str
    connecttimeout: float = 5.0
    #: seconds before a backend marked bad is tried again (1.6.45: ``retrywaittime``).
    retrytimeout: float = 3.0
    readtimeout: float = 3.0
    failurelimit: int = 3
    tcpkeepalive: bool = False
    #: speak TLS to it (``tls = true`` or ``mcp.backend_use_tls(true)``), with these settings.
    tls: TlsClient | None = None
    #: more requests than this outstanding: a new batch fails at once (0: no limit; v2 8.6).
    depthlimit: int = 0
    #: never connect; every request fails at once (spec v2 8.7).
    down: bool = False
    #: connections per backend, 1..8 (spec v2 8.3).
    connections: int = 1
    #: flap detection (spec v2 8.5): failures closer together than ``flaptime`` seconds
    #: count as flaps (0: off); a flapping backend waits ``retrytimeout * ramp ** flaps``
    #: seconds, at most ``flapbackoffmax``.
    flaptime: float = 0.0
    flapbackofframp: float = 1.5
    flapbackoffmax: int = 3600
    log: BackendLog | None = None
    where: str = field(default="?", compare=False)

    @property
    def unix(self) -> bool:
        """A unix socket backend: ``host`` is the socket's path (it starts with ``/``)."""
        return self.port == "" and self.host.startswith("/")

    @property
    def name(self) -> str:
        """``host:port``, or the path of a unix socket backend."""
        return self.host if self.unix else f"{self.host}:{self.port}"


@dataclass
class PoolSpec:
    """What ``mcp.pool`` described, with its key -> backend index function built."""

    backends: list[BackendSpec]
    dist: str = "jump_hash"
    hash: str = "xxhash"
    seed: bytes | None = None
    filter: str | None = None
    filter_conf: bytes | None = None
    options: dict[str, object] = field(default_factory=dict)
    beprefix: str = ""
    where: str = "?"
    select: Callable[[bytes], int] = field(default=lambda key: 0, repr=False)


class PoolRef:
    """A pool in the copied config value: its index in :attr:`LoadedConfig.pools`."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class GlobalRateLimit:
    """An ``mcp.ratelim_global_tbf`` in the copied config value (spec v2 6.3): its token
    bucket as created. Every place the value names it shares one bucket in the route VM."""

    __slots__ = ("fillrate", "last_update", "limit", "tickrate")

    def __init__(self, limit: int, fillrate: int, tickrate: int, last_update: int) -> None:
        self.limit = limit
        self.fillrate = fillrate
        self.tickrate = tickrate
        #: when it was made, in milliseconds of the wall clock (its first tick counts from it)
        self.last_update = last_update


#: What ``mcp_config_pools`` returned, copied out of the config VM.
ConfValue: TypeAlias = (
    "bool | int | float | bytes | PoolRef | GlobalRateLimit | dict[Any, ConfValue] | None"
)


class Routes(Protocol):
    """The routes of a loaded config as the proxy drives them (``lua.config.RouteVM``).

    The entry points are the route VM's driver functions (``mcp_routes.lua``).
    """

    #: the route VM's Lua runtime (``check`` asks it where route functions are defined).
    lua: LuaObject
    resume: LuaObject
    fail: LuaObject
    resume_await: LuaObject
    abandon: LuaObject
    start_batch: LuaObject
    resume_batch: LuaObject
    take: LuaObject
    #: passthrough_pools(fn, ...): per route function, the pool it only passes requests to.
    passthrough_pools: LuaObject
    #: hooks[tag][command code] (tag "" is untagged), routable commands only.
    hooks: dict[str, dict[int, LuaObject]]
    codes: dict[str, int]
    #: the VM's shared state table (``state.v2`` holds the API v2 driver, mcp_funcgen.lua).
    state: LuaObject

    def set_wants(self, wants: dict[str, bool]) -> None: ...

    def user_stats(self) -> dict[int, int]: ...

    def carry_user_stats(self, old: Routes) -> None: ...


@dataclass
class LoadedConfig:
    """One config (one or more files), loaded: its pools, routes, tunables and ``mcp.stat``
    names. ``path`` is the files joined with ``:``; ``source`` is what a reload loads again."""

    path: str
    pools: list[PoolSpec]
    routes: Routes
    tunables: dict[str, Tunable]
    stat_names: dict[int, str]
    #: what mcp_config_pools returned, copied out (pools as :class:`PoolRef`).
    conf: ConfValue = None
    #: ``mcp.broadcast``: command code -> the indexes in ``pools`` it is sent to.
    broadcasts: dict[int, list[int]] = field(default_factory=dict)
    source: ConfigSource | None = None

    def named_pools(self) -> dict[str, PoolSpec]:
        """Pools by their path in the value mcp_config_pools returned (``main``, ``z.1``...)."""
        out: dict[str, PoolSpec] = {}

        def walk(value: ConfValue, path: str) -> None:
            if isinstance(value, PoolRef):
                out.setdefault(path or "(config)", self.pools[value.index])
            elif isinstance(value, dict):
                for k in sorted(value, key=lambda k: (isinstance(k, bytes), str(k))):
                    name = k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else str(k)
                    walk(value[k], f"{path}.{name}" if path else name)

        walk(self.conf, "")
        return out
