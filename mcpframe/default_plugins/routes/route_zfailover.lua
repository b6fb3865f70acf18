-- route_zfailover{ children = "set_x", local_zone = local_zone(), miss = false,
-- stats = false, stats_name = label, failover_count = ignored }: asks the local zone's pool;
-- unless it answers with a hit (or, with miss = false, a miss), asks every other zone at once
-- and answers with the first hit, else a miss, else an error. Deprecated upstream: use
-- route_failover with local_zone.
function route_zfailover_conf(t, ctx)
    local opt = routelib.opt
    routelib.require_opt(t, "children", "children")
    opt(t, "miss", "boolean", false)
    opt(t, "stats", "boolean")
    opt(t, "stats_name", "string")
    opt(t, "failover_count", "count")
    opt(t, "local_zone", "string", ctx:local_zone())
    if t.local_zone == nil then
        error("route_zfailover must have a local_zone defined", 0)
    end
    local set = t.children
    if type(set) == "string" then set = ctx:pool(set) end
    if type(set) == "table" and set[t.local_zone] == nil then
        error("local_zone " .. t.local_zone .. " is not a zone of children", 0)
    end
    if t.stats then
        t.stats_id = ctx:get_stats_id((t.stats_name or ctx:label()) .. "_retries")
    end
    return t
end

function route_zfailover_start(a, ctx, fgen)
    local near = a.children[a.local_zone]
    if near == nil then error("local_zone " .. a.local_zone .. " is not a zone of children", 0) end
    local o = { near = fgen:new_handle(near), far = {}, miss = a.miss, stats_id = a.stats_id }
    for zone, child in pairs(a.children) do
        if zone ~= a.local_zone then o.far[#o.far + 1] = fgen:new_handle(child) end
    end
    -- without stats, the proxy may run it without Lua (mcp_funcgen.lua fast_plan): the local
    -- zone's handle, then the others in the order the handler reads their results
    if a.stats_id == nil then
        local hs = { o.near }
        for i, h in ipairs(o.far) do hs[i + 1] = h end
        fgen._fast = { kind = "zfailover", handles = hs, miss = a.miss }
    end
    fgen:ready({ n = ctx:label(), a = o, f = function(rctx, o)
        local near, far, nfar, miss, sid = o.near, o.far, #o.far, o.miss, o.stats_id
        local stat, FASTGOOD, GOOD, OK = mcp.stat, mcp.WAIT_FASTGOOD, mcp.RES_GOOD, mcp.RES_OK
        return function(r)
            local res = rctx:enqueue_and_wait(r, near)
            if nfar == 0 or (type(res) ~= "string" and (res:hit() or (not miss and res:ok()))) then
                return res
            end
            if sid then stat(sid, 1) end
            rctx:enqueue(r, far)
            rctx:wait_cond(nfar, FASTGOOD)
            -- a far hit, else a far miss, else the local miss, else the first error
            local final, err
            for i = 1, nfar do
                local fres, kind = rctx:result(far[i])
                if kind == GOOD then
                    return fres
                elseif kind == OK then
                    final = final or fres
                elseif err == nil then
                    err = fres
                end
            end
            if final then return final end
            if type(res) ~= "string" and res:ok() then return res end
            return err or res
        end
    end })
end
