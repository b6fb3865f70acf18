"""``route_random`` of the route library (docs/routelib.md, where its arguments are).

Send each request to a child picked at random.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.default_plugins.routes import handler
from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [handler("random", "send each request to a child picked at random")]
