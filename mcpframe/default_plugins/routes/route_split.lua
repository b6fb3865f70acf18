-- route_split{ child_a = A, child_b = B }: sends each request to both; answers with A's
-- result (B's is dropped).
function route_split_conf(t, ctx)
    routelib.require_opt(t, "child_a", "child")
    routelib.require_opt(t, "child_b", "child")
    return t
end

function route_split_start(a, ctx, fgen)
    local o = { a = fgen:new_handle(a.child_a), b = fgen:new_handle(a.child_b) }
    -- the proxy may run it without Lua (mcp_funcgen.lua fast_plan): B is asked first
    fgen._fast = { kind = "split", handles = { o.b, o.a } }
    fgen:ready({ n = ctx:label(), a = o, f = function(rctx, o)
        local ha, hb = o.a, o.b
        return function(r)
            rctx:enqueue(r, hb)
            return rctx:enqueue_and_wait(r, ha)
        end
    end })
end
