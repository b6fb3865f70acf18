-- spec/mcp-v2.md section 1.4's example, unchanged but for the backend addresses (environment).
-- config VM: runs once per (re)load
function mcp_config_pools()
    mcp.backend_read_timeout(0.5)
    local a = mcp.backend("a", "127.0.0.1", os.getenv("SPEC_PORT_A"))
    local b = mcp.backend({ label = "b", host = "127.0.0.1", port = os.getenv("SPEC_PORT_B"),
                            depthlimit = 1000 })
    return { main = mcp.pool({ a, b }) }
end

-- worker VMs: runs once per (re)load in every worker thread
function mcp_config_routes(pools)
    local fg = mcp.funcgen_new()
    local h = fg:new_handle(pools.main)      -- integer handle, here 0
    fg:ready({
        n = "main_direct",                   -- name shown by "stats proxyfuncs"
        f = function(rctx, arg)              -- called once per slot
            return function(r)               -- called once per request
                local res = rctx:enqueue_and_wait(r, h)
                if res:ok() then return res end
                return "SERVER_ERROR try later\r\n"
            end
        end,
    })
    mcp.attach(mcp.CMD_ANY_STORAGE, fg)
end
