"""``route_ratelim`` of the route library (docs/routelib.md, where its arguments are).

A token bucket in front of a child.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.default_plugins.routes import handler
from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [handler("ratelim", "a token bucket in front of a child")]
