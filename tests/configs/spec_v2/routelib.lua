-- spec/mcp-v2.md's routelib examples (pools{} and routes{}), unchanged but for the backend
-- addresses; mcpframe serve --routelib routelib.lua --config hello.lua
local a, b = "127.0.0.1:" .. os.getenv("SPEC_PORT_A"), "127.0.0.1:" .. os.getenv("SPEC_PORT_B")
pools{
    main = {
        options = { seed = "a" },               -- merged over settings.pool_options
        backend_options = { connecttimeout = 2 }, -- merged over settings.backend_options
        backends = {
            a,                                 -- label "127.0.0.1:<port>"
            b .. " bee",                       -- label "bee"
            "10.0.0.3:11211 _down_",           -- down = true
            { host = "127.0.0.1", port = tonumber(os.getenv("SPEC_PORT_C")), readtimeout = 1 },
        },
    },
    set_cluster = {                            -- a pool set: name starts with "set_"
        east = { backends = { "127.0.0.1:" .. os.getenv("SPEC_PORT_C") } },
        west = { backends = { a } },
    },
}

routes{
    tag = "alt",                 -- optional: attach for listeners tagged "alt"
    conf = { mode = "prefix", stop = "/" },  -- passed to mcp.router_new
    map = {
        users = route_direct{ child = "main" },
        cache = cmdmap{
            get = route_direct{ child = "main" },
            all = route_null{},  -- any other storage command
        },
        hello = route_hello{},
    },
    cmap = { incr = route_null{} },
    default = route_failover{ children = "set_cluster" },
}
