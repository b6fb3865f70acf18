"""A third-party package of route handlers: ``first`` (written inline) and ``noop``."""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler

FIRST = """
function route_first_conf(t, ctx)
    if t.child == nil then error("route_first (" .. ctx:label() .. "): no child") end
    return t
end

function route_first_start(a, ctx, fgen)
    local first = fgen:new_handle(a.child)
    local function generate(rctx)
        return function(r) return rctx:enqueue_and_wait(r, first) end
    end
    fgen:ready({ n = ctx:label(), f = generate })
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
