-- route_shadow: answer from `child`, and send a sampled copy of the traffic to `child_shadow`
-- without waiting for it (a new pool, a canary, a load test). The copy shares the request
-- object and goes out in the same batch as the real one; the route returns as soon as `child`
-- answers, and the shadow's result, error or timeout is dropped.
--
--   route_shadow{ child = "main", child_shadow = "canary",
--                 sample = 0.1,            -- fraction of traffic copied, 0..1 (default 1)
--                 sample_by = "key",       -- "key" (default): the same 10% of keys every time,
--                                          -- so the shadow sees whole key histories;
--                                          -- "random": 10% of requests
--                 commands = { "get", "mg", "set", "ms" } }  -- default: every command

-- Where a key falls in [0, 1): FNV-1a's step taken 8 bytes at a time (4 times cheaper in Lua
-- than a byte at a time, 0.3 us for a 32-byte key), folded to 32 bits and finished with
-- murmur3's mix. Stable across workers and restarts, so a key is either always shadowed or
-- never. Lua 5.4 integer arithmetic wraps around, as the multiply needs.
local unpack, byte = string.unpack, string.byte

local function key_point(key)
    local h = 0xCBF29CE484222325
    local n, i = #key, 1
    while i + 7 <= n do
        h = (h ~ unpack("<i8", key, i)) * 0x100000001B3
        i = i + 8
    end
    while i <= n do
        h = (h ~ byte(key, i)) * 0x100000001B3
        i = i + 1
    end
    h = (h ~ (h >> 32)) & 0xFFFFFFFF
    h = h ~ (h >> 16)
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h = h ~ (h >> 13)
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h = h ~ (h >> 16)
    return h / 4294967296.0
end

local function command_id(name)
    if type(name) ~= "string" then
        return nil
    end
    return mcp["CMD_" .. string.upper(name)]
end

function route_shadow_conf(t, ctx)
    local who = "route_shadow (" .. ctx:label() .. "): "
    if t.child == nil then
        error(who .. "needs child, the pool that answers")
    end
    if t.child_shadow == nil then
        error(who .. "needs child_shadow, the pool that gets the copies")
    end
    if t.sample == nil then
        t.sample = 1
    elseif type(t.sample) ~= "number" or t.sample < 0 or t.sample > 1 then
        error(who .. "sample must be a number from 0 to 1, not " .. tostring(t.sample))
    end
    if t.sample_by == nil then
        t.sample_by = "key"
    elseif t.sample_by ~= "key" and t.sample_by ~= "random" then
        error(who .. 'sample_by must be "key" or "random", not ' .. tostring(t.sample_by))
    end
    if t.commands ~= nil then
        if type(t.commands) ~= "table" or #t.commands == 0 then
            error(who .. 'commands must be a list of command names such as { "get", "mg" }')
        end
        for _, name in ipairs(t.commands) do
            if command_id(name) == nil then
                error(who .. "unknown command in commands: " .. tostring(name))
            end
        end
    end
    return t
end

local function route_shadow_f(rctx, o)
    local primary, shadow, cmds = o.primary, o.shadow, o.cmds
    local sample, by_key = o.sample, o.by_key
    local random = math.random
    return function(r)
        if sample > 0 and (cmds == nil or cmds[r:command()]) then
            local copy
            if sample >= 1 then
                copy = true
            elseif by_key then
                copy = key_point(r:key()) < sample
            else
                copy = random() < sample
            end
            if copy then
                -- Only queued here: it is sent with the request below, which alone is waited.
                rctx:enqueue(r, shadow)
            end
        end
        return rctx:enqueue_and_wait(r, primary)
    end
end

function route_shadow_start(a, ctx, fgen)
    -- The primary's handle first: queued handles are dispatched in handle order.
    local o = {
        primary = fgen:new_handle(a.child),
        shadow = fgen:new_handle(a.child_shadow),
        sample = a.sample,
        by_key = a.sample_by == "key",
    }
    if a.commands ~= nil then
        o.cmds = {}
        for _, name in ipairs(a.commands) do
            o.cmds[command_id(name)] = true
        end
    end
    fgen:ready({ a = o, n = ctx:label(), f = route_shadow_f })
end
