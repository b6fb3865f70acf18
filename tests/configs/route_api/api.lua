-- The rest of the route API (spec 2.8-2.12, 3, 4.3, 6.2), for mcpframe's tests: one real
-- memcached backend (MCP_M1). Untagged: every storage command goes through a router on the
-- key's first path element. Listener tag "anytag": CMD_ANY is hooked, so stats, version,
-- watch and quit reach Lua too. Listener tag "other": only get is hooked; everything else
-- falls back to the untagged hooks.
function mcp_config_pools()
    return { main = mcp.pool({ mcp.backend("m1", "127.0.0.1", os.getenv("MCP_M1")) }) }
end

local function report(r, text)
    text = tostring(text)
    return "VALUE " .. r:key() .. " 0 " .. #text .. "\r\n" .. text .. "\r\nEND\r\n"
end

function mcp_config_routes(p)
    local main = p.main

    -- what a route returns (spec 4.3), by /ret/<kind>
    local ret = {
        res = function(r) return main(r) end,
        str = function(r) return "SERVER_ERROR a string\r\n" end,
        long = function(r) return "VALUE /ret/long 0 2000\r\n" .. string.rep("x", 2000) .. "\r\nEND\r\n" end,
        ["nil"] = function(r) return nil end,
        none = function(r) end,
        number = function(r) return 42 end,
        boolean = function(r) return true end,
        table = function(r) return {} end,
        ["function"] = function(r) return print end,
        request = function(r) return r end,
        error = function(r) error("route failed on purpose") end,
        errtable = function(r) error({}) end,
        yield = function(r) coroutine.yield("x") end,
        twice = function(r)
            local res = main(r)
            return res, "ignored", 3
        end,
        other = function(r)
            -- the response of another request, returned for this one
            return main(mcp.request("get /ret/other\r\n"))
        end,
        noreply_str = function(r) return "STORED\r\n" end,
    }

    -- the request object, by /req/<case>; answers with what the route saw
    local req = {
        tokens = function(r)
            local out = {}
            for i = 0, r:ntokens() + 1 do out[#out + 1] = tostring(r:token(i)) end
            return report(r, table.concat(out, ",") .. "|" .. tostring(r:token()))
        end,
        vlen = function(r) return report(r, r:vlen()) end,
        command = function(r) return report(r, r:command()) end,
        retoken = function(r)
            -- edit every token of a set and send it: the value stays as it is
            r:token(3, "7")
            r:token(4, 0)
            return main(r)
        end,
        rekey = function(r)
            -- replacing the key re-parses: the new key is routed and hashed
            r:token(2, "/req/rekeyed")
            local k = r:key()
            local res = main(r)
            return res
        end,
        toolong = function(r)
            local ok, err = pcall(r.token, r, 2, string.rep("k", 490))
            return report(r, tostring(ok) .. " " .. err .. " " .. r:key())
        end,
        malformed = function(r)
            -- an edit that does not parse leaves the request as it was ([R])
            local ok, err = pcall(r.token, r, 5, "notanumber")
            local line = r:token(1) .. " " .. r:token(2) .. " " .. r:token(5)
            return report(r, tostring(ok) .. " " .. err .. " " .. line)
        end,
        many = function(r)
            -- 24 tokens are indexed; the rest is kept (and its flags seen) but not indexed
            local flags = {}
            for i = 0, 24 do flags[#flags + 1] = "O" .. i end
            local nr = mcp.request("mg /req/many " .. table.concat(flags, " ") .. " z\r\n")
            local before = nr:ntokens() .. " " .. tostring(nr:token(24)) .. " " ..
                tostring(nr:token(25)) .. " " .. tostring(nr:has_flag("z")) .. " " ..
                tostring(nr:flag_token("z"))
            -- an edit keeps the indexed tokens only: the tail goes
            nr:token(3, "k")
            return report(r, before .. " / " .. nr:ntokens() .. " " .. nr:token(3) .. " " ..
                tostring(nr:has_flag("z")) .. " " .. nr:token(24))
        end,
        trims = function(r)
            local key = r:key()
            r:ltrimkey(5)  -- "/req/"
            local a = r:key()
            r:rtrimkey(2)
            local b = r:key()
            local ok1, e1 = pcall(r.ltrimkey, r, 100)
            local ok2, e2 = pcall(r.rtrimkey, r, -1)
            return report(r, a .. "|" .. b .. "|" .. e1 .. "|" .. e2)
        end,
        quietrewrite = function(r)
            local res = main(r)
            -- 4.4: the flag set is kept; the token shows the rewritten bytes
            return report(r, tostring(r:has_flag("q")) .. "[" .. r:token(4) .. "]" ..
                res:code())
        end,
        new = function(r)
            local nr = mcp.request("set /req/made 0 0 2\r\n", "ab\r\n")
            local res = main(nr)
            if not res:ok() then return res end
            return main(mcp.request("get /req/made\r\n"))
        end,
        fromreq = function(r)
            -- a new request borrowing the client's data block
            local res = main(mcp.request("set /req/copied 0 0 " .. r:vlen() .. "\r\n", r))
            if not res:ok() then return res end
            return main(mcp.request("get /req/copied\r\n"))
        end,
        meta = function(r)
            local nr = mcp.request("mg /req/made s v Oxy\r\n")
            return report(r, nr:command() .. " " .. nr:key() .. " " .. nr:ntokens() .. " " ..
                tostring(nr:has_flag("s")) .. " " .. select(2, nr:flag_token("O")))
        end,
        noreplymade = function(r)
            -- a request built noreply: the backend answers, the client sees nothing
            return main(mcp.request("set /req/nr 0 0 1 noreply\r\n", "n\r\n"))
        end,
    }

    -- mcp.request and other calls that must raise, by /bad/<case>: the route answers
    -- with the error text it caught
    local bad = {
        nocrlf = function(r) return mcp.request("get /bad/x") end,
        toolong = function(r) return mcp.request("get " .. string.rep("x", 500) .. "\r\n") end,
        unknown = function(r) return mcp.request("bogus /bad/x\r\n") end,
        short = function(r) return mcp.request("mg\r\n") end,
        msnolen = function(r) return mcp.request("ms /bad/x\r\n") end,
        msbadlen = function(r) return mcp.request("ms /bad/x abc\r\n") end,
        badflag = function(r) return mcp.request("mg /bad/x 5\r\n") end,
        setshort = function(r) return mcp.request("set /bad/x 0 0\r\n") end,
        twolines = function(r) return mcp.request("get a\r\nget b\r\n") end,
        value = function(r) return mcp.request("set /bad/x 0 0 2\r\n", "ab") end,
        hasflag = function(r) return r:has_flag("ab") end,
        hasflag2 = function(r) return r:has_flag("1") end,
        flagtoken = function(r) return r:flag_token("") end,
        tokentype = function(r) return r:token("x") end,
        tokenval = function(r) return r:token(2, {}) end,
        pool = function(r) return main("x") end,
        keyless = function(r) return main(mcp.request("version\r\n")) end,
        await_nopool = function(r) return mcp.await(r, {}) end,
        await_notpool = function(r) return mcp.await(r, { 1 }) end,
        await_mode = function(r) return mcp.await(r, { main }, 0, 99) end,
        await_req = function(r) return mcp.await("x", { main }) end,
        internal = function(r) return mcp.internal(nil) end,
        log = function(r) return mcp.log({}) end,
        stat = function(r) return mcp.stat(1, 1) end,
        attach = function(r) return mcp.attach(mcp.CMD_GET, "x") end,
        attachtag = function(r) return mcp.attach(mcp.CMD_GET, print, "ninechars") end,
        attachcmd = function(r) return mcp.attach(99, print) end,
    }

    local function router(routes, name)
        return function(r)
            local f = routes[string.match(r:key(), "^/%a+/([%w_]+)")]
            if f == nil then return "SERVER_ERROR no " .. name .. " case\r\n" end
            return f(r)
        end
    end
    local top = {
        pool = function(r) return main(r) end,
        ret = router(ret, "ret"),
        req = router(req, "req"),
        bad = function(r)
            local f = bad[string.match(r:key(), "^/bad/([%w_]+)")]
            local ok, err = pcall(f, r)
            if ok then return "SERVER_ERROR no error\r\n" end
            return "SERVER_ERROR " .. string.gsub(tostring(err), "^[^:]*:%d+: ", "") .. "\r\n"
        end,
        internal = function(r) return mcp.internal(r) end,
    }
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        local f = top[string.match(r:key(), "^/(%a+)/")]
        if f == nil then return "SERVER_ERROR no route\r\n" end
        return f(r)
    end)

    mcp.attach(mcp.CMD_ANY, function(r)
        local cmd = r:command()
        if cmd == mcp.CMD_STATS then
            if r:token(2) == "pool" then return main(r) end
            return "STAT routed " .. r:ntokens() .. "\r\nEND\r\n"
        elseif cmd == mcp.CMD_VERSION then
            return "VERSION anytag\r\n"
        elseif cmd == mcp.CMD_WATCH or cmd == mcp.CMD_QUIT then
            return "SERVER_ERROR routed " .. (r:token(1) or "quit") .. " [" .. r:key() .. "]\r\n"
        end
        return "SERVER_ERROR anytag " .. r:command() .. "\r\n"
    end, "anytag")
    mcp.attach(mcp.CMD_GET, function(r) return "SERVER_ERROR other\r\n" end, "other")
    -- never used: these commands never reach a hook
    mcp.attach(mcp.CMD_FLUSH_ALL, function(r) return "SERVER_ERROR flushed by a route\r\n" end)
end
