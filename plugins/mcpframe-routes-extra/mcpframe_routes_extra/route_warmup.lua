-- route_warmup: put a new (cold) pool in service without a burst of misses. Reads go to
-- `child_cold`; on a miss they go to `child_warm`, the client gets the warm answer, and the
-- value is copied into the cold pool in the background. Writes go to the cold pool (and, with
-- write_warm = true, to the warm one as well, without waiting for it).
--
--   route_warmup{ child_cold = "new", child_warm = "old",
--                 ttl = 3600,           -- TTL of the copies; default: what the warm pool has left
--                 write_warm = false }  -- also send writes (set, delete, ...) to the warm pool
--
-- The copy is an add (`ms <key> <len> F<flags> T<ttl> ME`): it never overwrites a value
-- written to the cold pool meanwhile. Its value and client flags come from a meta probe
-- (`mg <key> f t v`) sent to the warm pool together with the client's own request, on cold
-- misses only, so any read command (get, gets, gat, gats, mg with any flags) can be copied.

local READS = { "CMD_GET", "CMD_GETS", "CMD_GAT", "CMD_GATS", "CMD_MG" }

function route_warmup_conf(t, ctx)
    local who = "route_warmup (" .. ctx:label() .. "): "
    if t.child_cold == nil then
        error(who .. "needs child_cold, the pool being warmed")
    end
    if t.child_warm == nil then
        error(who .. "needs child_warm, the pool with the data")
    end
    if t.ttl ~= nil and (math.type(t.ttl) ~= "integer" or t.ttl < 0) then
        error(who .. "ttl must be a whole number of seconds >= 0, not " .. tostring(t.ttl))
    end
    if t.write_warm ~= nil and type(t.write_warm) ~= "boolean" then
        error(who .. "write_warm must be true or false")
    end
    return t
end

-- The TTL for a copy: the configured one, or what the warm pool has left (t-1: none; a value
-- about to expire keeps one second rather than becoming immortal with T0).
local function fill_ttl(ttl, line)
    if ttl ~= nil then
        return ttl
    end
    local left = tonumber(string.match(line, "%f[%w]t(%-?%d+)"))
    if left == nil or left < 0 then
        return 0
    end
    return math.max(left, 1)
end

local function route_warmup_f(rctx, o)
    local cold, cold_fill, warm_probe, warm = o.cold, o.cold_fill, o.warm_probe, o.warm
    local reads, ttl, write_warm = o.reads, o.ttl, o.write_warm
    local request, fmt, match = mcp.request, string.format, string.match
    return function(r)
        if not reads[r:command()] then
            if write_warm then
                rctx:enqueue(r, warm)
            end
            return rctx:enqueue_and_wait(r, cold)
        end
        local res = rctx:enqueue_and_wait(r, cold)
        if res ~= nil and res:hit() then
            return res
        end
        local cold_missed = res ~= nil and res:ok()
        local key = r:key()
        -- A base64 key (meta b flag) would need the flag on the probe and the copy too.
        local probe = nil
        if cold_missed and not r:has_flag("b") then
            probe = request("mg " .. key .. " f t v\r\n")
            rctx:enqueue(probe, warm_probe) -- its handle comes first: sent just before r
        end
        local wres = rctx:enqueue_and_wait(r, warm)
        if probe ~= nil and wres ~= nil and wres:hit() then
            local p = rctx:wait_handle(warm_probe)
            if p ~= nil and p:hit() then
                local line = p:line() or ""
                local flags = match(line, "%f[%w]f(%d+)") or "0"
                local copy = request(
                    fmt("ms %s %d F%s T%d ME\r\n", key, p:vlen(), flags, fill_ttl(ttl, line)),
                    p
                )
                rctx:enqueue(copy, cold_fill)
                rctx:wait_cond(0) -- send it; the result is not waited for
            end
        end
        -- The warm answer, unless it failed where the cold pool had a clean miss.
        if wres ~= nil and (wres:ok() or not cold_missed) then
            return wres
        end
        return res
    end
end

function route_warmup_start(a, ctx, fgen)
    local o = {
        cold = fgen:new_handle(a.child_cold),
        cold_fill = fgen:new_handle(a.child_cold),
        warm_probe = fgen:new_handle(a.child_warm),
        warm = fgen:new_handle(a.child_warm),
        ttl = a.ttl,
        write_warm = a.write_warm,
        reads = {},
    }
    for _, name in ipairs(READS) do
        o.reads[mcp[name]] = true
    end
    fgen:ready({ a = o, n = ctx:label(), f = route_warmup_f })
end
