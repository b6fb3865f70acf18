-- A config shaped like memcached's own example (t/startfile.lua, proxy/*.lua), for
-- mcpframe's tests: three zones, each a pool on its own real memcached (ports in
-- MCP_Z1..MCP_Z3); this proxy lives in zone z1.
--
--   /foo/...   command map: reads fail over from the near zone to the far ones (mcp.await,
--              first hit wins), wrapped in mcp.log_req; SET writes the near zone and then
--              invalidates the far zones with deletes sent with AWAIT_BACKGROUND; DELETE
--              goes to every zone; ADD fails over; MG / MS use the near zone only.
--   /trim/...  the prefix is trimmed off the key (r:ltrimkey) before the near zone sees it.
--   other      "SERVER_ERROR no route", counted in the user stat "default_route".
local MY_ZONE <const> = "z1"
local STAT_DEFAULT <const> = 1
local STAT_INVALIDATE <const> = 2

function mcp_config_pools()
    mcp.add_stat(STAT_DEFAULT, "default_route")
    mcp.add_stat(STAT_INVALIDATE, "invalidations")
    mcp.backend_connect_timeout(2)
    mcp.backend_read_timeout(1)
    local zones = {}
    for i = 1, 3 do
        local name = "z" .. i
        zones[name] = mcp.pool({
            mcp.backend({ label = name .. "a", host = "127.0.0.1", port = os.getenv("MCP_Z" .. i) }),
        }, { seed = name })
    end
    return { zones = zones }
end

-- the far zones of a zone table, as a list for mcp.await
local function far_zones(zones, near)
    local far = {}
    for name, pool in pairs(zones) do
        if name ~= near then far[#far + 1] = pool end
    end
    return far
end

local function reqlog_factory(route)
    return function(r)
        local res, detail = route(r)
        mcp.log_req(r, res, detail)
        return res
    end
end

local function failover_factory(zones, near)
    local near_zone, far = zones[near], far_zones(zones, near)
    return function(r)
        local res = near_zone(r)
        if res:hit() then
            return res, "failover_hit"
        end
        local t = mcp.await(r, far, 1)
        for _, other in ipairs(t) do
            if other:hit() then
                return other, "failover_backup_hit"
            end
        end
        return res, "failover_miss"
    end
end

local function setinvalidate_factory(zones, near)
    local near_zone, far = zones[near], far_zones(zones, near)
    local new_req = mcp.request
    return function(r)
        local res = near_zone(r)
        if res:ok() then
            -- nobody waits for the far zones: the client has its answer already
            local dr = new_req("delete " .. r:key() .. "\r\n")
            mcp.await(dr, far, 0, mcp.AWAIT_BACKGROUND)
            mcp.stat(STAT_INVALIDATE, 1)
        end
        return res
    end
end

local function walkall_factory(zones)
    local all = {}
    for _, pool in pairs(zones) do all[#all + 1] = pool end
    return function(r)
        local t = mcp.await(r, all)
        for _, res in ipairs(t) do
            if res:ok() and res:hit() then return res end
        end
        return t[1]
    end
end

local function meta_get_factory(zones, near)
    local near_zone = zones[near]
    return function(r)
        if r:has_flag("l") then
            mcp.log("client asks for the last access time of " .. r:key())
        end
        local found, opaque = r:flag_token("O")
        if found and opaque == "replaceme" then
            r:flag_token("O", "Oreplaced")
        end
        return near_zone(r)
    end
end

local function meta_set_factory(zones, near)
    local near_zone = zones[near]
    return function(r)
        local res = near_zone(r)
        if res:code() == mcp.MCMC_CODE_NOT_FOUND then
            mcp.log("meta set NF for " .. r:key() .. ": " .. (res:line() or ""))
        end
        return res
    end
end

local function command_factory(map, default)
    return function(r)
        local f = map[r:command()]
        if f == nil then return default(r) end
        return f(r)
    end
end

local function prefix_factory(pattern, list, default)
    local stat = mcp.stat
    return function(r)
        local route = list[string.match(r:key(), pattern)]
        if route == nil then
            stat(STAT_DEFAULT, 1)
            return default(r)
        end
        return route(r)
    end
end

local function prefixtrim_factory(zones, near)
    local near_zone = zones[near]
    return function(r)
        local _, j = string.find(r:key(), "^/%a+/")
        r:ltrimkey(j)
        return near_zone(r)
    end
end

function mcp_config_routes(c)
    local zones = c.zones
    local failover = reqlog_factory(failover_factory(zones, MY_ZONE))
    local map = {
        [mcp.CMD_SET] = setinvalidate_factory(zones, MY_ZONE),
        [mcp.CMD_DELETE] = walkall_factory(zones),
        [mcp.CMD_ADD] = failover_factory(zones, MY_ZONE),
        [mcp.CMD_MG] = meta_get_factory(zones, MY_ZONE),
        [mcp.CMD_MS] = meta_set_factory(zones, MY_ZONE),
    }
    local routes = {
        foo = command_factory(map, failover),
        trim = prefixtrim_factory(zones, MY_ZONE),
    }
    mcp.attach(mcp.CMD_ANY_STORAGE, prefix_factory("^/(%a+)/", routes, function(r)
        return "SERVER_ERROR no route\r\n"
    end))
end
