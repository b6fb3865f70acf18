-- Config-time errors of the mcp API (spec 2.3-2.8, 1.4), for mcpframe's tests: MCP_CASE
-- names the one bad call this load makes; the load must fail with memcached's error text.
local case = os.getenv("MCP_CASE")

local function be(label)
    return mcp.backend(label or "b", "127.0.0.1", 11211)
end

local pools = {
    no_label = function() mcp.backend({ host = "127.0.0.1", port = 1 }) end,
    no_host = function() mcp.backend({ label = "b", port = 1 }) end,
    no_port = function() mcp.backend({ label = "b", host = "127.0.0.1" }) end,
    label_long = function() mcp.backend(string.rep("l", 512), "127.0.0.1", 1) end,
    host_long = function() mcp.backend("b", string.rep("h", 255), 1) end,
    port_long = function() mcp.backend("b", "127.0.0.1", "123456") end,
    host_type = function() mcp.backend("b", {}, 1) end,
    failurelimit = function() mcp.backend({ label = "b", host = "h", port = 1, failurelimit = -1 }) end,
    failure_limit = function() mcp.backend_failure_limit(-1) end,
    keepalive = function() mcp.tcp_keepalive(1) end,
    read_timeout = function() mcp.backend_read_timeout("soon") end,
    negative_timeout = function() mcp.backend_connect_timeout(-1) end,
    pool_type = function() mcp.pool("b") end,
    pool_member = function() mcp.pool({ be(), "x" }) end,
    pool_options = function() mcp.pool({ be() }, 5) end,
    dist_new = function() mcp.pool({ be() }, { dist = {} }) end,
    filter_name = function() mcp.pool({ be() }, { filter = "nope", filter_conf = "ab" }) end,
    filter_conf = function() mcp.pool({ be() }, { filter = "stop" }) end,
    filter_len = function() mcp.pool({ be() }, { filter = "stop", filter_conf = "abcdef" }) end,
    iothread = function() mcp.pool({ be() }, { iothread = "no" }) end,
    omode = function() mcp.pool({ be() }, { dist = mcp.dist_ring_hash, omode = "odd" }) end,
    obuckets = function() mcp.pool({ be() }, { dist = mcp.dist_ring_hash, obuckets = 0 }) end,
    stat_low = function() mcp.add_stat(0, "x") end,
    stat_high = function() mcp.add_stat(1025, "x") end,
    stat_space = function() mcp.add_stat(1, "a b") end,
    stat_long = function() mcp.add_stat(1, string.rep("n", 123)) end,
}

local routes = {
    attach_fn = function() mcp.attach(mcp.CMD_GET, "not a function") end,
    attach_tag = function() mcp.attach(mcp.CMD_GET, function() end, "") end,
    attach_cmd = function() mcp.attach(12345, function() end) end,
    attach_tagtype = function() mcp.attach(mcp.CMD_GET, function() end, {}) end,
    yield = function() mcp.await(mcp.request("get a\r\n"), {}) end,
}

if case == "top_level_backend" then
    mcp.backend("b", "127.0.0.1", 11211)  -- fine in the config VM, missing in the route VM
end

function mcp_config_pools()
    local f = pools[case]
    if f then f() end
    if case == "copy_function" then return { f = print } end
    if case == "copy_backend" then return { b = be() } end
    if case == "copy_key" then return { [true] = 1 } end
    return { p = mcp.pool({ be() }) }
end

function mcp_config_routes(c)
    local f = routes[case]
    if f then f() end
end
