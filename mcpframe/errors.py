"""The exception tree. Every error an operator can cause has a class here."""

from __future__ import annotations


class McpframeError(Exception):
    """Base of every error mcpframe raises on purpose."""


class ConfigError(McpframeError):
    """A Lua config failed to load or run.

    ``str(err)`` is the full operator-facing message, which names the file and line where
    Lua knows them (``routes.lua:12: attempt to call a nil value``).
    """


class PluginError(McpframeError):
    """Base for plugin problems."""


class PluginLoadError(PluginError):
    """An entry point failed to import or register; names the package and the cause."""

    def __init__(self, plugin: str, package: str, cause: str) -> None:
        self.plugin = plugin
        self.package = package
        self.cause = cause
        super().__init__(f"plugin {plugin!r} from package {package!r} failed to load: {cause}")


class PluginConflictError(PluginError):
    """Two plugins provide the same name for the same kind; names every provider."""


class UnknownPluginError(PluginError):
    """A config asked for a plugin name that is not registered (or failed to load)."""


class ServeError(McpframeError):
    """The server could not start (port in use, bad listen address...)."""


class NotInstalledError(PluginError):
    """No built-in plugin was found: mcpframe's own entry points are not installed.

    Raised by the plugin manager factory; the message says how to fix it (``pip install -e .``).
    """


class PluginRuntimeError(PluginError):
    """A plugin's callable raised while placing a key; the message names the plugin, its
    package and the pool."""
