-- Routers (spec v2 section 4; memcached's t/proxyrouter.t cases), written for mcpframe's
-- tests and run unchanged by memcached 1.6.45's proxy to record the expected bytes. Every
-- funcgen here answers a line naming itself; one router per command (or group of commands).
function mcp_config_pools()
    return {}
end

local function named(text)
    local fg = mcp.funcgen_new()
    fg:ready({ n = text, f = function(rctx)
        return function(r) return "HD " .. text .. "\r\n" end
    end })
    return fg
end

function mcp_config_routes()
    local one, two, def = named("one"), named("two"), named("default")

    local pipe = mcp.router_new({ map = { one = one, two = two }, mode = "prefix", stop = "|",
        default = def })
    mcp.attach(mcp.CMD_MG, pipe)
    -- [Q] stop without mode is not read: the separator stays "/"
    mcp.attach(mcp.CMD_MN, pipe)
    mcp.attach(mcp.CMD_MS, mcp.router_new({ map = { one = one }, stop = "|", default = def }))
    mcp.attach(mcp.CMD_MD, mcp.router_new({ map = { one = one, two = two }, mode = "prefix",
        stop = "+#+", default = def }))
    mcp.attach(mcp.CMD_MA, mcp.router_new({ map = { one = one, two = two }, mode = "anchor",
        start = "_", stop = ",", default = def }))
    mcp.attach(mcp.CMD_GET, mcp.router_new({ map = { one = one, two = two }, mode = "anchor",
        start = "=?=", stop = "__", default = def }))

    local cmds = mcp.router_new({
        map = { one = { [mcp.CMD_GETS] = named("one gets"),
                        [mcp.CMD_ANY_STORAGE] = named("one any") } },
        mode = "prefix", stop = "|",
        cmap = { [mcp.CMD_INCR] = named("cmap incr") },
        default = def,
    })
    for _, c in ipairs({ mcp.CMD_INCR, mcp.CMD_DECR, mcp.CMD_GETS, mcp.CMD_TOUCH }) do
        mcp.attach(c, cmds)
    end
    -- cmap only: keys are not looked at
    local conly = mcp.router_new({ cmap = { [mcp.CMD_GAT] = named("cmap gat") }, default = def })
    mcp.attach(mcp.CMD_GAT, conly)
    mcp.attach(mcp.CMD_GATS, conly)
    -- no match and no default: the request fails to start
    mcp.attach(mcp.CMD_APPEND, mcp.router_new({ map = { one = one } }))
    -- a router in a router's map fails at request time
    mcp.attach(mcp.CMD_REPLACE, mcp.router_new({ map = { one = pipe } }))

    -- router_new's errors, and new_handle's for a router
    local errs = mcp.funcgen_new()
    errs:ready({ n = "errs", f = function(rctx)
        return function(r)
            local t = {}
            local function try(...)
                local ok, e = pcall(...)
                t[#t + 1] = ok and "ok" or tostring(e)
            end
            try(mcp.router_new, "x")
            try(mcp.router_new, {})
            try(mcp.router_new, { map = 1 })
            try(mcp.router_new, { map = { a = 1 } })
            try(mcp.router_new, { map = { a = { x = one } } })
            try(mcp.router_new, { map = { a = { [99] = one } } })
            try(mcp.router_new, { cmap = 1 })
            try(mcp.router_new, { map = {}, mode = "prefix", stop = 1 })
            try(mcp.router_new, { map = {}, mode = "prefix", stop = "" })
            try(mcp.router_new, { map = {}, mode = "prefix", stop = "abcdef" })
            try(mcp.router_new, { map = {}, mode = "anchor", start = "a" })
            try(mcp.router_new, { map = {}, mode = "other" })
            try(mcp.router_new, { map = {}, mode = "anchor", start = "abcdef", stop = "b" })
            local fg = mcp.funcgen_new()
            try(fg.new_handle, fg, pipe)
            local text = table.concat(t, "\n")
            return "VALUE errs 0 " .. #text .. "\r\n" .. text .. "\r\nEND\r\n"
        end
    end })
    mcp.attach(mcp.CMD_SET, errs)
end
