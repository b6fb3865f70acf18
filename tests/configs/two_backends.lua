-- Two real memcached backends; every keyed command is routed by key (xxhash + jump hash).
-- The test fills in the ports through environment variables read with os.getenv.
-- Listeners tagged "lua" get the same route written so that it runs in Lua for every request
-- and every key of a multiget (tests/e2e/test_passthrough.py compares the two).
function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", os.getenv("MCP_TEST_PORT_A"))
    local b = mcp.backend("b", "127.0.0.1", os.getenv("MCP_TEST_PORT_B"))
    return { main = mcp.pool({ a, b }) }
end

function mcp_config_routes(pools)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        return pools.main(r)
    end)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        local res = pools.main(r)
        return res
    end, "lua")
end
