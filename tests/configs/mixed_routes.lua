-- Routes that answer in every way a route can, chosen by key prefix, so that one turn of
-- the event loop starts and resumes routes of every kind together (tests/e2e/test_batches.py).
function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", os.getenv("MCP_TEST_PORT_A"))
    local b = mcp.backend("b", "127.0.0.1", os.getenv("MCP_TEST_PORT_B"))
    return { main = mcp.pool({ a, b }), one = mcp.pool({ a }) }
end

function mcp_config_routes(pools)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        local key = r:key()
        if key:find("^str/") then
            return "SERVER_ERROR from lua " .. key .. "\r\n"       -- a string, no backend
        elseif key:find("^edit/") then
            r:token(2, "edited/" .. key:sub(6))                    -- an edited request
            return pools.main(r)
        elseif key:find("^two/") then
            local res = pools.main(r)                              -- two calls in a row
            if res:hit() then return res end
            return pools.one(r)
        elseif key:find("^await/") then
            local rtable = mcp.await(r, { pools.main, pools.one }, 1, mcp.AWAIT_FIRST)
            return rtable[1]
        elseif key:find("^fail/") then
            error("route failed for " .. key)                      -- a Lua error
        end
        return pools.main(r)                                       -- the common case
    end)
end
