-- memcached's t/proxyconfig.lua scenario (spec 10.3), written for mcpframe's tests. The mode
-- comes from a Lua file the test rewrites before each SIGHUP (MCP_MODE_FILE, which returns
-- a string); it is loaded at top level, so a broken mode file fails the load in every VM.
local mode = dofile(os.getenv("MCP_MODE_FILE"))

function mcp_config_pools()
    local function be(n, opts)
        if opts == nil then
            return mcp.backend("b" .. n, "127.0.0.1", os.getenv("MCP_B" .. n))
        end
        opts.label, opts.host, opts.port = "b" .. n, "127.0.0.1", os.getenv("MCP_B" .. n)
        return mcp.backend(opts)
    end
    if mode == "none" then
        return {}
    elseif mode == "betable" then
        -- same labels, hosts and ports as "start", other options: new connections
        return { pool = mcp.pool({
            be(1, { connecttimeout = 2, retrytimeout = 5, readtimeout = 0.5, failurelimit = 0 }),
            be(2, { connecttimeout = 2, retrytimeout = 5, readtimeout = 0.5 }),
            be(3, { connecttimeout = 2, retrytimeout = 5, readtimeout = 0.5 }),
        }) }
    elseif mode == "reqlimit" then
        mcp.active_req_limit(4)
    elseif mode == "reqlimit30" then
        mcp.active_req_limit(30)
    elseif mode == "noreqlimit" then
        mcp.active_req_limit(0)
    elseif mode == "buflimit" then
        mcp.buffer_memory_limit(20)
    elseif mode == "buflimit2" then
        mcp.buffer_memory_limit(200)
    end
    local list = { be(1), be(2), be(3) }
    if mode == "noiothread" then
        return { pool = mcp.pool(list, { iothread = false }) }
    end
    return { pool = mcp.pool(list) }
end

function mcp_config_routes(c)
    if c.pool == nil then
        mcp.attach(mcp.CMD_MG, function(r)
            return "SERVER_ERROR no mg route\r\n"
        end)
        return
    end
    local pool = c.pool
    mcp.attach(mcp.CMD_MG, function(r) return pool(r) end)
    mcp.attach(mcp.CMD_MS, function(r) return pool(r) end)
end
