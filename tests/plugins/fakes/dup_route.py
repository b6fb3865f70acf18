"""A second provider of the route handler ``first`` (``routes`` has one): a conflict."""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [RouteHandler("first", "function route_first_conf(t) return t end")]
