"""``route_null`` of the route library (docs/routelib.md, where its arguments are).

Answer every request with its command's null reply.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.default_plugins.routes import handler
from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [handler("null", "answer every request with its command's null reply")]
