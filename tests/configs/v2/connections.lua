-- `connections = N` (spec v2 8.3), written for mcpframe's tests and run unchanged by
-- memcached 1.6.45's proxy to record where its requests go.
function mcp_config_pools()
    return mcp.pool({ mcp.backend({ label = "b1", host = "127.0.0.1",
        port = os.getenv("MCP_B1"), connections = 3, readtimeout = 30 }) })
end

function mcp_config_routes(p)
    local fg = mcp.funcgen_new()
    local h = fg:new_handle(p)
    fg:ready({ n = "conns", f = function(rctx)
        return function(r) return rctx:enqueue_and_wait(r, h) end
    end })
    mcp.attach(mcp.CMD_MG, fg)
    mcp.attach(mcp.CMD_GET, function(r) return "END\r\n" end)
end
