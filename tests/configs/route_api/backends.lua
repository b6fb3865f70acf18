-- mcp.backend options and global tunables at work (spec 2.3, 2.6), for mcpframe's tests:
-- MCP_MODE picks the options of the one backend, the fake on MCP_B1.
local mode = os.getenv("MCP_MODE")

function mcp_config_pools()
    local opts = { label = "b1", host = "127.0.0.1", port = os.getenv("MCP_B1") }
    if mode == "keepalive_global" then
        mcp.tcp_keepalive(true)
    elseif mode == "keepalive_backend" then
        opts.tcpkeepalive = true
    elseif mode == "retry" then
        -- marked bad at the first failure, retried 0.3 s later
        opts.failurelimit, opts.retrytimeout, opts.readtimeout = 0, 0.3, 0.3
    elseif mode == "global_retry" then
        -- the same through the global tunables, set before the backend is made
        mcp.backend_failure_limit(0)
        mcp.backend_retry_timeout(0.3)
        mcp.backend_read_timeout(0.3)
        mcp.backend_connect_timeout(1)
    end
    return { p = mcp.pool({ mcp.backend(opts) }) }
end

function mcp_config_routes(c)
    local p = c.p
    mcp.attach(mcp.CMD_MG, function(r) return p(r) end)
end
