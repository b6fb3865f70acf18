-- memcached's t/startfile.lua scenario (spec 10.1), written for mcpframe's tests: zones z1..z3
-- of the pools "foo" and "bar" on real memcached servers (ports in MCP_M1..MCP_M5); bar's
-- z1 points at MCP_DOWN, where nothing listens. The proxy is in zone z1.
local my_zone = "z1"

local STAT_EXAMPLE <const> = 1
local STAT_ANOTHER <const> = 2

function mcp_config_pools()
    mcp.add_stat(STAT_EXAMPLE, "example")
    mcp.add_stat(STAT_ANOTHER, "another")
    mcp.backend_connect_timeout(5.5)
    local port = function(name) return os.getenv(name) end
    local function zone(label, p)
        -- three backends per pool: distinct labels, so distinct connections, to one server
        local list = {}
        for i = 1, 3 do
            list[i] = mcp.backend(label .. "srv" .. i, "127.0.0.1", p)
        end
        return mcp.pool(list)
    end
    return {
        foo = { z1 = zone("fooz1", port("MCP_M1")), z2 = zone("fooz2", port("MCP_M2")),
                z3 = zone("fooz3", port("MCP_M3")) },
        bar = { z1 = zone("barz1", port("MCP_DOWN")), z2 = zone("barz2", port("MCP_M4")),
                z3 = zone("barz3", port("MCP_M5")) },
    }
end

local function reqlog(route)
    return function(r)
        local res, detail = route(r)
        mcp.log_req(r, res, detail)
        return res
    end
end

local function others(zones, near)
    local far = {}
    for name, pool in pairs(zones) do
        if name ~= near then far[name] = pool end
    end
    return far
end

-- near zone first; on a miss, all far zones at once, the first hit wins
local function failover(zones, near)
    local near_pool, far = zones[near], others(zones, near)
    return function(r)
        local res = near_pool(r)
        if res:hit() then
            return res, "failover_hit"
        end
        local t = mcp.await(r, far, 1)
        for _, res2 in pairs(t) do
            if res2:hit() then return res2, "failover_backup_hit" end
        end
        return t[1], "failover_backup_miss"
    end
end

-- every zone; the first ok reply answers
local function walkall(zones)
    local list = {}
    for _, pool in pairs(zones) do list[#list + 1] = pool end
    return function(r)
        local t = mcp.await(r, list)
        for _, res in pairs(t) do
            if res:ok() then return res end
        end
        return t[1]
    end
end

local function meta_get(zones, near)
    local pool = zones[near]
    return function(r)
        local _, opaque = r:flag_token("O")
        local res = pool(r)
        return res
    end
end

local function meta_set(zones, near)
    local pool = zones[near]
    return function(r)
        local res = pool(r)
        if res:code() == mcp.MCMC_CODE_NOT_FOUND then
            mcp.log("meta set NF")
        end
        return res
    end
end

local function by_command(map, default)
    return function(r)
        local f = map[r:command()]
        if f == nil then return default(r) end
        return f(r)
    end
end

local function by_prefix(pattern, list, default)
    local stat = mcp.stat
    return function(r)
        local route = list[string.match(r:key(), pattern)]
        if route == nil then
            stat(STAT_EXAMPLE, 1)
            return default(r)
        end
        return route(r)
    end
end

function mcp_config_routes(main)
    local prefixes = {}
    for pfx, zones in pairs(main) do
        local map = {
            [mcp.CMD_SET] = walkall(zones),
            [mcp.CMD_DELETE] = walkall(zones),
            [mcp.CMD_ADD] = failover(zones, my_zone),
            [mcp.CMD_MG] = meta_get(zones, my_zone),
            [mcp.CMD_MS] = meta_set(zones, my_zone),
        }
        prefixes[pfx] = by_command(map, reqlog(failover(zones, my_zone)))
    end
    local top = by_prefix("^/(%a+)/", prefixes, function(r)
        return "SERVER_ERROR no route\r\n"
    end)
    mcp.attach(mcp.CMD_ANY_STORAGE, top)
end
