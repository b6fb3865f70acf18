-- memcached's t/proxyustats.lua scenario (spec 10.5), written for mcpframe's tests. The file
-- named by MCP_USTATS_FILE holds "<prefix> <first> <last>": user stats <prefix><i> are
-- declared for i = first..last. "mg <n>" adds n to user stat |n| and answers HD.
local spec = io.open(os.getenv("MCP_USTATS_FILE")):read("l")
local prefix, first, last = string.match(spec, "^(%S+) (%-?%d+) (%-?%d+)$")

function mcp_config_pools()
    for i = tonumber(first), tonumber(last) do
        mcp.add_stat(i, prefix .. i)
    end
    return {}
end

function mcp_config_routes()
    mcp.attach(mcp.CMD_MG, function(r)
        local n = math.tointeger(tonumber(r:key()))
        mcp.stat(math.abs(n), n)
        return "HD\r\n"
    end)
end
