-- Rate limiters (spec v2 6; memcached's t/proxyratelim.t), written for mcpframe's tests and
-- run unchanged by memcached 1.6.45's proxy to record the expected bytes. `mg <what>_<n>`
-- takes n tokens from a limiter and answers what it returned; `mg errs` lists the error
-- texts of bad calls (the config VM's were caught in mcp_config_pools and passed along).
local function try(t, f, ...)
    local ok, e = pcall(f, ...)
    t[#t + 1] = ok and "ok" or tostring(e)
end

function mcp_config_pools()
    local errs = {}
    try(errs, mcp.ratelim_global_tbf, { limit = -1 })
    try(errs, mcp.ratelim_global_tbf, { tickrate = 4294967295 })
    try(errs, mcp.ratelim_global_tbf, 5)
    try(errs, mcp.ratelim_global_tbf)
    try(errs, mcp.ratelim_global_tbf, { limit = 4294967294, fillrate = "7", tickrate = 2.5 })
    return {
        -- a tick of ~50 days: nothing is ever added back during a test
        glong = mcp.ratelim_global_tbf({ limit = 5, tickrate = 4294967294 }),
        gshort = mcp.ratelim_global_tbf({ limit = 3, fillrate = 2, tickrate = 100 }),
        nested = { g = mcp.ratelim_global_tbf({ limit = 3, tickrate = 4294967294 }) },
        errs = table.concat(errs, "\n"),
    }
end

function mcp_config_routes(c)
    local wlong = mcp.ratelim_tbf({ limit = 5, fillrate = 1, tickrate = 4294967294 })
    local wshort = mcp.ratelim_tbf({ limit = 3, fillrate = 2, tickrate = 100 })
    local wzero = mcp.ratelim_tbf({})
    local wbig = mcp.ratelim_tbf({ limit = 4294967294, tickrate = 4294967294 })
    local lims = { wlong = wlong, wshort = wshort, wzero = wzero, wbig = wbig,
        glong = c.glong, gshort = c.gshort, nested = c.nested.g }

    local fg = mcp.funcgen_new()
    fg:ready({ n = "ratelim", f = function(rctx)
        return function(r)
            local key = r:key()
            local out
            if key == "errs" then
                local t = { c.errs }
                try(t, mcp.ratelim_tbf, { fillrate = -5 })
                try(t, mcp.ratelim_tbf, { limit = 4294967295 })
                try(t, mcp.ratelim_tbf, "x")
                try(t, wlong, "1")
                try(t, wlong)
                try(t, c.glong, {})
                local ok, e = pcall(function() local v = wlong("2"); return v end)
                t[#t + 1] = tostring(e)
                t[#t + 1] = tostring(mcp.ratelim_global_tbf)
                out = table.concat(t, "\n")
            else
                local what, n = string.match(key, "^(%a+)_(%-?[%d.]+)$")
                local lim = lims[what]
                out = tostring(lim(tonumber(n)))
            end
            return "VALUE " .. key .. " 0 " .. #out .. "\r\n" .. out .. "\r\nEND\r\n"
        end
    end })
    mcp.attach(mcp.CMD_MG, fg)
end
