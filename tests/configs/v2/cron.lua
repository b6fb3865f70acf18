-- Crons and self-reloads (spec v2 7.2, 7.3; memcached's t/proxycron.t), written for
-- mcpframe's tests and run unchanged by memcached 1.6.45's proxy to record what it does.
-- Config-VM globals survive reloads: `loads` counts them. (The first runs come 2 seconds
-- after the load: time for a test to start watching.)
loads = (loads or 0) + 1

local function try(t, ...)
    local ok, e = pcall(mcp.register_cron, ...)
    t[#t + 1] = ok and "ok" or tostring(e)
end

local function nop() end

function mcp_config_pools()
    local errs = {}
    try(errs)
    try(errs, "x")
    try(errs, "x", {})
    try(errs, "x", { func = 5 })
    try(errs, "x", { func = nop })
    try(errs, "x", { func = nop, every = "1" })
    try(errs, "x", { func = nop, every = 0 })
    try(errs, "x", { func = nop, every = 0.5 })
    try(errs, "x", { func = nop, every = 3.0, rerun = false })

    mcp.register_cron("tick", { every = 1, func = function() ticks = (ticks or 0) + 1 end })
    mcp.register_cron("once", { every = 2, rerun = false, func = function()
        mcp.log("once " .. loads)
    end })
    mcp.register_cron("fail", { every = 2, func = function() error("cron oops") end })
    if loads == 1 then
        -- reloads once: the next load does not register it again, so it is dropped
        mcp.register_cron("reload", { every = 3, func = function()
            mcp.log("reloading")
            mcp.schedule_config_reload()
        end })
    end
    -- during a load: no effect
    mcp.schedule_config_reload()
    return { errs = table.concat(errs, "\n"), loads = loads }
end

function mcp_config_routes(c)
    mcp.attach(mcp.CMD_MG, function(r)
        local out = tostring(c[r:key()])
        return "VALUE " .. r:key() .. " 0 " .. #out .. "\r\n" .. out .. "\r\nEND\r\n"
    end)
end
