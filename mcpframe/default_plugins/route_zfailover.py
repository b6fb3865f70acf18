"""``route_zfailover`` of the route library (docs/routelib.md, where its arguments are).

Ask the local zone, then every other zone at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.default_plugins.routes import handler
from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [handler("zfailover", "ask the local zone, then every other zone at once")]
