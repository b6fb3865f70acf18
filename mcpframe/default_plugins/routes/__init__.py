"""The Lua sources of mcpframe's built-in route handlers (``route_<name>.lua``), each
registered by its own plugin module, ``mcpframe.default_plugins.route_<name>``."""

from __future__ import annotations

from pathlib import Path

from mcpframe.types import RouteHandler


def handler(name: str, description: str) -> RouteHandler:
    """The built-in handler ``route_<name>`` (its source: ``route_<name>.lua`` beside this)."""
    return RouteHandler.from_file(name, Path(__file__).with_name(f"route_{name}.lua"), description)
