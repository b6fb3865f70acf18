-- Token-bucket rate limiters (spec v2 6), in both VMs: `mcp.ratelim_tbf(opts)` in the route
-- VM, `mcp.ratelim_global_tbf(opts)` in the config VM. Called as a chunk with
-- (mcp, state, vm), vm being "config" or "route"; `state.now_ms` is the wall clock in
-- milliseconds (a Python function: the only cost, and only for a limiter's call).
--
-- The bucket follows memcached 1.6.45's unsigned 32-bit arithmetic: a call `lim(take)`
-- first adds `fillrate` tokens per whole `tickrate` milliseconds elapsed (capped at
-- `limit`), then takes `take` only when strictly fewer than the bucket holds. `take` is read
-- as C reads it (a fraction is 0; a negative number is a huge unsigned one, never granted).
--
-- A global limiter crosses into the route VM as one `mcp.ratelim_proxy_tbf` table per
-- limiter (lua/config.py keeps it shared, however often the config value names it): a
-- process has one route VM, so the bucket is shared by every route of the process, as
-- 1.6.45 shares it between worker threads.
local mcp, state, vm = ...

local type, tonumber, tointeger, setmetatable = type, tonumber, math.tointeger, setmetatable
local getinfo = debug.getinfo
local now_ms = state.now_ms

local U32 = 0xFFFFFFFF

-- lua_tointeger: numbers and numeric strings with an integral value, anything else 0.
local function c_integer(v)
    if type(v) == "string" then v = tonumber(v) end
    if type(v) ~= "number" then return 0 end
    return tointeger(v) or 0
end

local function typename(v)
    if v == nil then return "no value" end
    local mt = getmetatable(v)
    if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
    return type(v)
end

-- The name a C function reports in "bad argument" errors: how it was called, else "?".
local function called_as(level)
    local info = getinfo(level + 1, "n")
    return info and info.name or "?"
end

local function option(opts, key)
    local v = opts[key]
    if v == nil then return 0 end
    local n = c_integer(v)
    if n < 0 or n > U32 - 1 then
        error("mcp.ratelim_tbf: arguments must be unsigned 32 bit integer", 0)
    end
    return n
end

-- A new bucket from `opts` (checked by the caller to be a table).
local function bucket(opts)
    local limit = option(opts, "limit")
    local fill = option(opts, "fillrate")
    local tick = option(opts, "tickrate")
    if fill == 0 then fill = 1 end
    if tick == 0 then tick = 1 end
    return { bucket = limit, limit = limit, fill = fill, tick = tick, last = now_ms() }
end

local function take(lim, n)
    if type(n) ~= "number" then
        error("bad argument #2 to '" .. called_as(1) .. "' (number expected, got "
            .. typename(n) .. ")", 2)
    end
    n = (tointeger(n) or 0) & U32
    local now = now_ms()
    local delta = now - lim.last
    -- ([R] a clock that went back adds nothing; memcached's unsigned delta adds garbage.)
    if delta > lim.tick then
        local ticks = (delta // lim.tick) & U32
        lim.last = lim.last + ((ticks * lim.tick) & U32)
        local b = (lim.bucket + ((ticks * lim.fill) & U32)) & U32
        if b > lim.limit then b = lim.limit end
        lim.bucket = b
    end
    local b = lim.bucket
    if b > n then
        lim.bucket = b - n
        return true
    end
    return false
end

local TBF = { __name = "mcp.ratelim_tbf", __call = take }
local PROXY_TBF = { __name = "mcp.ratelim_proxy_tbf", __call = take }
local GLOBAL_TBF = { __name = "mcp.ratelim_global_tbf" }
state.GLOBAL_TBF_MT = GLOBAL_TBF

local function check_opts(opts, first)
    if type(opts) ~= "table" then
        error("bad argument #1 to '" .. called_as(2) .. "' (table expected, got "
            .. (opts == nil and first or typename(opts)) .. ")", 3)
    end
end

if vm == "route" then
    function mcp.ratelim_tbf(opts)
        check_opts(opts, "no value")
        return setmetatable(bucket(opts), TBF)
    end

    -- The route VM's side of a global limiter (lua/config.py calls it once per limiter).
    function state.ratelim_proxy(limit, fill, tick, last)
        return setmetatable({ bucket = limit, limit = limit, fill = fill, tick = tick,
            last = last }, PROXY_TBF)
    end
else
    function mcp.ratelim_global_tbf(opts)
        -- (1.6.45 makes the object before checking its argument, and then finds it there)
        check_opts(opts, GLOBAL_TBF.__name)
        return setmetatable(bucket(opts), GLOBAL_TBF)
    end
end
