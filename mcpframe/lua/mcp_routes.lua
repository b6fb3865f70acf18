-- The route (worker) VM's half of the `mcp` library, and the driver that runs routes.
--
-- Performance shape (DESIGN.md, "Running routes"): request and response objects are Lua
-- tables sharing one metatable each, so `r:key()` or `res:ok()` never cross into Python.
-- Python calls the driver twice per request: `start` (build `r`, run the route until it
-- finishes or waits on a backend) and `resume` (hand it the backend's answer). A route that
-- calls a pool yields to the driver with a private marker; the driver returns the pool id and
-- the request to Python, which queues the bytes on a backend and later calls `resume`.
--
-- Called as a chunk with (mcp, state). Returns the driver functions.
local mcp, state = ...

local co_create, co_resume, co_status, co_yield =
    coroutine.create, coroutine.resume, coroutine.status, coroutine.yield
local traceback = debug.traceback
local setmetatable, getmetatable, type, rawget = setmetatable, getmetatable, type, rawget
local sfind, ssub, sbyte = string.find, string.sub, string.byte

-- Private yield marker: only our own functions yield it, so a route calling
-- coroutine.yield() itself is caught and treated as a Lua failure.
local Y = {}

-- What the driver returns to Python (first value).
local YIELD_POOL, YIELD_INTERNAL, YIELD_AWAIT = 1, 2, 3
local DONE_RES, DONE_STR, DONE_BAD, DONE_ERR = 10, 11, 12, 13
state.codes = {
    YIELD_POOL = YIELD_POOL, YIELD_INTERNAL = YIELD_INTERNAL, YIELD_AWAIT = YIELD_AWAIT,
    DONE_RES = DONE_RES, DONE_STR = DONE_STR, DONE_BAD = DONE_BAD, DONE_ERR = DONE_ERR,
}

local CMD_GAT, CMD_GATS = mcp.CMD_GAT, mcp.CMD_GATS
local MCMC_CODE_END = mcp.MCMC_CODE_END

---------------------------------------------------------------------------
-- request objects

local Request = {}
Request.__index = Request
Request.__name = "mcp.request"
state.REQUEST_MT = Request

function Request:command()
    return self._cmd
end

function Request:key()
    return self._key
end

-- Token positions are computed lazily, only when a route asks for them.
local MAX_TOKENS = 24

local function content(self)
    local line = self._line
    local n = #line
    if sbyte(line, n) == 10 then n = n - 1 end
    if n > 0 and sbyte(line, n) == 13 then n = n - 1 end
    return ssub(line, 1, n)
end

local function tokenize(self)
    local toks = self._toks
    if toks then return toks end
    toks = {}
    local starts = {}
    local s = content(self)
    local pos = 1
    local stop = #s + 1
    while #toks < MAX_TOKENS do
        local a, b = sfind(s, "[^ ]+", pos)
        if not a then break end
        toks[#toks + 1] = ssub(s, a, b)
        starts[#starts + 1] = a
        pos = b + 1
        stop = b + 1
    end
    if not sfind(s, "[^ ]", pos) then stop = #s + 1 end
    self._toks = toks
    self._starts = starts
    self._stop = stop  -- where indexing ended (spec 3.3 `e`), 1-based exclusive
    return toks
end

local function keypos(self)
    local c = self._cmd
    if c == CMD_GAT or c == CMD_GATS then return 3 end
    return 2
end

local function reparse(self, line)
    self._line = line
    self._toks = nil
    self._edited = true
    local toks = tokenize(self)
    local kp = keypos(self)
    if self._cmd <= 20 then
        self._key = toks[kp] or ""
    end
end

function Request:ntokens()
    return #tokenize(self)
end

local function edit_token(self, n, s)
    local toks = tokenize(self)
    local starts, stop = self._starts, self._stop
    local body = content(self)
    if #self._line + #s > 500 then
        error("token(): request malformed after edit", 3)
    end
    local out = ssub(body, 1, starts[n] - 1) .. s
    if n < #toks then
        if s ~= "" then out = out .. " " end
        out = out .. ssub(body, starts[n + 1], stop - 1)
    end
    local old = self._line
    reparse(self, out .. "\r\n")
    if self._cmd <= 20 and (self._key == nil or self._key == "") and n == keypos(self) then
        reparse(self, old)
        error("token(): request malformed after edit", 3)
    end
end

function Request:token(n, ...)
    if type(n) ~= "number" then
        error("bad argument #1 to 'token' (number expected, got " .. type(n) .. ")", 2)
    end
    local toks = tokenize(self)
    if n < 1 or n > #toks then return nil end
    if select("#", ...) == 0 then
        return toks[n]
    end
    local s = ...
    if type(s) == "number" then s = tostring(s) end
    if s ~= nil and type(s) ~= "string" then
        error("bad argument #2 to 'token' (string expected, got " .. type(s) .. ")", 2)
    end
    edit_token(self, n, s or "")
end

local function trimkey(self, n, left, fname)
    n = math.tointeger(n)
    local key = self._key
    if n == nil or n < 0 or n > #key then
        error(fname .. " cannot zero out key", 3)
    end
    local toks = tokenize(self)
    local kp = keypos(self)
    local a = self._starts[kp]
    if a == nil then error(fname .. " cannot zero out key", 3) end
    local line = self._line
    local pad = string.rep(" ", n)
    if left then
        line = ssub(line, 1, a - 1) .. pad .. ssub(line, a + n)
        self._key = ssub(key, n + 1)
    else
        local e = a + #key
        line = ssub(line, 1, e - n - 1) .. pad .. ssub(line, e)
        self._key = ssub(key, 1, #key - n)
    end
    local k = self._key
    self._line = line
    self._toks = nil
    self._edited = true
    self._key = k
    return n
end

function Request:ltrimkey(n)
    return trimkey(self, n, true, "ltrimkey")
end

function Request:rtrimkey(n)
    return trimkey(self, n, false, "rtrimkey")
end

local function check_flag(c)
    if type(c) ~= "string" or #c ~= 1 then
        error("has_flag(): meta flag must be a single character", 3)
    end
    local b = sbyte(c)
    if b < 65 or b > 122 then
        error("has_flag(): invalid flag, must be A-Z,a-z", 3)
    end
end

local function is_meta(self)
    return self._cmd <= 6
end

function Request:has_flag(c)
    check_flag(c)
    if not is_meta(self) then return false end
    local toks = tokenize(self)
    local first = (self._cmd == mcp.CMD_MS) and 4 or 3
    for i = first, #toks do
        if ssub(toks[i], 1, 1) == c then return true end
    end
    return false
end

function Request:flag_token(c)
    check_flag(c)
    if not is_meta(self) then return false end
    local toks = tokenize(self)
    local first = (self._cmd == mcp.CMD_MS) and 4 or 3
    for i = first, #toks do
        local t = toks[i]
        if ssub(t, 1, 1) == c then
            if #t > 1 then return true, ssub(t, 2) end
            return true
        end
    end
    return false
end

---------------------------------------------------------------------------
-- response objects

local Response = {}
Response.__index = Response
Response.__name = "mcp.response"
state.RESPONSE_MT = Response

function Response:ok()
    return self.status == 0
end

function Response:hit()
    return self.status == 0 and self._code ~= MCMC_CODE_END
end

function Response:code()
    return self._code
end

function Response:vlen()
    return self._vlen
end

function Response:elapsed()
    return self._elapsed
end

function Response:line()
    -- The flags part of a meta reply: the text after the two-letter code (after `VA <n>`
    -- for VA), without the line terminator; nil when there is none.
    local raw = self.raw
    local eol = sfind(raw, "\r\n", 1, true)
    if not eol then return nil end
    local head = ssub(raw, 1, eol - 1)
    if ssub(head, 3, 3) ~= " " and #head ~= 2 then return nil end
    local rest
    if ssub(head, 1, 3) == "VA " then
        local a = sfind(head, " ", 4, true)
        if not a then return nil end
        rest = ssub(head, a + 1)
    else
        rest = ssub(head, 4)
    end
    if rest == "" then return nil end
    return rest
end

---------------------------------------------------------------------------
-- mcp functions of the route VM

local hooks = state.hooks  -- hooks[tag][cmd] = function; tag "" is untagged
local attachable = state.attachable  -- cmd -> true for every valid single command
local CMD_ANY, CMD_ANY_STORAGE, CMD_MN = mcp.CMD_ANY, mcp.CMD_ANY_STORAGE, mcp.CMD_MN

function mcp.attach(cmd, fn, tag)
    cmd = math.tointeger(cmd)
    if type(fn) ~= "function" then
        error("Must pass a function to mcp.attach", 2)
    end
    local t = ""
    if tag ~= nil then
        if type(tag) == "number" then tag = tostring(tag) end
        if type(tag) ~= "string" then
            error("mcp.attach: tag must be a string", 2)
        end
        if #tag < 1 or #tag > 8 then
            error("mcp.attach: tag must be 1 to 8 characters", 2)
        end
        t = tag
    end
    local slot = hooks[t]
    if slot == nil then
        slot = {}
        hooks[t] = slot
    end
    if cmd == CMD_ANY or cmd == CMD_ANY_STORAGE then
        local last = (cmd == CMD_ANY) and mcp.CMD_CACHE_MEMLIMIT or mcp.CMD_PREPEND
        for c = 1, last do
            if c ~= CMD_MN then slot[c] = fn end
        end
    elseif cmd ~= nil and attachable[cmd] then
        if cmd ~= CMD_MN then slot[cmd] = fn end
    else
        error("mcp.attach: invalid command type", 2)
    end
end

local POOL_PROXY = { __name = "mcp.pool_proxy" }
state.POOL_PROXY_MT = POOL_PROXY

local function check_request(r, fname)
    if getmetatable(r) ~= Request then
        error("bad argument to '" .. fname .. "' (mcp.request expected, got " .. type(r) .. ")", 3)
    end
end

-- Python resumes a waiting route with an error text instead of a response when the call
-- could not be made (a selector that raised, an out-of-bounds index...): raise it here, in
-- the route, as memcached raises it from the C function.
local function checked(res)
    if type(res) == "string" then error(res, 3) end
    return res
end

POOL_PROXY.__call = function(pool, ...)
    local n = select("#", ...)
    local r = (select(n > 0 and n or 1, ...))
    check_request(r, "pool")
    if r._cmd > 20 then
        error("cannot route commands without key", 2)
    end
    return checked(co_yield(Y, YIELD_POOL, pool._id, r))
end

function mcp.internal(r)
    check_request(r, "internal")
    return checked(co_yield(Y, YIELD_INTERNAL, 0, r))
end

local AWAIT_GOOD, AWAIT_BACKGROUND = mcp.AWAIT_GOOD, mcp.AWAIT_BACKGROUND

local function await(fname, logerrors, r, pools, wait_for, mode, detail)
    check_request(r, fname)
    if type(pools) ~= "table" then
        error("bad argument #2 to '" .. fname .. "' (table expected, got " .. type(pools) .. ")", 3)
    end
    local ids = {}
    for _, p in pairs(pools) do
        if getmetatable(p) ~= POOL_PROXY then
            error("bad argument #2 to '" .. fname .. "' (mcp.pool_proxy expected, got "
                .. type(p) .. ")", 3)
        end
        ids[#ids + 1] = p._id
    end
    if #ids == 0 then
        error("mcp.await arguments must have at least one pool", 3)
    end
    -- [R] arguments are taken by position; nil means the default.
    if wait_for == nil then wait_for = 0 end
    if type(wait_for) ~= "number" then
        error("bad argument #3 to '" .. fname .. "' (number expected, got " .. type(wait_for) .. ")", 3)
    end
    if mode == nil then mode = AWAIT_GOOD end
    mode = math.tointeger(mode)
    if mode == nil or mode < AWAIT_GOOD or mode > AWAIT_BACKGROUND then
        error("invalid type argument tp mcp.await", 3)
    end
    if detail ~= nil and type(detail) ~= "string" then
        error("bad argument #5 to '" .. fname .. "' (string expected, got " .. type(detail) .. ")", 3)
    end
    if r._cmd > 20 then
        error("cannot route commands without key", 3)
    end
    return checked(co_yield(Y, YIELD_AWAIT, table.concat(ids, ","), r,
        math.floor(wait_for), mode, detail or "", logerrors))
end

function mcp.await(r, pools, wait_for, mode)
    return await("await", false, r, pools, wait_for, mode, nil)
end

function mcp.await_logerrors(r, pools, wait_for, mode, detail)
    return await("await_logerrors", true, r, pools, wait_for, mode, detail)
end

local command_codes = state.command_codes

-- The data block of a response (bytes + CRLF), for mcp.request(line, res).
local function response_value(res)
    local vlen = res._vlen or 0
    if not (sfind(res.raw, "^VA ") or sfind(res.raw, "^VALUE ")) then
        return nil
    end
    local eol = sfind(res.raw, "\r\n", 1, true)
    if not eol then return nil end
    return ssub(res.raw, eol + 2, eol + 3 + vlen)
end

function mcp.request(line, value)
    if type(line) ~= "string" then
        error("bad argument #1 to 'request' (string expected, got " .. type(line) .. ")", 2)
    end
    local n = #line
    -- [R] a line must end with its newline and stay under the client line limit.
    if n < 3 or n > 500 or sbyte(line, n) ~= 10 then
        error("failed to parse request", 2)
    end
    local word = ssub(line, 1, (sfind(line, "[ \r\n]") or n + 1) - 1)
    local code = command_codes[word]
    if code == nil then
        error("failed to parse request", 2)
    end
    local r = setmetatable({ _h = 0, _cmd = code, _line = line, _edited = true, _key = "" }, Request)
    if code <= 20 then
        local toks = tokenize(r)
        local key = toks[keypos(r)]
        if key == nil or #key > 250 then
            error("failed to parse request", 2)
        end
        r._key = key
    end
    if value ~= nil then
        local mt = getmetatable(value)
        if type(value) == "string" then
            if ssub(value, -2) ~= "\r\n" then
                error("value passed to mcp.request must end with \\r\\n", 2)
            end
            r._value = value
        elseif mt == Response then
            r._value = response_value(value)
        elseif mt == Request then
            if value._value ~= nil then
                r._value = value._value
            elseif value._vh ~= nil then
                r._vh = value._vh
            elseif value._h ~= 0 then
                r._vh = value._h
            end
        end
    end
    return r
end

-- Logging: the Python side is only called when someone listens (state.want_* are kept up
-- to date by Python when watchers or loggers come and go).
local py_log, py_log_req = state.py_log, state.py_log_req

function mcp.log(msg)
    local t = type(msg)
    if t ~= "string" and t ~= "number" then
        error("bad argument #1 to 'log' (string expected, got " .. t .. ")", 2)
    end
    if state.want_user then
        py_log(tostring(msg))
    end
end

local function log_req(r, res, detail)
    local line = ssub(content(r), 1, 300)
    if getmetatable(res) == Response then
        py_log_req(line, res._elapsed or 0, res._type or 0, res._code or 0, res.status,
            res._be or "", detail or "")
    else
        py_log_req(line, 0, 0, 0, 0, ":", detail or "")
    end
end

function mcp.log_req(r, res, detail)
    if not state.want_reqs then return end
    check_request(r, "log_req")
    log_req(r, res, detail)
end

function mcp.log_reqsample(ms, rate, allerrors, r, res, detail)
    if not state.want_reqs then return end
    ms = math.tointeger(ms)
    rate = math.tointeger(rate)
    if ms == nil or rate == nil then
        error("bad argument to 'log_reqsample' (integer expected)", 2)
    end
    check_request(r, "log_reqsample")
    local isres = getmetatable(res) == Response
    if allerrors and isres and res.status ~= 0 then
        return log_req(r, res, detail)
    end
    if ms > 0 and isres and (res._elapsed or 0) > ms * 1000 then
        return log_req(r, res, detail)
    end
    if rate > 0 and math.random(rate) == 1 then
        return log_req(r, res, detail)
    end
end

-- User stats live in this VM; Python reads the counters for `stats proxy`.
local ustats = state.ustats
local ustat_slots = state.ustat_slots

function mcp.stat(index, delta)
    local i = math.tointeger(index)
    local d = math.tointeger(delta)
    if i == nil or d == nil then
        error("bad argument to 'stat' (integer expected)", 2)
    end
    if ustat_slots == 0 then
        error("no stats counters initialized", 2)
    end
    if i < 1 or i > ustat_slots then
        error("stat index out of range", 2)
    end
    ustats[i] = (ustats[i] or 0) + d
end

---------------------------------------------------------------------------
-- the driver

local waiting = {}  -- route handle -> suspended coroutine

-- Turns what a coroutine did into the driver's answer to Python.
local function step(handle, co, ok, a, kind, id, r, x1, x2, x3, x4)
    if not ok then
        return DONE_ERR, traceback(co, tostring(a))
    end
    if co_status(co) == "dead" then
        if getmetatable(a) == Response then
            return DONE_RES, a.raw, a.status, a._code, a._mode
        elseif type(a) == "string" then
            return DONE_STR, a
        end
        return DONE_BAD
    end
    if a ~= Y then
        return DONE_ERR, traceback(co, "route yielded outside of a pool call, mcp.await or mcp.internal")
    end
    waiting[handle] = co
    -- The request travels as its handle when Python holds its bytes unchanged (the common
    -- case, three values); otherwise with its current line, and value for requests built
    -- in Lua (or the handle of the request whose value it borrows).
    local h, edited = r._h, r._edited
    if kind == YIELD_POOL and not edited then
        return kind, id, h
    end
    return kind, id, h, edited and r._line or nil, r._value, r._vh, x1, x2, x3, x4
end

local function start(handle, hook, cmd, line, key)
    local r = setmetatable({ _h = handle, _cmd = cmd, _line = line, _key = key }, Request)
    local co = co_create(hook)
    return step(handle, co, co_resume(co, r))
end

local function resume(handle, raw, status, code, vlen, mode, elapsed, rtype, be)
    local co = waiting[handle]
    waiting[handle] = nil
    local res = setmetatable({ raw = raw, status = status, _code = code, _vlen = vlen,
        _mode = mode, _elapsed = elapsed, _type = rtype, _be = be }, Response)
    return step(handle, co, co_resume(co, res))
end

-- mcp.await's answer: responses flattened, eight values each, in arrival order.
local function resume_await(handle, ...)
    local co = waiting[handle]
    waiting[handle] = nil
    local t = {}
    local n = select("#", ...)
    for i = 1, n, 8 do
        local raw, status, code, vlen, mode, elapsed, rtype, be = select(i, ...)
        t[#t + 1] = setmetatable({ raw = raw, status = status, _code = code, _vlen = vlen,
            _mode = mode, _elapsed = elapsed, _type = rtype, _be = be }, Response)
    end
    return step(handle, co, co_resume(co, t))
end

local function fail(handle, msg)
    local co = waiting[handle]
    waiting[handle] = nil
    return step(handle, co, co_resume(co, msg))
end

return start, resume, fail, resume_await
