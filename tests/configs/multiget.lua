-- The same pool behind two routes: untagged a pass-through route (multigets go one get per
-- backend), on listeners tagged "lua" one that does the same in Lua (one route per key).
-- tests/e2e/test_passthrough.py compares the two byte for byte.
function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", os.getenv("MCP_TEST_PORT_A"))
    local b = mcp.backend("b", "127.0.0.1", os.getenv("MCP_TEST_PORT_B"))
    return { main = mcp.pool({ a, b }) }
end

function mcp_config_routes(pools)
    local main = pools.main
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r) return main(r) end)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        local res = main(r)
        return res
    end, "lua")
end
