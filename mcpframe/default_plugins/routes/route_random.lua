-- route_random{ children = {...} }: each request goes to one child picked at random.
function route_random_conf(t, ctx)
    routelib.require_opt(t, "children", "children")
    return t
end

function route_random_start(a, ctx, fgen)
    local hs = routelib.handles(fgen, a.children)
    if #hs == 0 then error("route_random needs at least one child", 0) end
    -- the proxy may run it without Lua (mcp_funcgen.lua fast_plan)
    fgen._fast = { kind = "random", handles = hs }
    fgen:ready({ n = ctx:label(), a = hs, f = function(rctx, hs)
        local n, random = #hs, math.random
        return function(r) return rctx:enqueue_and_wait(r, hs[random(n)]) end
    end })
end
