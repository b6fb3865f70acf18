-- route_failover{ children = ..., failover_count = all, shuffle = false, miss = false,
-- wait = nil, local_zone = local_zone(), stats = false, stats_name = label }: tries the
-- children one after another until one answers with a hit (or, unless miss = true, a miss).
function route_failover_conf(t, ctx)
    local opt = routelib.opt
    routelib.require_opt(t, "children", "children")
    opt(t, "failover_count", "count")
    opt(t, "shuffle", "boolean")
    opt(t, "miss", "boolean")
    opt(t, "wait", "seconds")
    opt(t, "stats", "boolean")
    opt(t, "stats_name", "string")
    -- memcached's copy never reads the global local_zone() here; it was meant to.
    opt(t, "local_zone", "string", ctx:local_zone())
    if t.stats then
        t.stats_id = ctx:get_stats_id((t.stats_name or ctx:label()) .. "_retries")
    end
    return t
end

function route_failover_start(a, ctx, fgen)
    local hs = {}
    local zone = a.local_zone
    if zone ~= nil and a.children[zone] ~= nil then
        hs[1] = fgen:new_handle(a.children[zone])
        for name, child in pairs(a.children) do
            if name ~= zone then hs[#hs + 1] = fgen:new_handle(child) end
        end
    else
        hs = routelib.handles(fgen, a.children)
    end
    if #hs == 0 then error("route_failover needs at least one child", 0) end
    if a.shuffle then
        for i = #hs, 2, -1 do
            local j = math.random(i)
            hs[i], hs[j] = hs[j], hs[i]
        end
    end
    local o = { hs = hs, limit = math.min(a.failover_count or #hs, #hs), miss = a.miss,
        wait = a.wait, stats_id = a.stats_id }
    -- without wait or stats, the proxy may run it without Lua (mcp_funcgen.lua fast_plan)
    if a.wait == nil and a.stats_id == nil then
        fgen._fast = { kind = "failover", handles = hs, limit = o.limit, miss = a.miss }
    end
    fgen:ready({ n = ctx:label(), a = o, f = function(rctx, o)
        local hs, limit, miss, wait, sid = o.hs, o.limit, o.miss, o.wait, o.stats_id
        local stat = mcp.stat
        return function(r)
            local res, missed
            for i = 1, limit do
                if i > 1 and sid then stat(sid, 1) end
                res = rctx:enqueue_and_wait(r, hs[i], wait)
                -- (a string from a child handler, e.g. route_null, counts as a failure)
                if res ~= nil and type(res) ~= "string" then
                    if res:hit() then return res end
                    if res:ok() then
                        if not miss then return res end
                        missed = res
                    end
                end
            end
            return missed or res
        end
    end })
end
