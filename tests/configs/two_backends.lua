-- Two real memcached backends; every keyed command is routed by key (xxhash + jump hash).
-- The test fills in the ports through environment variables read with os.getenv.
function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", os.getenv("MCP_TEST_PORT_A"))
    local b = mcp.backend("b", "127.0.0.1", os.getenv("MCP_TEST_PORT_B"))
    return { main = mcp.pool({ a, b }) }
end

function mcp_config_routes(pools)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        return pools.main(r)
    end)
end
