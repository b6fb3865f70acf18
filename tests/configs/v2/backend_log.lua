-- Automatic backend logging (spec v2 8.8), written for mcpframe's tests and run unchanged by
-- memcached 1.6.45's proxy to record its log lines. `mg <n>/...` goes to backend b<n>.
function mcp_config_pools()
    local function be(n, log)
        return mcp.backend({ label = "b" .. n, host = "127.0.0.1", port = os.getenv("MCP_B" .. n),
            log = log })
    end
    return {
        all = mcp.pool({ be(1, {}) }),
        errors = mcp.pool({ be(2, { errors = true, tag = "errs" }) }),
        slow = mcp.pool({ be(3, { deadline = 150, tag = "slow" }) }),
    }
end

function mcp_config_routes(p)
    local fg = mcp.funcgen_new()
    local handles = { ["1"] = fg:new_handle(p.all), ["2"] = fg:new_handle(p.errors),
        ["3"] = fg:new_handle(p.slow) }
    fg:ready({ n = "logged", f = function(rctx)
        return function(r)
            return rctx:enqueue_and_wait(r, handles[string.sub(r:key(), 1, 1)])
        end
    end })
    mcp.attach(mcp.CMD_MG, fg)
    -- only forwards: a pass-through route elsewhere, but its backend logs
    local direct = mcp.funcgen_new()
    local h = direct:new_handle(p.all)
    direct:ready({ n = "direct", f = function(rctx)
        return function(r) return rctx:enqueue_and_wait(r, h) end
    end })
    mcp.attach(mcp.CMD_MD, direct)
end
