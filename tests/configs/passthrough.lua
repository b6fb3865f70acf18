-- Pass-through routes (docs/performance.md): mcpframe runs `return pool(r)` without Lua, so
-- this config checks that such routes still behave exactly as their Lua says, including when
-- another route reassigns what they name (tests/e2e/test_passthrough.py).

-- MCP_TEST_DUMP: string.dump answers dumps the pass-through detector does not know (as a Lua
-- other than 5.4 would); every route must then run in Lua, with the same answers.
local alter = os.getenv("MCP_TEST_DUMP")
if alter then
    local dump = string.dump
    string.dump = function(fn, strip)
        local d = dump(fn, strip)
        if alter == "truncated" then return d:sub(1, #d - 3) end
        if alter == "version" then return d:sub(1, 4) .. "\x55" .. d:sub(6) end
        if alter == "trailing" then return d .. "\0" end
        if alter == "garbage" then return "not a dump" end
        error("no dump today")
    end
end

function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", os.getenv("MCP_TEST_PORT_A"))
    local b = mcp.backend("b", "127.0.0.1", os.getenv("MCP_TEST_PORT_B"))
    local pools = { a = mcp.pool({ a }), b = mcp.pool({ b }) }
    if os.getenv("MCP_TEST_FRAGILE") then
        pools.fragile = mcp.pool({ a, b }, { hash = mcp.hash_fragile })
    end
    return pools
end

local current -- the pool `get` passes to
function mcp_config_routes(pools)
    current = pools.a
    local by_field = { pool = pools.a }
    passthrough_global = pools.a
    mcp.attach(mcp.CMD_GET, function(r) return current(r) end)              -- an upvalue
    mcp.attach(mcp.CMD_GETS, function(r) return by_field.pool(r) end)      -- a table field
    mcp.attach(mcp.CMD_MG, function(r) return passthrough_global(r) end)   -- a global
    mcp.attach(mcp.CMD_SET, function(r) return pools.a(r) end)
    if pools.fragile then
        mcp.attach(mcp.CMD_TOUCH, function(r) return pools.fragile(r) end)
    end
    -- `md to-b` points all three at pool b, `md to-a` back at a, `md to-nothing` at nil.
    mcp.attach(mcp.CMD_MD, function(r)
        local to = ({ ["to-a"] = pools.a, ["to-b"] = pools.b })[r:key()]
        current, by_field.pool, passthrough_global = to, to, to
        return "HD\r\n"
    end)
end
