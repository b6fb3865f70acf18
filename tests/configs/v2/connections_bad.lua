-- `connections = N` to a backend that refuses them (spec v2 8.3, 10.4): each connection is
-- marked bad on its own; `stats proxybe` counts them.
function mcp_config_pools()
    return mcp.pool({ mcp.backend({ label = "dead", host = "127.0.0.1",
        port = os.getenv("MCP_B1"), connections = 2, failurelimit = 0, retrywaittime = 30 }) })
end

function mcp_config_routes(p)
    local fg = mcp.funcgen_new()
    local h = fg:new_handle(p)
    fg:ready({ f = function(rctx)
        return function(r) return rctx:enqueue_and_wait(r, h) end
    end })
    mcp.attach(mcp.CMD_MG, fg)
end
