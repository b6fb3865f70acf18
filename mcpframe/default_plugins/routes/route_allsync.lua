-- route_allsync{ children = {...} }: sends each request to every child and waits for all;
-- answers with the first failed result in child order, else the last child's result.
function route_allsync_conf(t, ctx)
    routelib.require_opt(t, "children", "children")
    return t
end

function route_allsync_start(a, ctx, fgen)
    local hs = routelib.handles(fgen, a.children)
    if #hs == 0 then error("route_allsync needs at least one child", 0) end
    fgen:ready({ n = ctx:label(), a = hs, f = function(rctx, hs)
        local n, WAIT_ANY, RES_ANY = #hs, mcp.WAIT_ANY, mcp.RES_ANY
        return function(r)
            rctx:enqueue(r, hs)
            rctx:wait_cond(n, WAIT_ANY)
            local final
            for i = 1, n do
                local res, kind = rctx:result(hs[i])
                final = res
                if kind == RES_ANY then break end
            end
            return final
        end
    end })
end
