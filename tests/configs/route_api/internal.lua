-- memcached's t/proxyinternal.lua scenario (spec 10.4), written for mcpframe's tests: keys
-- under /b/ run against the proxy's own cache through mcp.internal; the pool exists but is
-- never used. Other prefixes answer "SERVER_ERROR no <cmd> route".
function mcp_config_pools()
    return { unused = mcp.pool({ mcp.backend("b1", "127.0.0.1", 1) }) }
end

local NAMES = {}
for name, code in pairs(mcp) do
    if type(name) == "string" and name:find("^CMD_") and code <= mcp.CMD_PREPEND then
        NAMES[code] = string.lower(string.sub(name, 5))
    end
end

function mcp_config_routes(pools)
    local routes = {
        b = function(r)
            return mcp.internal(r)
        end,
        -- what the route sees of an internal response
        code = function(r)
            local res = mcp.internal(r)
            local seen = res:code() .. " " .. tostring(res:ok()) .. " " .. tostring(res:hit())
                .. " " .. res:vlen() .. " " .. res:elapsed()
            return "SERVER_ERROR " .. seen .. "\r\n"
        end,
        log = function(r)
            local res = mcp.internal(r)
            mcp.log_req(r, res, "internal")
            return res
        end,
        -- a request built in Lua, run internally
        made = function(r)
            local res = mcp.internal(mcp.request("ms /made/x 3 T0\r\n", "abc\r\n"))
            if not res:ok() then return res end
            return mcp.internal(mcp.request("mg /made/x v\r\n"))
        end,
    }
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        local route = routes[string.match(r:key(), "^/(%a+)/")]
        if route == nil then
            return "SERVER_ERROR no " .. NAMES[r:command()] .. " route\r\n"
        end
        return route(r)
    end)
end
