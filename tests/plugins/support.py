"""Helpers shared by the plugin tests."""

from __future__ import annotations

from collections.abc import Mapping

from mcpframe.plugins import (
    PluginManager,
    PluginSource,
    create_plugin_manager,
    discover_entry_points,
)
from mcpframe.registry import Registry, build_registry


def fake(
    entry_point: str, target: str, package: str = "mcpframe-fake", version: str = "1.0"
) -> PluginSource:
    """An entry point of a fake package loading ``tests.plugins.fakes.<target>``."""
    return PluginSource(entry_point, f"tests.plugins.fakes.{target}", package, version)


def manager(*extra: PluginSource, environ: Mapping[str, str] | None = None) -> PluginManager:
    """A fresh manager with the built-ins plus ``extra``.

    Third-party plugins installed in the environment are left out, and so is the real
    environment, so that results do not depend on what else is installed.
    """
    builtins = [s for s in discover_entry_points() if s.builtin]
    return create_plugin_manager([*builtins, *extra], environ=environ or {})


def registry(*extra: PluginSource, environ: Mapping[str, str] | None = None) -> Registry:
    return build_registry(manager(*extra, environ=environ))
