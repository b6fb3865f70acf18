"""``route_split`` of the route library (docs/routelib.md, where its arguments are).

Send to two children, answer with the first's result.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.default_plugins.routes import handler
from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [handler("split", "send to two children, answer with the first's result")]
