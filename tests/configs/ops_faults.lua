-- Backend health scenarios: keys starting with /a/ go to backend a (the one in trouble),
-- every other key to backend b (healthy). Timeouts, failure limit and keepalive come from
-- the environment so each test can keep its scenario short.
local function num(name, default)
    local v = os.getenv(name)
    if v ~= nil and v ~= "" then
        return tonumber(v)
    end
    return default
end

function mcp_config_pools()
    mcp.backend_read_timeout(num("MCP_READ_TIMEOUT", 0.4))
    mcp.backend_connect_timeout(num("MCP_CONNECT_TIMEOUT", 0.4))
    mcp.backend_retry_timeout(num("MCP_RETRY_TIMEOUT", 0.6))
    mcp.backend_failure_limit(num("MCP_FAILURE_LIMIT", 3))
    mcp.tcp_keepalive(os.getenv("MCP_KEEPALIVE") == "1")
    mcp.add_stat(1, "to_a")
    local a = mcp.backend("a", os.getenv("MCP_HOST_A") or "127.0.0.1", os.getenv("MCP_TEST_PORT_A"))
    local b = mcp.backend("b", "127.0.0.1", os.getenv("MCP_TEST_PORT_B"))
    return { a = mcp.pool({ a }), b = mcp.pool({ b }) }
end

function mcp_config_routes(pools)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        if string.sub(r:key(), 1, 3) == "/a/" then
            mcp.stat(1, 1)
            return pools.a(r)
        end
        return pools.b(r)
    end)
end
