-- Mutators (spec v2 5.8; memcached's t/proxymut.t and more), written for mcpframe's tests and
-- run unchanged by memcached 1.6.45's proxy to record the expected bytes. Rendered requests
-- go to backend b1 (a fake one in the tests: it shows the exact bytes); rendered responses
-- go back to the client. `mg report` lists return values and error texts.
function mcp_config_pools()
    return mcp.pool({ mcp.backend("b1", "127.0.0.1", os.getenv("MCP_B1")) })
end

local function tryone(f, ...)
    local ok, e = pcall(f, ...)
    if ok then return "ok:" .. tostring(e) end
    return tostring(e)
end

local function report(key, out)
    return "VALUE " .. key .. " 0 " .. #out .. "\r\n" .. out .. "\r\nEND\r\n"
end

function mcp_config_routes(p)
    local req, res = mcp.req_mutator_new, mcp.res_mutator_new
    -- proxymut.t
    local mgreq = req({ t = "cmdset", cmd = "mg" }, { t = "keyset", val = "override" })
    local mgreqcopy = req({ t = "cmdcopy", idx = 1 }, { t = "keycopy", idx = 2 })
    local mgflagreq = req({ t = "cmdset", cmd = "mg" }, { t = "keyset", val = "override" },
        { t = "flagset", flag = "s" }, { t = "flagset", flag = "t" },
        { t = "flagset", flag = "O", val = "opaque" }, { t = "flagset", flag = "N", val = 33 })
    local mgres = res({ t = "rescodeset", val = "HD" })
    local mgresval = res({ t = "rescodecopy", idx = 1 }, { t = "valcopy", idx = 2 })
    local mgresflag = res({ t = "rescodeset", val = "HD" }, { t = "flagset", flag = "t", val = "37" },
        { t = "flagcopy", flag = "O", idx = 1 })
    local mgresflagall = res({ t = "rescodeset", val = "HD" }, { t = "flagcopyall", idx = 1 })
    local reserr = res({ t = "reserr", code = "server", msg = "teapot" })
    -- more
    local fromreq = req({ t = "cmdcopy", idx = 1 }, { t = "keyset", val = "cc" },
        { t = "flagcopy", flag = "T", idx = 1 }, { t = "flagcopy", flag = "q", idx = 1 },
        { t = "flagset", flag = "v" })
    local msval = req({ t = "cmdset", cmd = "ms" }, { t = "keyset", val = "copied" },
        { t = "valcopy", idx = 1 }, { t = "flagset", flag = "T", val = 0 })
    local strval = req({ t = "cmdset", cmd = "ms" }, { t = "keycopy", idx = 1 },
        { t = "valcopy", idx = 2 }, { t = "flagcopy", flag = "F", idx = 3 })
    local flagsreq = req({ t = "cmdset", cmd = "mg" }, { t = "keycopy", idx = 1 },
        { t = "flagcopyall", idx = 2 }, { t = "flagset", flag = "k" })
    local toolong = req({ t = "cmdset", cmd = "mg" }, { t = "keyset", val = string.rep("k", 495) })
    local badreq = req({ t = "cmdset", cmd = "zz" }, { t = "keyset", val = "k" })
    local resnull = res({ t = "resnull", idx = 1 })
    local resnull_self = res({ t = "resnull" })
    local rescode = res({ t = "rescodecopy", idx = 1 }, { t = "flagcopy", flag = "k", idx = 2 })
    local errclient = res({ t = "reserr", code = "client", msg = "bad thing" })
    local errerror = res({ t = "reserr", code = "error", msg = "x" })
    local badres = res({ t = "rescodeset", val = "FOO" })
    local unknown2 = res({ t = "rescodeset", val = "XY" }, { t = "flagset", flag = "t", val = 1.5 })
    local onlynil = res({ t = "flagcopy", flag = "O", idx = 1 })

    local fg = mcp.funcgen_new()
    local h = fg:new_handle(p)
    fg:ready({ n = "mutate", u = 60, f = function(rctx)
        local nreq = rctx:request_new()
        local nres = rctx:response_new()
        local nres2 = rctx:response_new()
        local r
        -- one check per request (`mg caseN`): its return value or error text
        local cases = {
            function()
                return tryone(mgres, nres) .. "|" .. tostring(nres:ok()) .. " "
                    .. tostring(nres:code()) .. "|" .. tryone(mgres, nres)
            end,
            function()
                return tryone(errerror, nres2) .. "|" .. tostring(nres2:ok()) .. " "
                    .. tostring(nres2:code())
            end,
            function() return tryone(errclient, rctx:response_new()) end,
            function() return tryone(badres, rctx:response_new()) end,
            function() return tryone(unknown2, rctx:response_new()) end,
            function() return tryone(mgresval, rctx:response_new(), "VA", "x") end,
            function() return tryone(mgresval, rctx:response_new(), "VA", 5) end,
            function() return tryone(mgresval, rctx:response_new(), "VA") end,
            function() return tryone(mgresflag, rctx:response_new(), 5) end,
            function() return tryone(mgresflag, rctx:response_new(), r) end,
            function() return tryone(mgresflag, rctx:response_new()) end,
            function() return tryone(resnull_self, rctx:response_new()) end,
            function() return tryone(resnull, rctx:response_new(), "mg") end,
            function() return tryone(rescode, rctx:response_new(), r) end,
            function() return tryone(mgreq, r) end,
            function() return tryone(mgreq, nres) end,
            function() return tryone(mgres, r) end,
            function() return tryone(mgres) end,
            function() return tryone(mgreq, 5) end,
            function() return tryone(toolong, rctx:request_new()) end,
            function() return tryone(badreq, rctx:request_new()) end,
            function() return tryone(mgreqcopy, rctx:request_new(), 5, "k") end,
            function() return tryone(mgreqcopy, rctx:request_new(), rctx:response_new(), "k") end,
            function() return tryone(mgreqcopy, rctx:request_new(), "mg", {}) end,
            function() return tryone(flagsreq, rctx:request_new(), "k", r) end,
            function() return tryone(msval, rctx:request_new(), r) end,
            function()
                local once = rctx:request_new()
                return tryone(strval, once, "kk", "abc\r\n") .. "|"
                    .. tryone(strval, once, "kk", "abc\r\n", "1") .. "|"
                    .. tryone(strval, once, "kk", "abc\r\n", "1") .. "|" .. tryone(mgreq, once)
            end,
            function() return tryone(req) end,
            function() return tryone(req, { t = "nope" }) end,
            function() return tryone(req, { t = "cmdset", cmd = "mg" }, { t = "resnull", idx = 1 }) end,
            function() return tryone(res, { t = "keyset", val = "x" }) end,
            function() return tryone(req, { t = "cmdset" }) end,
            function() return tryone(req, { t = "cmdset", cmd = string.rep("x", 21) }) end,
            function() return tryone(req, { t = "cmdcopy" }) end,
            function() return tryone(req, { t = "cmdcopy", idx = 0 }) end,
            function() return tryone(req, { t = "cmdcopy", idx = 1.5 }) end,
            function() return tryone(req, { t = "keyset" }) end,
            function() return tryone(req, { t = "keyset", val = "" }) end,
            function() return tryone(res, { t = "rescodeset" }) end,
            function() return tryone(req, { t = "flagset" }) end,
            function() return tryone(req, { t = "flagset", flag = "ab" }) end,
            function() return tryone(req, { t = "flagset", flag = "!" }) end,
            function() return tryone(req, { t = "flagset", flag = "O", val = {} }) end,
            function() return tryone(req, { t = "flagcopy", flag = "O" }) end,
            function() return tryone(res, { t = "reserr" }) end,
            function() return tryone(res, { t = "reserr", code = "nope", msg = "x" }) end,
            function() return tryone(res, { t = "reserr", code = "server", msg = "" }) end,
            function()
                -- [R] a bare code: 1.6.45 fails "memory not filled correctly"
                return tryone(function()
                    local o = rctx:response_new()
                    res({ t = "reserr", code = "server" })(o)
                    return tostring(o:ok()) .. " " .. o:code()
                end)
            end,
            function() return tryone(req, 5) end,
            function() return tryone(req, { t = "valcopy", idx = "x" }) end,
            function() return tostring(select("#", mgres(rctx:response_new()))) end,
            -- (last: it makes 1.6.45 write before its buffer, and crash)
            function() return tryone(onlynil, rctx:response_new(), nil) end,
        }
        return function(req)
            r = req
            local key = r:key()
            if key == "mgreq" then
                mgreq(nreq)
                return rctx:enqueue_and_wait(nreq, h)
            elseif key == "mgflagreq" then
                mgflagreq(nreq)
                return rctx:enqueue_and_wait(nreq, h)
            elseif key == "mgreqcopy" then
                mgreqcopy(nreq, "md", "differentkey")
                return rctx:enqueue_and_wait(nreq, h)
            elseif key == "fromreq" then
                fromreq(nreq, r)
                return rctx:enqueue_and_wait(nreq, h)
            elseif key == "msval" then
                msval(nreq, r)
                return rctx:enqueue_and_wait(nreq, h)
            elseif key == "strval" then
                strval(nreq, "kk", "abc\r\n", "77")
                return rctx:enqueue_and_wait(nreq, h)
            elseif key == "flagsreq" then
                flagsreq(nreq, "fk", "t v O1")
                return rctx:enqueue_and_wait(nreq, h)
            elseif key == "mgres" then
                mgres(nres)
                return nres
            elseif key == "mgresval" then
                mgresval(nres, "VA", "example value\r\n")
                return nres
            elseif key == "mgresflag" then
                local got = rctx:enqueue_and_wait(r, h)
                mgresflag(nres, got)
                return nres
            elseif key == "mgresflag2" then
                mgresflag(nres, "toast")
                return nres
            elseif key == "mgresflag3" then
                mgresflag(nres, nil)
                return nres
            elseif key == "mgresflag4" then
                mgresflag(nres, true)
                return nres
            elseif key == "mgresflagall" then
                local got = rctx:enqueue_and_wait(r, h)
                mgresflagall(nres, got)
                return nres
            elseif key == "reserr" then
                reserr(nres)
                return nres
            elseif key == "resnull" or key == "getnull" or key == "setnull" then
                resnull(nres, r)
                return nres
            elseif key == "rescode" then
                local got = rctx:enqueue_and_wait(r, h)
                rescode(nres, got, got)
                return nres
            elseif key == "valres" then
                -- a client request's value into a response
                mgresval(nres, "VA", r)
                return nres
            else
                local n = tonumber(string.match(key, "^case(%d+)$"))
                local case = n and cases[n]
                if case then return report(key, case(r)) end
            end
            return "SERVER_ERROR no such test\r\n"
        end
    end })
    mcp.attach(mcp.CMD_MG, fg)
    mcp.attach(mcp.CMD_MS, fg)
    mcp.attach(mcp.CMD_GET, fg)
    mcp.attach(mcp.CMD_SET, fg)
end
