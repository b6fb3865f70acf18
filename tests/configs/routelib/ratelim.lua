-- route_ratelim in front of one real memcached (port in MCP_B1): buckets of 3 tokens that
-- refill one token every 100 seconds (so only the first requests pass).
pools{ m = { backends = { "127.0.0.1:" .. os.getenv("MCP_B1") } } }

routes{
    conf = { mode = "prefix", stop = "/" },
    map = {
        lim = route_ratelim{ child = "m", limit = 3, fillrate = 1, tickrate = 100000 },
        glob = route_ratelim{ child = "m", limit = 3, fillrate = 1, tickrate = 100000,
            global = true },
        inv = route_ratelim{ child = "m", limit = 3, fillrate = 1, tickrate = 100000,
            fail_until_limit = true },
    },
}
