-- mcp.log_req and mcp.log_reqsample in an API v2 config (spec v2 10.6, 10.7), written for
-- mcpframe's tests and run unchanged by memcached 1.6.45's proxy to record its log lines:
-- 1.6.45's format, with res= and cfd= (the optional last argument). `mg` goes to b1.
function mcp_config_pools()
    return mcp.pool({ mcp.backend("b1", "127.0.0.1", os.getenv("MCP_B1")) })
end

function mcp_config_routes(p)
    local fg = mcp.funcgen_new()
    local h = fg:new_handle(p)
    fg:ready({ n = "logs", f = function(rctx)
        return function(r)
            local res = rctx:enqueue_and_wait(r, h)
            mcp.log_req(r, res, "plain")
            mcp.log_req(r, res, "withfd", rctx:cfd())
            mcp.log_req(r, nil, "nores")
            mcp.log_reqsample(0, 0, true, r, res, "errors", 7)
            return res
        end
    end })
    mcp.attach(mcp.CMD_MG, fg)
    -- cfd must be an integer (or a string holding one): else the route fails
    local bad = mcp.funcgen_new()
    bad:ready({ n = "bad", f = function(rctx)
        return function(r)
            local k = r:key()
            if k == "a" then mcp.log_req(r, nil, "x", "fd") end
            if k == "b" then mcp.log_reqsample(0, 1, false, r, nil, "x", 1.5) end
            mcp.log_req(r, nil, "str", "12")
            return "HD\r\n"
        end
    end })
    mcp.attach(mcp.CMD_MD, bad)
end
