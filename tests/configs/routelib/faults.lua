-- A routelib config in front of three fake backends (ports in MCP_B1..MCP_B3), one pool
-- each: the handlers whose behaviour depends on failures, misses and timing.
local function b(i) return "127.0.0.1:" .. os.getenv("MCP_B" .. i) .. " b" .. i end

settings{ backend_read_timeout = 5 }

pools{
    p1 = { backends = { b(1) } },
    p2 = { backends = { b(2) } },
    p3 = { backends = { b(3) } },
}

routes{
    conf = { mode = "prefix", stop = "/" },
    map = {
        fo = route_failover{ children = { "p1", "p2", "p3" } },
        fomiss = route_failover{ children = { "p1", "p2", "p3" }, miss = true, stats = true },
        focount = route_failover{ children = { "p1", "p2", "p3" }, failover_count = 2,
            miss = true },
        fowait = route_failover{ children = { "p1", "p2" }, wait = 0.5 },
        fast = route_allfastest{ children = { "p1", "p2", "p3" } },
        fastmiss = route_allfastest{ children = { "p1", "p2", "p3" }, miss = true },
        fastwait = route_allfastest{ children = { "p1", "p2" }, wait = 0.5 },
        sync = route_allsync{ children = { "p1", "p2", "p3" } },
        split = route_split{ child_a = "p1", child_b = "p2" },
        shuffled = route_failover{ children = { "p1", "p2", "p3" }, shuffle = true,
            failover_count = 1 },
    },
}
