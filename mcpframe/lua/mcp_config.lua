-- The config VM's half of the `mcp` library (memcached 1.6.20 proxy API).
--
-- Everything here runs once per (re)load, so it is plain Lua that records what the config
-- asked for; Python reads the records after mcp_config_pools() returns and builds the real
-- backends and pools from them. Errors are raised at level 2 so the operator sees the line
-- of *their* config that made the bad call ("routes.lua:12: backend must have a label").
--
-- Called as a chunk with (mcp, state): `state.tunables` holds the global tunables, which
-- persist across reloads the way memcached's do.
local mcp, state = ...

local BACKEND_MT = { __name = "mcp.backend" }
local POOL_MT = { __name = "mcp.pool" }
state.BACKEND_MT = BACKEND_MT
state.POOL_MT = POOL_MT

local tunables = state.tunables

-- Taken now: a config may define a global `debug` of its own (memcached's route library does).
local getinfo = debug.getinfo

local function where(level)
    local info = getinfo(level + 1, "Sl")
    if info and info.currentline and info.currentline > 0 then
        return info.short_src .. ":" .. info.currentline
    end
    return "?"
end

local function strnum(v, name, argn, fname)
    local t = type(v)
    if t == "number" then
        if math.type(v) == "float" and v == math.floor(v) then
            v = math.tointeger(v)
        end
        return tostring(v)
    elseif t == "string" then
        return v
    end
    error(string.format("bad argument #%d to '%s' (string expected, got %s)", argn, fname,
        t == "nil" and "no value" or t), 3)
end

local function seconds(v, fname)
    if type(v) ~= "number" then
        error(string.format("bad argument #1 to '%s' (number expected, got %s)", fname,
            v == nil and "no value" or type(v)), 3)
    end
    if v < 0 then
        error(fname .. ": timeout must be >= 0", 3)
    end
    -- memcached keeps whole seconds plus microseconds, the fraction rounded to the nearest us.
    local whole = math.floor(v)
    local usec = math.floor((v - whole) * 1000000 + 0.5)
    return whole + usec / 1000000
end

local function integer(v, fname, level)
    local n = math.tointeger(v)
    if n == nil then
        error(string.format("bad argument #1 to '%s' (number has no integer representation)",
            fname), level or 3)
    end
    return n
end

function mcp.backend_connect_timeout(s)
    tunables.connecttimeout = seconds(s, "backend_connect_timeout")
end

function mcp.backend_retry_timeout(s)
    tunables.retrytimeout = seconds(s, "backend_retry_timeout")
end

function mcp.backend_read_timeout(s)
    tunables.readtimeout = seconds(s, "backend_read_timeout")
end

function mcp.backend_failure_limit(n)
    n = integer(n, "backend_failure_limit")
    if n < 0 then
        error("backend_failure_limit must be >= 0", 2)
    end
    tunables.failurelimit = n
end

-- `level` as error()'s, counted from the caller of number() (default: its caller's caller).
local function number(v, fname, level)
    if type(v) ~= "number" then
        error(string.format("bad argument #1 to '%s' (number expected, got %s)", fname,
            v == nil and "no value" or type(v)), level or 3)
    end
    return v
end

-- memcached 1.6.45's retry wait: whole seconds, the fraction rounded up from 0.5, at least 1.
local function waittime(v, fname)
    v = number(v, fname, 4)
    local whole = v >= 0 and math.floor(v) or math.ceil(v)
    if v - whole >= 0.5 then whole = whole + 1 end
    if whole < 1 then whole = 1 end
    return math.tointeger(whole) or whole
end

-- flapbackoffmax: whole seconds; memcached turns a fraction into 0 (spec v2 7.1 [Q]), we
-- truncate it ([R]).
local function whole_seconds(v, fname)
    v = number(v, fname, 4)
    return math.tointeger(v >= 0 and math.floor(v) or math.ceil(v))
end

local function ramp(v, fname)
    v = number(v, fname, 4)
    if v <= 1.1 then v = 1.1 end
    return v
end

-- 1.6.45's global defaults for the backend options it added (spec v2 7.1).
function mcp.backend_retry_waittime(s)
    tunables.retrytimeout = waittime(s, "backend_retry_waittime")
end

function mcp.backend_depth_limit(n)
    n = integer(n, "backend_depth_limit")
    if n < 0 then
        error("backend_depth_limit must be >= 0", 2)
    end
    tunables.depthlimit = n
end

function mcp.backend_flap_time(s)
    tunables.flaptime = number(s, "backend_flap_time") + 0.0
end

function mcp.backend_flap_backoff_ramp(f)
    tunables.flapbackofframp = ramp(f, "backend_flap_backoff_ramp") + 0.0
end

function mcp.backend_flap_backoff_max(s)
    tunables.flapbackoffmax = whole_seconds(s, "backend_flap_backoff_max")
end

-- mcp.backend{log = {...}} (spec v2 8.8): what to log of this backend's results.
local function backend_log(t)
    if type(t) ~= "table" then error("backend log option must be a table", 3) end
    local log = { deadline = 0, rate = 0, errors = false, tag = "" }
    if t.deadline ~= nil then
        local n = integer(t.deadline, "backend", 4)
        if n < 0 then error("backend log deadline must be >= 0", 3) end
        log.deadline = n
    end
    if t.rate ~= nil then
        local n = integer(t.rate, "backend", 4)
        if n < 0 then error("backend log sample rate must be >= 0", 3) end
        log.rate = n
    end
    if t.errors ~= nil then
        if type(t.errors) ~= "boolean" then
            error(string.format("bad argument #1 to 'backend' (boolean expected, got %s)",
                type(t.errors)), 3)
        end
        log.errors = t.errors
    end
    if t.tag ~= nil then
        if type(t.tag) ~= "string" and type(t.tag) ~= "number" then
            error(string.format("bad argument #1 to 'backend' (string expected, got %s)",
                type(t.tag)), 3)
        end
        log.tag = tostring(t.tag)
    end
    -- Nothing asked for would log nothing: memcached then logs every result.
    if log.deadline == 0 and not log.errors and log.rate == 0 then log.rate = 1 end
    return log
end

function mcp.tcp_keepalive(b)
    if type(b) ~= "boolean" then
        error(string.format("bad argument #1 to 'tcp_keepalive' (boolean expected, got %s)",
            b == nil and "no value" or type(b)), 2)
    end
    tunables.tcpkeepalive = b
end

-- TLS to backends (memcached 1.6.45 with --enable-proxy-tls, spec 7.6). mcp.init_tls takes an
-- optional table (an mcpframe extension): cafile, verify (default true), certfile, keyfile.
function mcp.backend_use_tls(b)
    if type(b) ~= "boolean" then
        error(string.format("bad argument #1 to 'backend_use_tls' (boolean expected, got %s)",
            b == nil and "no value" or type(b)), 2)
    end
    tunables.usetls = b
end

function mcp.init_tls(opts)
    local tls = { verify = true }
    if opts ~= nil then
        if type(opts) ~= "table" then
            error(string.format("bad argument #1 to 'init_tls' (table expected, got %s)",
                type(opts)), 2)
        end
        for _, k in ipairs({ "cafile", "certfile", "keyfile" }) do
            local v = opts[k]
            if v ~= nil and type(v) ~= "string" then
                error("init_tls: " .. k .. " must be a string", 2)
            end
            tls[k] = v
        end
        if opts.verify ~= nil then tls.verify = opts.verify and true or false end
    end
    state.tls = tls
end

function mcp.active_req_limit(n)
    tunables.active_req_limit = integer(n, "active_req_limit")
end

function mcp.buffer_memory_limit(kb)
    tunables.buffer_memory_limit = integer(kb, "buffer_memory_limit")
end

-- A host that starts with "/" is a unix socket path (an mcpframe extension: memcached's proxy
-- connects over TCP only); it takes no port.
local function unix_path(host)
    return type(host) == "string" and host:sub(1, 1) == "/"
end

local function unix_port(host, port)
    if port ~= nil then
        error("backend port must not be given with a unix socket path", 3)
    end
    if #host > 107 then error("backend unix socket path too long", 3) end
    return ""
end

function mcp.backend(label, host, port)
    local be = {
        connecttimeout = tunables.connecttimeout,
        retrytimeout = tunables.retrytimeout,
        readtimeout = tunables.readtimeout,
        failurelimit = tunables.failurelimit,
        tcpkeepalive = tunables.tcpkeepalive,
        tls = tunables.usetls,
        depthlimit = tunables.depthlimit,
        flaptime = tunables.flaptime,
        flapbackofframp = tunables.flapbackofframp,
        flapbackoffmax = tunables.flapbackoffmax,
        down = false,
        connections = 1,
        where = where(2),
    }
    if type(label) == "table" then
        local t = label
        if t.label == nil then error("backend must have a label argument", 2) end
        if t.host == nil then error("backend must have a host argument", 2) end
        if t.port == nil and not unix_path(t.host) then
            error("backend must have a port argument", 2)
        end
        be.label = strnum(t.label, "label", 1, "backend")
        be.host = strnum(t.host, "host", 1, "backend")
        if unix_path(t.host) then
            be.port = unix_port(t.host, t.port)
        else
            be.port = strnum(t.port, "port", 1, "backend")
        end
        if t.connecttimeout ~= nil then
            be.connecttimeout = seconds(t.connecttimeout, "backend")
        end
        if t.retrywaittime ~= nil then
            be.retrytimeout = waittime(t.retrywaittime, "backend")
        end
        -- The 1.6.20 spelling (fractions kept) wins over retrywaittime, as it does in 1.6.45.
        if t.retrytimeout ~= nil then be.retrytimeout = seconds(t.retrytimeout, "backend") end
        if t.readtimeout ~= nil then be.readtimeout = seconds(t.readtimeout, "backend") end
        if t.failurelimit ~= nil then
            local n = integer(t.failurelimit, "backend")
            if n < 0 then error("failure_limit must be >= 0", 2) end
            be.failurelimit = n
        end
        if t.tcpkeepalive ~= nil then be.tcpkeepalive = t.tcpkeepalive and true or false end
        if t.tls ~= nil then be.tls = t.tls and true or false end
        -- 1.6.45's keys (spec v2 8.1); unknown keys are ignored, as memcached ignores them.
        if t.depthlimit ~= nil then
            local n = integer(t.depthlimit, "backend")
            if n < 0 then error("depthlimit must be >= 0", 2) end
            be.depthlimit = n
        end
        if t.down ~= nil then be.down = t.down and true or false end
        if t.flaptime ~= nil then be.flaptime = number(t.flaptime, "backend") + 0.0 end
        if t.flapbackofframp ~= nil then
            be.flapbackofframp = ramp(t.flapbackofframp, "backend") + 0.0
        end
        if t.flapbackoffmax ~= nil then
            be.flapbackoffmax = whole_seconds(t.flapbackoffmax, "backend")
        end
        if t.connections ~= nil then
            local n = integer(t.connections, "backend")
            if n <= 0 then error("backend connections argument must be >= 0", 2) end
            if n > 8 then error("backend connections argument must be <= 8", 2) end
            be.connections = n
        end
        if t.log ~= nil then be.log = backend_log(t.log) end
    else
        be.label = strnum(label, "label", 1, "backend")
        be.host = strnum(host, "host", 2, "backend")
        if unix_path(host) then
            be.port = unix_port(host, port)
        else
            be.port = strnum(port, "port", 3, "backend")
        end
    end
    if #be.label > 511 then error("backend label too long", 2) end
    if be.port ~= "" and #be.host > 254 then error("backend name too long", 2) end
    if #be.port > 5 then error("backend port too long", 2) end
    return setmetatable(be, BACKEND_MT)
end

-- Plugin objects (mcp.dist_*, mcp.hash_*) are tables built by Python from the plugin registry,
-- tagged with a private key so a look-alike table cannot pass for one.
local DIST_TAG, HASH_TAG = state.DIST_TAG, state.HASH_TAG

function mcp.pool(backends, options)
    if type(backends) ~= "table" then
        error(string.format("bad argument #1 to 'pool' (table expected, got %s)",
            backends == nil and "no value" or type(backends)), 2)
    end
    local list = {}
    for i = 1, #backends do
        local be = backends[i]
        if getmetatable(be) ~= BACKEND_MT then
            error(string.format("bad argument #1 to 'pool' (mcp.backend expected at index %d, got %s)",
                i, type(be)), 2)
        end
        list[i] = be
    end
    local pool = { backends = list, where = where(2), options = {} }
    if options ~= nil then
        if type(options) ~= "table" then
            error(string.format("bad argument #2 to 'pool' (table expected, got %s)",
                type(options)), 2)
        end
        if options.iothread ~= nil and type(options.iothread) ~= "boolean" then
            error("bad argument #2 to 'pool' (iothread must be a boolean)", 2)
        end
        if options.beprefix ~= nil then
            if type(options.beprefix) ~= "string" then
                error("bad argument #2 to 'pool' (beprefix must be a string)", 2)
            end
            if #options.beprefix > 511 then error("beprefix too long", 2) end
        end
        local dist = options.dist
        if dist ~= nil then
            if type(dist) ~= "table" or type(dist.new) ~= "function" then
                error("key distribution object missing 'new' function", 2)
            end
            if rawget(dist, DIST_TAG) == nil then
                error("unknown key distribution: use one of the mcp.dist_* objects", 2)
            end
            pool.dist = rawget(dist, DIST_TAG)
        end
        local filter = options.filter
        if filter ~= nil then
            if type(filter) ~= "string" then
                error("unknown hash filter specified: " .. tostring(filter), 2)
            end
            local conf = options.filter_conf
            if type(conf) ~= "string" then
                error("hash filter requires 'filter_conf' string", 2)
            end
            if #conf < 2 or #conf > 5 then
                error("hash filter conf must be between 2 and 5 characters", 2)
            end
            pool.filter = filter
            pool.filter_conf = conf
        end
        local hash = options.hash
        if hash ~= nil then
            if type(hash) ~= "table" or rawget(hash, HASH_TAG) == nil then
                error("bad argument #2 to 'pool' (hash must be one of the mcp.hash_* objects)", 2)
            end
            pool.hash = rawget(hash, HASH_TAG)
        end
        if options.seed ~= nil then
            if type(options.seed) ~= "string" then
                error("bad argument #2 to 'pool' (seed must be a string)", 2)
            end
            pool.seed = options.seed
        end
        -- The whole table goes to the distribution too (omode, obuckets, ...): keep the
        -- plain values, as memcached hands the table to the dist constructor.
        for k, v in pairs(options) do
            local tv = type(v)
            if type(k) == "string" and (tv == "string" or tv == "number" or tv == "boolean") then
                pool.options[k] = v
            end
        end
    end
    setmetatable(pool, POOL_MT)
    -- Build it now (Python: dist, hasher, filter from the plugins), so that a bad option
    -- fails this call, as it does in memcached, even if the pool is never returned.
    local err = state.build_pool(pool, tostring(pool))
    if err ~= nil then error(err, 2) end
    return pool
end

-- The server's stats as `stats [sub]` reports them, every value a string (spec v2 7.4).
function mcp.server_stats(sub)
    if sub ~= nil and type(sub) ~= "string" and type(sub) ~= "number" then
        error(string.format("bad argument #1 to 'server_stats' (string expected, got %s)",
            type(sub)), 2)
    end
    local t = state.server_stats(sub ~= nil and tostring(sub) or nil)
    if t == nil then error("unknown subcommand passed to server_stats", 2) end
    return t
end

function mcp.add_stat(index, name)
    local i = math.tointeger(index)
    if i == nil then
        error("bad argument #1 to 'add_stat' (number has no integer representation)", 2)
    end
    if i < 1 then error("stat index must be 1 or higher", 2) end
    if i > 1024 then error("stat index must be 1024 or less", 2) end
    if type(name) ~= "string" then
        error(string.format("bad argument #2 to 'add_stat' (string expected, got %s)",
            name == nil and "no value" or type(name)), 2)
    end
    if #name > 122 then error("stat name too long: " .. name, 2) end
    if name:find("%s") then error("stat cannot contain spaces or newlines", 2) end
    state.stats[i] = name
end
