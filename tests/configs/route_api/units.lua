-- Route API units (memcached's t/proxyunits.lua scenario, written for mcpframe's tests).
-- Three single-backend pools z1..z3 on the fake backends whose ports the test passes in
-- MCP_B1..MCP_B3. Every storage command goes through a prefix router on "^/(%a+)/"; an
-- unknown prefix answers "SERVER_ERROR no <cmd> route".
function mcp_config_pools()
    mcp.backend_read_timeout(0.5)
    mcp.backend_connect_timeout(5)
    local b1 = mcp.backend("b1", "127.0.0.1", os.getenv("MCP_B1"))
    local b2 = mcp.backend("b2", "127.0.0.1", os.getenv("MCP_B2"))
    local b3 = mcp.backend("b3", "127.0.0.1", os.getenv("MCP_B3"))
    return { z1 = mcp.pool({ b1 }), z2 = mcp.pool({ b2 }), z3 = mcp.pool({ b3 }) }
end

local function by_prefix(name, routes)
    local miss = "SERVER_ERROR no " .. name .. " route\r\n"
    return function(r)
        local route = routes[string.match(r:key(), "^/(%a+)/")]
        if route == nil then
            return miss
        end
        return route(r)
    end
end

-- A fake VALUE reply carrying `text`, to report what a route saw.
local function report(r, text)
    text = tostring(text)
    return "VALUE " .. r:key() .. " 0 " .. #text .. "\r\n" .. text .. "\r\nEND\r\n"
end

function mcp_config_routes(z)
    local all = { z.z1, z.z2, z.z3 }
    local function basic(r)
        return z.z1(r)
    end

    local get, set, mg, ms = {}, {}, {}, {}
    local names = { "get", "set", "touch", "gets", "gat", "gats", "cas", "add", "delete",
        "incr", "decr", "append", "prepend", "mg", "ms", "md", "ma" }
    local maps = { get = get, set = set, mg = mg, ms = ms }
    for _, name in ipairs(names) do
        local m = maps[name] or {}
        maps[name] = m
        m.b = basic
    end

    -- key(), trims
    get.getkey = function(r)
        return "VALUE |" .. r:key() .. " 0 2\r\nts\r\nEND\r\n"
    end
    get.rtrimkey = function(r)
        r:rtrimkey(4)
        return z.z1(r)
    end
    get.ltrimkey = function(r)
        r:ltrimkey(10)
        return z.z1(r)
    end

    -- routing to pools
    get.zonetest = function(r)
        local key = r:key()
        if key == "/zonetest/a" then
            return z.z1(r)
        elseif key == "/zonetest/b" then
            return z.z2(r)
        elseif key == "/zonetest/c" then
            return z.z3(r)
        end
        return "END\r\n"
    end

    -- logging
    get.logtest = function(r)
        mcp.log("testing manual log messages")
        return "END\r\n"
    end
    get.logreqtest = function(r)
        local res = z.z1(r)
        -- 1.6.20 ignores a 4th argument (1.6.45's cfd): the line stays 1.6.20's
        mcp.log_req(r, res, "logreqtest", 77)
        return res
    end
    get.logsample = function(r)
        local res = z.z1(r)
        -- errors always; nothing is slow enough; no random sampling
        mcp.log_reqsample(10000, 0, true, r, res, "sampled", 78)
        return res
    end

    -- mcp.await
    get.awaitbasic = function(r)
        local vals = {}
        for i, res in ipairs(mcp.await(r, all)) do
            if res:hit() then
                vals[i] = "hit"
            elseif res:ok() then
                vals[i] = "ok"
            else
                vals[i] = "err"
            end
        end
        return report(r, table.concat(vals, " "))
    end
    local function counter(wait_for, mode)
        return function(r)
            local n = wait_for
            if n == nil then
                local last = string.sub(r:key(), -1)
                n = (last == "a" and 1) or (last == "b" and 2) or 0
            end
            return report(r, #mcp.await(r, all, n, mode))
        end
    end
    get.awaitone = counter(nil, nil)
    get.awaitgood = counter(nil, mcp.AWAIT_GOOD)
    get.awaitany = counter(2, mcp.AWAIT_ANY)
    get.awaitok = counter(2, mcp.AWAIT_OK)
    get.awaitbg = counter(1, mcp.AWAIT_BACKGROUND)
    get.awaitfirst = function(r)
        local t = mcp.await(r, all, 0, mcp.AWAIT_FIRST)
        return t[1]
    end
    get.awaitfastgood = function(r)
        -- a hash table of pools this time; answer the hit if there is one
        local zones = {}
        for k, v in pairs(z) do zones[k] = v end
        local t = mcp.await(r, zones, 2, mcp.AWAIT_FASTGOOD)
        local final = t[1]
        for _, res in ipairs(t) do
            if res:hit() then final = res end
        end
        return final
    end
    local touch = maps.touch
    touch.sanity = function(r)
        return mcp.await(r, all)[3]
    end
    set.awaitset = function(r)
        return mcp.await(r, all, 2)[1]
    end
    set.awaitbglog = function(r)
        mcp.await_logerrors(r, all, 0, mcp.AWAIT_BACKGROUND, "background")
        return "STORED\r\n"
    end
    set.awaitlogerr = function(r)
        return mcp.await_logerrors(r, all, 1, mcp.AWAIT_FASTGOOD, "write_failed")[1]
    end
    get.awaitcodes = function(r)
        -- arrival order, with each response's code and elapsed time
        local out = {}
        for _, res in ipairs(mcp.await(r, all, 0, mcp.AWAIT_ANY)) do
            out[#out + 1] = res:code() .. (res:elapsed() >= 0 and "" or "?")
        end
        return report(r, table.concat(out, ","))
    end

    -- response codes the route sees
    get.errcheck = function(r)
        local res = z.z1(r)
        return report(r, res:code() .. " " .. tostring(res:ok()) .. " " .. tostring(res:hit()))
    end
    mg.resline = function(r)
        local res = z.z1(r)
        return report(r, tostring(res:line()) .. "|" .. res:vlen() .. "|" .. res:code())
    end

    -- request objects
    mg.ntokens = function(r)
        return "VA 1 C123 v\r\n" .. r:ntokens() .. "\r\n"
    end
    mg.hasflag = function(r)
        if r:has_flag("c") then
            return "HD C123\r\n"
        elseif r:has_flag("O") then
            return "HD Oabc\r\n"
        end
        return "NF\r\n"
    end
    get.hasflag = function(r)
        if r:has_flag("F") then
            return "SERVER_ERROR has_flag is true for a get\r\n"
        end
        return "END\r\n"
    end
    mg.flagtoken = function(r)
        local checks = {}
        local function expect(label, ok, want_ok, tok, want_tok)
            if ok ~= want_ok or tok ~= want_tok then
                checks[#checks + 1] = label .. "=" .. tostring(ok) .. "," .. tostring(tok)
            end
        end
        local ok, tok = r:flag_token("T", "T100")
        expect("T", ok, false, tok, nil)
        ok, tok = r:flag_token("O", nil)
        expect("O", ok, false, tok, nil)
        ok, tok = r:flag_token("v", "")
        expect("v", ok, false, tok, nil)
        ok, tok = r:flag_token("N", "N100")
        expect("N", ok, true, tok, "10")
        ok, tok = r:flag_token("k", nil)
        expect("k", ok, true, tok, nil)
        ok, tok = r:flag_token("c", "c")
        expect("c1", ok, true, tok, nil)
        ok, tok = r:flag_token("c", "")
        expect("c2", ok, true, tok, nil)
        if r:has_flag("c") then checks[#checks + 1] = "c still set" end
        ok, tok = r:flag_token("R", "R100")
        expect("R1", ok, true, tok, "10")
        ok, tok = r:flag_token("R", "R100")
        expect("R2", ok, true, tok, "100")
        if #checks > 0 then
            return "SERVER_ERROR " .. table.concat(checks, " ") .. "\r\n"
        end
        return z.z1(r)
    end
    ms.token = function(r)
        local key = r:key()
        if key == "/token/replacement" then
            r:token(4, "C456")
        elseif key == "/token/removal" then
            r:token(4, "")
        elseif key == "/token/fetch" then
            r:flag_token("P", "P" .. r:token(2))
        end
        return z.z1(r)
    end
    ms.request = function(r)
        -- a new request with its own value, sent instead of the client's
        return z.z1(mcp.request("ms /request/edit 2\r\n", "ab\r\n"))
    end
    mg.request = function(r)
        local key = r:key()
        if key == "/request/old" then
            return z.z1(mcp.request("mg /request/new c\r\n"))
        elseif key == "/request/clone" then
            local res = z.z1(r)
            local nr = mcp.request("ms /request/a " .. res:vlen() .. "\r\n", res)
            return z.z1(nr)
        end
        return "SERVER_ERROR unknown request test\r\n"
    end

    for _, name in ipairs(names) do
        mcp.attach(mcp["CMD_" .. string.upper(name)], by_prefix(name, maps[name]))
    end
end
