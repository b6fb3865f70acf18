-- route_allfastest{ children = {...}, miss = false, wait = nil }: sends each request to every
-- child and answers with the first useful result: the first hit, else the first miss (with
-- miss = true, wait for a hit from any child), else an error.
function route_allfastest_conf(t, ctx)
    routelib.require_opt(t, "children", "children")
    routelib.opt(t, "miss", "boolean")
    routelib.opt(t, "wait", "seconds")
    return t
end

function route_allfastest_start(a, ctx, fgen)
    local o = { hs = routelib.handles(fgen, a.children), miss = a.miss, wait = a.wait }
    if #o.hs == 0 then error("route_allfastest needs at least one child", 0) end
    -- without wait, the proxy may run it without Lua (mcp_funcgen.lua fast_plan)
    if a.wait == nil then
        fgen._fast = { kind = "allfastest", handles = o.hs, miss = a.miss }
    end
    fgen:ready({ n = ctx:label(), a = o, f = function(rctx, o)
        local hs, n, wait = o.hs, #o.hs, o.wait
        local mode = o.miss and mcp.WAIT_GOOD or mcp.WAIT_OK
        local GOOD, OK = mcp.RES_GOOD, mcp.RES_OK
        return function(r)
            rctx:enqueue(r, hs)
            rctx:wait_cond(1, mode, wait)
            local final
            for i = 1, n do
                local res, kind = rctx:result(hs[i])
                if kind == GOOD then
                    return res
                elseif kind == OK then
                    final = res
                elseif res ~= nil and (final == nil or type(final) == "string"
                    or not final:ok()) then
                    final = res
                end
            end
            return final
        end
    end })
end
