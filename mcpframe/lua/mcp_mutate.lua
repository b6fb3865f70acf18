-- API v2 mutators in the route VM (spec v2 5.8): `mcp.req_mutator_new(step, ...)` and
-- `mcp.res_mutator_new(step, ...)` compile a list of steps once; `mut(dest, a1, a2, ...)`
-- renders a new request line (or response) from them into `dest`, normally an object made by
-- `rctx:request_new()` / `rctx:response_new()`. Pure Lua over the request and response objects
-- of mcp_routes.lua (state.shared); Python is asked only for the value bytes of a client
-- request that a `valcopy` step copies into a response (state.py_value, proxy/funcgens.py).
--
-- Rendering, as 1.6.45 does it: every step renders its text from its options or from the
-- argument `idx` names; each text is followed by a space, the last one becoming CRLF; a step
-- that renders nothing (a `flagcopy` whose source lacks the flag) adds no space. A step that
-- cannot use its argument makes the call return false and leaves `dest` untouched. The new
-- line is parsed, so `dest` behaves like any request or response afterwards.
--
-- Run after mcp_funcgen.lua, in the same VM, with (mcp, state).
local mcp, state = ...
local sh = state.shared

local Request, Response, parse = sh.Request, sh.Response, sh.parse
-- The token of flag byte `b` in a meta response ("" for a bare flag), or nil when absent
-- (mcp_inspect.lua's).
local res_flag = sh.res_flag
local setmetatable, getmetatable, type, select, tostring = setmetatable, getmetatable, type,
    select, tostring
local tointeger, mtype = math.tointeger, math.type
local ssub, sbyte, smatch, sfind, concat = string.sub, string.byte, string.match, string.find,
    table.concat
local getinfo = debug.getinfo

local RES_META = 101
local MAX_REQUEST = 500  -- 1.6.45's MCP_REQUEST_MAXLEN (KEY_MAX_LENGTH * 2)
local STATUS_FAILED = -1

local error = error
local function fail(msg)
    error(msg, 0)
end

---------------------------------------------------------------------------
-- reading the arguments as the C code reads them

-- lua_tolstring: strings, and numbers in Lua's own formatting; nil for anything else.
local function c_string(v)
    local tv = type(v)
    if tv == "string" then return v end
    if tv == "number" then return tostring(v) end
    return nil
end

-- What lua_type says about an argument: requests and responses are userdata there.
local NONE = {}
local function kind_of(v)
    if v == NONE then return "none" end
    local mt = getmetatable(v)
    if mt == Request then return "request" end
    if mt == Response then return "response" end
    local tv = type(v)
    if tv == "table" and type(mt) == "table" and mt.__name then return "userdata" end
    return tv
end

local function is_meta_request(r)
    local c = r._cmd
    return c ~= nil and c >= mcp.CMD_MG and c <= mcp.CMD_ME
end

local request_value = sh.request_value  -- (the value bytes a request carries, or nil)

local STORAGE = {}
for _, c in ipairs({ "CMD_MS", "CMD_SET", "CMD_ADD", "CMD_CAS", "CMD_REPLACE", "CMD_APPEND",
    "CMD_PREPEND" }) do
    STORAGE[mcp[c]] = true
end

-- A request holding a value is rendered already (1.6.45 checks its value buffer).
local function has_value(r)
    return r._value ~= nil or r._vh ~= nil or (r._h ~= 0 and STORAGE[r._cmd] == true)
end

---------------------------------------------------------------------------
-- steps: construction checks, then rendering
--
-- A step's render(step, arg, run) answers its text and the length 1.6.45 reserves for it
-- (defaults to the text's); false to render nothing; nil when it cannot use its argument.

local function check_idx(t, n)
    local idx = t.idx
    if idx == nil then fail("mutator step " .. n .. ": must provide 'idx' argument") end
    if type(idx) ~= "number" then
        fail("bad argument #-1 to '?' (number expected, got " .. type(idx) .. ")")
    end
    local i = tointeger(idx)
    if i == nil then fail("mutator step " .. n .. ": must provide 'idx' argument as an integer") end
    if i < 1 then fail("mutator step " .. n .. ": 'idx' argument must be greater than 0") end
    return i
end

-- resnull and flagcopyall: idx is optional (without it they read the destination itself).
local function optional_idx(t)
    local i = tointeger(t.idx)
    return i or 0
end

local function check_flag(t, n)
    local flag = t.flag
    if flag == nil then fail("mutator step " .. n .. ": must provide 'flag' argument") end
    flag = c_string(flag) or ""
    if #flag ~= 1 then fail("mutator step " .. n .. ": 'flag' must be a single character") end
    local b = sbyte(flag)
    if b < 65 or b > 122 then fail("mutator step " .. n .. ": 'flag' must be alphanumeric") end
    return flag, b
end

local function required_string(t, n, name)
    local v = t[name]
    if v == nil then fail("mutator step " .. n .. ": must provide '" .. name .. "' argument") end
    return c_string(v) or ""
end

local REQ, RES = 1, 2
local STEPS = {}

STEPS.cmdset = { REQ, function(t, n, step)
    step.str = required_string(t, n, "cmd")
    if #step.str > 20 then fail("mutator step " .. n .. ": 'cmd' too long") end
end, function(step)
    return step.str
end }

STEPS.cmdcopy = { REQ, function(t, n, step)
    step.idx = check_idx(t, n)
end, function(step, a)
    local k = kind_of(a)
    if k == "string" then return a end
    if k ~= "request" then return nil end
    -- [Q] the command and the space after it (1.6.45 copies up to the next token)
    a:ntokens()
    local second = a._starts[2]
    if second == nil then return sh.content(a._line) end
    return ssub(a._line, 1, second - 1)
end }

STEPS.keycopy = { REQ, function(t, n, step)
    step.idx = check_idx(t, n)
end, function(step, a)
    local k = kind_of(a)
    if k == "string" then return a end
    if k == "request" then return a._key end
    return nil
end }

STEPS.keyset = { REQ, function(t, n, step)
    step.str = required_string(t, n, "val")
    if #step.str < 1 then fail("mutator step " .. n .. ": 'val' must have nonzero length") end
end, function(step)
    return step.str
end }

local NULL_CODES = {
    [mcp.CMD_MG] = "EN", [mcp.CMD_MS] = "NS", [mcp.CMD_MD] = "NF", [mcp.CMD_MA] = "NF",
    [mcp.CMD_GET] = "END", [mcp.CMD_GAT] = "END", [mcp.CMD_GETS] = "END",
    [mcp.CMD_GATS] = "END",
    [mcp.CMD_SET] = "NOT_STORED", [mcp.CMD_CAS] = "NOT_STORED", [mcp.CMD_ADD] = "NOT_STORED",
    [mcp.CMD_REPLACE] = "NOT_STORED", [mcp.CMD_APPEND] = "NOT_STORED",
    [mcp.CMD_PREPEND] = "NOT_STORED",
    [mcp.CMD_INCR] = "NOT_FOUND", [mcp.CMD_DECR] = "NOT_FOUND", [mcp.CMD_TOUCH] = "NOT_FOUND",
    [mcp.CMD_DELETE] = "NOT_FOUND",
}

STEPS.resnull = { RES, function(t, n, step)
    step.idx = optional_idx(t)
end, function(step, a)
    if kind_of(a) ~= "request" then return nil end
    return NULL_CODES[a._cmd]
end }

STEPS.rescodeset = { RES, function(t, n, step)
    step.str = required_string(t, n, "val")
end, function(step)
    return step.str
end }

STEPS.rescodecopy = { RES, function(t, n, step)
    step.idx = check_idx(t, n)
end, function(step, a)
    local k = kind_of(a)
    if k == "string" then return a end
    if k ~= "response" or a._type ~= RES_META or a.raw == nil then return nil end
    local code = smatch(a.raw, "^[^ \r\n]*")
    if #code < 2 then return nil end
    return code
end }

local ERR_CODES = { error = "ERROR", server = "SERVER_ERROR", client = "CLIENT_ERROR" }

STEPS.reserr = { RES, function(t, n, step)
    if t.code == nil then fail("mutator step " .. n .. ": must provide 'code' argument") end
    local code = ERR_CODES[c_string(t.code)]
    if code == nil then
        fail("mutator step " .. n .. ": code must be 'error', server', or 'client'")  -- (sic)
    end
    if t.msg ~= nil then
        local msg = c_string(t.msg) or ""
        if #msg < 1 then
            fail("mutator step " .. n .. ": 'msg' must be a nonzero length string")
        end
        code = code .. " " .. msg
    end
    -- [R] a bare code is allowed (1.6.45 fails the constructor with "memory not filled")
    step.str = code
end, function(step)
    return step.str
end }

STEPS.flagset = { REQ + RES, function(t, n, step)
    step.flag = check_flag(t, n)
    local v = t.val
    if v ~= nil and type(v) ~= "string" and type(v) ~= "number" then
        fail("mutator step " .. n .. ": unsupported type for 'val'")
    end
    step.str = step.flag .. (c_string(v) or "")
end, function(step)
    return step.str
end }

STEPS.flagcopy = { REQ + RES, function(t, n, step)
    step.flag, step.fb = check_flag(t, n)
    step.idx = check_idx(t, n)
end, function(step, a)
    local k = kind_of(a)
    local flag = step.flag
    if k == "nil" then return false end
    if k == "boolean" then return a and flag or false end
    if k == "string" then return flag .. a end
    if k == "request" then
        if not is_meta_request(a) then return nil end
        local present, tok = a:flag_token(flag)
        if not present then return false end
        return flag .. (tok or "")
    end
    if k == "response" then
        if a._type ~= RES_META or a.raw == nil then return nil end
        local tok = res_flag(a, step.fb)
        if tok == nil then return false end
        return flag .. tok
    end
    return nil
end }

STEPS.flagcopyall = { REQ + RES, function(t, n, step)
    step.idx = optional_idx(t)
end, function(step, a)
    local k = kind_of(a)
    if k == "string" then return a end
    if k ~= "response" or a._type ~= RES_META or a.raw == nil then return nil end
    return a:line()  -- (nil without flags: 1.6.45 fails too)
end }

STEPS.valcopy = { REQ + RES, function(t, n, step)
    step.idx = check_idx(t, n)
end, function(step, a, run)
    local k = kind_of(a)
    local v
    if k == "string" then
        v = a
    elseif k == "request" then
        v = request_value(a)
    end
    if v == nil or #v < 2 or ssub(v, -2) ~= "\r\n" then return nil end
    run.value = v
    -- (1.6.45 reserves the digits of the length with its CRLF)
    return tostring(#v - 2), #tostring(#v)
end }

---------------------------------------------------------------------------
-- the response line parser (memcached's mcmc_parse_buf): type, code, status, value length;
-- nil when it does not parse

local MCMC = { ["END"] = mcp.MCMC_CODE_END, OK = mcp.MCMC_CODE_OK }
local TWO = {
    EN = mcp.MCMC_CODE_END, EX = mcp.MCMC_CODE_EXISTS, HD = mcp.MCMC_CODE_OK,
    MN = mcp.MCMC_CODE_NOP, ME = mcp.MCMC_CODE_OK, NF = mcp.MCMC_CODE_NOT_FOUND,
    NS = mcp.MCMC_CODE_NOT_STORED,
}
local GENERIC = {
    STORED = mcp.MCMC_CODE_STORED, EXISTS = mcp.MCMC_CODE_EXISTS,
    DELETED = mcp.MCMC_CODE_DELETED, TOUCHED = mcp.MCMC_CODE_TOUCHED,
    NOT_FOUND = mcp.MCMC_CODE_NOT_FOUND, NOT_STORED = mcp.MCMC_CODE_NOT_STORED,
}
local RES_GET, RES_STAT, RES_GENERIC, RES_END, RES_VERSION, RES_NUMERIC, RES_ERRMSG =
    100, 102, 104, 105, 106, 107, 108

local function parse_response(line)
    local word = smatch(line, "^[^ \r\n]*")
    if sfind(line, "^%d") then return RES_NUMERIC, MCMC.OK, 0, 0 end
    local n = #word
    if n < 2 then return nil end
    if n == 2 then
        if word == "OK" then return RES_GENERIC, MCMC.OK, 0, 0 end
        if word == "VA" then
            local size = tonumber(smatch(line, "^VA +(%d+)"))
            if size == nil or size >= 0xFFFFFFFD then return nil end
            return RES_META, MCMC.OK, 0, size
        end
        local code = TWO[word]
        if code == nil then return RES_META, 1, STATUS_FAILED, 0 end  -- unknown meta code
        return RES_META, code, 0, 0
    end
    if GENERIC[word] then return RES_GENERIC, GENERIC[word], 0, 0 end
    if word == "END" then return RES_END, MCMC.END, 0, 0 end
    if word == "VERSION" then return RES_VERSION, mcp.MCMC_CODE_VERSION, 0, 0 end
    if word == "STAT" then return RES_STAT, MCMC.OK, 0, 0 end
    if word == "VALUE" then
        local size = tonumber(smatch(line, "^VALUE +[^ ]+ +[^ ]+ +(%d+)"))
        if size == nil then return nil end
        return RES_GET, MCMC.OK, 0, size
    end
    if word == "ERROR" then return RES_ERRMSG, mcp.MCMC_CODE_ERROR, STATUS_FAILED, 0 end
    if n >= 12 and ssub(word, 1, 12) == "SERVER_ERROR" then
        return RES_ERRMSG, mcp.MCMC_CODE_SERVER_ERROR, STATUS_FAILED, 0
    end
    if n >= 12 and ssub(word, 1, 12) == "CLIENT_ERROR" then
        return RES_ERRMSG, mcp.MCMC_CODE_CLIENT_ERROR, STATUS_FAILED, 0
    end
    return nil
end

---------------------------------------------------------------------------
-- mutators

local MUTATOR = { __name = "mcp.mutator" }

local function called_as()
    local info = getinfo(3, "n")  -- (the mutator's caller, from within its __call)
    return info and info.name or "?"
end

local function render(self, given, dest, ...)
    local want = self.kind == REQ and Request or Response
    local dk = kind_of(dest)
    if dk ~= "request" and dk ~= "response" and dk ~= "userdata" then
        error("bad argument #2 to '" .. called_as() .. "' (userdata expected, got "
            .. (given and type(dest) or "no value") .. ")", 3)
    end
    if getmetatable(dest) ~= want then
        error("bad argument #2 to '" .. called_as() .. "' (invalid argument to mutator object)", 3)
    end
    local nargs = select("#", ...)
    local steps = self.steps
    local parts, np = {}, 0
    local total = #steps + 2
    local run = {}
    for i = 1, #steps do
        local step = steps[i]
        local a
        local idx = step.idx
        if idx < 0 then
            a = nil  -- (a step that reads no argument)
        elseif idx == 0 then
            a = dest
        elseif idx <= nargs then
            a = (select(idx, ...))
        else
            a = NONE
        end
        local out, len = step.render(step, a, run)
        if out == nil then return false end
        if out then
            np = np + 1
            parts[np] = out
            total = total + (len or #out)
        end
    end
    -- [R] nothing rendered: false (1.6.45 writes before its buffer)
    if np == 0 then return false end
    local line = concat(parts, " ") .. "\r\n"
    local value = run.value
    if self.kind == REQ then
        if has_value(dest) then fail("mutator: request has already been rendered") end
        if total > MAX_REQUEST then fail("mutator: new request is too long") end
        if not parse(dest, line) then fail("mutator: failed to parse new request") end
        dest._value, dest._vh = value, nil
    else
        if dest.raw ~= nil then fail("mutator: result has already been rendered") end
        local rtype, code, status, vlen = parse_response(line)
        if rtype == nil then fail("mutator: failed to parse new result") end
        dest.raw = value and line .. value or line
        dest.status, dest._code, dest._type, dest._vlen = status, code, rtype, vlen
        dest._mode, dest._elapsed = nil, 0
    end
end

MUTATOR.__call = function(self, ...)
    -- (returns nothing on success, as 1.6.45)
    if render(self, select("#", ...) > 0, ...) == false then return false end
end

local function mutator_new(kind, ...)
    local steps = {}
    local n = select("#", ...)
    for i = 1, n do
        local t = select(i, ...)
        if type(t) ~= "table" then
            local info = getinfo(2, "n")
            error("bad argument #" .. i .. " to '" .. (info and info.name or "?")
                .. "' (table expected, got " .. type(t) .. ")", 3)
        end
        -- [R] a step without `t` is refused (1.6.45 accepts it, then crashes running it)
        local def = type(t.t) == "string" and STEPS[t.t] or nil
        if def == nil or def[1] & kind == 0 then
            fail("mutator step " .. i .. ": step incompatible with mutator type")
        end
        local step = { render = def[3], idx = -1 }
        def[2](t, i, step)
        steps[i] = step
    end
    if n == 0 then fail("mutator failed to initialize, no steps given") end
    return setmetatable({ steps = steps, kind = kind }, MUTATOR)
end

-- (not tail calls: error levels and names count these frames)
function mcp.req_mutator_new(...)
    local m = mutator_new(REQ, ...)
    return m
end

function mcp.res_mutator_new(...)
    local m = mutator_new(RES, ...)
    return m
end
