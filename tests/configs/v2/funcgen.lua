-- API v2 units (spec v2 sections 2 and 3), written for mcpframe's tests and run unchanged by
-- memcached 1.6.45's proxy to record the expected bytes. Three single-backend pools z1..z3
-- on the backends whose ports the test passes in MCP_B1..MCP_B3. One funcgen takes every
-- storage command and picks a scenario by the key's prefix "/<name>/".
function mcp_config_pools()
    mcp.backend_read_timeout(0.5)
    mcp.backend_connect_timeout(5)
    local b1 = mcp.backend("b1", "127.0.0.1", os.getenv("MCP_B1"))
    local b2 = mcp.backend("b2", "127.0.0.1", os.getenv("MCP_B2"))
    local b3 = mcp.backend("b3", "127.0.0.1", os.getenv("MCP_B3"))
    return { z1 = mcp.pool({ b1 }), z2 = mcp.pool({ b2 }), z3 = mcp.pool({ b3 }) }
end

-- A VALUE reply carrying `text`, to report what a route saw.
local function report(r, text)
    text = tostring(text)
    return "VALUE " .. r:key() .. " 0 " .. #text .. "\r\n" .. text .. "\r\nEND\r\n"
end

function mcp_config_routes(p)
    -- A child funcgen: answers a string for keys with "/str" in them, else forwards to z3.
    local child = mcp.funcgen_new()
    local ch = child:new_handle(p.z3)
    child:ready({ n = "child", f = function(rctx)
        return function(r)
            if string.find(r:key(), "str", 1, true) then
                return "HD child\r\n"
            end
            if string.find(r:key(), "boom", 1, true) then
                error("child boom")
            end
            if string.find(r:key(), "slp", 1, true) then
                rctx:sleep(0.05)
            end
            return rctx:enqueue_and_wait(r, ch)
        end
    end })

    local fg = mcp.funcgen_new()
    local h1 = fg:new_handle(p.z1)
    local h2 = fg:new_handle(p.z2)
    local h3 = fg:new_handle(p.z3)
    local hc = fg:new_handle(child)
    local hi = fg:new_handle(mcp.internal_handler)
    local all = { h1, h2, h3 }

    fg:ready({ n = "units", u = 2, a = { hello = "world" }, f = function(rctx, arg)
        local count = 0                   -- per slot
        local blank_res = rctx:response_new()
        local cbflag = nil
        rctx:handle_set_cb(h1, function(res, req)
            if cbflag == "good" then
                return mcp.WAIT_GOOD, mcp.WAIT_RESUME
            elseif cbflag == "ok" then
                return mcp.WAIT_OK
            elseif cbflag == "raise" then
                error("callback boom")
            elseif cbflag == "str" then
                return "x", true
            end
        end)
        local function flags(hs)
            local t = {}
            for i, h in ipairs(hs) do
                local res, flag = rctx:result(h)
                t[i] = res and tostring(flag) or "nil"
            end
            return table.concat(t, ",")
        end

        local scen = {}
        scen.direct = function(r) return rctx:enqueue_and_wait(r, h1) end
        scen.arg = function(r) return report(r, arg.hello) end
        scen.count = function(r)
            count = count + 1
            rctx:sleep(0.1)
            return report(r, count)
        end
        scen.all = function(r)
            rctx:enqueue(r, all)
            local n = rctx:wait_cond(3)
            return report(r, n .. "|" .. flags(all))
        end
        scen.any1 = function(r)
            rctx:enqueue(r, all)
            local n = rctx:wait_cond(1)
            local res = rctx:res_any(h1) or rctx:res_any(h2) or rctx:res_any(h3)
            return res
        end
        scen.good = function(r)
            rctx:enqueue(r, all)
            local n = rctx:wait_cond(3, mcp.WAIT_GOOD)
            return report(r, n .. "|" .. flags(all))
        end
        scen.ok = function(r)
            rctx:enqueue(r, all)
            local n = rctx:wait_cond(2, mcp.WAIT_OK)
            return report(r, n)
        end
        scen.fast = function(r)
            rctx:enqueue(r, { h1, h2 })
            local n = rctx:wait_cond(2, mcp.WAIT_FASTGOOD)
            return report(r, n)
        end
        scen.best = function(r)
            rctx:enqueue(r, all)
            rctx:wait_cond(3)
            local res, flag = rctx:best_result(all)
            return res
        end
        scen.worst = function(r)
            rctx:enqueue(r, all)
            rctx:wait_cond(3)
            local res, flag = rctx:worst_result(all)
            return res
        end
        scen.accessors = function(r)
            rctx:enqueue(r, { h1, h2 })
            rctx:wait_cond(2)
            local t = {}
            for _, h in ipairs({ h1, h2, h3 }) do
                t[#t + 1] = (rctx:res_good(h) and "g" or "-") .. (rctx:res_ok(h) and "o" or "-")
                    .. (rctx:res_any(h) and "a" or "-")
            end
            return report(r, table.concat(t, ","))
        end
        scen.tmo = function(r)
            rctx:enqueue(r, h1)
            local n, timedout = rctx:wait_cond(1, mcp.WAIT_ANY, 0.2)
            return report(r, tostring(n) .. "|" .. tostring(timedout))
        end
        scen.eawtmo = function(r)
            local res, timedout = rctx:enqueue_and_wait(r, h1, 0.2)
            return report(r, tostring(res) .. "|" .. tostring(timedout))
        end
        scen.twice = function(r)
            -- a first wait times out, a second one gets the result
            local res, timedout = rctx:enqueue_and_wait(r, h1, 0.1)
            if res ~= nil then return "SERVER_ERROR early\r\n" end
            return rctx:wait_handle(h1)
        end
        scen.cb = function(r)
            cbflag = "good"
            rctx:enqueue(r, { h1, h2 })
            local n = rctx:wait_cond(2, mcp.WAIT_GOOD)
            cbflag = nil
            return report(r, n .. "|" .. flags({ h1 }))
        end
        scen.cbok = function(r)
            cbflag = "ok"
            local res = rctx:enqueue_and_wait(r, h1)
            cbflag = nil
            return report(r, flags({ h1 }))
        end
        scen.cberr = function(r)
            cbflag = "raise"
            local res = rctx:enqueue_and_wait(r, h1)
            cbflag = nil
            return res
        end
        scen.cbstr = function(r)
            cbflag = "str"
            local res = rctx:enqueue_and_wait(r, h1)
            cbflag = nil
            return report(r, flags({ h1 }))
        end
        scen.sleep = function(r)
            local ok = rctx:sleep(0.05)
            return report(r, tostring(ok))
        end
        scen.bg = function(r)
            rctx:enqueue(r, h2)
            local n = rctx:wait_cond(0)
            return report(r, "bg " .. n)
        end
        scen.dropped = function(r)
            rctx:enqueue(r, h2)            -- never waited: never sent
            return "HD\r\n"
        end
        scen.handles = function(r)
            return report(r, h1 .. h2 .. h3 .. hc .. hi)
        end
        scen.child = function(r)
            local res = rctx:enqueue_and_wait(r, hc)
            if type(res) == "string" then return report(r, "string " .. res) end
            local _, flag = rctx:result(hc)
            if not res:ok() then return report(r, "failed " .. res:code() .. " " .. flag) end
            return res
        end
        scen.childmix = function(r)
            -- a child (which may sleep, then waits on its own handle) next to a pool handle
            rctx:enqueue(r, { h1, hc })
            local n = rctx:wait_cond(2)
            return report(r, n .. "|" .. flags({ h1, hc }))
        end
        scen.two = function(r)
            -- queue two, wait for each one by itself, the later handle first
            rctx:enqueue(r, { h1, h2 })
            local b = rctx:wait_handle(h2)
            local a = rctx:wait_handle(h1)
            return report(r, (a and a:code() or "nil") .. "," .. (b and b:code() or "nil"))
        end
        scen.internal = function(r) return rctx:enqueue_and_wait(r, hi) end
        scen.mcpinternal = function(r) return mcp.internal(r) end
        scen.yield = function(r) coroutine.yield() end
        scen.err = function(r) error("route boom") end
        scen.badnil = function(r) return nil end
        scen.badtable = function(r) return {} end
        scen.badrctx = function(r) return rctx end
        scen.long = function(r) return string.rep("a", 1100) end
        scen.blank = function(r) return blank_res end
        scen.reuse = function(r)
            -- a handle carries one request per run: the second enqueue is ignored
            local a = rctx:enqueue_and_wait(r, h1)
            rctx:enqueue(r, h1)
            local b, timedout = rctx:wait_handle(h1, 0.2)
            return report(r, tostring(b == a) .. "|" .. tostring(timedout))
        end
        scen.edit = function(r)
            local nr = mcp.request("mg /edit/other v\r\n")
            return rctx:enqueue_and_wait(nr, h1)
        end
        scen.failed = function(r)
            -- z3's backend is told to fail by the test
            return rctx:enqueue_and_wait(r, h3)
        end
        scen.errs = function(r)
            local t = {}
            local function try(f, ...)
                local ok, e = pcall(f, ...)
                t[#t + 1] = ok and "ok" or tostring(e)
            end
            try(rctx.enqueue, rctx, r, 99)
            try(rctx.enqueue, rctx, r, { "x" })
            try(rctx.enqueue, rctx, r, "x")
            try(rctx.enqueue, rctx, mcp.request("version\r\n"), h1)
            try(rctx.wait_cond, rctx)
            try(rctx.wait_cond, rctx, -1)
            try(rctx.wait_cond, rctx, 1, 9)
            try(rctx.wait_cond, rctx, 1, nil)
            try(rctx.wait_handle, rctx, 99)
            try(rctx.wait_handle, rctx, h3)
            try(rctx.enqueue_and_wait, rctx, r, "x")
            try(rctx.result, rctx, 99)
            try(rctx.best_result, rctx, 1)
            try(rctx.worst_result, rctx, { 99 })
            try(rctx.handle_set_cb, rctx, 99, print)
            try(rctx.request_new, rctx)
            try(rctx.request_new, rctx)
            try(rctx.sleep, rctx, "x")
            -- (last: after this error 1.6.45 leaves the rctx in its wait mode)
            try(rctx.wait_cond, rctx, 1, mcp.WAIT_ANY, "x")
            return report(r, table.concat(t, "\n"))
        end
        scen.fgerrs = function(r)
            -- funcgen errors (spec 2.3, 2.4), raised in a route to read their texts
            local t = {}
            local function try(f, ...)
                local ok, e = pcall(f, ...)
                t[#t + 1] = ok and "ok" or tostring(e)
            end
            local g = mcp.funcgen_new()
            try(g.new_handle, g, "x")
            try(g.ready, g, {})
            try(g.ready, g, { f = function() end, u = 0 })
            try(g.ready, g, { f = function() end, u = 256 })
            try(g.ready, g, { f = function() return 1 end })
            try(g.ready, g, { f = function() error("gen boom", 0) end })
            local unready = mcp.funcgen_new()
            local g2 = mcp.funcgen_new()
            try(g2.new_handle, g2, unready)
            try(g2.ready, g2, { f = function() return print end })
            local g3 = mcp.funcgen_new()
            try(g3.ready, g3, { f = function() return print end, u = "2" })
            try(g3.new_handle, g3, p.z1)
            try(g3.ready, g3, { f = function() return print end })
            return report(r, table.concat(t, "\n"))
        end
        scen.cfd = function(r)
            return report(r, math.type(rctx:cfd()))
        end

        return function(r)
            local name = string.match(r:key(), "^/(%a+)/")
            local s = scen[name]
            if s == nil then return "SERVER_ERROR no route\r\n" end
            return s(r)
        end
    end })
    mcp.attach(mcp.CMD_ANY_STORAGE, fg)

    -- Slot generation failing at request time: the first slot is fine, later ones raise.
    local made = 0
    local flaky = mcp.funcgen_new()
    local fh = flaky:new_handle(p.z1)
    flaky:ready({ n = "flaky", f = function(rctx)
        made = made + 1
        if made > 1 then error("no more slots") end
        return function(r)
            rctx:sleep(0.1)
            return "HD flaky\r\n"
        end
    end })
    mcp.attach(mcp.CMD_TOUCH, flaky)
    -- A funcgen never made ready: every request fails to start.
    mcp.attach(mcp.CMD_GAT, mcp.funcgen_new())

    -- A funcgen replaced on every hook is closed (spec 2.7).
    local replaced = mcp.funcgen_new()
    replaced:ready({ n = "replaced", f = function(rctx) return function(r) end end })
    mcp.attach(mcp.CMD_INCR, replaced)
    mcp.attach(mcp.CMD_DECR, replaced)
    mcp.attach(mcp.CMD_INCR, fg)
    local still_ok = pcall(mcp.attach, mcp.CMD_INCR, replaced)  -- still on decr: fine
    mcp.attach(mcp.CMD_INCR, fg)
    mcp.attach(mcp.CMD_DECR, fg)
    local _, closed_attach = pcall(mcp.attach, mcp.CMD_INCR, replaced)
    local probe = mcp.funcgen_new()
    local _, closed_handle = pcall(probe.new_handle, probe, replaced)
    local closed = tostring(still_ok) .. "\n" .. closed_attach .. "\n" .. closed_handle
    mcp.attach(mcp.CMD_CAS, function(r)
        return "VALUE closed 0 " .. #closed .. "\r\n" .. closed .. "\r\nEND\r\n"
    end)

    -- API v1 in the same VM: a plain function is still a route (1.6.20 configs keep working).
    mcp.attach(mcp.CMD_DELETE, function(r) return "HD v1\r\n" end)
end
