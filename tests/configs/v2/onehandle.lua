-- Function generators with one handle, a pool: the common shape of a v2 route, whose first
-- enqueue_and_wait of its client request mcpframe runs on a shorter path (mcp_funcgen.lua,
-- `own`). Each scenario reads what that path keeps back until asked: results and flags
-- through every rctx accessor, a second wait, a callback set afterwards, user objects, an
-- error, a sleep, slots reused. Written for mcpframe's tests and run unchanged by memcached
-- 1.6.45's proxy to record the expected bytes; one pool on the backend of MCP_B1, a router
-- picks the scenario by the key's prefix "/<name>/".
function mcp_config_pools()
    mcp.backend_read_timeout(0.5)
    local b1 = mcp.backend("b1", "127.0.0.1", os.getenv("MCP_B1"))
    return { z1 = mcp.pool({ b1 }) }
end

-- A VALUE reply carrying `text`, to report what a route saw.
local function report(r, text)
    text = tostring(text)
    return "VALUE " .. r:key() .. " 0 " .. #text .. "\r\n" .. text .. "\r\nEND\r\n"
end

local function present(v)
    return v ~= nil and "y" or "n"
end

-- A funcgen with one handle on `pool`; `route(rctx, h, r, slot)` is its route, `slot` a
-- table per slot (its number, and a counter the route may use).
local made = 0
local function one(name, pool, route, u)
    local fg = mcp.funcgen_new()
    local h = fg:new_handle(pool)
    fg:ready({ n = name, u = u, f = function(rctx)
        made = made + 1
        local slot = { n = made, count = 0 }
        return function(r) return route(rctx, h, r, slot) end
    end })
    return fg
end

function mcp_config_routes(p)
    local z1 = p.z1
    local map = {}
    -- the response as it came, returned through a local
    map.plain = one("plain", z1, function(rctx, h, r)
        local res = rctx:enqueue_and_wait(r, h)
        return res
    end)
    -- result, res_good, res_ok and res_any after the wait: the same object, its flag
    map.result = one("result", z1, function(rctx, h, r)
        local res = rctx:enqueue_and_wait(r, h)
        local again, flag = rctx:result(h)
        return report(r, tostring(again == res) .. "|" .. tostring(flag) .. "|"
            .. present(rctx:res_good(h)) .. present(rctx:res_ok(h)) .. present(rctx:res_any(h))
            .. "|" .. tostring(res:hit()))
    end)
    -- the accessors in the other order: res_any first, then result
    map.any = one("any", z1, function(rctx, h, r)
        local res = rctx:enqueue_and_wait(r, h)
        local a = rctx:res_any(h)
        local _, flag = rctx:result(h)
        return report(r, tostring(a == res) .. "|" .. tostring(flag))
    end)
    -- best_result and worst_result over the one handle
    map.best = one("best", z1, function(rctx, h, r)
        local res = rctx:enqueue_and_wait(r, h)
        local b, bf = rctx:best_result({ h })
        local w, wf = rctx:worst_result({ h })
        return report(r, tostring(b == res) .. "|" .. tostring(bf) .. "|" .. tostring(w == res)
            .. "|" .. tostring(wf))
    end)
    -- a callback set after the wait changes nothing already delivered
    map.cbafter = one("cbafter", z1, function(rctx, h, r)
        local res = rctx:enqueue_and_wait(r, h)
        rctx:handle_set_cb(h, function() return mcp.WAIT_GOOD end)
        local _, flag = rctx:result(h)
        return report(r, tostring(flag) .. "|" .. tostring(res:hit()))
    end)
    -- a callback set by the generator: its flag is the result's (WAIT_OK: 16 for a hit)
    local fg = mcp.funcgen_new()
    local hcb = fg:new_handle(z1)
    fg:ready({ n = "cbgen", f = function(rctx)
        rctx:handle_set_cb(hcb, function() return mcp.WAIT_OK end)
        return function(r)
            local res = rctx:enqueue_and_wait(r, hcb)
            local _, flag = rctx:result(hcb)
            return report(r, tostring(flag) .. "|" .. tostring(res:hit()))
        end
    end })
    map.cbgen = fg
    -- a slot with user objects: the response returned as is
    map.uobj = one("uobj", z1, function(rctx, h, r)
        local res = rctx:enqueue_and_wait(r, h)
        return res
    end, 1)
    -- an error after the wait; the slot serves the next request from the start
    map.err = one("err", z1, function(rctx, h, r, slot)
        slot.count = slot.count + 1
        local res = rctx:enqueue_and_wait(r, h)
        if string.find(r:key(), "boom", 1, true) then error("after the wait") end
        return report(r, tostring(slot.count) .. "|" .. tostring(res:hit()))
    end)
    -- a sleep after the wait, then the response
    map.sleep = one("sleep", z1, function(rctx, h, r)
        local res = rctx:enqueue_and_wait(r, h)
        rctx:sleep(0.01)
        return res
    end)
    -- a request the route built, and the client's request with a timeout: the general path
    map.built = one("built", z1, function(rctx, h, r)
        local res
        if string.find(r:key(), "timeout", 1, true) then
            res = rctx:enqueue_and_wait(r, h, 0.4)
        else
            res = rctx:enqueue_and_wait(mcp.request("mg " .. r:key() .. " v\r\n"), h)
        end
        return res
    end)
    -- which slot a request ran in, and how many it ran there; no wait at all
    map.nowait = one("nowait", z1, function(rctx, h, r, slot)
        slot.count = slot.count + 1
        return report(r, tostring(slot.count))
    end)
    -- the same after a wait
    map.count = one("count", z1, function(rctx, h, r, slot)
        slot.count = slot.count + 1
        local res = rctx:enqueue_and_wait(r, h)
        return report(r, tostring(slot.count) .. "|" .. tostring(res:hit()))
    end)
    -- a request left in flight (wait_cond(0) sends and goes on): the slot is released when
    -- its reply is in, and serves the next request the usual way
    map.bg = one("bg", z1, function(rctx, h, r, slot)
        slot.count = slot.count + 1
        if string.find(r:key(), "left", 1, true) then
            rctx:enqueue(r, h)
            rctx:wait_cond(0)
            return report(r, "left " .. tostring(slot.count))
        end
        local res = rctx:enqueue_and_wait(r, h)
        return report(r, tostring(slot.count) .. "|" .. tostring(res:hit()))
    end)
    mcp.attach(mcp.CMD_ANY_STORAGE, mcp.router_new({ map = map, mode = "anchor", start = "/",
        stop = "/" }))
end
