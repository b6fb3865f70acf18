-- Inspectors (spec v2 5.7; memcached's t/proxyins.t cases), written for mcpframe's tests and
-- run unchanged by memcached 1.6.45's proxy to record the expected bytes. The route reports
-- what the inspectors return, for requests from the client and for the internal cache's
-- responses (a handle to mcp.internal_handler).
function mcp_config_pools()
    return {}
end

local function show(...)
    local t = {}
    for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
    return table.concat(t, ",")
end

function mcp_config_routes()
    local r1 = mcp.req_inspector_new(
        { t = "sepkey", sep = "/", pos = 2, map = { foo = 1, bar = 2 } },
        { t = "keybegin", str = "sepkey" })
    local r2 = mcp.req_inspector_new({ t = "sepkey", pos = 1, map = { baz = 1, foo = 2, sepkey = 3 } })
    local r3 = mcp.req_inspector_new({ t = "sepkey", pos = 2 }, { t = "sepkey", pos = 3 },
        { t = "sepkey", pos = 9 }, { t = "keyis", str = "sepkey/nomap" })
    local r4 = mcp.req_inspector_new({ t = "hasflag", flag = "T" }, { t = "flagtoken", flag = "T" },
        { t = "flagint", flag = "T" }, { t = "flagis", flag = "O", str = "moo" },
        { t = "flagtoken", flag = "k" }, { t = "flagint", flag = "O" })
    local s1 = mcp.res_inspector_new({ t = "flagtoken", flag = "O" }, { t = "flagint", flag = "t" },
        { t = "flagis", flag = "f", str = "5678" }, { t = "hasflag", flag = "s" },
        { t = "flagint", flag = "x" })
    local s2 = mcp.res_inspector_new({ t = "hasflag", flag = "O" })

    local fg = mcp.funcgen_new()
    local hi = fg:new_handle(mcp.internal_handler)
    fg:ready({ n = "inspect", u = 1, f = function(rctx)
        return function(r)
            local key = r:key()
            local out
            if key == "errs" then
                local t = {}
                local function try(...)
                    local ok, e = pcall(...)
                    t[#t + 1] = ok and "ok" or tostring(e)
                end
                try(mcp.req_inspector_new, { t = "nope" })
                try(mcp.req_inspector_new, { t = "sepkey" }, { t = "hasflag" })
                try(mcp.req_inspector_new, { t = "hasflag", flag = "ab" })
                try(mcp.req_inspector_new, { t = "hasflag", flag = "!" })
                try(mcp.req_inspector_new, { t = "keyis" })
                try(mcp.req_inspector_new, { t = "keyis", str = "" })
                try(mcp.req_inspector_new, { t = "sepkey", sep = "ab" })
                try(mcp.res_inspector_new, { t = "sepkey" })
                try(mcp.req_inspector_new, { t = "flagis", flag = "O" })
                try(r1, rctx:response_new())
                out = table.concat(t, "\n")
            elseif string.find(key, "^res") then
                local res = rctx:enqueue_and_wait(r, hi)
                out = show(pcall(s1, res)) .. "|" .. show(pcall(s2, res))
            else
                out = show(r1(r)) .. "|" .. show(r2(r)) .. "|" .. show(r3(r)) .. "|" .. show(r4(r))
            end
            return "VALUE " .. key .. " 0 " .. #out .. "\r\n" .. out .. "\r\nEND\r\n"
        end
    end })
    mcp.attach(mcp.CMD_ANY_STORAGE, fg)
end
