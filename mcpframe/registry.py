"""The registry: every distribution, hasher, key filter, logger and route handler the loaded
plugins provide.

:func:`build_registry` calls each plugin's hooks once (at start-up or reload, never per
request), checks every record, and files it by kind and name:

* a record of the wrong type, a name that is not ``[a-z][a-z0-9_]*`` (names become Lua
  identifiers such as ``mcp.dist_<name>``), a hook that raises, a route handler whose ``lua``
  is not (non-empty) text, or a distribution whose ``key_hasher`` no plugin provides makes
  that whole plugin fail; the failure is recorded as a
  :class:`~mcpframe.errors.PluginLoadError` next to the import failures, and the other plugins
  are unaffected;
* two plugins providing the same name for one kind is a
  :class:`~mcpframe.errors.PluginConflictError` naming every provider and its package. Nothing
  is silently overridden.

Lookups such as ``registry.hashers["xxhash"]`` raise
:class:`~mcpframe.errors.UnknownPluginError` for an unknown name, listing the names that exist,
or saying which plugin should have provided it and why it is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Generic, TypeAlias, TypeVar, overload

from mcpframe.errors import PluginConflictError, PluginLoadError, UnknownPluginError
from mcpframe.plugins import (
    ENV_DISABLE_PLUGINS,
    DisabledPlugin,
    PluginManager,
    PluginSource,
    get_plugin_manager,
    normalize_package_name,
)
from mcpframe.types import (
    RECORD_TYPES,
    Distribution,
    Hasher,
    KeyFilter,
    Logger,
    PluginKind,
    PluginRecord,
    RouteHandler,
)

__all__ = ["NAME_PATTERN", "PluginTable", "Registry", "build_registry"]

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
"""What every record name must fully match: it becomes part of a Lua identifier."""

# Entry points of the built-ins are named <prefix><record name> (dist_ring_hash provides the
# distribution ring_hash); a failed or disabled plugin following that convention, or named
# exactly like the record, or packaged as mcpframe-<name>, is named in "unknown name" errors.
_ENTRY_POINT_PREFIXES = {
    PluginKind.DISTRIBUTION: "dist_",
    PluginKind.HASHER: "hash_",
    PluginKind.KEY_FILTER: "filter_",
    PluginKind.LOGGER: "logger_",
    PluginKind.ROUTE_HANDLER: "route_",
}

R = TypeVar("R", Distribution, Hasher, KeyFilter, Logger, RouteHandler)
_Default = TypeVar("_Default")


def _may_provide(source: PluginSource, kind: PluginKind, name: str) -> bool:
    return source.entry_point in (name, _ENTRY_POINT_PREFIXES[kind] + name) or (
        normalize_package_name(source.package) == normalize_package_name(f"mcpframe-{name}")
    )


class PluginTable(Mapping[str, R], Generic[R]):
    """The records of one kind, by name, with where each came from.

    A read-only mapping; ``table[name]`` raises :class:`~mcpframe.errors.UnknownPluginError`
    (not :exc:`KeyError`) for a missing name, with a message fit for the operator. ``in`` and
    :meth:`get` behave as for a dict.
    """

    def __init__(
        self,
        kind: PluginKind,
        records: Mapping[str, R],
        sources: Mapping[str, PluginSource],
        failed: Sequence[tuple[PluginLoadError, PluginSource]] = (),
        disabled: Sequence[DisabledPlugin] = (),
        dropped: Mapping[str, PluginLoadError] | None = None,
    ) -> None:
        self.kind = kind
        self._records: dict[str, R] = dict(sorted(records.items()))
        self._sources = dict(sources)
        self._failed = tuple(failed)
        self._disabled = tuple(disabled)
        self._dropped = dict(dropped or {})

    def __getitem__(self, name: str) -> R:
        try:
            return self._records[name]
        except KeyError:
            raise UnknownPluginError(self._missing_message(name)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, name: object) -> bool:
        return name in self._records

    @overload
    def get(self, name: str, /) -> R | None: ...
    @overload
    def get(self, name: str, /, default: R | _Default) -> R | _Default: ...
    def get(self, name: str, /, default: object = None) -> object:
        """The record called ``name``, or ``default``; never raises."""
        return self._records.get(name, default)

    def source(self, name: str) -> PluginSource:
        """Which entry point, package and version provide the record called ``name``."""
        if name not in self._records:
            raise UnknownPluginError(self._missing_message(name))
        return self._sources[name]

    def _missing_message(self, name: str) -> str:
        label = self.kind.label
        if name in self._dropped:  # its plugin ran but was refused: we know it was this name
            return f"{label} {name!r} is not available: {self._dropped[name]}"
        for error, source in self._failed:
            if _may_provide(source, self.kind, name):
                return f"{label} {name!r} is not available: {error}"
        for disabled in self._disabled:
            if _may_provide(disabled.source, self.kind, name):
                s = disabled.source
                return (
                    f"{label} {name!r} is not available: plugin {s.entry_point!r} from package "
                    f"{s.package!r} is {disabled.reason}"
                )
        available = ", ".join(self._records) or "(none)"
        return f"unknown {label} {name!r}; available: {available}"

    def __repr__(self) -> str:
        return f"<PluginTable {self.kind.value}: {', '.join(self._records)}>"


AnyTable: TypeAlias = (
    PluginTable[Distribution]
    | PluginTable[Hasher]
    | PluginTable[KeyFilter]
    | PluginTable[Logger]
    | PluginTable[RouteHandler]
)


class Registry:
    """What the loaded plugins provide, by kind and name; built by :func:`build_registry`.

    Attributes:
        distributions: ``mcp.dist_<name>`` records, e.g. ``registry.distributions["jump_hash"]``.
        hashers: ``mcp.hash_<name>`` records, e.g. ``registry.hashers["xxhash"]``.
        key_filters: records chosen by the ``filter`` pool option, e.g. ``["stop"]``.
        loggers: records chosen with ``--logger NAME[:ARG]``.
        route_handlers: ``route_<name>`` handlers of the route library, e.g.
            ``registry.route_handlers["failover"]``.
        failed: every plugin that failed to import, register, validate or provide valid
            records, in the order found.
        disabled: installed plugins an environment switch kept from loading.
        sources: every plugin tried, by entry-point name.
    """

    def __init__(
        self,
        records: Mapping[PluginKind, Mapping[str, PluginRecord]],
        record_sources: Mapping[PluginKind, Mapping[str, PluginSource]],
        sources: Mapping[str, PluginSource],
        failed: Sequence[PluginLoadError] = (),
        disabled: Sequence[DisabledPlugin] = (),
        dropped: Mapping[PluginKind, Mapping[str, PluginLoadError]] | None = None,
    ) -> None:
        self.sources = dict(sources)
        self.failed = list(failed)
        self.disabled = list(disabled)
        failed_with_source = [(e, self.sources.get(e.plugin) or _orphan(e)) for e in self.failed]

        def make(kind: PluginKind, cls: type[R]) -> PluginTable[R]:
            recs = {n: r for n, r in records.get(kind, {}).items() if isinstance(r, cls)}
            srcs = record_sources.get(kind, {})
            drops = (dropped or {}).get(kind)
            return PluginTable(kind, recs, srcs, failed_with_source, self.disabled, drops)

        self.distributions = make(PluginKind.DISTRIBUTION, Distribution)
        self.hashers = make(PluginKind.HASHER, Hasher)
        self.key_filters = make(PluginKind.KEY_FILTER, KeyFilter)
        self.loggers = make(PluginKind.LOGGER, Logger)
        self.route_handlers = make(PluginKind.ROUTE_HANDLER, RouteHandler)

    def table(self, kind: PluginKind) -> AnyTable:
        """The table for ``kind``."""
        if kind is PluginKind.DISTRIBUTION:
            return self.distributions
        if kind is PluginKind.HASHER:
            return self.hashers
        if kind is PluginKind.KEY_FILTER:
            return self.key_filters
        if kind is PluginKind.LOGGER:
            return self.loggers
        return self.route_handlers

    def key_hasher(self, dist: Distribution) -> Hasher | None:
        """The hasher published as ``mcp.dist_<name>.hash`` (``None`` when it names none)."""
        return None if dist.key_hasher is None else self.hashers[dist.key_hasher]

    def __repr__(self) -> str:
        counts = ", ".join(f"{k.value}s={len(self.table(k))}" for k in PluginKind)
        return f"<Registry {counts}, failed={len(self.failed)}>"


def _orphan(error: PluginLoadError) -> PluginSource:
    return PluginSource(error.plugin, "", error.package, "")


class _Rejected(Exception):
    """A plugin's hooks returned something unusable; the message is the cause."""


def _collect(pm: PluginManager, plugin: object) -> dict[PluginKind, list[PluginRecord]]:
    """Call each hook of one plugin alone, and check what it returns."""
    others = [p for p in pm.get_plugins() if p is not plugin]
    implemented = {caller.name for caller in pm.get_hookcallers(plugin) or ()}
    collected: dict[PluginKind, list[PluginRecord]] = {}
    for kind in PluginKind:
        hook = kind.hook_name
        cls = RECORD_TYPES[kind]
        records: list[PluginRecord] = []
        if hook not in implemented:
            collected[kind] = records
            continue
        # A caller restricted to this plugin goes through pluggy, so MCPFRAME_TRACE_PLUGINS
        # shows the call; pluggy drops None results, so an impl returning None provides nothing.
        try:
            for result in pm.subset_hook_caller(hook, others)():
                records.extend(result)
        except Exception as exc:
            raise _Rejected(f"{hook}() raised {type(exc).__name__}: {exc}") from exc
        seen: set[str] = set()
        for record in records:
            if not isinstance(record, cls):
                raise _Rejected(f"{hook}() returned {record!r}, expected {cls.__name__} records")
            if not isinstance(record.name, str) or not NAME_PATTERN.fullmatch(record.name):
                raise _Rejected(
                    f"{hook}() returned {kind.label} name {record.name!r}, which is not a valid "
                    f"name (lowercase letter, then lowercase letters, digits or _)"
                )
            if record.name in seen:
                raise _Rejected(f"{hook}() returned {kind.label} {record.name!r} twice")
            seen.add(record.name)
            if isinstance(record, RouteHandler):
                _check_route_handler(hook, record)
        collected[kind] = records
    return collected


def _check_route_handler(hook: str, record: RouteHandler) -> None:
    # Only the shape: compiling the Lua needs a Lua runtime, which lives in the lua/ layer
    # above this one; the route library compiles every handler (naming its chunk) when it
    # loads, and mcpframe.testing.check_route_handler lets authors catch that earlier.
    for field in ("lua", "chunkname", "description"):
        value = getattr(record, field)
        if not isinstance(value, str):
            raise _Rejected(
                f"{hook}() returned route handler {record.name!r} whose {field} is "
                f"{type(value).__name__}, expected str"
            )
    if not record.lua.strip():
        raise _Rejected(f"{hook}() returned route handler {record.name!r} with empty lua source")


def _reject(
    pm: PluginManager, failed: list[PluginLoadError], plugin_name: str, cause: str
) -> PluginLoadError:
    error = PluginLoadError(plugin_name, pm.source_of(plugin_name).package, cause)
    failed.append(error)
    return error


def build_registry(pm: PluginManager | None = None) -> Registry:
    """Collect every record from the plugins of ``pm`` (default: :func:`get_plugin_manager`).

    Call it at start-up and on reload. Failures of single plugins end up in
    :attr:`Registry.failed`.

    Raises:
        PluginConflictError: two or more plugins provide the same name for one kind; the
            message names every provider with its package.
    """
    pm = get_plugin_manager() if pm is None else pm
    failed = list(pm.failed)
    trace = pm.trace.root.get("registry")
    provided: dict[str, dict[PluginKind, list[PluginRecord]]] = {}
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # a name blocked with set_blocked()
            continue
        trace("collecting from", name)
        try:
            provided[name] = _collect(pm, plugin)
        except _Rejected as exc:
            _reject(pm, failed, name, str(exc))

    dropped: dict[PluginKind, dict[str, PluginLoadError]] = {}
    # A distribution may point at a hasher (ring_hash -> md5). If no plugin provides it, drop
    # the distribution's plugin; that may take a hasher another distribution names, so repeat.
    while True:
        hasher_names = {
            r.name for recs in provided.values() for r in recs.get(PluginKind.HASHER, [])
        }
        broken = {
            name: dist
            for name, recs in provided.items()
            for dist in recs.get(PluginKind.DISTRIBUTION, [])
            if isinstance(dist, Distribution)
            and dist.key_hasher is not None
            and dist.key_hasher not in hasher_names
        }
        if not broken:
            break
        for name, dist in broken.items():
            cause = (
                f"distribution {dist.name!r} names key_hasher {dist.key_hasher!r}, "
                f"which no loaded plugin provides"
            )
            error = _reject(pm, failed, name, cause)
            for kind, kind_records in provided.pop(name).items():
                for record in kind_records:
                    dropped.setdefault(kind, {})[record.name] = error

    records: dict[PluginKind, dict[str, PluginRecord]] = {k: {} for k in PluginKind}
    record_sources: dict[PluginKind, dict[str, PluginSource]] = {k: {} for k in PluginKind}
    providers: dict[tuple[PluginKind, str], list[PluginSource]] = {}
    for plugin_name, recs in provided.items():
        source = pm.source_of(plugin_name)
        for kind, kind_records in recs.items():
            for record in kind_records:
                providers.setdefault((kind, record.name), []).append(source)
                records[kind][record.name] = record
                record_sources[kind][record.name] = source

    conflicts = [
        f"{kind.label} {name!r} is provided by "
        + " and by ".join(
            f"plugin {s.entry_point!r} from package {s.package!r} {s.version}".rstrip()
            for s in sources
        )
        for (kind, name), sources in sorted(providers.items())
        if len(sources) > 1
    ]
    if conflicts:
        raise PluginConflictError(
            "; ".join(conflicts)
            + f"; uninstall one, or disable one with {ENV_DISABLE_PLUGINS}=<plugin or package>"
        )

    sources = dict(pm.sources)
    for name, _ in pm.list_name_plugin():
        sources.setdefault(name, pm.source_of(name))
    return Registry(records, record_sources, sources, failed, pm.disabled, dropped)
