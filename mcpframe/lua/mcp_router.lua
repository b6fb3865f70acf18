-- API v2 routers in the route VM (spec v2 section 4): `mcp.router_new`. A router is a
-- funcgen without slots (`_router` set) that picks, per request, the funcgen whose slot runs
-- it, from a prefix of the key and/or the command; the v2 driver (mcp_funcgen.lua) calls
-- `state.route_pick` when a request is attached to one.
--
-- Run after mcp_funcgen.lua, in the same VM, with (mcp, state).
local mcp, state = ...

local FGEN, fgen_ref = state.FGEN_MT, state.fgen_ref
local setmetatable, getmetatable, type, pairs = setmetatable, getmetatable, type, pairs
local mtype = math.type
local ssub, sfind = string.sub, string.find

-- Errors at the caller `level` frames up (see mcp_funcgen.lua's), without a position when
-- that frame is not Lua code of the config.
local getinfo = debug.getinfo  -- (a config may replace the global `debug`, as routelib does)
local SELF_SOURCE = getinfo(1, "S").source
local error = error
local function raise(msg, level)
    local info = getinfo(level + 1, "S")
    if info == nil or info.source == SELF_SOURCE or info.what == "C" then
        error(msg, 0)
    end
    error(msg, level + 1)
end


local CMD_ANY_STORAGE = mcp.CMD_ANY_STORAGE

local function router_fgen(v, level)
    if getmetatable(v) ~= FGEN then
        raise("bad argument #1 to 'router_new' (mcp.funcgen expected, got "
            .. (v == nil and "no value" or type(v)) .. ")", level + 1)
    end
    return v
end

local function command_map(t)
    local out = {}
    for k, v in pairs(t) do
        if mtype(k) ~= "integer" then
            raise("Non integer key in router command map in router_new", 3)
        end
        if (k < 1 or k > 20) and k ~= CMD_ANY_STORAGE then
            raise("Bad command in router command map in router_new", 3)
        end
        out[k] = router_fgen(v, 3)
    end
    return out
end

local function separator(opts, name)
    local v = opts[name]
    if v == nil then return nil end
    if type(v) ~= "string" then
        raise("must pass a string to " .. name .. " in mcp.router_new", 3)
    end
    if #v == 0 then
        raise("must pass a non-zero length string to " .. name .. " in mcp.router_new", 3)
    end
    if #v > 5 then raise(name .. " is too long in mcp.router_new", 3) end
    return v
end

function mcp.router_new(opts)
    state.api_v2 = true  -- (mcp.request's error texts follow 1.6.45 from now on)
    if type(opts) ~= "table" then
        raise("Must pass a table of arguments to mcp.router_new", 2)
    end
    local map, cmap = opts.map, opts.cmap
    if map == nil and cmap == nil then
        raise("Must pass map and/or cmap to mcp.router_new", 2)
    end
    local rt = { anchor = false, start = nil, stop = "/" }
    if map ~= nil then
        if type(map) ~= "table" then
            raise("Must pass a table to map argument of router_new", 2)
        end
        local m = {}
        for k, v in pairs(map) do
            if getmetatable(v) == FGEN then
                m[k] = v
            elseif type(v) == "table" then
                m[k] = command_map(v)
            else
                raise("unhandled data in router_new map", 2)
            end
        end
        rt.map = m
        -- [Q] as 1.6.45: start and stop are only read when mode is given, as a string.
        local mode = opts.mode
        if type(mode) == "string" then
            local start, stop = separator(opts, "start"), separator(opts, "stop")
            if mode == "anchor" then
                if (start == nil) ~= (stop == nil) then
                    raise("must specify start and stop if mode is anchor in mcp.router_new", 2)
                end
                rt.anchor, rt.start, rt.stop = true, start or "/", stop or "/"
            elseif mode == "prefix" then
                rt.stop = stop or "/"
            else
                raise("unknown type passed to mcp.router_new", 2)
            end
        end
    end
    if cmap ~= nil then
        if type(cmap) ~= "table" then
            raise("Must pass a table to cmap argument of mcp.router_new", 2)
        end
        rt.cmap = command_map(cmap)
    end
    local default = opts.default
    if default ~= nil and (type(default) == "table" or type(default) == "userdata") then
        rt.default = router_fgen(default, 2)
    end
    -- [R] a top-level cmap entry for CMD_ANY_STORAGE acts as the default (1.6.45 writes it
    -- out of bounds).
    if rt.cmap and rt.cmap[CMD_ANY_STORAGE] and rt.default == nil then
        rt.default = rt.cmap[CMD_ANY_STORAGE]
    end
    -- (the funcgens a router names count as referenced by it)
    for _, v in pairs(rt.map or {}) do
        if getmetatable(v) == FGEN then
            fgen_ref(v, 1)
        else
            for _, fg in pairs(v) do fgen_ref(fg, 1) end
        end
    end
    for _, fg in pairs(rt.cmap or {}) do fgen_ref(fg, 1) end
    fgen_ref(rt.default, 1)
    local router = setmetatable({ _router = rt, _ready = true, _kinds = {}, _targets = {}, _nh = 0,
        _free = {}, _nfree = 0, _nslots = 0, _all = {}, _name = "mcp_router", _u = 0,
        _refs = 0, _pressure = 0 }, FGEN)
    state.fgens_made[router] = true
    return router
end

-- The key's prefix per the router's mode (spec 4.3), or nil.
local function prefix_of(rt, key)
    if rt.anchor then
        local start = rt.start
        local n = #start
        if ssub(key, 1, n) ~= start or #key < n + 2 then return nil end
        local e = sfind(key, rt.stop, n + 1, true)
        if e == nil or e == n + 1 then return nil end
        return ssub(key, n + 1, e - 1)
    end
    local e = sfind(key, rt.stop, 1, true)
    if e == nil or e == 1 then return nil end
    return ssub(key, 1, e - 1)
end

-- The funcgen a router picks for (command, key), or nil (spec 4.4).
local function route_pick(rt, cmd, key)
    -- [Q] as 1.6.45: keyless requests never route.
    if key == nil or key == "" then return nil end
    if rt.map then
        local p = prefix_of(rt, key)
        local hit = p and rt.map[p]
        if hit ~= nil then
            if getmetatable(hit) == FGEN then return hit end
            local fg = hit[cmd] or hit[CMD_ANY_STORAGE]
            if fg ~= nil then return fg end
        end
    end
    local cmap = rt.cmap
    return (cmap and cmap[cmd]) or rt.default
end

state.route_pick = route_pick

-- A router's table for Python's pass-through path (proxy/hooks.py RouterPlan), so that a
-- router whose targets only forward (routelib's route_direct behind a prefix map) places
-- requests without entering Lua: anchor, start, stop, whether it has a map, the map (prefix
-- -> pool id, or command -> pool id for a command table), cmap (command -> pool id) and the
-- default's pool id. A target that does more than forward to a pool is -1: the request runs
-- in Lua, where route_pick chooses the same target; one the route library marked as a plain
-- failover is -10 - i, the i-th (from 0) of the funcgens listed last. nil for anything but
-- a router.
local function router_plan(fg)
    local rt = getmetatable(fg) == FGEN and fg._router
    if not rt then return nil end
    local passthrough_pool = state.v2.passthrough_pool
    local fast = {}
    local function pool(f)
        if f == nil then return -1 end
        local p = passthrough_pool(f)
        if p >= 0 then return p end
        if rawget(f, "_fast") then
            fast[#fast + 1] = f
            return -10 - (#fast - 1)
        end
        return -1
    end
    local map, cmap = {}, {}
    for k, v in pairs(rt.map or {}) do
        if getmetatable(v) == FGEN then
            map[k] = pool(v)
        else
            local sub = {}
            for cmd, f in pairs(v) do sub[cmd] = pool(f) end
            map[k] = sub
        end
    end
    for cmd, f in pairs(rt.cmap or {}) do cmap[cmd] = pool(f) end
    local default = pool(rt.default)
    return rt.anchor, rt.start, rt.stop, rt.map ~= nil, map, cmap, default, fast
end
state.v2.router_plan = router_plan
