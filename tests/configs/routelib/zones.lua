-- Pool sets and zones in front of three fake backends (ports in MCP_B1..MCP_B3): zone z1 is
-- local (the global local_zone), z2 and z3 are far.
local function b(i) return "127.0.0.1:" .. os.getenv("MCP_B" .. i) .. " z" .. i end

local_zone("z1")

pools{
    set_zs = {
        z1 = { backends = { b(1) } },
        z2 = { backends = { b(2) } },
        z3 = { backends = { b(3) } },
    },
}

routes{
    conf = { mode = "prefix", stop = "/" },
    map = {
        zf = route_zfailover{ children = "set_zs", stats = true },
        zfmiss = route_zfailover{ children = "set_zs", miss = true },
        zfn = route_zfailover{ children = "set_zs" },
        fo = route_failover{ children = "set_zs", local_zone = "z2", miss = true },
        fog = route_failover{ children = "set_zs", failover_count = 1 },
    },
}
