"""The plugin manager: finds plugins through entry points and loads each one in its own guard.

Every plugin, built-ins included, is an entry point in the ``mcpframe`` group. Loading happens
only when :func:`get_plugin_manager` (cached) or :func:`create_plugin_manager` (fresh) is
called, never at import time. A plugin that fails to import or register is recorded in
:attr:`PluginManager.failed` as a :class:`~mcpframe.errors.PluginLoadError` naming the entry
point and its package, and the others load regardless.

Environment switches, read when a manager is created:

``MCPFRAME_PLUGINS=name,...``
    Load only the listed third-party plugins. The built-ins (entry points of the ``mcpframe``
    package itself) always load, because every config relies on them (the default pool is
    ``mcp.dist_jump_hash`` with ``mcp.hash_xxhash``); block one with
    ``MCPFRAME_DISABLE_PLUGINS`` if you mean it. Set but empty means "built-ins only". A listed
    name that matches nothing installed is reported as a failed plugin, so a typo shows.
``MCPFRAME_DISABLE_PLUGINS=name,...``
    Do not load these, built-ins included. Wins over ``MCPFRAME_PLUGINS``.
``MCPFRAME_TRACE_PLUGINS=1``
    Write every hook call and its result, and every entry point loaded, to stderr (pluggy's
    tracing). Any value other than empty or ``0`` turns it on.

In both lists a name is an entry-point name (``dist_ring_hash``) or a package name
(``mcpframe-crc32``, which selects every entry point of that package); items are separated by
commas, and spaces around them are ignored.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata

import pluggy

from mcpframe import hookspecs
from mcpframe.errors import NotInstalledError, PluginLoadError

__all__ = [
    "BUILTIN_PACKAGE",
    "ENTRY_POINT_GROUP",
    "ENV_DISABLE_PLUGINS",
    "ENV_PLUGINS",
    "ENV_TRACE_PLUGINS",
    "DisabledPlugin",
    "PluginManager",
    "PluginSource",
    "create_plugin_manager",
    "discover_entry_points",
    "get_plugin_manager",
    "normalize_package_name",
]

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
"""The entry-point group every plugin (built-in or not) is declared in: ``mcpframe``."""

BUILTIN_PACKAGE = "mcpframe"
"""The distribution package whose entry points are the built-ins."""

ENV_PLUGINS = "MCPFRAME_PLUGINS"
ENV_DISABLE_PLUGINS = "MCPFRAME_DISABLE_PLUGINS"
ENV_TRACE_PLUGINS = "MCPFRAME_TRACE_PLUGINS"

NOT_INSTALLED_MESSAGE = (
    f"mcpframe is not installed (no built-in plugins found in entry-point group "
    f"{ENTRY_POINT_GROUP!r}); run pip install -e ."
)


def normalize_package_name(name: str) -> str:
    """PEP 503 normalization, so ``MCPFrame_CRC32`` and ``mcpframe-crc32`` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True, slots=True)
class PluginSource:
    """Where a plugin comes from: one entry point of one installed package.

    This is also what tests inject into :func:`create_plugin_manager` to load plugins that are
    not installed, e.g. ``PluginSource("broken", "tests.plugins.fakes.broken", "mcpframe-broken",
    "1.0")``.

    Attributes:
        entry_point: the entry-point name, which is also the plugin's name in the manager.
        value: what the entry point loads, ``"module"`` or ``"module:attribute"``.
        package: the distribution package that declares it (``"mcpframe"`` for built-ins).
        version: that package's version.
    """

    entry_point: str
    value: str
    package: str
    version: str

    @property
    def builtin(self) -> bool:
        """True for mcpframe's own entry points."""
        return normalize_package_name(self.package) == BUILTIN_PACKAGE

    def load(self) -> object:
        """Import the module the entry point names and return it (or its named attribute)."""
        module_name, _, attr = self.value.partition(":")
        obj: object = importlib.import_module(module_name.strip())
        for part in filter(None, attr.split("[")[0].strip().split(".")):
            obj = getattr(obj, part)
        return obj

    def matches(self, names: Iterable[str]) -> bool:
        """True when one of ``names`` is this entry point's name or its package's name."""
        package = normalize_package_name(self.package)
        return any(n == self.entry_point or normalize_package_name(n) == package for n in names)


@dataclass(frozen=True, slots=True)
class DisabledPlugin:
    """An installed plugin that an environment switch kept from loading, and which switch."""

    source: PluginSource
    reason: str


def discover_entry_points(group: str = ENTRY_POINT_GROUP) -> list[PluginSource]:
    """Every installed entry point of ``group``, built-ins first, then by package and name."""
    found = []
    for ep in metadata.entry_points(group=group):
        dist = ep.dist
        package = dist.name if dist is not None else "unknown"
        version = dist.version if dist is not None else ""
        found.append(PluginSource(ep.name, ep.value, package, version))
    return sorted(
        found, key=lambda s: (not s.builtin, normalize_package_name(s.package), s.entry_point)
    )


class PluginManager(pluggy.PluginManager):
    """A pluggy manager with mcpframe's hookspecs, which remembers where each plugin came from.

    Attributes:
        sources: every plugin that was tried, loaded or failed, by entry-point name.
        failed: one :class:`~mcpframe.errors.PluginLoadError` per plugin that could not be
            imported, registered or validated.
        disabled: installed plugins kept out by ``MCPFRAME_PLUGINS``/``MCPFRAME_DISABLE_PLUGINS``.
    """

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.sources: dict[str, PluginSource] = {}
        self.failed: list[PluginLoadError] = []
        self.disabled: list[DisabledPlugin] = []

    def load_plugins(
        self,
        sources: Iterable[PluginSource],
        *,
        only: frozenset[str] | None = None,
        disable: frozenset[str] = frozenset(),
    ) -> None:
        """Load and register each source in its own guard, then run ``check_pending()``.

        ``only`` and ``disable`` carry the ``MCPFRAME_PLUGINS`` and
        ``MCPFRAME_DISABLE_PLUGINS`` lists (``only=None`` means no restriction).
        """
        trace = self.trace.root.get("load")
        sources = list(sources)
        for source in sources:
            if source.matches(disable):
                self.set_blocked(source.entry_point)
                self.disabled.append(DisabledPlugin(source, f"disabled by {ENV_DISABLE_PLUGINS}"))
                trace("disabled", source.entry_point, "by", ENV_DISABLE_PLUGINS)
                continue
            if only is not None and not source.builtin and not source.matches(only):
                self.disabled.append(DisabledPlugin(source, f"not listed in {ENV_PLUGINS}"))
                trace("skipped", source.entry_point, "not listed in", ENV_PLUGINS)
                continue
            self._load_one(source)
        for name in sorted(only or ()):
            if not any(s.matches([name]) for s in sources):
                cause = f"listed in {ENV_PLUGINS} but no such plugin is installed"
                self.failed.append(PluginLoadError(name, "(not installed)", cause))
        self._check_pending_isolated()

    def _load_one(self, source: PluginSource) -> None:
        trace = self.trace.root.get("load")
        previous = self.sources.get(source.entry_point)
        if previous is not None:
            cause = (
                f"entry point name {source.entry_point!r} is already used by package "
                f"{previous.package!r}"
            )
            self.failed.append(PluginLoadError(source.entry_point, source.package, cause))
            return
        self.sources[source.entry_point] = source
        try:
            plugin = source.load()
            self.register(plugin, name=source.entry_point)
        except Exception as exc:  # any failure of third-party code is that plugin's failure
            cause = f"{type(exc).__name__}: {exc}"
            self.failed.append(PluginLoadError(source.entry_point, source.package, cause))
            trace("failed", source.entry_point, "from", source.package, "-", cause)
            return
        trace("loaded", source.entry_point, "from", source.package, source.version)

    def _check_pending_isolated(self) -> None:
        # check_pending() finds hook implementations with no matching spec (a misspelt hook
        # name). It raises on the first one; unregister that plugin, record it, and go on.
        while True:
            try:
                self.check_pending()
            except pluggy.PluginValidationError as exc:
                name = self.get_name(exc.plugin) or repr(exc.plugin)
                self.unregister(exc.plugin)
                package = self.source_of(name).package
                self.failed.append(PluginLoadError(name, package, str(exc)))
            else:
                return

    def source_of(self, name: str) -> PluginSource:
        """Where the plugin registered as ``name`` came from.

        A plugin registered directly with :meth:`register` rather than through an entry point
        gets a source with package ``"unknown"``.
        """
        return self.sources.get(name) or PluginSource(name, "", "unknown", "")


def _name_list(environ: Mapping[str, str], var: str) -> frozenset[str] | None:
    value = environ.get(var)
    if value is None:
        return None
    return frozenset(n.strip() for n in value.split(",") if n.strip())


def _write_stderr(text: str) -> None:
    # Looked up per call so that redirected or captured stderr (pytest's capsys) is honoured.
    sys.stderr.write(text)


def create_plugin_manager(
    sources: Iterable[PluginSource] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> PluginManager:
    """A new manager with every plugin loaded; never cached.

    Args:
        sources: the entry points to load; ``None`` discovers the installed ones. Tests pass a
            list to load plugins that are not installed (and must include the built-ins, e.g.
            ``[*discover_entry_points(), PluginSource(...)]``).
        environ: where to read the ``MCPFRAME_*`` switches; ``None`` means ``os.environ``.

    Raises:
        NotInstalledError: no built-in plugin among the sources, which means mcpframe's own
            entry points are not installed.
    """
    env = os.environ if environ is None else environ
    found = discover_entry_points() if sources is None else list(sources)
    if not any(s.builtin for s in found):
        raise NotInstalledError(NOT_INSTALLED_MESSAGE)
    pm = PluginManager()
    if env.get(ENV_TRACE_PLUGINS, "") not in ("", "0"):
        pm.trace.root.setwriter(_write_stderr)
        pm.enable_tracing()
    pm.load_plugins(
        found,
        only=_name_list(env, ENV_PLUGINS),
        disable=_name_list(env, ENV_DISABLE_PLUGINS) or frozenset(),
    )
    return pm


@functools.cache
def get_plugin_manager() -> PluginManager:
    """The process-wide manager, created (and its plugins loaded) on first call.

    The environment switches are read at that first call. Tests and a full reload that must
    see newly installed packages call ``get_plugin_manager.cache_clear()``; tests usually want
    :func:`create_plugin_manager` (or the ``mcpframe_plugin_manager`` fixture) instead.
    """
    return create_plugin_manager()
