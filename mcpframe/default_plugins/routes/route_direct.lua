-- route_direct{ child = "pool" }: every request goes to the one child.
function route_direct_conf(t, ctx)
    routelib.require_opt(t, "child", "child")
    return t
end

function route_direct_start(a, ctx, fgen)
    local h = fgen:new_handle(a.child)
    -- this exact shape lets the proxy forward without running Lua per request
    fgen:ready({ n = ctx:label(), a = h, f = function(rctx, h)
        return function(r) return rctx:enqueue_and_wait(r, h) end
    end })
end
