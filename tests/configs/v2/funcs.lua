-- `stats proxyfuncs` (spec v2 10.3): funcgens in use and their slots, per name. Run
-- unchanged by memcached 1.6.45's proxy to record the expected lines.
function mcp_config_pools()
    return {}
end

function mcp_config_routes()
    local child = mcp.funcgen_new()
    child:ready({ n = "child", f = function(rctx)
        return function(r) rctx:sleep(0.2) return "HD child\r\n" end
    end })
    local fg = mcp.funcgen_new()
    local hc = fg:new_handle(child)
    fg:ready({ n = "parent", f = function(rctx)
        return function(r) return rctx:enqueue_and_wait(r, hc) end
    end })
    mcp.attach(mcp.CMD_MG, fg)
    mcp.attach(mcp.CMD_MS, child)
    mcp.attach(mcp.CMD_MD, function(r) return "HD v1\r\n" end)
    mcp.attach(mcp.CMD_MA, mcp.router_new({ map = { one = fg }, default = child }))
end
