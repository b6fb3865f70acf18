"""``route_allsync`` of the route library (docs/routelib.md, where its arguments are).

Send to every child, wait for all, answer with the first error or the last result.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.default_plugins.routes import handler
from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [
        handler(
            "allsync",
            "send to every child, wait for all, answer with the first error or the last result",
        )
    ]
