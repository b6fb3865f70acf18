"""The records plugins yield from their hooks.

Every plugin kind has one frozen record: :class:`Distribution`, :class:`Hasher`,
:class:`KeyFilter`, :class:`Logger` and :class:`RouteHandler`. A hook returns an iterable of
them (see :mod:`mcpframe.hookspecs`); the :class:`~mcpframe.registry.Registry` collects them
once, at start-up or reload, checks their names and refuses duplicates.

What a record carries is plain Python callables. Choosing a backend for a key is
``selector(hasher.hash(key_filter(key), seed))``: three calls, no pluggy and no lookups on the
request path. ``build`` functions run once per pool (or per logger), so they are the place for
expensive preparation such as sorting a hash ring.

Names are the Lua surface: a :class:`Distribution` named ``jump_hash`` is ``mcp.dist_jump_hash``
in a config, a :class:`Hasher` named ``xxhash`` is ``mcp.hash_xxhash``, a :class:`KeyFilter`
named ``stop`` is chosen with ``mcp.pool(list, {filter = "stop", filter_conf = "|#|"})``, a
:class:`Logger` named ``jsonfile`` with ``--logger jsonfile:/var/log/mcpframe.jsonl`` and a
:class:`RouteHandler` named ``failover`` is ``route_failover{...}`` in a route-library config. So
a name must match ``[a-z][a-z0-9_]*``.
"""

from __future__ import annotations

import enum
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

__all__ = [
    "BackendInfo",
    "Distribution",
    "FilterFunction",
    "HashFunction",
    "Hasher",
    "KeyFilter",
    "LogSink",
    "Logger",
    "PluginKind",
    "PluginRecord",
    "PoolOptions",
    "RouteHandler",
    "Selector",
]

HashFunction: TypeAlias = Callable[[bytes, int], int]
"""``hash(key, seed) -> int`` in ``[0, 2**64)``."""

Selector: TypeAlias = Callable[[int], int]
"""``selector(hash64) -> index``: the 0-based backend index for a 64-bit key hash."""

PoolOptions: TypeAlias = Mapping[str, object]
"""The Lua options table of ``mcp.pool``, as a dict with str keys and str/int/float/bool values."""

FilterFunction: TypeAlias = Callable[[bytes], bytes]
"""``filter(key) -> bytes to hash``."""


class PluginKind(enum.StrEnum):
    """The five kinds of plugin record, with how each appears to operators."""

    DISTRIBUTION = "distribution"
    HASHER = "hasher"
    KEY_FILTER = "key_filter"
    LOGGER = "logger"
    ROUTE_HANDLER = "route"

    @property
    def hook_name(self) -> str:
        """The hook that yields records of this kind (``mcpframe_distributions`` ...)."""
        return _HOOK_NAMES[self]

    @property
    def label(self) -> str:
        """Human wording for messages: ``key distribution``, ``key hasher`` ..."""
        return _LABELS[self]

    def lua_name(self, name: str) -> str:
        """How a config refers to the record called ``name`` of this kind."""
        return _LUA_NAMES[self].format(name=name)


_HOOK_NAMES = {
    PluginKind.DISTRIBUTION: "mcpframe_distributions",
    PluginKind.HASHER: "mcpframe_hashers",
    PluginKind.KEY_FILTER: "mcpframe_key_filters",
    PluginKind.LOGGER: "mcpframe_loggers",
    PluginKind.ROUTE_HANDLER: "mcpframe_route_handlers",
}
_LABELS = {
    PluginKind.DISTRIBUTION: "key distribution",
    PluginKind.HASHER: "key hasher",
    PluginKind.KEY_FILTER: "key filter",
    PluginKind.LOGGER: "logger",
    PluginKind.ROUTE_HANDLER: "route handler",
}
_LUA_NAMES = {
    PluginKind.DISTRIBUTION: "mcp.dist_{name}",
    PluginKind.HASHER: "mcp.hash_{name}",
    PluginKind.KEY_FILTER: 'filter "{name}"',
    PluginKind.LOGGER: "logger {name}",
    PluginKind.ROUTE_HANDLER: "route_{name}",
}


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """One backend of a pool, as a distribution sees it when it builds its selector.

    Attributes:
        id: 1-based position of the backend in the pool's list; index ``id - 1`` is what a
            selector returns to choose it.
        host: the host string exactly as given to ``mcp.backend`` (not resolved). Ring
            distributions hash it, so ``"127.0.0.1"`` and ``"localhost"`` place keys differently.
        port: the port string exactly as given to ``mcp.backend`` (``"11211"`` by default).
        label: the backend's label (its first ``mcp.backend`` argument). memcached's own
            distributions ignore it.
    """

    id: int
    host: str
    port: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class Hasher:
    """A key hasher: turns the (filtered) key and the pool seed into a 64-bit number.

    Attributes:
        name: the Lua name suffix; a config uses it as ``mcp.hash_<name>``, for example
            ``mcp.pool(list, {hash = mcp.hash_xxhash})``. Must match ``[a-z][a-z0-9_]*``.
        hash: ``hash(key, seed) -> int``, an unsigned 64-bit integer (``0 <= h < 2**64``).
            ``seed`` is the pool's numeric seed, itself in ``[0, 2**64)`` (0 when the pool has no
            ``seed`` option); a hasher that takes a narrower seed must fold it, and may ignore it
            (MD5 does). It runs once per request: make it a C function or a tight closure.
            Ring distributions use only the low 32 bits, so those must be well mixed too.
        description: one line for ``mcpframe plugins list --json``.

    Example::

        import zlib

        Hasher("crc32", lambda key, seed: zlib.crc32(key, seed & 0xFFFFFFFF), "CRC-32")
    """

    name: str
    hash: HashFunction
    description: str = ""


@dataclass(frozen=True, slots=True)
class Distribution:
    """A key distribution: maps a key hash to one backend of a pool.

    Attributes:
        name: the Lua name suffix; a config uses it as ``mcp.dist_<name>``, for example
            ``mcp.pool(list, {dist = mcp.dist_ring_hash})``. Must match ``[a-z][a-z0-9_]*``.
        build: ``build(servers, options) -> selector``, called once per pool when a config
            loads. ``servers`` are the pool's backends in order (an empty pool is allowed);
            ``options`` is the whole ``mcp.pool`` options table (also holding ``dist``,
            ``hash``, ``seed``... which a distribution ignores), so distribution options such as
            ``omode`` live there. A bad option raises :exc:`ValueError` (or :exc:`TypeError`)
            whose message the operator sees as the config error, e.g.
            ``"ring_hash: bad omode argument"``. The returned ``selector(hash64) -> index``
            runs once per request and returns a 0-based index; an index outside
            ``range(len(servers))`` (for instance -1 for an empty pool) makes the pool call fail
            with ``"key dist hasher tried to use out of bounds index"``.
        key_hasher: the name of a :class:`Hasher` published as ``mcp.dist_<name>.hash``, for
            distributions that expect a specific key hash (ring_hash names ``"md5"``, so
            ``hash = mcp.dist_ring_hash.hash`` gives ketama compatibility). It does not change
            the pool's hasher by itself. ``None`` publishes no ``.hash``.
        description: one line for ``mcpframe plugins list --json``.

    Example::

        def build_modulo(servers, options):
            n = len(servers)
            return (lambda h: h % n) if n else (lambda h: -1)

        Distribution("modulo", build_modulo, description="hash modulo pool size")
    """

    name: str
    build: Callable[[Sequence[BackendInfo], PoolOptions], Selector]
    key_hasher: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """A key filter: chooses which part of a key is hashed.

    Attributes:
        name: the string a config passes as the ``filter`` pool option, as in
            ``mcp.pool(list, {filter = "stop", filter_conf = "|#|"})``. Must match
            ``[a-z][a-z0-9_]*``.
        build: ``build(filter_conf) -> filter``, called once per pool with the pool's
            ``filter_conf`` bytes (2 to 5 bytes; the config layer checks that before calling).
            It may raise :exc:`ValueError` for a conf it cannot use. ``filter(key) -> bytes``
            runs once per request and returns the bytes to hash; the key sent to the backend
            is never changed. A key that holds none of the conf bytes must come back unchanged.
        description: one line for ``mcpframe plugins list --json``.

    Example::

        def build_prefix(conf):
            sep = conf[:1]
            return lambda key: key.partition(sep)[0]

        KeyFilter("prefix", build_prefix, "hash the key up to the first conf byte")
    """

    name: str
    build: Callable[[bytes], FilterFunction]
    description: str = ""


@runtime_checkable
class LogSink(Protocol):
    """Where a :class:`Logger` writes events; what ``Logger.build`` returns.

    An event is a flat mapping with at least ``ts`` (a float, seconds since the epoch),
    ``type`` (``"proxy_error"``, ``"proxy_req"``, ...) and usually ``msg``; other keys depend on
    the type. Values are str, int, float, bool or None. ``emit`` is called from the event loop, so
    it must not block for long; ``close`` is called once, at shutdown or when the logger is
    replaced, and must flush.
    """

    def emit(self, event: Mapping[str, object]) -> None:
        """Write one event."""

    def close(self) -> None:
        """Flush and release resources; no ``emit`` follows."""


@dataclass(frozen=True, slots=True)
class Logger:
    """A log destination, chosen on the command line with ``--logger NAME[:ARG]``.

    Attributes:
        name: the ``NAME`` part of the option. Must match ``[a-z][a-z0-9_]*``.
        build: ``build(arg) -> LogSink``, called once at start-up with the text after the
            first ``:`` (``""`` when there is none): ``--logger jsonfile:/var/log/m.jsonl``
            calls the ``jsonfile`` logger's build with ``"/var/log/m.jsonl"``. A bad argument
            raises :exc:`ValueError` with a message for the operator.
        description: one line for ``mcpframe plugins list --json``.
    """

    name: str
    build: Callable[[str], LogSink]
    description: str = ""


@dataclass(frozen=True, slots=True)
class RouteHandler:
    """A route handler of the route library, used in a config as ``route_<name>{...}``.

    A handler is Lua, as in memcached's route library: its source defines two global functions,

    * ``route_<name>_conf(args, ctx)``, run in the config VM when the config is read: it
      checks the handler's arguments (``error(...)`` for a bad one) and returns the table the
      workers get;
    * ``route_<name>_start(args, ctx, fgen)``, run in each worker VM: it sets up the function
      generator ``fgen`` (``fgen:new_handle(child)`` for each child, then ``fgen:ready{...}``).

    The route library runs every handler's source in both VMs before the user's config, then
    registers the name, exactly as ``register_route_handlers{"<name>"}`` does for a handler
    written in the config itself.

    Attributes:
        name: the part after ``route_``; must match ``[a-z][a-z0-9_]*``.
        lua: the Lua source text defining the two functions (and nothing else global).
        chunkname: how Lua names the source in error messages and tracebacks, usually the file
            it was read from (``route_shadow.lua``); ``""`` means ``route_<name>``.
        description: one line for ``mcpframe plugins list --json``.

    Example::

        RouteHandler.from_file("shadow", Path(__file__).with_name("route_shadow.lua"),
                               "copy a sample of requests to a second pool")
    """

    name: str
    lua: str
    chunkname: str = ""
    description: str = ""

    @classmethod
    def from_file(
        cls, name: str, path: str | os.PathLike[str], description: str = ""
    ) -> RouteHandler:
        """The handler whose source is the file at ``path`` (read now, as UTF-8); Lua names
        the chunk after the file, so a config error points at its line."""
        return cls(name, pathlib.Path(path).read_text("utf-8"), str(path), description)


PluginRecord: TypeAlias = Distribution | Hasher | KeyFilter | Logger | RouteHandler
"""Any record a hook may yield."""

RECORD_TYPES: Mapping[PluginKind, type[PluginRecord]] = {
    PluginKind.DISTRIBUTION: Distribution,
    PluginKind.HASHER: Hasher,
    PluginKind.KEY_FILTER: KeyFilter,
    PluginKind.LOGGER: Logger,
    PluginKind.ROUTE_HANDLER: RouteHandler,
}
"""The record class each kind's hook must yield."""
