-- API v2 inspectors in the route VM (spec v2 5.7): `mcp.req_inspector_new(step, ...)` and
-- `mcp.res_inspector_new(step, ...)` build a list of read-only checks once; calling the
-- inspector on a request (or a response) returns every step's results, in step order.
-- Pure Lua over the request and response objects of mcp_routes.lua (state.shared).
--
-- Run after mcp_funcgen.lua, in the same VM, with (mcp, state).
local mcp, state = ...
local sh = state.shared

local Request, Response = sh.Request, sh.Response
local setmetatable, getmetatable, type, select, tostring = setmetatable, getmetatable, type,
    select, tostring
local tointeger = math.tointeger
local ssub, sbyte, sgmatch = string.sub, string.byte, string.gmatch


local RES_META = 101  -- the response type of meta replies (protocol/commands.py RES_META)

local error = error
local function fail(msg)
    error(msg, 0)
end

---------------------------------------------------------------------------
-- reading the objects

-- The token of meta flag byte `b` in a response's flags: the token after the flag ("" for a
-- bare flag), or nil when the flag is absent.
local function res_flag(res, b)
    local flags = res:line()
    if flags == nil then return nil end
    for tok in sgmatch(flags, "[^ ]+") do
        if sbyte(tok) == b then return ssub(tok, 2) end
    end
    return nil
end
sh.res_flag = res_flag  -- (mutators read flags the same way: mcp_mutate.lua)

local function req_flag(r, c)
    local present, tok = r:flag_token(c)
    if not present then return nil end
    return tok or ""
end

-- The token of the step's flag in `obj` (request or response), or nil when absent or when a
-- response is not a meta reply.
local function flag_of(step, obj, is_req)
    if is_req then return req_flag(obj, step.flag) end
    if obj._type ~= RES_META then return nil end
    return res_flag(obj, step.fb)
end

local int64 = sh.int64  -- (as r:token_int reads tokens)

---------------------------------------------------------------------------
-- steps: construction checks, then what a step returns

local function check_flag(t, n)
    local flag = t.flag
    if flag == nil then fail("inspector step " .. n .. ": must provide 'flag' argument") end
    flag = tostring(flag)
    if #flag ~= 1 then
        fail("inspector step " .. n .. ": 'flag' must be a single character")
    end
    local b = sbyte(flag)
    if b < 65 or b > 122 then
        fail("inspect step " .. n .. ": 'flag' must be alphanumeric")  -- (sic, 1.6.45)
    end
    return flag, b
end

local function check_str(t, n)
    local str = t.str
    if str == nil then fail("inspector step " .. n .. ": must provide 'str' argument") end
    str = tostring(str)
    if #str < 1 then fail("inspector step " .. n .. ": 'str' must have nonzero length") end
    return str
end

local REQ, RES = 1, 2

local STEPS = {}

STEPS.sepkey = { REQ, function(t, n, step)
    local sep = t.sep
    if sep ~= nil then
        sep = tostring(sep)
        if #sep ~= 1 then fail("inspector step " .. n .. ": separator must be one character") end
    end
    if t.pos ~= nil and type(t.pos) ~= "number" then
        fail("bad argument #" .. n .. " to 'inspector' (number expected, got " .. type(t.pos) .. ")")
    end
    if t.map ~= nil and type(t.map) ~= "table" then
        fail("bad argument #" .. n .. " to 'inspector' (table expected, got " .. type(t.map) .. ")")
    end
    step.sep, step.pos, step.map = sep or "/", tointeger(t.pos or 1) or 1, t.map
end, function(step, r)
    local key, sep = r._key, step.sep
    local n, pos = #key, step.pos
    local i = 1
    while i <= n and ssub(key, i, i) == sep do i = i + 1 end  -- leading separators
    local token = i
    local tlen = 0
    while i <= n do
        if ssub(key, i, i) == sep then
            pos = pos - 1
            if pos == 0 then
                tlen = i - token
                break
            end
            token = i + 1
        end
        i = i + 1
    end
    if pos == 1 then tlen = i - token end  -- the last token runs to the end of the key
    if tlen <= 0 then return nil end
    local tok = ssub(key, token, token + tlen - 1)
    if step.map then return step.map[tok] end
    return tok
end }

STEPS.keybegin = { REQ, function(t, n, step)
    step.str = check_str(t, n)
end, function(step, r)
    local key, str = r._key, step.str
    return #str < #key and ssub(key, 1, #str) == str
end }

STEPS.keyis = { REQ, function(t, n, step)
    step.str = check_str(t, n)
end, function(step, r)
    return r._key == step.str
end }

STEPS.hasflag = { REQ + RES, function(t, n, step)
    step.flag, step.fb = check_flag(t, n)
end, function(step, obj, is_req)
    if is_req then return req_flag(obj, step.flag) ~= nil end
    if obj._type ~= RES_META then fail("inspector error: response is not meta protocol") end
    return res_flag(obj, step.fb) ~= nil
end }

STEPS.flagtoken = { REQ + RES, function(t, n, step)
    step.flag, step.fb = check_flag(t, n)
end, function(step, obj, is_req)
    local tok = flag_of(step, obj, is_req)
    if tok == nil then return false, nil end
    return true, tok
end }

STEPS.flagint = { REQ + RES, function(t, n, step)
    step.flag, step.fb = check_flag(t, n)
end, function(step, obj, is_req)
    local tok = flag_of(step, obj, is_req)
    if tok == nil then return false, nil end
    return true, int64(tok)
end }

STEPS.flagis = { REQ + RES, function(t, n, step)
    step.flag, step.fb = check_flag(t, n)
    step.str = check_str(t, n)
end, function(step, obj, is_req)
    local tok = flag_of(step, obj, is_req)
    if tok == nil then return false, nil end
    return true, tok == step.str
end }

---------------------------------------------------------------------------
-- inspectors

local INSPECTOR = { __name = "mcp.inspector" }

-- Runs the steps from `i` on, returning all their results (a step may return two).
local function run(steps, i, obj, is_req)
    local step = steps[i]
    if step == nil then return end
    local run_step = step.run
    if step.width == 1 then
        return run_step(step, obj, is_req), run(steps, i + 1, obj, is_req)
    end
    local a, b = run_step(step, obj, is_req)
    return a, b, run(steps, i + 1, obj, is_req)
end

INSPECTOR.__call = function(self, obj)
    local want = self.is_req and Request or Response
    if getmetatable(obj) ~= want then
        if type(obj) ~= "table" and type(obj) ~= "userdata" then
            fail("bad argument #2 to '?' (userdata expected, got "
                .. (obj == nil and "no value" or type(obj)) .. ")")
        end
        fail("bad argument #2 to '?' (invalid argument to inspector object)")
    end
    return run(self.steps, 1, obj, self.is_req)
end

local function inspector_new(kind, ...)
    local steps = {}
    for n = 1, select("#", ...) do
        local t = select(n, ...)
        if type(t) ~= "table" then
            error("bad argument #" .. n .. " to '" .. (kind == REQ and "req" or "res")
                .. "_inspector_new' (table expected, got "
                .. (t == nil and "no value" or type(t)) .. ")", 3)
        end
        -- [R] a step without `t` is refused (1.6.45 accepts it, then crashes running it).
        local def = type(t.t) == "string" and STEPS[t.t] or nil
        if def == nil or def[1] & kind == 0 then
            fail("inspector step " .. n .. ": step incompatible with inspector type")
        end
        local step = { run = def[3], width = (t.t == "sepkey" or t.t == "keybegin"
            or t.t == "keyis" or t.t == "hasflag") and 1 or 2 }
        def[2](t, n, step)
        steps[n] = step
    end
    return setmetatable({ steps = steps, is_req = kind == REQ }, INSPECTOR)
end

function mcp.req_inspector_new(...)
    return inspector_new(REQ, ...)
end

function mcp.res_inspector_new(...)
    return inspector_new(RES, ...)
end


