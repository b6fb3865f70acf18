-- API v2 routes that only forward (`return rctx:enqueue_and_wait(r, h)`): mcpframe runs the
-- first without entering Lua; the second has a callback on its handle, so it runs in Lua.
-- The replies must be the same. Pools on the backends of MCP_B1 and MCP_B2.
function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", os.getenv("MCP_B1"))
    local b = mcp.backend("b", "127.0.0.1", os.getenv("MCP_B2"))
    return { main = mcp.pool({ a, b }) }
end

local function forward(pool, with_callback)
    local fg = mcp.funcgen_new()
    local h = fg:new_handle(pool)
    fg:ready({ n = "forward", f = function(rctx)
        if with_callback then
            rctx:handle_set_cb(h, function(res, req) end)
        end
        return function(r)
            return rctx:enqueue_and_wait(r, h)
        end
    end })
    return fg
end

function mcp_config_routes(p)
    mcp.attach(mcp.CMD_ANY_STORAGE, forward(p.main, false))
    mcp.attach(mcp.CMD_ANY_STORAGE, forward(p.main, true), "lua")
end
