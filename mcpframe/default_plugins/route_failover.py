"""``route_failover`` of the route library (docs/routelib.md, where its arguments are).

Try children one after another until one answers.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.default_plugins.routes import handler
from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [handler("failover", "try children one after another until one answers")]
