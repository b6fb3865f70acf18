-- route_allfastest and route_split over pools sharing three real memcached servers
-- (MCP_B1..MCP_B3) in other orders and counts: each copy must land where a route_direct over
-- its pool puts the key. both/: every command through an allfastest over two pools that
-- place most keys on different servers (its slower copy's reply comes in another read).
local function b(i) return "127.0.0.1:" .. os.getenv("MCP_B" .. i) end

pools{
    main = { backends = { b(1), b(2), b(3) } },
    rev = { backends = { b(3), b(1), b(2) } },
    pair = { backends = { b(2), b(3) } },
}

routes{
    conf = { mode = "prefix", stop = "/" },
    map = {
        fast = cmdmap{
            set = route_allfastest{ children = { "main", "rev", "pair" } },
            mg = route_direct{ child = "main" },
            gets = route_direct{ child = "rev" },
            get = route_direct{ child = "pair" },
        },
        both = route_allfastest{ children = { "main", "rev" } },
        split = cmdmap{
            set = route_split{ child_a = "rev", child_b = "main" },
            mg = route_direct{ child = "main" },
            gets = route_direct{ child = "rev" },
        },
    },
}
