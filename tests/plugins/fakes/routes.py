"""A third-party package of route handlers: ``first`` (written inline) and ``noop``."""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler

FIRST = """
function route_first_conf(t, ctx)
    if t.children == nil then error("route_first needs children") end
    return t
end

function route_first_start(a, ctx, fgen)
    local h = fgen:new_handle(a.children[1])
    fgen:ready({ n = ctx:label(), f = function(rctx)
        return function(r) return rctx:enqueue_and_wait(r, h) end
    end })
end
"""

NOOP = """
function route_noop_conf(t, ctx) return t end
function route_noop_start(a, ctx, fgen)
    fgen:ready({ n = ctx:label(), f = function(rctx)
        return function(r) return "SERVER_ERROR noop\\r\\n" end
    end })
end
"""


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [
        RouteHandler("first", FIRST, "route_first.lua", "ask the first child only"),
        RouteHandler("noop", NOOP),
    ]
