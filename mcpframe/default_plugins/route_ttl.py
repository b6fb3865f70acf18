"""``route_ttl`` of the route library (docs/routelib.md, where its arguments are).

Set the TTL of ms/set/add/cas requests, then send them to the child.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.default_plugins.routes import handler
from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [handler("ttl", "set the TTL of ms/set/add/cas requests, then send them to the child")]
