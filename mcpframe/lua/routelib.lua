-- mcpframe's route library: reads the configuration language of memcached's routelib
-- (`settings{}`, `pools{}`, `routes{}`, `cmdmap{}`, `route_<name>{...}`; spec v2 section 11)
-- and builds pools, function generators and routers from it with the API v2 of this VM.
--
-- Loaded as the config entry named `routelib` (`mcpframe serve --routelib FILE`, memcached's
-- `-o proxy_config=routelib,proxy_arg=FILE`), in the config VM and in the route VM, after the
-- sources of every route handler plugin (each defines `route_<name>_conf` and
-- `route_<name>_start`). Called as a chunk with:
--   names  the handler plugins' names, registered here as `register_route_handlers` does;
--   stats  the `mcp.add_stat` names of the previous load (id -> name), so that a reload keeps
--          each counter's id as memcached's copy does (it keeps them in its config VM);
--   shared the route VM's request and response internals (mcp_routes.lua's state.shared),
--          nil in the config VM: null replies are real response objects;
--   broken handler plugins whose source failed to load: name -> the error.
--
-- Two stages, as in memcached: `mcp_config_pools` (config VM) runs the user's file
-- (mcp.start_arg), applies its settings, builds the pools, checks every handler's children
-- and runs every handler's `_conf`; its return value crosses into the route VM, where
-- `mcp_config_routes` resolves children to pools and funcgens, runs every `_start` and
-- attaches one router per `routes{}` tree (a tree with only a default: that handler itself). Every error about a handler names the user's file
-- and line where `route_<name>{...}` was written.
local names, prev_stats, shared, broken = ...

local getinfo = debug.getinfo
local type, pairs, next, error, pcall, tostring, rawget, rawset, setmetatable,
    getmetatable = type, pairs, next, error, pcall, tostring, rawget, rawset,
    setmetatable, getmetatable
local sfind, smatch, sformat, ssub, sgmatch = string.find, string.match, string.format,
    string.sub, string.gmatch
local mtype, tointeger = math.type, math.tointeger

local STATS_MAX = 1024

local CMD_BY_NAME = {
    mg = mcp.CMD_MG, ms = mcp.CMD_MS, md = mcp.CMD_MD, mn = mcp.CMD_MN, ma = mcp.CMD_MA,
    me = mcp.CMD_ME, get = mcp.CMD_GET, gat = mcp.CMD_GAT, set = mcp.CMD_SET,
    add = mcp.CMD_ADD, cas = mcp.CMD_CAS, gets = mcp.CMD_GETS, gats = mcp.CMD_GATS,
    incr = mcp.CMD_INCR, decr = mcp.CMD_DECR, touch = mcp.CMD_TOUCH,
    append = mcp.CMD_APPEND, delete = mcp.CMD_DELETE, replace = mcp.CMD_REPLACE,
    prepend = mcp.CMD_PREPEND, all = mcp.CMD_ANY_STORAGE,
}
local ANY = mcp.CMD_ANY_STORAGE

-- Types of the values the user's file builds (config VM only: metatables do not cross).
local HANDLER = { __name = "routelib.handler" }
local CMDMAP = { __name = "routelib.cmdmap" }

-- What the user's file declared; emptied after each load.
local input
local function reset_input()
    input = { pools = {}, routes = {}, settings = nil, zone = nil }
end
reset_input()

local is_verbose, is_debug = false, false

---------------------------------------------------------------------------
-- helpers shared with the handlers (global `routelib`)

-- The user's file and line `level` frames above the caller ("?" when not Lua code); the
-- path whole (Lua's own messages cut it to 60 bytes).
local function where(level)
    local info = getinfo(level + 1, "Sl")
    if info and info.currentline and info.currentline > 0 then
        local src = info.source
        if ssub(src, 1, 1) == "@" then src = ssub(src, 2) else src = info.short_src end
        return src .. ":" .. info.currentline
    end
    return "?"
end

-- An error at the user's line that called the function calling this.
local function raise(msg)
    error(where(3) .. ": " .. msg, 0)
end

-- The "nothing there" reply of each command (memcached's `resnull` mutator step, spec v2
-- 5.8), and its response code.
local END, NOT_STORED, NOT_FOUND = mcp.MCMC_CODE_END, mcp.MCMC_CODE_NOT_STORED,
    mcp.MCMC_CODE_NOT_FOUND
local NULL = {
    [mcp.CMD_MG] = { "EN\r\n", END }, [mcp.CMD_ME] = { "EN\r\n", END },
    [mcp.CMD_MS] = { "NS\r\n", NOT_STORED }, [mcp.CMD_MD] = { "NF\r\n", NOT_FOUND },
    [mcp.CMD_MA] = { "NF\r\n", NOT_FOUND },
    [mcp.CMD_GET] = { "END\r\n", END }, [mcp.CMD_GETS] = { "END\r\n", END },
    [mcp.CMD_GAT] = { "END\r\n", END }, [mcp.CMD_GATS] = { "END\r\n", END },
    [mcp.CMD_SET] = { "NOT_STORED\r\n", NOT_STORED },
    [mcp.CMD_ADD] = { "NOT_STORED\r\n", NOT_STORED },
    [mcp.CMD_CAS] = { "NOT_STORED\r\n", NOT_STORED },
    [mcp.CMD_REPLACE] = { "NOT_STORED\r\n", NOT_STORED },
    [mcp.CMD_APPEND] = { "NOT_STORED\r\n", NOT_STORED },
    [mcp.CMD_PREPEND] = { "NOT_STORED\r\n", NOT_STORED },
    [mcp.CMD_INCR] = { "NOT_FOUND\r\n", NOT_FOUND },
    [mcp.CMD_DECR] = { "NOT_FOUND\r\n", NOT_FOUND },
    [mcp.CMD_TOUCH] = { "NOT_FOUND\r\n", NOT_FOUND },
    [mcp.CMD_DELETE] = { "NOT_FOUND\r\n", NOT_FOUND },
}
local IS_META = { [mcp.CMD_MG] = true, [mcp.CMD_MS] = true, [mcp.CMD_MD] = true,
    [mcp.CMD_MA] = true, [mcp.CMD_ME] = true, [mcp.CMD_MN] = true }
-- reply modes of mcp_routes.lua: noreply, quiet, quiet mg
local MODE_NOREPLY, MODE_QUIET, MODE_QUIET_MG = 1, 2, 3
local new_response = shared and shared.new_response

-- The null reply for request `r`: a response object, so that quiet and noreply requests,
-- multigets and handlers above this one treat it as the miss it is.
local function null_reply(r)
    local cmd = r:command()
    local null = NULL[cmd]
    if null == nil then return "SERVER_ERROR no null reply for this command\r\n" end
    local mode = 0
    if r._nr then
        if IS_META[cmd] then
            mode = cmd == mcp.CMD_MG and MODE_QUIET_MG or MODE_QUIET
        else
            mode = MODE_NOREPLY
        end
    end
    return new_response(null[1], 0, null[2], 0, mode, 0, 0, "")
end

-- Option checks for `_conf` functions: each raises "<name>: <what>" (the library adds the
-- file, line and handler).
local function opt_check(t, key, want, default)
    local v = t[key]
    if v == nil then
        t[key] = default
        return default
    end
    local ok
    if want == "count" then
        ok = mtype(v) == "integer" and v >= 1 or (mtype(v) == "float" and v >= 1
            and v == math.floor(v))
        if ok then v = tointeger(v) end
    elseif want == "seconds" then
        ok = type(v) == "number" and v > 0
    elseif want == "boolean" then
        ok = type(v) == "boolean"
    elseif want == "string" then
        ok = type(v) == "string"
    elseif want == "integer" then
        ok = mtype(v) == "integer" or (mtype(v) == "float" and v == math.floor(v))
        if ok then v = tointeger(v) end
    elseif want == "children" then
        ok = type(v) == "table" or type(v) == "string"
    elseif want == "child" then
        ok = type(v) == "string" or (type(v) == "table" and getmetatable(v) == nil
            and v._rlib_route == true)
    else
        error("routelib: unknown option kind " .. tostring(want))
    end
    if not ok then
        local kinds = {
            count = "a whole number >= 1", seconds = "a number of seconds > 0",
            boolean = "true or false", string = "a string", integer = "a whole number",
            children = "a list of children or a pool set name", child = "one child",
        }
        error(sformat("option %s must be %s (got %s)", key, kinds[want], tostring(v)), 0)
    end
    t[key] = v
    return v
end

local function require_opt(t, key, want)
    if t[key] == nil then
        error("missing option " .. key, 0)
    end
    return opt_check(t, key, want)
end

-- One handle per child, in the order `pairs` gives (array order for a list).
local function handles(fgen, children)
    local out = {}
    for _, child in pairs(children) do
        out[#out + 1] = fgen:new_handle(child)
    end
    return out
end

routelib = {
    null_reply = null_reply,
    opt = opt_check,
    require_opt = require_opt,
    handles = handles,
}

---------------------------------------------------------------------------
-- the language: functions the user's file calls

function say(...)
    if is_verbose then print(...) end
end

function dsay(...)
    if is_debug then print(...) end
end

function settings(t)
    if type(t) ~= "table" then raise("settings{} takes a table") end
    dsay("settings:", t)
    input.settings = t
end

function pools(t)
    if type(t) ~= "table" then raise("pools{} takes a table") end
    for name, conf in pairs(t) do
        input.pools[name] = { conf = conf, where = where(2) }
    end
end

function routes(t)
    if type(t) ~= "table" then raise("routes{} takes a table") end
    if t.conf == nil then t.conf = {} end
    t._where = where(2)
    input.routes[t.tag or "default"] = t
end

function find_pools()
    raise("find_pools is not implemented")
end

function local_zone(zone)
    if zone == nil then return input.zone end
    dsay("=== local zone: ", zone)
    input.zone = zone
end

function local_zone_from_env(var)
    local zone = os.getenv(var)
    if zone == nil then
        raise("failed to get local zone from environment variable: " .. tostring(var))
    end
    dsay("=== local zone: ", zone)
    input.zone = zone
end

function local_zone_from_file(path)
    local f, err = io.open(path, "r")
    if f == nil then
        raise("failure while opening local zone file: " .. tostring(path) .. " " .. err)
    end
    local zone = f:read("l")
    f:close()
    if zone == nil then
        raise("failed to read local zone from file: " .. path)
    end
    dsay("=== local zone: ", zone)
    input.zone = zone
end

function verbose(on)
    is_verbose = on
    say("verbosity set to:", on)
end

-- memcached's copy replaces Lua's `debug` library with this function; here `debug` stays
-- the library and is also callable, so `debug(true)` and `debug.traceback` both work.
setmetatable(debug, { __call = function(_, on)
    is_debug = on
    if is_debug or is_verbose then print("debug set to:", on) end
end })

function cmdmap(t)
    if type(t) ~= "table" then raise("cmdmap{} takes a table") end
    local out = {}
    for k, v in pairs(t) do
        local code = k
        if type(k) == "string" then
            code = CMD_BY_NAME[k]
            if code == nil then raise("unknown command in cmdmap: " .. k) end
        elseif type(k) ~= "number" then
            raise("cmdmap keys must all be strings or id numbers")
        end
        if getmetatable(v) ~= HANDLER then
            raise("bad entry in route table map: cmdmap{} values must be route handlers")
        end
        out[code] = v
    end
    return setmetatable(out, CMDMAP)
end

-- The handlers known to this VM, for "unknown route handler" errors.
local registered = {}

function register_route_handlers(list)
    if type(list) ~= "table" then raise("register_route_handlers takes a list of names") end
    for _, name in pairs(list) do
        if type(name) ~= "string" then
            raise("register_route_handlers: names must be strings")
        end
        registered[name] = true
        rawset(_G, "route_" .. name, function(args)
            if args == nil then args = {} end
            if type(args) ~= "table" then
                raise("route_" .. name .. "{...} takes a table of options")
            end
            return setmetatable({ f = name, a = args, where = where(2) }, HANDLER)
        end)
    end
end

---------------------------------------------------------------------------
-- config VM: settings and pools

local SETTERS = {
    backend_connect_timeout = mcp.backend_connect_timeout,
    backend_retry_waittime = mcp.backend_retry_waittime,
    backend_read_timeout = mcp.backend_read_timeout,
    backend_failure_limit = mcp.backend_failure_limit,
    tcp_keepalive = mcp.tcp_keepalive,
    active_req_limit = mcp.active_req_limit,
    active_request_limit = mcp.active_req_limit,
    buffer_memory_limit = mcp.buffer_memory_limit,
    backend_flap_time = mcp.backend_flap_time,
    backend_flap_backoff_ramp = mcp.backend_flap_backoff_ramp,
    backend_flap_backoff_max = mcp.backend_flap_backoff_max,
    backend_use_tls = function(v)
        mcp.backend_use_tls(v)
        mcp.init_tls()
    end,
}

local function apply_settings(s, opts)
    for key, value in pairs(s) do
        local set = SETTERS[key]
        if set ~= nil then
            say("changing global setting:", key, "to:", value)
            local ok, err = pcall(set, value)
            if not ok then error("settings{} " .. key .. ": " .. tostring(err), 0) end
        elseif key == "pool_options" or key == "backend_options" then
            opts[key] = value
        end
        -- other keys are ignored, as memcached's copy ignores them
    end
end

local function merged(...)
    local out = {}
    for i = 1, select("#", ...) do
        local t = select(i, ...)
        if t ~= nil then
            for k, v in pairs(t) do out[k] = v end
        end
    end
    return out
end

-- "host:port", "host:port label", "... _down_": tokens after host:port are the label (the
-- whole token: memcached's copy keeps only its leading letters) and `_down_`.
local function backend_from_string(s, b)
    say("making backend for... " .. s)
    local first = smatch(s, "^%s*(%S+)")
    local host, port = smatch(first or "", "^(.+):(%d+)$")
    if host == nil then
        error(s .. " is an invalid backend string. must be at least host:port", 0)
    end
    b.host, b.port = host, port
    local rest = ssub(s, (sfind(s, first, 1, true)) + #first)
    for token in sgmatch(rest, "%S+") do
        if token == "_down_" then
            b.down = true
        elseif b.label == nil then
            b.label = token
        end
    end
end

local function make_backend(entry, opts)
    local b = merged({ port = "11211" }, opts)
    if type(entry) == "table" then
        for k, v in pairs(entry) do b[k] = v end
        if b.host == nil then error("host missing from backend entry", 0) end
    elseif type(entry) == "string" then
        backend_from_string(entry, b)
    else
        error("a backend must be a \"host:port\" string or a table, not " .. type(entry), 0)
    end
    if b.label == nil then b.label = b.host .. ":" .. b.port end
    if b.tls then mcp.init_tls() end
    return mcp.backend(b)
end

local function make_pool(conf, opts)
    if type(conf) ~= "table" then error("a pool must be a table", 0) end
    if type(conf.backends) ~= "table" then error("a pool needs a backends list", 0) end
    local popts = merged(opts.pool_options, conf.options)
    local bopts = merged(opts.backend_options, conf.backend_options)
    local list = {}
    -- (pairs, as memcached's copy: a list is taken in order)
    for _, entry in pairs(conf.backends) do
        list[#list + 1] = make_backend(entry, bopts)
    end
    return mcp.pool(list, popts)
end

local function is_set_name(name)
    return type(name) == "string" and sfind(name, "^set_") ~= nil
end

local function build_pools(declared, opts)
    local out = {}
    for name, d in pairs(declared) do
        if name == "internal" then
            error(d.where .. ": pool name 'internal' is reserved, please use another name", 0)
        end
        local ok, err = pcall(function()
            if is_set_name(name) then
                if type(d.conf) ~= "table" then error("a pool set must be a table", 0) end
                local set = {}
                for zone, conf in pairs(d.conf) do
                    dsay("making pool:", name, zone)
                    local zok, zerr = pcall(make_pool, conf, opts)
                    if not zok then error("zone " .. tostring(zone) .. ": " .. zerr, 0) end
                    set[zone] = zok and zerr
                end
                out[name] = set
            else
                dsay("making pool:", name)
                out[name] = make_pool(d.conf, opts)
            end
        end)
        if not ok then error(sformat("%s: pool %s: %s", d.where, name, tostring(err)), 0) end
    end
    return out
end

---------------------------------------------------------------------------
-- children: names to pools (both VMs)

-- The pool, pool set copy or internal handler a child name means, or nil and why not.
-- "set_<set>_<zone>" is one zone of a set; set names may contain "_" (memcached's copy
-- matches the set part with `set_%w+`, so it cannot reach them).
local function lookup(all, name, internal)
    if name == "internal" then return internal end
    if all[name] ~= nil then
        if is_set_name(name) then
            local copy = {}
            for k, v in pairs(all[name]) do copy[k] = v end
            return copy
        end
        return all[name]
    end
    if is_set_name(name) then
        local best
        for set in pairs(all) do
            if is_set_name(set) and ssub(name, 1, #set + 1) == set .. "_"
                and (best == nil or #set > #best) then
                best = set
            end
        end
        if best == nil then return nil, "no pool set matching: " .. name end
        local pool = all[best][ssub(name, #best + 2)]
        if pool == nil then return nil, "no pool set zone matching: " .. name end
        return pool
    end
    return nil, "no pool matching: " .. name
end

local function is_child_key(k)
    return type(k) == "string" and sfind(k, "^child") ~= nil
end

---------------------------------------------------------------------------
-- config VM: stat ids (spec v2 11.9)

local stats = { map = {}, old = {}, free = {}, next_id = 1 }
if type(prev_stats) == "table" then
    for id, name in pairs(prev_stats) do
        if name == "" then
            stats.free[#stats.free + 1] = id
        else
            stats.old[name] = id
        end
        if id >= stats.next_id then stats.next_id = id + 1 end
    end
    table.sort(stats.free, function(a, b) return a > b end)
end

local function stats_id(name)
    if type(name) ~= "string" then raise("stat names must be strings") end
    local id = stats.map[name] or stats.old[name]
    if id == nil then
        id = table.remove(stats.free)
        if id == nil then
            if stats.next_id >= STATS_MAX then
                error("max number of stat counters reached: " .. (STATS_MAX - 1), 0)
            end
            id = stats.next_id
            stats.next_id = id + 1
        end
    end
    if stats.map[name] == nil then
        stats.map[name] = id
        mcp.add_stat(id, name)
    end
    return id
end

-- Ids whose names this load no longer uses are blanked (dropped from `stats`) and reused.
local function stats_turnover()
    for name, id in pairs(stats.old) do
        if stats.map[name] == nil then
            mcp.add_stat(id, "")
        end
    end
end

---------------------------------------------------------------------------
-- config VM: route trees

local function fail(h, msg)
    error(sformat("%s: route_%s: %s", h.where, h.f, tostring(msg)), 0)
end

local configure

local function check_child(h, value, all)
    if type(value) == "string" then
        local found, why = lookup(all, value, true)
        if found == nil then fail(h, why) end
        return value
    elseif getmetatable(value) == HANDLER then
        return configure(value, h.ctx)
    elseif type(value) == "table" and value._rlib_route then
        return value  -- a handler written once and used in two places
    end
    fail(h, "invalid child given to route handler: " .. type(value))
end

-- Runs `_conf` for handler `h` (children first); the value that crosses to the workers.
configure = function(h, ctx)
    h.ctx = ctx
    local args = h.a
    for k, v in pairs(args) do
        if is_child_key(k) then
            if type(v) == "table" and getmetatable(v) ~= HANDLER then
                for ck, cv in pairs(v) do v[ck] = check_child(h, cv, ctx._pools) end
            else
                args[k] = check_child(h, v, ctx._pools)
            end
        end
    end
    local conf = rawget(_G, "route_" .. h.f .. "_conf")
    if type(conf) ~= "function" then fail(h, "no function route_" .. h.f .. "_conf") end
    local ok, ret = pcall(conf, args, ctx)
    if not ok then fail(h, ret) end
    if ret == nil then fail(h, "route configure function failed to return anything: " .. h.f) end
    return { f = h.f, _rlib_route = true, a = ret, where = h.where }
end

local function conf_ctx(all)
    return {
        _pools = all,
        label = function(self) return self._label end,
        cmd = function(self) return self._cmd end,
        pool = function(self, name) return all[name] end,
        local_zone = function(self) return input.zone end,
        get_stats_id = function(self, name) return stats_id(name) end,
        stats_get_id = function(self, name) return stats_id(name) end,
    }
end

local function configure_tree(tree, all)
    local ctx = conf_ctx(all)
    local out = { conf = tree.conf, tag = tree.tag }
    if tree.map ~= nil then
        out.map = {}
        for prefix, v in pairs(tree.map) do
            ctx._label = prefix
            if getmetatable(v) == CMDMAP then
                local sub = {}
                for code, h in pairs(v) do
                    ctx._cmd = code
                    sub[code] = configure(h, ctx)
                end
                out.map[prefix] = { cmdmap = sub }
            elseif getmetatable(v) == HANDLER then
                ctx._cmd = ANY
                out.map[prefix] = configure(v, ctx)
            else
                error(tree._where .. ": routes{}: unknown route map type for " .. tostring(prefix),
                    0)
            end
        end
    end
    if tree.cmap ~= nil then
        out.cmap = {}
        ctx._label = "cmdmap"
        for k, h in pairs(tree.cmap) do
            local code = type(k) == "string" and CMD_BY_NAME[k] or k
            if code == nil or type(code) ~= "number" then
                error(tree._where .. ": routes{}: unknown command in cmdmap: " .. tostring(k), 0)
            end
            if getmetatable(h) ~= HANDLER then
                error(tree._where .. ": routes{}: bad entry in route table map", 0)
            end
            ctx._cmd = code
            out.cmap[code] = configure(h, ctx)
        end
    end
    if tree.default ~= nil then
        if getmetatable(tree.default) ~= HANDLER then
            error(tree._where .. ": routes{}: default must be a route handler", 0)
        end
        ctx._label = "default"
        ctx._cmd = ANY
        out.default = configure(tree.default, ctx)
    end
    if out.map == nil and out.cmap == nil and out.default == nil then
        error(tree._where .. ": routes{}: must pass map or cmap to a router", 0)
    end
    -- `all` in a top-level cmap is the tree's default (memcached's router misfiles it).
    if out.cmap ~= nil and out.cmap[ANY] ~= nil then
        if out.default ~= nil then
            error(tree._where .. ": routes{}: cmap all and default both given", 0)
        end
        out.default, out.cmap[ANY] = out.cmap[ANY], nil
    end
    return out
end

-- A route_<name> that is not registered: an error at the user's line naming it.
local function unknown_handlers(_, k)
    if type(k) == "string" and sfind(k, "^route_") and not sfind(k, "_conf$")
        and not sfind(k, "_start$") then
        local failed = broken and broken[ssub(k, 7)]
        if failed then
            error(sformat("%s: %s: its plugin failed to load: %s", where(2), k, failed), 0)
        end
        local known = {}
        for name in pairs(registered) do known[#known + 1] = name end
        table.sort(known)
        error(sformat("%s: unknown route handler: %s (registered: %s)", where(2), k,
            table.concat(known, ", ")), 0)
    end
end

local function run_user_file(path)
    if type(path) ~= "string" then
        error("routelib needs its config file as the start argument (mcpframe serve "
            .. "--routelib FILE; memcached: -o proxy_arg=FILE)", 0)
    end
    local f, err = loadfile(path, "t")
    if f == nil then error(err, 0) end
    local G = _G
    local old = getmetatable(G)
    setmetatable(G, { __index = unknown_handlers })
    local ok, e = pcall(f)
    setmetatable(G, old)
    if not ok then error(e, 0) end
end

function mcp_config_pools()
    reset_input()
    run_user_file(mcp.start_arg)
    dsay("=== mcp_config_pools: start ===")
    local opts = {}
    if input.settings ~= nil then apply_settings(input.settings, opts) end
    local all = build_pools(input.pools, opts)
    local trees = {}
    for tag, tree in pairs(input.routes) do
        trees[tag] = configure_tree(tree, all)
    end
    if next(trees) == nil then
        error(sformat("%s: missing routes{} section", tostring(mcp.start_arg)), 0)
    end
    stats_turnover()
    dsay("=== mcp_config_pools: done ===")
    -- pw: where each pool was written (for `mcpframe check`)
    local pw = {}
    for name, d in pairs(input.pools) do pw[name] = d.where end
    local out = { r = trees, p = all, pw = pw, is_verbose = is_verbose, is_debug = is_debug }
    reset_input()
    return out
end

---------------------------------------------------------------------------
-- route VM: funcgens and routers

local function start_ctx(all, h)
    return {
        label = function(self) return self._label end,
        cmd = function(self) return self._cmd end,
        get_child = function(self, name)
            if type(name) ~= "string" then
                fail(h, "invalid child given to route handler: " .. type(name))
            end
            local found, why = lookup(all, name, mcp.internal_handler)
            if found == nil then fail(h, why) end
            return found
        end,
    }
end

-- The funcgen of handler `h` (as copied from the config VM) and of its children.
local function build(h, all, label, cmd)
    local ctx = start_ctx(all, h)
    ctx._label, ctx._cmd = label, cmd
    local args = h.a
    if type(args) == "table" then
        for k, v in pairs(args) do
            if is_child_key(k) then
                if type(v) == "table" and v._rlib_route then
                    args[k] = build(v, all, label, cmd)
                elseif type(v) == "table" then
                    for ck, cv in pairs(v) do
                        if type(cv) == "table" and cv._rlib_route then
                            v[ck] = build(cv, all, label, cmd)
                        else
                            v[ck] = ctx:get_child(cv)
                        end
                    end
                else
                    args[k] = ctx:get_child(v)
                end
            end
        end
    end
    local start = rawget(_G, "route_" .. h.f .. "_start")
    if type(start) ~= "function" then
        fail(h, "no function route_" .. h.f .. "_start in the route VM (a handler written in "
            .. "the routelib file runs only in the config VM: put it in a file given with "
            .. "--config, after routelib)")
    end
    local fgen = mcp.funcgen_new()
    local ok, err = pcall(start, args, ctx, fgen)
    if not ok then fail(h, err) end
    if not rawget(fgen, "_ready") then
        fail(h, "route_" .. h.f .. "_start did not call fgen:ready")
    end
    return fgen
end

local function make_root(tree, all)
    -- a tree with only a default needs no router: its handler is attached itself.
    if tree.map == nil and tree.cmap == nil then
        return build(tree.default, all, "default", ANY)
    end
    local conf = {}
    for k, v in pairs(tree.conf or {}) do conf[k] = v end
    if tree.default ~= nil then conf.default = build(tree.default, all, "default", ANY) end
    if tree.map ~= nil then
        conf.map = {}
        for prefix, v in pairs(tree.map) do
            if v.cmdmap ~= nil then
                local sub = {}
                for code, h in pairs(v.cmdmap) do sub[code] = build(h, all, prefix, code) end
                conf.map[prefix] = sub
            else
                conf.map[prefix] = build(v, all, prefix, ANY)
            end
        end
    end
    if tree.cmap ~= nil then
        conf.cmap = {}
        for code, h in pairs(tree.cmap) do conf.cmap[code] = build(h, all, "cmdmap", code) end
    end
    return mcp.router_new(conf)
end

function mcp_config_routes(c)
    is_verbose, is_debug = c.is_verbose, c.is_debug
    dsay("=== mcp_config_routes: start ===")
    for tag, tree in pairs(c.r) do
        local root = make_root(tree, c.p)
        if tag == "default" then
            mcp.attach(ANY, root)
        else
            mcp.attach(ANY, root, tag)
        end
    end
    dsay("=== mcp_config_routes: done ===")
end

register_route_handlers(names or {})
