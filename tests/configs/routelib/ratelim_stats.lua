-- route_ratelim with stats = true (1.6.45 cannot load this: its _conf reads an undefined
-- global ctx), in front of one real memcached (port in MCP_B1).
pools{ m = { backends = { "127.0.0.1:" .. os.getenv("MCP_B1") } } }

routes{
    conf = { mode = "prefix", stop = "/" },
    map = {
        counted = route_ratelim{ child = "m", limit = 2, fillrate = 1, tickrate = 100000,
            stats = true },
        lim = route_ratelim{ child = "m", limit = 3, fillrate = 1, tickrate = 100000 },
        inv = route_ratelim{ child = "m", limit = 3, fillrate = 1, tickrate = 100000,
            fail_until_limit = true },
    },
}
