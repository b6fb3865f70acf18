"""Loading a memcached-proxy Lua config: the config VM, the route VM, and what crosses between.

The sequence follows memcached 1.6.20 (spec section 1): the files run, in order, in a config
VM that then calls ``mcp_config_pools(nil)``; its return value is deep-copied into a route VM,
where the same files run again and ``mcp_config_routes(copy)`` attaches hooks. Several files
share each VM's globals, so a later file sees (and may overwrite) what earlier ones defined;
every VM sees the start argument as ``mcp.start_arg`` (memcached 1.6.45, spec v2 1.7-1.8).
Each failure becomes a ``ConfigError`` naming the file and line Lua reports. What a load
produces are the records of :mod:`mcpframe.config`, which the proxy consumes without knowing
Lua.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lupa import lua54

from mcpframe.config import (
    BROADCAST,
    DEFAULT_TUNABLES,
    ROUTABLE,
    BackendLog,
    BackendSpec,
    ConfigSource,
    ConfValue,
    GlobalRateLimit,
    LoadedConfig,
    LuaObject,
    PoolRef,
    PoolSpec,
    Routes,
    TlsClient,
    Tunable,
)
from mcpframe.errors import ConfigError, PluginError, UnknownPluginError
from mcpframe.events import EventLog
from mcpframe.lua.crons import CronTable
from mcpframe.lua.runtime import (
    CONSTANTS,
    V2_CHUNKS,
    LuaRuntime,
    chunk_name,
    first_line,
    lua_source,
    new_runtime,
)
from mcpframe.placement import build_selector
from mcpframe.protocol import commands as c
from mcpframe.protocol.replies import ROUTED_LINE_MAX, VALUE_LENGTH_MAX
from mcpframe.registry import Registry

LuaError = lua54.LuaError
_MAX_DEPTH = 100

#: What ``mcp.server_stats(sub)`` reads (spec v2 7.4), given by the server that loads the
#: config: the ``(name, value)`` lines of section ``sub`` (None: ``stats``) and whether its
#: names are per item (``<n>:<name>``, ``items:<n>:<name>``), or None for an unknown section.
StatsSource = Callable[[str | None], "tuple[list[tuple[str, object]], bool] | None"]
_SECTION_KEY = re.compile(r"^(?:items:)?(\d+):(.+)$")


@dataclass
class RouteVM:
    """The route VM of one loaded config and its driver entry points."""

    lua: LuaRuntime
    resume: LuaObject
    fail: LuaObject
    resume_await: LuaObject
    abandon: LuaObject
    start_batch: LuaObject
    resume_batch: LuaObject
    take: LuaObject
    #: passthrough_pools(fn, ...): per route function, the pool it only passes requests to
    #: (its index), or -1 (see the Lua driver).
    passthrough_pools: LuaObject
    #: hooks[tag][command code] (tag "" is untagged), routable commands only.
    hooks: dict[str, dict[int, LuaObject]]
    codes: dict[str, int]
    state: LuaObject

    def set_wants(self, wants: dict[str, bool]) -> None:
        """Tell the VM's logging functions who listens (no Python call when nobody does)."""
        self.state[b"want_user"] = wants.get("proxyuser", False)
        self.state[b"want_reqs"] = wants.get("proxyreqs", False)

    def user_stats(self) -> dict[int, int]:
        """The ``mcp.stat`` counters by slot, as memcached's unsigned 64-bit values."""
        return {int(k): int(v) & 0xFFFFFFFFFFFFFFFF for k, v in self.state[b"ustats"].items()}

    def carry_user_stats(self, old: Routes) -> None:
        """Keep the counters of the VM this one replaces (a reload keeps user stats)."""
        ustats = self.state[b"ustats"]
        for index, value in old.user_stats().items():
            ustats[index] = value


def _b(s: str) -> bytes:
    return s.encode()


def _s(v: object) -> str:
    return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v)


def _now_ms() -> int:
    """The wall clock in milliseconds, as rate limiters read it (spec v2 6.1)."""
    return time.time_ns() // 1_000_000


def _mono_ms() -> int:
    """The monotonic clock in milliseconds (``mcp.time_mono_millis``)."""
    return time.monotonic_ns() // 1_000_000


def _backend_log(t: LuaObject) -> BackendLog | None:
    if t is None:
        return None
    return BackendLog(
        deadline=int(t[b"deadline"]),
        rate=int(t[b"rate"]),
        errors=bool(t[b"errors"]),
        tag=_s(t[b"tag"]),
    )


def _install_constants(mcp: Any) -> None:
    for name, value in CONSTANTS.items():
        mcp[_b(name)] = value


class _PluginSurface:
    """Builds ``mcp.dist_*`` / ``mcp.hash_*`` in a VM from the plugin registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def install(self, lua: LuaRuntime, mcp: LuaObject, state: LuaObject) -> None:
        dist_tag = lua.table()
        hash_tag = lua.table()
        state[b"DIST_TAG"] = dist_tag
        state[b"HASH_TAG"] = hash_tag
        not_callable = lua.execute(
            b"return function() "
            b"error('distribution objects are only used as mcp.pool{dist = ...}', 2) end"
        )
        hashers: dict[str, LuaObject] = {}
        for name in sorted(self.registry.hashers):
            t = lua.table()
            t[hash_tag] = _b(name)
            hashers[name] = t
            mcp[_b("hash_" + name)] = t
        for name in sorted(self.registry.distributions):
            dist = self.registry.distributions[name]
            t = lua.table()
            t[b"new"] = not_callable
            t[dist_tag] = _b(name)
            key_hasher = getattr(dist, "key_hasher", None)
            if key_hasher and key_hasher in hashers:
                t[b"hash"] = hashers[key_hasher]
            mcp[_b("dist_" + name)] = t

        # mcp.dist_<x> / mcp.hash_<x> for a plugin that is not installed (or failed to
        # load) must not quietly read as nil (a nil dist silently means jump hash): raise,
        # naming what is available or why the plugin failed.
        registry = self.registry

        def missing(field: bytes) -> bytes:
            name = _s(field)
            kind, _, plugin = name.partition("_")
            try:
                if kind == "dist":
                    registry.distributions[plugin]
                else:
                    registry.hashers[plugin]
            except Exception as e:
                return f"mcp.{name}: {e}".encode()
            return f"mcp.{name}: not available".encode()

        lua.execute(
            b"""
            local mcp, missing = ...
            setmetatable(mcp, { __index = function(_, k)
                if type(k) == "string" and (k:find("^dist_") or k:find("^hash_")) then
                    error(missing(k), 2)
                end
            end })
            """,
            mcp,
            missing,
        )


def _run_files(
    lua: LuaRuntime,
    paths: tuple[str, ...],
    registry: Registry,
    stat_names: dict[int, str] | None = None,
    shared: LuaObject = None,
) -> None:
    """Compile and run the config files in ``lua``, in order; chunk name = the path, for
    file:line. A file that does not compile stops the load (spec v2 1.6 [R]). The entry
    ``routelib`` is the route library (spec v2 1.9): see :func:`_run_routelib`."""
    run = lua.execute(
        b"""
        return function(path)
            local f, err = loadfile(path, "t")
            if not f then error(err, 0) end
            f()
        end
        """
    )
    for path in paths:
        if path == "routelib":
            _run_routelib(lua, registry, stat_names or {}, shared)
        else:
            run(_b(path))


def _run_routelib(
    lua: LuaRuntime, registry: Registry, stat_names: dict[int, str], shared: LuaObject
) -> None:
    """Run the route library in ``lua``: first the source of every route handler plugin
    (chunk name: its file, so errors name the file and line), then ``routelib.lua``, which
    registers them; the user's file runs later, from ``mcp_config_pools``. ``stat_names``:
    the previous load's ``mcp.add_stat`` names (config VM); ``shared``: the route VM's
    request/response internals (``state.shared``), for the library's null responses."""
    # A handler whose source does not compile or run is left out (a config that uses it is
    # told why); the others, and configs without it, still load.
    run = lua.execute(
        b"""
        return function(src, name)
            local f, err = load(src, name, "t")
            if not f then return err end
            local ok, e = pcall(f)
            if not ok then return tostring(e) end
        end
        """
    )
    names, broken = [], lua.table()
    for name in sorted(registry.route_handlers):
        record = registry.route_handlers[name]
        error = run(_b(record.lua), _b("@" + (record.chunkname or f"route_{name}")))
        if error is None:
            names.append(name)
        else:
            broken[_b(name)] = error
    prev = lua.table_from({k: _b(v) for k, v in stat_names.items()})
    library = lua.execute(b"return load(..., '=routelib', 't')", lua_source("routelib.lua"))
    library(lua.table_from([_b(n) for n in names]), prev, shared, broken)


def start_arg_value(lua: LuaRuntime, arg: str | None) -> LuaObject:
    """``mcp.start_arg`` for ``proxy_arg`` (spec v2 1.8): ``false`` when not given, the string
    when it has no ``:``, else a table: each ``:`` piece split on ``_`` into key and value
    (parts after the second dropped), a piece without ``_`` mapping to ``true``."""
    if arg is None:
        return False
    if ":" not in arg:
        return _b(arg)
    t = lua.table()
    for piece in arg.split(":"):
        key, sep, rest = piece.partition("_")
        t[_b(key)] = _b(rest.partition("_")[0]) if sep else True
    return t


class ConfigLoader:
    """Loads config files against one plugin registry; keeps tunables across reloads."""

    def __init__(self, registry: Registry, events: EventLog | None = None) -> None:
        self.registry = registry
        self.events = events
        self.surface = _PluginSurface(registry)
        self.tunables: dict[str, Tunable] = dict(DEFAULT_TUNABLES)
        self.stat_names: dict[int, str] = {}
        self.stat_names_pending: set[int] = set()
        self._built: dict[bytes, PoolSpec] = {}
        self._limits: dict[bytes, GlobalRateLimit] = {}
        #: the server's stats for ``mcp.server_stats`` (None: no server, as in ``check``:
        #: every section reads as an empty table).
        self.server_stats: StatsSource | None = None
        #: what mcp.init_tls set; kept across reloads, as memcached keeps its TLS context.
        self.tls: TlsClient | None = None
        self._state: LuaObject = None
        #: the config VM: one for the loader's life, so that its globals (and the crons'
        #: state) survive reloads, as memcached's config VM does (spec v2 1.3).
        self._config_vm: LuaRuntime | None = None
        #: what mcp.register_cron registered (the proxy runs them, proxy/crons.py).
        self.crons = CronTable()
        #: mcp.schedule_config_reload() was called (by a cron) since the last load.
        self.reload_requested = False

    def _tls_now(self) -> TlsClient | None:
        t = self._state[b"tls"] if self._state is not None else None
        if t is None:
            return self.tls
        return TlsClient(
            cafile=_s(t[b"cafile"]) if t[b"cafile"] is not None else "",
            verify=bool(t[b"verify"]),
            certfile=_s(t[b"certfile"]) if t[b"certfile"] is not None else "",
            keyfile=_s(t[b"keyfile"]) if t[b"keyfile"] is not None else "",
        )

    # -- config VM -------------------------------------------------------------------

    def load(self, source: str | ConfigSource) -> LoadedConfig:
        """Load ``source`` (one path, or files and a start argument).

        Raises:
            ConfigError: a file does not load (the message names the file and line).
            PluginError: a plugin the config uses is missing or failed.
        """
        source = ConfigSource.of(source)
        if not source.paths:
            raise ConfigError("no config file given")
        paths, path = source.paths, source.label
        self.crons.begin_load()
        ok = False
        try:
            loaded = self._load(source, paths, path)
            ok = True
            return loaded
        finally:
            self.crons.end_load(ok)
            # (during a load, mcp.schedule_config_reload() does nothing: spec v2 7.3)
            self.reload_requested = False

    def _load(self, source: ConfigSource, paths: tuple[str, ...], path: str) -> LoadedConfig:
        lua = self._config_vm
        if lua is None:
            lua = self._config_vm = new_runtime()
        mcp = lua.table()
        lua.globals().mcp = mcp
        _install_constants(mcp)
        mcp[b"start_arg"] = start_arg_value(lua, source.start_arg)
        state = lua.table()
        tunables = lua.table()
        for k, v in self.tunables.items():
            tunables[_b(k)] = v
        state[b"tunables"] = tunables
        state[b"stats"] = lua.table()
        self._state = state
        # mcp.pool checks its options when it is called (as memcached's C function does),
        # even for a pool the config then drops: the pool is built here and kept.
        built: dict[bytes, PoolSpec] = {}
        self._built = built
        self._limits = {}

        def build_pool(t: LuaObject, key: bytes) -> bytes | None:
            try:
                built[key] = self._pool_spec(t)
            except UnknownPluginError as e:
                name = _s(t[b"filter"]) if t[b"filter"] is not None else None
                if name is not None and name not in self.registry.key_filters:
                    known = ", ".join(sorted(self.registry.key_filters))
                    return f"unknown hash filter specified: {name} (available: {known})".encode()
                return str(e).encode()
            except (PluginError, ValueError, TypeError) as e:
                return str(e).encode()
            return None

        state[b"build_pool"] = build_pool
        state[b"server_stats"] = self._stats_table(lua)
        state[b"now_ms"] = _now_ms
        state[b"py_register_cron"] = self._register_cron
        state[b"py_schedule_reload"] = self._schedule_reload
        state[b"py_log"] = self._log_user
        self.surface.install(lua, mcp, state)
        lua.execute(lua_source("mcp_config.lua"), mcp, state, name=chunk_name("mcp_config.lua"))
        lua.execute(
            lua_source("mcp_ratelim.lua"), mcp, state, b"config", name=chunk_name("mcp_ratelim.lua")
        )

        try:
            _run_files(lua, paths, self.registry, self.stat_names)
        except LuaError as e:
            raise ConfigError(f"Failed to load config file: {first_line(e.args[0])}") from None
        pools_fn = lua.globals().mcp_config_pools
        if pools_fn is None:
            raise ConfigError(f"{path}: Configuration file missing 'mcp_config_pools' function")
        try:
            result = pools_fn(None)
        except LuaError as e:
            raise ConfigError(
                f"Failed to execute mcp_config_pools: {first_line(e.args[0])}"
            ) from None

        pools: list[PoolSpec] = []
        pool_ids: dict[bytes, int] = {}
        self._kind = lua.execute(
            b"""
            local state = ...
            return function(v)
                local mt = getmetatable(v)
                if mt == state.POOL_MT then return "pool", tostring(v) end
                if mt == state.BACKEND_MT then return "backend" end
                if mt == state.GLOBAL_TBF_MT then
                    return "ratelim", tostring(v), v.limit, v.fill, v.tick, v.last
                end
                return type(v)
            end
            """,
            state,
        )
        conf = self._copy_out(result, state, pools, pool_ids, 0, path)
        new_tunables = {_s(k): v for k, v in tunables.items()}
        stat_names = {int(k): _s(v) for k, v in state[b"stats"].items()}

        self.stat_names_pending = set(self.stat_names) | set(stat_names)
        routes = self._load_routes(source, conf, pools)
        broadcasts = {
            int(k): [int(i) for i in ids.values()] for k, ids in routes.state[b"broadcasts"].items()
        }
        # Commit tunables and stat names only once the whole load succeeded.
        self.tls = self._tls_now()
        self._state = None
        self.tunables.update(new_tunables)
        self.stat_names.update(stat_names)
        return LoadedConfig(
            path,
            pools,
            routes,
            dict(self.tunables),
            dict(self.stat_names),
            conf,
            broadcasts,
            source,
        )

    def _stats_table(self, lua: LuaRuntime) -> Callable[[bytes | None], LuaObject]:
        """The function behind ``mcp.server_stats``: a new table of string values, per-item
        sections as sub-tables by their number; None for an unknown section."""

        def server_stats(sub: bytes | None) -> LuaObject:
            table = lua.table()
            source = self.server_stats
            if source is None:
                return table
            found = source(None if sub is None else _s(sub))
            if found is None:
                return None
            lines, per_item = found
            for name, value in lines:
                text = _b(str(value))
                m = _SECTION_KEY.match(name) if per_item else None
                if m is None:
                    table[_b(name)] = text
                    continue
                index = int(m[1])
                section = table[index]
                if section is None:
                    section = table[index] = lua.table()
                section[_b(m[2])] = text
            return table

        return server_stats

    def _copy_out(
        self,
        value: LuaObject,
        state: LuaObject,
        pools: list[PoolSpec],
        pool_ids: dict[bytes, int],
        depth: int,
        path: str,
    ) -> ConfValue:
        """Deep copy of the config VM's value into Python (spec 1.4)."""
        if value is None or isinstance(value, (bool, int, float, bytes)):
            return value
        if depth > _MAX_DEPTH:
            raise ConfigError(f"{path}: configuration error: table recursion too deep")
        kind = self._kind(value)
        if isinstance(kind, tuple) and kind[0] == b"ratelim":
            # (one record per limiter, however often the value names it: one bucket)
            lim = self._limits.get(kind[1])
            if lim is None:
                lim = self._limits[kind[1]] = GlobalRateLimit(*(int(x) for x in kind[2:]))
            return lim
        if isinstance(kind, tuple):
            key = kind[1]
            if key not in pool_ids:
                pool_ids[key] = len(pools)
                spec = self._built.get(key)
                pools.append(spec if spec is not None else self._build_pool(value, path))
            return PoolRef(pool_ids[key])
        if kind == b"backend":
            raise ConfigError(f"{path}: unhandled userdata type in configuration table")
        if kind == b"table":
            out: dict[Any, ConfValue] = {}
            for k, v in value.items():
                if not isinstance(k, (bytes, int, float)) or isinstance(k, bool):
                    raise ConfigError(
                        f"{path}: configuration table keys must be strings or numbers"
                    )
                out[k] = self._copy_out(v, state, pools, pool_ids, depth + 1, path)
            return out
        raise ConfigError(f"{path}: unhandled data type in configuration table")

    def _build_pool(self, t: LuaObject, path: str) -> PoolSpec:
        try:
            return self._pool_spec(t)
        except (PluginError, ValueError, TypeError) as e:
            raise ConfigError(
                f"Failed to execute mcp_config_pools: {_s(t[b'where'])}: {e}"
            ) from None

    def _pool_spec(self, t: LuaObject) -> PoolSpec:
        """The pool an ``mcp.pool`` table describes, its selector built (plugin errors
        propagate)."""
        where = _s(t[b"where"])
        backends = []
        for i in range(1, len(t[b"backends"]) + 1):
            b = t[b"backends"][i]
            tls = self._tls_now() if b[b"tls"] else None
            if b[b"tls"] and tls is None:
                raise ValueError("TLS requested but not initialized: call mcp.init_tls()")
            backends.append(
                BackendSpec(
                    label=_s(b[b"label"]),
                    host=_s(b[b"host"]),
                    port=_s(b[b"port"]),
                    connecttimeout=float(b[b"connecttimeout"]),
                    retrytimeout=float(b[b"retrytimeout"]),
                    readtimeout=float(b[b"readtimeout"]),
                    failurelimit=int(b[b"failurelimit"]),
                    tcpkeepalive=bool(b[b"tcpkeepalive"]),
                    tls=tls,
                    depthlimit=int(b[b"depthlimit"]),
                    down=bool(b[b"down"]),
                    connections=int(b[b"connections"]),
                    flaptime=float(b[b"flaptime"]),
                    flapbackofframp=float(b[b"flapbackofframp"]),
                    flapbackoffmax=int(b[b"flapbackoffmax"]),
                    log=_backend_log(b[b"log"]),
                    where=_s(b[b"where"]),
                )
            )
        options = {_s(k): (_s(v) if isinstance(v, bytes) else v) for k, v in t[b"options"].items()}
        spec = PoolSpec(
            backends=backends,
            dist=_s(t[b"dist"]) if t[b"dist"] is not None else "jump_hash",
            hash=_s(t[b"hash"]) if t[b"hash"] is not None else "xxhash",
            seed=t[b"seed"],
            filter=_s(t[b"filter"]) if t[b"filter"] is not None else None,
            filter_conf=t[b"filter_conf"],
            options=options,
            beprefix=str(options.get("beprefix", "")),
            where=where,
        )
        spec.select = build_selector(self.registry, spec)
        return spec

    # -- route VM --------------------------------------------------------------------

    def _load_routes(self, source: ConfigSource, conf: ConfValue, pools: list[PoolSpec]) -> RouteVM:
        path = source.label
        lua = new_runtime()
        mcp = lua.table()
        lua.globals().mcp = mcp
        _install_constants(mcp)
        mcp[b"start_arg"] = start_arg_value(lua, source.start_arg)
        state = lua.table()
        hooks = lua.table()
        state[b"hooks"] = hooks
        attachable = lua.table()
        for code in range(c.CMD_MG, c.CMD_CACHE_MEMLIMIT + 1):
            attachable[code] = True
        state[b"attachable"] = attachable
        state[b"broadcasts"] = lua.table()
        state[b"broadcastable"] = lua.table_from({code: True for code in BROADCAST})
        self.surface.install(lua, mcp, state)
        codes_by_name = lua.table()
        for word, code in c.COMMANDS.items():
            codes_by_name[word] = code
        state[b"command_codes"] = codes_by_name
        state[b"max_line"], state[b"max_vlen"] = ROUTED_LINE_MAX, VALUE_LENGTH_MAX
        state[b"ustats"] = lua.table()
        state[b"ustat_slots"] = max(self.stat_names_pending, default=0)
        state[b"py_log"] = self._log_user
        state[b"py_log_req"] = self._log_req
        state[b"want_user"] = False
        state[b"want_reqs"] = False
        (
            resume, fail, resume_await, abandon, start_batch, resume_batch, take,
            passthrough_pools,
        ) = lua.execute(
            lua_source("mcp_routes.lua"), mcp, state, name=chunk_name("mcp_routes.lua")
        )  # fmt: skip
        state[b"now_ms"] = _now_ms
        state[b"mono_ms"] = _mono_ms
        for chunk in V2_CHUNKS:  # API v2: funcgens, rctx, routers
            lua.execute(lua_source(chunk), mcp, state, name=chunk_name(chunk))
        lua.execute(
            lua_source("mcp_ratelim.lua"), mcp, state, b"route", name=chunk_name("mcp_ratelim.lua")
        )
        codes = {_s(k): int(v) for k, v in state[b"codes"].items()}
        proxy_mt = state[b"POOL_PROXY_MT"]
        setmt = lua.globals().setmetatable
        limits: dict[int, LuaObject] = {}

        def copy_in(value: ConfValue) -> LuaObject:
            if isinstance(value, PoolRef):
                t = lua.table()
                t[b"_id"] = value.index
                return setmt(t, proxy_mt)
            if isinstance(value, GlobalRateLimit):
                lim = limits.get(id(value))
                if lim is None:
                    lim = limits[id(value)] = state[b"ratelim_proxy"](
                        value.limit, value.fillrate, value.tickrate, value.last_update
                    )
                return lim
            if isinstance(value, dict):
                t = lua.table()
                for k, v in value.items():
                    t[k] = copy_in(v)
                return t
            return value

        try:
            _run_files(lua, source.paths, self.registry, shared=state[b"shared"])
        except LuaError as e:
            raise ConfigError(
                f"Failed to load data into worker thread: {first_line(e.args[0])}"
            ) from None
        routes_fn = lua.globals().mcp_config_routes
        if routes_fn is None:
            raise ConfigError(f"{path}: Configuration file missing 'mcp_config_routes' function")
        try:
            routes_fn(copy_in(conf))
        except LuaError as e:
            raise ConfigError(
                f"Failed to execute mcp_config_routes: {first_line(e.args[0])}"
            ) from None
        # Only the commands 1.6.20's proxy parser knows reach a hook (spec 2.2, 6.2): a hook
        # attached to flush_all, slabs, ... (directly or by CMD_ANY) is kept but never used.
        py_hooks: dict[str, dict[int, LuaObject]] = {}
        for tag, table in hooks.items():
            py_hooks[_s(tag)] = {int(k): fn for k, fn in table.items() if int(k) in ROUTABLE}
        vm = RouteVM(
            lua, resume, fail, resume_await, abandon, start_batch, resume_batch, take,
            passthrough_pools, py_hooks, codes, state,
        )  # fmt: skip
        if self.events is not None:
            vm.set_wants(self.events.wants_by_stream())
        return vm

    # Called from the config VM.
    def _register_cron(self, name: bytes, func: LuaObject, every: int, repeat: bool) -> None:
        self.crons.register(_s(name), func, int(every), bool(repeat))

    def _schedule_reload(self) -> None:
        self.reload_requested = True

    # Called from Lua (in the route VM, only when someone listens: see RouteVM.set_wants).
    def _log_user(self, msg: bytes) -> None:
        if self.events is not None:
            self.events.emit("proxy_user", msg=_s(msg)[:512])

    def _log_req(
        self,
        line: bytes,
        elapsed: int,
        rtype: int,
        code: int,
        status: int,
        be: bytes,
        detail: bytes,
        cfd: int | None = None,
    ) -> None:
        # cfd: given (an integer) in API v2 configs only, whose lines are 1.6.45's.
        if self.events is not None:
            self.events.proxy_req(_s(line), elapsed, rtype, code, status, _s(be), _s(detail), cfd)
