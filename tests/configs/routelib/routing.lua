-- A routelib config in front of three real memcached servers (ports in MCP_B1..MCP_B3):
-- every handler that needs no faults, pool sets, command maps, a tagged tree.
local function b(i) return "127.0.0.1:" .. os.getenv("MCP_B" .. i) end

settings{ backend_connect_timeout = 3, backend_read_timeout = 3 }

pools{
    main = { backends = { b(1), b(2) .. " bee", b(3) } },
    one = { backends = { b(1) } },
    two = { backends = { b(2) } },
}
pools{
    three = { backends = { b(3) } },
    set_zones = {
        east = { backends = { b(1) } },
        west = { backends = { b(2) } },
    },
}

routes{
    conf = { mode = "prefix", stop = "/" },
    map = {
        main = route_direct{ child = "main" },
        null = route_null{},
        ttl = route_ttl{ ttl = 99, child = "one" },
        ttlms = cmdmap{ ms = route_ttl{ ttl = 77, child = "one" } },
        split = route_split{ child_a = "one", child_b = "two" },
        sync = route_allsync{ children = { "one", "two", "three" } },
        rand = route_random{ children = { "two" } },
        rand3 = route_random{ children = { "one", "two", "three" } },
        east = route_direct{ child = "set_zones_east" },
        west = route_failover{ children = "set_zones", local_zone = "west" },
        cmd = cmdmap{
            get = route_direct{ child = "two" },
            set = route_direct{ child = "two" },
            all = route_null{},
        },
        nest = route_failover{ children = { route_null{}, "three" }, miss = true },
        fast = route_allfastest{ children = { "one", "two" } },
    },
    cmap = { incr = route_null{} },
    default = route_direct{ child = "three" },
}

routes{
    tag = "alt",
    default = route_direct{ child = "two" },
}
