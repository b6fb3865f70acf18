"""``route_allfastest`` of the route library (docs/routelib.md, where its arguments are).

Send to every child, answer with the first useful result.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.default_plugins.routes import handler
from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [handler("allfastest", "send to every child, answer with the first useful result")]
