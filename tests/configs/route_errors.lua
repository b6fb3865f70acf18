-- Routes that fail on purpose, and one that answers with a string.
function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", os.getenv("MCP_TEST_PORT_A"))
    return { main = mcp.pool({ a }) }
end

function mcp_config_routes(pools)
    mcp.attach(mcp.CMD_GET, function(r)
        local key = r:key()
        if key == "/err/raise" then
            error("route failed on purpose")
        elseif key == "/err/nil" then
            return nil
        elseif key == "/str/hello" then
            return "VALUE /str/hello 0 5\r\nhello\r\nEND\r\n"
        end
        return pools.main(r)
    end)
end
