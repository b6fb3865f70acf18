-- The route (worker) VM's half of the `mcp` library, and the driver that runs routes.
--
-- Performance shape (DESIGN.md, "Running routes"): request and response objects are Lua
-- tables sharing one metatable each, so `r:key()` or `res:ok()` never cross into Python.
-- Python calls the driver twice per request: `start` (build `r`, run the route until it
-- finishes or waits on a backend) and `resume` (hand it the backend's answer). A route that
-- calls a pool yields to the driver with a private marker; the driver returns the pool id and
-- the request to Python, which queues the bytes on a backend and later calls `resume`.
--
-- Requests from clients arrive parsed by Python (command, line, key, noreply); everything
-- else about them (tokens, meta flags, data length) is computed here, lazily, the first time
-- a route asks. Requests built with mcp.request, and requests whose tokens a route edited,
-- are parsed here by `parse` (spec 3.1), which is then the source of truth: Python receives
-- their line, key, command and reply mode with the call and parses nothing again.
--
-- Called as a chunk with (mcp, state). Returns the driver functions.
local mcp, state = ...

local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local traceback = debug.traceback
local setmetatable, getmetatable, type, select, tostring = setmetatable, getmetatable, type,
    select, tostring
local tointeger = math.tointeger
local sfind, ssub, sbyte, smatch, sgmatch, srep = string.find, string.sub, string.byte,
    string.match, string.gmatch, string.rep

-- Raises `msg` at the caller `level` frames up, as error(msg, level) does; but when that
-- frame is this driver (the route tail-called the raising function, as in `return pool(r)`,
-- which leaves no frame of the route), with no position rather than a wrong one.
local getinfo = debug.getinfo  -- (a config may replace the global `debug`, as routelib does)
local SELF_SOURCE = getinfo(1, "S").source
local error = error
local function raise(msg, level)
    local info = getinfo(level + 1, "S")
    if info == nil or info.source == SELF_SOURCE then
        error(msg, 0)
    end
    error(msg, level + 1)
end

-- Private yield markers: only our own functions yield them, so a route calling
-- coroutine.yield() itself is caught and treated as a Lua failure.
local Y, DONE = {}, {}

-- What the driver returns to Python (first value).
local YIELD_POOL, YIELD_INTERNAL, YIELD_AWAIT = 1, 2, 3
local DONE_RES, DONE_STR, DONE_BAD, DONE_ERR, DONE_SAME = 10, 11, 12, 13, 14
state.codes = {
    YIELD_POOL = YIELD_POOL, YIELD_INTERNAL = YIELD_INTERNAL, YIELD_AWAIT = YIELD_AWAIT,
    DONE_RES = DONE_RES, DONE_STR = DONE_STR, DONE_BAD = DONE_BAD, DONE_ERR = DONE_ERR,
    DONE_SAME = DONE_SAME,
}

-- Reply modes recorded on what is sent (and on the response it earns), spec 4.4. Python
-- uses the same numbers (MODE_* in proxy/task.py).
local MODE_NOREPLY, MODE_QUIET, MODE_QUIET_MG = 1, 2, 3

local CMD_MG, CMD_MS, CMD_MD, CMD_MN, CMD_MA, CMD_ME =
    mcp.CMD_MG, mcp.CMD_MS, mcp.CMD_MD, mcp.CMD_MN, mcp.CMD_MA, mcp.CMD_ME
local CMD_GET, CMD_GETS, CMD_GAT, CMD_GATS = mcp.CMD_GET, mcp.CMD_GETS, mcp.CMD_GAT, mcp.CMD_GATS
local MCMC_CODE_END = mcp.MCMC_CODE_END
-- Limits from mcpframe/protocol/replies.py: routed request lines (and edits) stay under
-- MAX_LINE; MAX_VLEN is the largest data length the parser accepts (2^31 - 3).
local MAX_LINE, MAX_VLEN = state.max_line, state.max_vlen

---------------------------------------------------------------------------
-- the request line parser (spec 3.1)

-- Per command: most tokens indexed, key token, fewest tokens, kind.
local K_META, K_MS, K_GET, K_NOREPLY, K_STORE, K_KEYLESS, K_BARE = 1, 2, 3, 4, 5, 6, 7
local RULES = {}
local function rules(cmds, maxtok, keytok, mintok, kind)
    for _, c in ipairs(cmds) do RULES[c] = { maxtok, keytok, mintok, kind } end
end
rules({ CMD_MG, CMD_MD, CMD_MA, CMD_ME }, 24, 2, 2, K_META)
rules({ CMD_MS }, 24, 2, 3, K_MS)
-- [R] (1.6.21) get/gets/delete need a key, incr/decr/touch a key and one more token.
rules({ CMD_GET, CMD_GETS }, 2, 2, 2, K_GET)
rules({ CMD_GAT, CMD_GATS }, 3, 3, 3, K_GET)
rules({ mcp.CMD_INCR, mcp.CMD_DECR, mcp.CMD_TOUCH }, 4, 2, 3, K_NOREPLY)
rules({ mcp.CMD_DELETE }, 4, 2, 2, K_NOREPLY)
rules({ mcp.CMD_SET, mcp.CMD_ADD, mcp.CMD_CAS, mcp.CMD_REPLACE, mcp.CMD_APPEND,
    mcp.CMD_PREPEND }, 24, 2, 5, K_STORE)
rules({ mcp.CMD_STATS, mcp.CMD_WATCH, mcp.CMD_VERSION }, 24, nil, 1, K_KEYLESS)
rules({ mcp.CMD_QUIT, CMD_MN }, 0, nil, 0, K_BARE)

local command_codes = state.command_codes  -- command word -> CMD_* code

-- The line without its terminator (CRLF, or a bare LF: we accept both, as 1.6.22 does), cut
-- at its first NUL as memcached reads it (a C string). The rules are those of the Python
-- tokeniser (mcpframe/protocol/tokens.py); tests/lua/test_request_parser.py holds the two
-- to the same tokens, keys and verdicts.
local function content(line)
    local n = #line
    if sbyte(line, n) == 10 then n = n - 1 end
    if n > 0 and sbyte(line, n) == 13 then n = n - 1 end
    local z = sfind(line, "\0", 1, true)
    if z and z <= n then n = z - 1 end
    return ssub(line, 1, n)
end

-- Tokens are maximal runs of non-space bytes; at most `max` are indexed. `stop` is where
-- indexing ended (1-based, exclusive): the end of the content, or the space after the last
-- indexed token when more tokens follow (spec 3.3 `e`).
local function scan(s, max)
    local toks, starts = {}, {}
    local n, pos = 0, 1
    while n < max do
        local a, b = sfind(s, "[^ ]+", pos)
        if not a then break end
        n = n + 1
        toks[n] = ssub(s, a, b)
        starts[n] = a
        pos = b + 1
    end
    local stop = #s + 1
    if n == max and n > 0 and sfind(s, "[^ ]", pos) then stop = pos end
    return toks, starts, stop
end

-- C strtol as memcached uses it for data lengths: sign, digits, trailing garbage ignored.
local function datalen(tok)
    local sign, digits = smatch(tok or "", "^([+-]?)(%d+)")
    if digits == nil or #digits > 12 then return nil end
    local v = tointeger(tonumber(digits))
    if sign == "-" then v = -v end
    if v < 0 or v > MAX_VLEN then return nil end
    return v
end

-- The meta flags present (first bytes of every token from `first` on, to the end of the
-- line, indexed or not), as a set of byte values; nil when a flag byte is out of range.
local function flag_set(s, first, strict)
    local fl, i = {}, 0
    for tok in sgmatch(s, "[^ ]+") do
        i = i + 1
        if i >= first then
            local b = sbyte(tok)
            if b < 65 or b > 122 then
                if strict then return nil end
            else
                fl[b] = true
            end
        end
    end
    return fl
end

-- Parses `line` as memcached's proxy parser does and stores the result in request `r`.
-- Returns false (and leaves `r` untouched) when the line does not parse.
local function parse(r, line)
    if #line < 4 then return false end
    local s = content(line)
    local word = smatch(s, "^[^ ]*")
    local cmd = command_codes[word]
    local rule = cmd and RULES[cmd]
    if rule == nil then return false end
    local toks, starts, stop = scan(s, rule[1])
    local ntok = #toks
    if ntok < rule[3] then return false end
    local kind = rule[4]
    local key, fl, nr = "", nil, false
    if rule[2] then key = toks[rule[2]] end
    if kind == K_META or kind == K_MS then
        if kind == K_MS and datalen(toks[3]) == nil then return false end
        fl = flag_set(s, kind == K_MS and 4 or 3, true)
        if fl == nil then return false end
        nr = fl[113] == true  -- "q"
    elseif kind == K_STORE then
        if datalen(toks[5]) == nil then return false end
        nr = toks[ntok] == "noreply"
    elseif kind == K_NOREPLY then
        -- Only after the key: "delete noreply" deletes the key "noreply" (as memcached does).
        nr = ntok > rule[2] and toks[ntok] == "noreply"
    end
    r._cmd, r._line, r._key = cmd, line, key
    r._toks, r._starts, r._stop, r._fl = toks, starts, stop, fl
    r._nr, r._mode, r._rw = nr, nil, nil
    r._edited = true
    return true
end

---------------------------------------------------------------------------
-- request objects

local Request = {}
Request.__index = Request
Request.__name = "mcp.request"
state.REQUEST_MT = Request

-- Fields: _h (handle of the client request that Python holds, 0 for mcp.request), _cmd,
-- _line (current line, terminator included), _key, _nr (noreply/quiet), _edited (the line
-- differs from the client's bytes), _value / _vh (data block, or the handle of the request
-- holding it), _mode/_rw (reply mode, once rewritten for a backend). Lazily: _toks,
-- _starts, _stop (tokens), _fl (meta flag set).

local function tokenize(self)
    local toks = self._toks
    if toks then return toks end
    local rule = RULES[self._cmd]
    toks, self._starts, self._stop = scan(content(self._line), rule and rule[1] or 24)
    self._toks = toks
    return toks
end

local function is_meta(cmd)
    return cmd <= CMD_ME and cmd ~= CMD_MN
end

local function flags(self)
    local fl = self._fl
    if fl then return fl end
    local c = self._cmd
    if is_meta(c) then
        fl = flag_set(content(self._line), c == CMD_MS and 4 or 3, false)
    else
        fl = {}
    end
    self._fl = fl
    return fl
end

local function keypos(self)
    local rule = RULES[self._cmd]
    return rule and rule[2]
end

local function argtype(v)
    return v == nil and "no value" or type(v)
end

function Request:command()
    return self._cmd
end

function Request:key()
    return self._key
end

function Request:ntokens()
    return #tokenize(self)
end

-- Replaces indexed token `i` with `s` and re-parses (spec 3.3); on failure the previous
-- line stays in force ([R]) and the error names token() as memcached's does.
local function edit_token(self, i, s)
    local toks = tokenize(self)
    local line = self._line
    if #line + #s > MAX_LINE then
        raise("token(): request malformed after edit", 3)
    end
    local body = content(line)
    local starts = self._starts
    local out = ssub(body, 1, starts[i] - 1) .. s
    if i < #toks then
        if s ~= "" then out = out .. " " end
        out = out .. ssub(body, starts[i + 1], self._stop - 1)
    end
    if not parse(self, out .. "\r\n") then
        raise("token(): request malformed after edit", 3)
    end
end

function Request:token(n, ...)
    if n == nil then return nil end
    if type(n) ~= "number" then
        raise("bad argument #1 to 'token' (number expected, got " .. type(n) .. ")", 2)
    end
    local toks = tokenize(self)
    n = tointeger(n)
    if n == nil or n < 1 or n > #toks then return nil end
    if select("#", ...) == 0 then
        return toks[n]
    end
    local s = ...
    if type(s) == "number" then
        s = tostring(s)
    elseif type(s) ~= "string" then
        -- [R] 1.6.20 silently removed the token for nil or any other type.
        raise("bad argument #2 to 'token' (string expected, got " .. argtype(s) .. ")", 2)
    end
    edit_token(self, n, s)
end

-- A token as a signed 64-bit integer (memcached's safe_strtoll): digits only, nil otherwise.
local function int64(tok)
    if tok == nil or not smatch(tok, "^[+-]?%d+$") then return nil end
    return tointeger(tonumber(tok))
end

-- (n as luaL_checkinteger takes it: a numeric string works, 1.5 does not)
function Request:token_int(n)
    if n == nil then return nil end
    local v = type(n) == "string" and tonumber(n) or n
    if type(v) ~= "number" then
        raise("bad argument #1 to 'token_int' (number expected, got " .. type(n) .. ")", 2)
    end
    v = tointeger(v)
    if v == nil then
        raise("bad argument #1 to 'token_int' (number has no integer representation)", 2)
    end
    if v < 1 then return nil end
    return int64(tokenize(self)[v])
end

local function trimkey(self, n, left, fname)
    if type(n) ~= "number" then
        raise("bad argument #1 to '" .. fname .. "' (number expected, got " .. argtype(n) .. ")", 3)
    end
    local key = self._key
    local m = tointeger(n)
    if m == nil or m < 0 or m > #key then
        raise(fname .. " cannot zero out key", 3)
    end
    if m == 0 then return n end
    tokenize(self)
    local a = self._starts[keypos(self) or 2]
    if a == nil then raise(fname .. " cannot zero out key", 3) end
    -- Overwrite the bytes with spaces: the line keeps its length, backends see separators.
    local line, pad = self._line, srep(" ", m)
    if left then
        self._line = ssub(line, 1, a - 1) .. pad .. ssub(line, a + m)
        self._key = ssub(key, m + 1)
    else
        local e = a + #key
        self._line = ssub(line, 1, e - m - 1) .. pad .. ssub(line, e)
        self._key = ssub(key, 1, #key - m)
    end
    self._toks = nil
    self._edited = true
    return n
end

-- (Not tail calls: error levels count this frame.)
function Request:ltrimkey(n)
    return (trimkey(self, n, true, "ltrimkey"))
end

function Request:rtrimkey(n)
    return (trimkey(self, n, false, "rtrimkey"))
end

-- A meta flag argument: one byte in A..z, else memcached's texts, which start with `prefix`
-- ("has_flag(): ", naming has_flag() for flag_token() as well, or "request: " for the 1.6.45
-- editors). Raised `level` frames up. Returns the byte.
local function check_flag(c, prefix, level)
    if type(c) ~= "string" or #c ~= 1 then
        raise(prefix .. "meta flag must be a single character", level)
    end
    local b = sbyte(c)
    if b < 65 or b > 122 then
        raise(prefix .. "invalid flag, must be A-Z,a-z", level)
    end
    return b
end

function Request:has_flag(c)
    local b = check_flag(c, "has_flag(): ", 3)
    if not is_meta(self._cmd) then return false end
    return flags(self)[b] == true
end

function Request:flag_token(c, ...)
    local b = check_flag(c, "has_flag(): ", 3)
    if not is_meta(self._cmd) or not flags(self)[b] then return false end
    local toks = tokenize(self)
    for i = 3, #toks do
        local t = toks[i]
        if sbyte(t) == b then
            local rest = #t > 1 and ssub(t, 2) or nil
            local s = ...
            if type(s) == "number" then s = tostring(s) end
            if type(s) == "string" then edit_token(self, i, s) end
            if rest then return true, rest end
            return true
        end
    end
    -- The flag is set, but its token lies beyond the indexed ones.
    return true
end

-- [Q] (1.6.45) A flag present without a token answers false, as an absent one does.
function Request:flag_token_int(c)
    if type(c) ~= "string" or #c ~= 1 then
        raise("has_flag(): meta flag must be a single character", 2)
    end
    local present, tok = false, nil
    local b = sbyte(c)
    if b >= 65 and b <= 122 then present, tok = self:flag_token(c) end
    if not present or tok == nil then return false end
    local v = int64(tok)
    if v == nil then return true end
    return true, v
end

-- Arguments of the flag editors and of res:flag_blank (spec v2 5.2): the flag as a string.
local function edit_flag(c)
    if type(c) == "number" then c = tostring(c) end
    check_flag(c, "request: ", 4)
    return c
end

local function edit_flag_token(tok)
    local t = type(tok)
    if t == "nil" then return "" end
    if t == "number" then return tostring(tok) end
    if t == "string" then return tok end
    raise("request: invalid flag argument", 3)
end

-- Where the first flag token starting with `c` lies in `body` (a line without terminator,
-- every token counted, not just the indexed ones): its start and end, or nil.
local function find_flag(body, first, c)
    local i = 0
    for a, tok in sgmatch(body, "()([^ ]+)") do
        i = i + 1
        if i >= first and ssub(tok, 1, 1) == c then return a, a + #tok - 1 end
    end
    return nil
end

-- The request line with the flag token `c` (found by find_flag) replaced by `new`; with
-- `new` appended when `c` is nil or absent; with the token removed when `new` is nil.
-- Re-parsed; false (the request unchanged) when the result is too long or does not parse.
local function edit_flags(self, c, new)
    local cmd = self._cmd
    if not is_meta(cmd) then return false end  -- [R] 1.6.45 edits classic lines too
    local body = content(self._line)
    local a, e
    if c ~= nil then a, e = find_flag(body, cmd == CMD_MS and 4 or 3, c) end
    local out
    if a == nil then
        if new == nil then return false end
        out = body .. " " .. new
    elseif new == nil then
        local left, right = smatch(ssub(body, 1, a - 1), "^(.-) *$"),
            smatch(ssub(body, e + 1), "^ *(.*)$")
        out = right == "" and left or left .. " " .. right
    else
        out = ssub(body, 1, a - 1) .. new .. ssub(body, e + 1)
    end
    if #out + 2 > MAX_LINE then return false end
    return parse(self, out .. "\r\n")
end

function Request:flag_add(c, tok)
    c = edit_flag(c)
    tok = edit_flag_token(tok)
    if not is_meta(self._cmd) or flags(self)[sbyte(c)] then return false end
    return edit_flags(self, nil, c .. tok)
end

function Request:flag_set(c, tok)
    c = edit_flag(c)
    return edit_flags(self, c, c .. edit_flag_token(tok))
end

function Request:flag_replace(c, newc, tok)
    c = edit_flag(c)
    newc = edit_flag(newc)
    return edit_flags(self, c, newc .. edit_flag_token(tok))
end

function Request:flag_del(c)
    c = edit_flag(c)
    return edit_flags(self, c, nil)
end

-- [R] The line without its own terminator (1.6.45 cuts two bytes, whatever they are).
function Request:raw_line()
    local line = self._line
    local n = #line
    if sbyte(line, n) == 10 then
        n = n - 1
        if sbyte(line, n) == 13 then n = n - 1 end
    end
    return ssub(line, 1, n)
end

-- The value bytes (CRLF included) a request carries, or nil: its own, or those Python holds
-- for the client request it is (or borrowed them from) (state.py_value, proxy/funcgens.py).
local function request_value(r)
    local v = r._value
    if v ~= nil then return v end
    local h = r._vh
    if h == nil and r._h ~= 0 then h = r._h end
    local get = state.py_value
    if h == nil or get == nil then return nil end
    return get(h)
end

function Request:raw_value()
    return request_value(self)
end

-- The data block length (CRLF excluded) of a storage request; 0 for other commands.
function Request:vlen()
    local v = self._value
    if v then return #v - 2 end
    local c = self._cmd
    if c == CMD_MS then return datalen(tokenize(self)[3]) or 0 end
    local rule = RULES[c]
    if rule and rule[4] == K_STORE then return datalen(tokenize(self)[5]) or 0 end
    return 0
end

-- The noreply/quiet rewrite applied to a request when it is sent (spec 4.4), on the object
-- itself. Meta: every indexed flag token from the 3rd on starting with `q` has the `q`
-- blanked; the backend replies and the reply mode decides what the client sees. Classic
-- `noreply`: mcpframe drops the token (1.6.20 wrote `noreplY`, which real memcached servers
-- reject for `delete`); the flag set and the noreply marker stay as they were.
local function rewrite_noreply(r)
    r._rw = true
    flags(r)  -- the flag set stays as it was before the rewrite
    local cmd = r._cmd
    local toks = tokenize(r)
    if is_meta(cmd) then
        local line, starts = r._line, r._starts
        for i = 3, #toks do
            local t = toks[i]
            if sbyte(t) == 113 then  -- "q"
                local a = starts[i]
                line = ssub(line, 1, a - 1) .. " " .. ssub(line, a + 1)
                toks[i] = " " .. ssub(t, 2)
            end
        end
        r._line = line
        r._mode = cmd == CMD_MG and MODE_QUIET_MG or MODE_QUIET
    else
        local n = #toks
        if toks[n] == "noreply" then
            local body = ssub(content(r._line), 1, r._starts[n] - 1)
            r._line = smatch(body, "^(.-) *$") .. "\r\n"
            r._toks = nil
        end
        r._mode = MODE_NOREPLY
    end
    r._edited = true
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

-- [R] The intended meaning (1.6.45): the flags of a meta reply, i.e. the text after the
-- two-letter code and its space (after `VA <n> ` for VA), without the line terminator; nil
-- when there are none, and for any reply that is not a meta reply (or holds no bytes).
local function flags_at(self)
    local raw = self.raw
    if raw == nil or self._type ~= 101 then return nil end
    local eol = sfind(raw, "\r\n", 1, true)
    if not eol then return nil end
    local a
    if ssub(raw, 1, 3) == "VA " then
        a = sfind(raw, " ", 4, true)
    else
        a = sbyte(raw, 3) == 32 and 3 or nil
    end
    if a == nil or a + 1 >= eol then return nil end
    return a + 1, eol - 1
end

function Response:line()
    local a, e = flags_at(self)
    if a == nil then return nil end
    return ssub(self.raw, a, e)
end

-- The reply's bytes, nil when it holds none: closed, blank (rctx:response_new), or a failure
-- (down backend, timeout...: type 0, not ok), whose error line mcpframe makes itself.
local function reply_bytes(res)
    if res._type == 0 and res.status ~= 0 then return nil end
    return res.raw
end

-- The whole reply (line and value).
function Response:raw_string()
    return reply_bytes(self)
end

-- Overwrites the first flag token starting with `c` with spaces, in the bytes the client
-- gets; false when the reply is not a meta reply or has no such flag.
function Response:flag_blank(c)
    c = edit_flag(c)
    local a, e = flags_at(self)
    if a == nil then return false end
    local raw = self.raw
    local fa, fe = find_flag(ssub(raw, a, e), 1, c)
    if fa == nil then return false end
    fa, fe = a + fa - 1, a + fe - 1
    self.raw = ssub(raw, 1, fa - 1) .. srep(" ", fe - fa + 1) .. ssub(raw, fe + 1)
    self._edited = true  -- (returned, its bytes are not the ones Python holds: see `step`)
    return true
end

-- Frees the reply at once (also as `local res <close> = ...`). [Q] (1.6.45) Returned to the
-- client afterwards, it sends nothing.
function Response:close()
    self.raw, self._code, self._vlen, self._edited = nil, 0, 0, true
end
Response.__close = Response.close

-- The name memcached's type errors give an object: its metatable's __name, else its type.
local function typename(v)
    local mt = getmetatable(v)
    if type(mt) == "table" and type(rawget(mt, "__name")) == "string" then return mt.__name end
    return argtype(v)
end

-- The token of the first flag `c` of meta flags `s` ("" for a bare flag), or nil.
local function flag_in(s, first, c)
    local a, e = find_flag(s, first, c)
    if a == nil then return nil end
    return ssub(s, a + 1, e)
end

-- Does meta reply `res` answer this request (key by the `k` flag, opaque by `O`)? [Q]
-- (1.6.45) false with no message when there was nothing to compare.
function Request:match_res(res)
    if getmetatable(res) ~= Response then
        raise("bad argument #1 to 'match_res' (mcp.response expected, got " .. typename(res)
            .. ")", 2)
    end
    if reply_bytes(res) == nil then return false, "failed to parse response" end
    local rflags = res:line() or ""
    local compared = false
    local k = flag_in(rflags, 1, "k")
    if k ~= nil then
        if k ~= self._key then return false, "key in response does not match request key" end
        compared = true
    end
    if is_meta(self._cmd) then
        local o = flag_in(content(self._line), self._cmd == CMD_MS and 4 or 3, "O")
        if o ~= nil and o ~= "" then
            local ro = flag_in(rflags, 1, "O")
            if ro == nil then return false, "opaque in request but not in response" end
            if ro ~= o then return false, "request opaque does not match response opaque" end
            compared = true
        end
    end
    if compared then return true, nil end
    return false, nil
end

-- The data block of a response (bytes + CRLF), for mcp.request(line, res).
local function response_value(res)
    local raw = res.raw
    if raw == nil then return nil end
    local eol = sfind(raw, "\r\n", 1, true)
    if not eol or not (sfind(raw, "^VA ") or sfind(raw, "^VALUE ")) then return nil end
    return ssub(raw, eol + 2, eol + 3 + (res._vlen or 0))
end

---------------------------------------------------------------------------
-- mcp functions of the route VM

local hooks = state.hooks  -- hooks[tag][cmd] = function; tag "" is untagged
local attachable = state.attachable  -- cmd -> true for every valid single command
local CMD_ANY, CMD_ANY_STORAGE = mcp.CMD_ANY, mcp.CMD_ANY_STORAGE

-- A function generator counts the hooks (and handles, routers) that hold it: replaced
-- everywhere, it is closed for good (spec v2 2.7; fgen_ref is in mcp_funcgen.lua).
local function hook_put(slot, cmd, fn)
    local old = slot[cmd]
    if old ~= fn then
        local ref = state.fgen_ref
        ref(fn, 1)
        ref(old, -1)
        slot[cmd] = fn
    end
end

function mcp.attach(cmd, fn, tag)
    if type(cmd) ~= "number" then
        raise("bad argument #1 to 'attach' (number expected, got " .. argtype(cmd) .. ")", 2)
    end
    cmd = tointeger(cmd)
    -- A function is a v1 route (a coroutine per request, as 1.6.20 and 1.6.23-1.6.29 ran
    -- it); a function generator (mcp_funcgen.lua) runs in its slots (spec v2 1.2).
    if type(fn) ~= "function" and getmetatable(fn) ~= state.FGEN_MT then
        raise("Must pass a function to mcp.attach", 2)
    end
    if type(fn) == "table" and fn._closed then
        raise("mcp.attach: cannot use a previously replaced function", 2)
    end
    local t = ""
    if tag ~= nil then
        if type(tag) == "number" then tag = tostring(tag) end
        if type(tag) ~= "string" then
            -- [R] 1.6.20 silently attached the hook untagged.
            raise("bad argument #3 to 'attach' (string expected, got " .. type(tag) .. ")", 2)
        end
        if #tag < 1 or #tag > 8 then
            raise("mcp.attach: tag must be 1 to 8 characters", 2)
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
            if c ~= CMD_MN then hook_put(slot, c, fn) end
        end
    elseif cmd ~= nil and attachable[cmd] then
        -- mn is never hooked, so that it keeps working as a pipeline flush marker.
        if cmd ~= CMD_MN then hook_put(slot, cmd, fn) end
    else
        -- [R] 1.6.20 does not check, and writes out of bounds.
        raise("mcp.attach: invalid command type", 2)
    end
end

local POOL_PROXY = { __name = "mcp.pool_proxy" }
state.POOL_PROXY_MT = POOL_PROXY

-- mcpframe's extension: mcp.broadcast(mcp.CMD_FLUSH_ALL, { pool, ... }) sends that keyless
-- command to every backend of the pools (Python does it, see proxy/broadcast.py). Without
-- it such a command is refused: answered by the internal cache alone it would report a
-- success the backends never saw.
local broadcasts, broadcastable = state.broadcasts, state.broadcastable

function mcp.broadcast(cmd, pools)
    if type(cmd) ~= "number" or not broadcastable[tointeger(cmd)] then
        raise("mcp.broadcast: only mcp.CMD_FLUSH_ALL can be broadcast", 2)
    end
    if type(pools) ~= "table" then
        raise("bad argument #2 to 'broadcast' (table expected, got " .. argtype(pools) .. ")", 2)
    end
    local ids = {}
    for i, p in ipairs(pools) do
        if getmetatable(p) ~= POOL_PROXY then
            raise("bad argument #2 to 'broadcast' (mcp.pool_proxy expected, got " .. type(p)
                .. ")", 2)
        end
        ids[i] = p._id
    end
    if #ids == 0 then
        raise("mcp.broadcast: needs at least one pool", 2)
    end
    broadcasts[tointeger(cmd)] = ids
end

local function check_request(r, fname, argn)
    if getmetatable(r) ~= Request then
        raise("bad argument #" .. argn .. " to '" .. fname .. "' (mcp.request expected, got "
            .. argtype(r) .. ")", 3)
    end
end

-- Commands that carry a key (1..20 but mn): only those can be sent to a pool.
local KEYED = {}
for c = 1, 20 do KEYED[c] = c ~= CMD_MN end

-- Python resumes a waiting route with an error text instead of a response when the call
-- could not be made (an out-of-bounds dist index, a plugin that raised...): raise it here,
-- in the route, as memcached raises it from the C function. Always tail-called, so level 2
-- is the route's line.
local function checked(res)
    if type(res) == "string" then raise(res, 2) end
    return res
end

POOL_PROXY.__call = function(pool, ...)
    local n = select("#", ...)
    local r = (select(n > 0 and n or 1, ...))  -- memcached checks the last argument
    if getmetatable(r) ~= Request then
        raise("bad argument #" .. (n > 0 and n or 1) .. " to 'pool' (mcp.request expected, got "
            .. argtype(r) .. ")", 2)
    end
    if not KEYED[r._cmd] then
        raise("cannot route commands without key", 2)
    end
    if r._nr and not r._rw then rewrite_noreply(r) end
    return checked(co_yield(Y, YIELD_POOL, pool._id, r))
end

function mcp.internal(r)
    check_request(r, "internal", 1)
    if r._nr and not r._rw then rewrite_noreply(r) end
    return checked(co_yield(Y, YIELD_INTERNAL, 0, r))
end

local AWAIT_GOOD, AWAIT_BACKGROUND = mcp.AWAIT_GOOD, mcp.AWAIT_BACKGROUND

local function await_function(fname, logerrors)
    return function(r, pools, wait_for, mode, detail)
        check_request(r, fname, 1)
        if type(pools) ~= "table" then
            raise("bad argument #2 to '" .. fname .. "' (table expected, got " .. argtype(pools)
                .. ")", 2)
        end
        local ids, n = {}, 0
        for _, p in pairs(pools) do
            if getmetatable(p) ~= POOL_PROXY then
                raise("bad argument #2 to '" .. fname .. "' (mcp.pool_proxy expected, got "
                    .. type(p) .. ")", 2)
            end
            n = n + 1
            ids[n] = p._id
        end
        if n == 0 then
            raise("mcp.await arguments must have at least one pool", 2)
        end
        -- [R] Arguments are taken by position, nil meaning the default (1.6.20 read them
        -- from the top of the stack).
        if wait_for == nil then wait_for = 0 end
        if type(wait_for) ~= "number" then
            raise("bad argument #3 to '" .. fname .. "' (number expected, got " .. type(wait_for)
                .. ")", 2)
        end
        if mode == nil then mode = AWAIT_GOOD end
        mode = type(mode) == "number" and tointeger(mode) or nil
        if mode == nil or mode < AWAIT_GOOD or mode > AWAIT_BACKGROUND then
            raise("invalid type argument tp mcp.await", 2)
        end
        if not logerrors then
            detail = nil  -- only mcp.await_logerrors uses it
        elseif detail ~= nil and type(detail) ~= "string" then
            raise("bad argument #5 to '" .. fname .. "' (string expected, got " .. type(detail)
                .. ")", 2)
        end
        if not KEYED[r._cmd] then
            raise("cannot route commands without key", 2)
        end
        if r._nr and not r._rw then rewrite_noreply(r) end
        return checked(co_yield(Y, YIELD_AWAIT, table.concat(ids, ","), r,
            math.floor(wait_for), mode, detail or "", logerrors))
    end
end

mcp.await = await_function("await", false)
mcp.await_logerrors = await_function("await_logerrors", true)

function mcp.request(line, value)
    local tl = type(line)
    if tl == "number" then
        line = tostring(line)
    elseif tl ~= "string" then
        raise("bad argument #1 to 'request' (string expected, got " .. argtype(line) .. ")", 2)
    end
    -- [R] A line must end with its own (single) newline and stay under the client line
    -- limit; 1.6.20 took the last two bytes as the terminator whatever they were. 1.6.45
    -- insists on CRLF and says why (texts kept for v2 configs: those that made a funcgen
    -- or a router; a 1.6.20 config keeps 1.6.20's text).
    local n = #line
    if state.api_v2 then
        if ssub(line, -2) ~= "\r\n" then
            raise("request must end with \r\n", 2)
        end
        if n > MAX_LINE then
            raise("request length too long", 2)
        end
    end
    if n > MAX_LINE or sfind(line, "\n", 1, true) ~= n then
        raise("failed to parse request", 2)
    end
    local r = setmetatable({ _h = 0 }, Request)
    if not parse(r, line) then
        raise("failed to parse request", 2)
    end
    if value ~= nil then
        local mt = getmetatable(value)
        if type(value) == "string" then
            if ssub(value, -2) ~= "\r\n" then
                raise("value passed to mcp.request must end with \\r\\n", 2)
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
        elseif type(mt) == "table" and rawget(mt, "__name") ~= nil then
            -- [R] 1.6.45 reads any other userdata (pool proxy, rctx...) as a response.
            raise("bad argument #2 to 'request' (mcp.response expected, got " .. typename(value)
                .. ")", 2)
        end
        -- Anything else (numbers, booleans, plain tables) is ignored, as 1.6.45 does.
    end
    return r
end

-- Logging: the Python side is only called when someone listens (state.want_* are kept up
-- to date by Python when watchers or loggers come and go).
local py_log, py_log_req = state.py_log, state.py_log_req

function mcp.log(msg)
    local t = type(msg)
    if t ~= "string" and t ~= "number" then
        raise("bad argument #1 to 'log' (string expected, got " .. argtype(msg) .. ")", 2)
    end
    if state.want_user then
        py_log(tostring(msg))
    end
end

-- cfd: nil in API v1 configs (1.6.20's line), else 1.6.45's optional cfd argument, which
-- also adds res= to the line (state.api_v2: mcp_funcgen.lua, mcp_router.lua).
local function log_req(r, res, detail, cfd)
    local line = content(r._line)
    if getmetatable(res) == Response then
        py_log_req(line, res._elapsed or 0, res._type or 0, res._code or 0, res.status,
            res._be or "", detail or "", cfd)
    else
        py_log_req(line, 0, 0, 0, 0, ":", detail or "", cfd)
    end
end

local function cfd_arg(v, fname, argn)
    if not state.api_v2 then return nil end
    if v == nil then return 0 end
    local n = type(v) == "string" and tonumber(v) or v
    if type(n) ~= "number" then
        raise("bad argument #" .. argn .. " to '" .. fname .. "' (number expected, got "
            .. type(v) .. ")", 3)
    end
    n = tointeger(n)
    if n == nil then
        raise("bad argument #" .. argn .. " to '" .. fname
            .. "' (number has no integer representation)", 3)
    end
    return n
end

function mcp.log_req(r, res, detail, cfd)
    if not state.want_reqs then return end
    check_request(r, "log_req", 1)
    if detail ~= nil and type(detail) ~= "string" then detail = tostring(detail) end
    log_req(r, res, detail, cfd_arg(cfd, "log_req", 4))
end

function mcp.log_reqsample(ms, rate, allerrors, r, res, detail, cfd)
    if not state.want_reqs then return end
    local m, n = tointeger(ms), tointeger(rate)
    if m == nil then
        raise("bad argument #1 to 'log_reqsample' (number has no integer representation)", 2)
    end
    if n == nil then
        raise("bad argument #2 to 'log_reqsample' (number has no integer representation)", 2)
    end
    check_request(r, "log_reqsample", 4)
    if detail ~= nil and type(detail) ~= "string" then detail = tostring(detail) end
    cfd = cfd_arg(cfd, "log_reqsample", 7)
    local isres = getmetatable(res) == Response
    if allerrors and isres and res.status ~= 0 then
        return log_req(r, res, detail, cfd)
    end
    if m > 0 and isres and (res._elapsed or 0) > m * 1000 then
        return log_req(r, res, detail, cfd)
    end
    if n > 0 and math.random(n) == 1 then
        return log_req(r, res, detail, cfd)
    end
end

-- User stats live in this VM; Python reads the counters for `stats proxy`.
local ustats = state.ustats
local ustat_slots = state.ustat_slots

function mcp.stat(index, delta)
    local i, d = tointeger(index), tointeger(delta)
    if i == nil then
        raise("bad argument #1 to 'stat' (number has no integer representation)", 2)
    end
    if d == nil then
        raise("bad argument #2 to 'stat' (number has no integer representation)", 2)
    end
    if ustat_slots == 0 then
        raise("no stats counters initialized", 2)
    end
    if i < 1 or i > ustat_slots then
        raise("stat index out of range", 2)
    end
    ustats[i] = (ustats[i] or 0) + d  -- wraps like memcached's unsigned 64-bit counters
end

---------------------------------------------------------------------------
-- the driver

-- Routes run in coroutines that are reused: a finished route yields DONE and waits for the
-- next (hook, request) instead of dying, which saves creating one coroutine per request.
local function runner(hook, r)
    while true do
        local res = hook(r)
        hook, r = co_yield(DONE, res)
    end
end

local idle, nidle = {}, 0   -- coroutines ready for another route
local MAX_IDLE = 256
local waiting = {}          -- route handle -> suspended coroutine

local function idle_coroutine()
    if nidle > 0 then
        local co = idle[nidle]
        idle[nidle] = nil
        nidle = nidle - 1
        return co
    end
    return co_create(runner)
end

local function park(co)
    if nidle < MAX_IDLE then
        nidle = nidle + 1
        idle[nidle] = co
    end
end

local function new_response(raw, status, code, vlen, mode, elapsed, rtype, be)
    return setmetatable({ raw = raw, status = status, _code = code, _vlen = vlen,
        _mode = mode, _elapsed = elapsed, _type = rtype, _be = be }, Response)
end

-- Turns what a coroutine did into the driver's answer to Python. `given` is the response
-- the route was just resumed with: when the route returns it (`return pool(r)`), Python
-- already holds its bytes, and DONE_SAME says so instead of copying them back.
local function step(handle, co, given, ok, a, kind, id, r, x1, x2, x3, x4)
    if not ok then
        return DONE_ERR, tostring(a), traceback(co, tostring(a))
    end
    if a == DONE then
        park(co)
        local res = kind
        if res == given and given ~= nil and not res._edited then
            return DONE_SAME
        elseif getmetatable(res) == Response and res.raw ~= nil then  -- (nil: closed)
            return DONE_RES, res.raw, res.status, res._code, res._mode
        elseif type(res) == "string" then
            return DONE_STR, res
        end
        return DONE_BAD
    end
    if a ~= Y then
        -- [R] 1.6.20 aborts the process. The coroutine is left to the GC, not reused.
        local msg = "route yielded outside of a pool call, mcp.await or mcp.internal"
        return DONE_ERR, msg, traceback(co, msg)
    end
    waiting[handle] = co
    -- The request travels as its handle when Python holds its bytes unchanged (the common
    -- case: three values for a pool call); otherwise with its current line, value (or the
    -- handle of the request whose value it borrows), key, reply mode and command.
    if not r._edited then
        if kind == YIELD_POOL then return kind, id, r._h end
        return kind, id, r._h, nil, nil, nil, r._key, 0, r._cmd, x1, x2, x3, x4
    end
    return kind, id, r._h, r._line, r._value, r._vh, r._key, r._mode or 0, r._cmd,
        x1, x2, x3, x4
end

local function resume(handle, raw, status, code, vlen, mode, elapsed, rtype, be)
    local co = waiting[handle]
    waiting[handle] = nil
    local res = new_response(raw, status, code, vlen, mode, elapsed, rtype, be)
    return step(handle, co, res, co_resume(co, res))
end

-- mcp.await's answer: responses flattened, eight values each, in arrival order.
local function resume_await(handle, ...)
    local co = waiting[handle]
    waiting[handle] = nil
    local t = {}
    local n = select("#", ...)
    for i = 1, n, 8 do
        t[#t + 1] = new_response(select(i, ...))
    end
    return step(handle, co, nil, co_resume(co, t))
end

-- Resume a waiting route with an error raised at its call (see `checked`).
local function fail(handle, msg)
    local co = waiting[handle]
    waiting[handle] = nil
    return step(handle, co, nil, co_resume(co, msg))
end

-- Forget a waiting route without resuming it (mcp.internal on an unsupported command).
local function abandon(handle)
    waiting[handle] = nil
end

-- Batches: every route started (or resumed by a backend reply) in one turn of Python's event
-- loop goes through one call, which costs less than a call each. Each route's answer comes
-- back as two values: (YIELD_POOL, pool id) for the common pool call, (DONE_SAME, 0) when the
-- route returned the response it was resumed with, or (HELD, 0) when the answer is anything
-- else; Python then takes the whole answer with `take(handle)`.
local HELD = 0
state.codes.HELD = HELD
local held = {}
local pack, unpack = table.pack, table.unpack

local function compact(handle, ...)
    local kind = ...
    if kind == YIELD_POOL and select("#", ...) == 3 then
        local _, id, h = ...
        if h == handle then return YIELD_POOL, id end
    elseif kind == DONE_SAME then
        return DONE_SAME, 0
    end
    held[handle] = pack(...)
    return HELD, 0
end

-- The answers of a batch, kept from call to call so that they do not grow from empty each
-- time (what lies past the count returned is stale).
local out = {}

-- start_batch(handle, hook, cmd, line, key, nr, handle, hook, ...): six values per route.
-- The common case (the route calls a pool with its own request, unedited) is answered
-- here without going through `step`.
local function start_batch(...)
    local args, n = { ... }, select("#", ...)
    local j = 0
    for i = 1, n, 6 do
        local handle = args[i]
        local co
        if nidle > 0 then  -- (idle_coroutine, inline)
            co = idle[nidle]
            idle[nidle] = nil
            nidle = nidle - 1
        else
            co = co_create(runner)
        end
        -- (Four fields fit the table's smallest hash part; _nr is only set when true.)
        local r = setmetatable({ _h = handle, _cmd = args[i + 2], _line = args[i + 3],
            _key = args[i + 4] }, Request)
        if args[i + 5] then r._nr = true end
        local ok, a, kind, id, rr, x1, x2, x3, x4 = co_resume(co, args[i + 1], r)
        if a == Y and kind == YIELD_POOL and rr == r and ok and not r._edited then
            waiting[handle] = co
            out[j + 1], out[j + 2] = YIELD_POOL, id
        else
            out[j + 1], out[j + 2] = compact(handle,
                step(handle, co, nil, ok, a, kind, id, rr, x1, x2, x3, x4))
        end
        j = j + 2
    end
    return unpack(out, 1, j)
end

-- resume_batch(handle, raw, status, code, vlen, mode, elapsed, rtype, be, handle, ...): nine
-- values per reply (see `resume`). The common cases (the route returned the response, or
-- calls a pool again with its own request) are answered here.
local function resume_batch(...)
    local args, n = { ... }, select("#", ...)
    local j = 0
    for i = 1, n, 9 do
        local handle = args[i]
        local co = waiting[handle]
        waiting[handle] = nil
        -- (new_response, inline)
        local res = setmetatable({ raw = args[i + 1], status = args[i + 2],
            _code = args[i + 3], _vlen = args[i + 4], _mode = args[i + 5],
            _elapsed = args[i + 6], _type = args[i + 7], _be = args[i + 8] }, Response)
        local ok, a, kind, id, rr, x1, x2, x3, x4 = co_resume(co, res)
        if a == DONE and kind == res and ok and not res._edited then
            if nidle < MAX_IDLE then  -- (park, inline)
                nidle = nidle + 1
                idle[nidle] = co
            end
            out[j + 1], out[j + 2] = DONE_SAME, 0
        elseif a == Y and kind == YIELD_POOL and ok and getmetatable(rr) == Request
                and rr._h == handle and not rr._edited then
            waiting[handle] = co
            out[j + 1], out[j + 2] = YIELD_POOL, id
        else
            out[j + 1], out[j + 2] = compact(handle,
                step(handle, co, res, ok, a, kind, id, rr, x1, x2, x3, x4))
        end
        j = j + 2
    end
    return unpack(out, 1, j)
end

local function take(handle)
    local t = held[handle]
    held[handle] = nil
    return unpack(t, 1, t.n)
end

---------------------------------------------------------------------------
-- pass-through routes

-- A route that only sends its request to one pool and returns the answer (`return pool(r)`,
-- `return pools.main(r)`, or a global pool) is run by Python without entering Lua: the
-- result is the same, byte for byte, for every request it can take (keyed commands without
-- noreply; others still go through the route). Recognised by the route's bytecode, compared
-- with reference functions compiled here, so exactly these shapes match and nothing that
-- does more. The pool is read again (`passthrough_pools`) whenever Lua code has run since the
-- last reading, since a route may have reassigned the variable or table field it names.
--
-- The detector reads Lua 5.4's dump format (lundump.c), which a newer Lua (a lupa upgrade)
-- may change. It must never stop a config from loading, so it only says "pass-through" for a
-- dump it knows exactly: the header must be 5.4's, every field in place, the dump consumed
-- to its last byte, and what it read agree with debug.getinfo; anything else, a parse error
-- included, and the route simply runs in Lua. It takes `string.dump` as it is when it first
-- looks at routes (after the config ran): that is deliberate, so that tests can hand it dumps
-- it does not know (tests/e2e/test_passthrough.py).

local strlib, getupvalue, getinfo, rawget, pcall, ipairs, mtype = string, debug.getupvalue,
    debug.getinfo, rawget, pcall, ipairs, math.type
local setupvalue = debug.setupvalue
local pool_call = POOL_PROXY.__call
local response_ok = Response.ok

-- signature, version 5.4, format 0, LUAC_DATA, sizes of Instruction, lua_Integer and
-- lua_Number, LUAC_INT, LUAC_NUM
local HEADER = "\27Lua\x54\0\x19\x93\r\n\x1a\n\4\8\8" .. string.pack("jn", 0x5678, 370.5)

local function varint(d, pos)  -- lundump's loadSize: 7 bits a byte, last byte marked 0x80
    local x = 0
    while true do
        local b = sbyte(d, pos)
        if b == nil or x >= 2 ^ 40 then error("bad varint") end
        pos = pos + 1
        x = x * 128 + (b % 128)
        if b >= 128 then return x, pos end
    end
end

-- (code bytes, string constants, params, vararg, upvalues) of a Lua function (stripped
-- dump); nil when the function has nested functions or non-string constants (no
-- pass-through shape has those). Raises on a dump it does not know.
local function shape(fn)
    local d = strlib.dump(fn, true)
    if type(d) ~= "string" or ssub(d, 1, #HEADER) ~= HEADER then error("unknown dump") end
    local pos = #HEADER + 2                  -- + the main function's upvalue count
    local source
    source, pos = varint(d, pos)             -- absent when stripped
    local _
    _, pos = varint(d, pos)                  -- linedefined
    _, pos = varint(d, pos)                  -- lastlinedefined
    local nparams, vararg = sbyte(d, pos), sbyte(d, pos + 1)
    pos = pos + 3                            -- + maxstacksize
    local ncode
    ncode, pos = varint(d, pos)
    local code = ssub(d, pos, pos + 4 * ncode - 1)
    pos = pos + 4 * ncode
    local nk
    nk, pos = varint(d, pos)
    local k = {}
    for i = 1, nk do
        local tt = sbyte(d, pos)
        if tt ~= 4 and tt ~= 20 then return nil end  -- short and long strings only
        local n
        n, pos = varint(d, pos + 1)
        k[i] = ssub(d, pos, pos + n - 2)
        pos = pos + n - 1
    end
    local nups
    nups, pos = varint(d, pos)
    pos = pos + 3 * nups
    local nprotos
    nprotos, pos = varint(d, pos)
    if nprotos ~= 0 then return nil end
    local info = getinfo(fn, "u")
    if source ~= 0 or #code ~= 4 * ncode or nparams ~= info.nparams
            or (vararg ~= 0) ~= info.isvararg or nups ~= info.nups then
        error("unknown dump")
    end
    for _ = 1, 4 do                          -- the debug sections, empty when stripped
        local n
        n, pos = varint(d, pos)
        if n ~= 0 then error("unknown dump") end
    end
    if pos ~= #d + 1 then error("unknown dump") end
    return { code = code, k = k, nparams = nparams, vararg = vararg, nups = nups }
end

-- The shapes: the pool is an upvalue, a field of an upvalue table, or a global. Made when
-- first needed (see above); an empty list when the dump is not one the detector knows.
--
-- Beside them, the same three forms of the route that asks again when the answer is not ok
-- (issue 15's route with logic): `local res = p(r) if res:ok() then return res end return
-- p(r)`, or asks another pool then (`... return q(r)`, a failover). Python runs its first
-- call as a pass-through's and returns an ok answer itself; an answer that is not ok starts
-- the route in Lua (`retry_start`), its first call answered with that response, so that
-- everything after it (the second call, its errors) is the route's own. Their constants
-- must be the reference's, the method name `ok` included (the field or global names "x"
-- and "y" stand for any).
local BY_UPVALUE, BY_FIELD = 1, 2
local REFERENCES
local function references()
    if REFERENCES == nil then
        local retry = " if res:ok() then return res end return "
        local ok, refs = pcall(function()
            return {
                { BY_UPVALUE, shape(load("local p; return function(r) return p(r) end")()) },
                { BY_FIELD, shape(load("local t; return function(r) return t.x(r) end")()) },
                { BY_FIELD, shape(load("return function(r) return x(r) end")()) },
                { BY_UPVALUE, shape(load("local p; return function(r) local res = p(r)"
                    .. retry .. "p(r) end")()), true },
                { BY_FIELD, shape(load("local t; return function(r) local res = t.x(r)"
                    .. retry .. "t.x(r) end")()), true },
                { BY_FIELD, shape(load("return function(r) local res = x(r)"
                    .. retry .. "x(r) end")()), true },
                -- (failover: the second call to another pool)
                { BY_UPVALUE, shape(load("local p, q; return function(r) local res = p(r)"
                    .. retry .. "q(r) end")()), true },
                { BY_FIELD, shape(load("local t; return function(r) local res = t.x(r)"
                    .. retry .. "t.y(r) end")()), true },
                { BY_FIELD, shape(load("return function(r) local res = x(r)"
                    .. retry .. "y(r) end")()), true },
            }
        end)
        REFERENCES = ok and refs or {}
    end
    return REFERENCES
end

-- Constants of `s` are those of `want`, but for the names "x" and "y" (any name there).
local function same_constants(s, want)
    if #s.k ~= #want.k then return false end
    for i = 1, #s.k do
        local w = want.k[i]
        if w ~= "x" and w ~= "y" and s.k[i] ~= w then return false end
    end
    return true
end

-- A plan: { kind, field name, retry }.
local plans = setmetatable({}, { __mode = "k" })  -- route function -> plan, or false
local function plan_of(fn)
    local plan = plans[fn]
    if plan ~= nil then return plan end
    plan = false
    local ok, s = pcall(shape, fn)
    if ok and s and type(fn) == "function" then
        for _, ref in ipairs(references()) do
            local want = ref[2]
            local consts
            if ref[3] then consts = same_constants(s, want) else consts = #s.k == #want.k end
            if want and consts and s.code == want.code and s.nparams == want.nparams
                    and s.vararg == want.vararg and s.nups == want.nups then
                plan = { ref[1], s.k[1], ref[3] or false }
                break
            end
        end
    end
    plans[fn] = plan
    return plan
end

-- The id of the pool a route with `plan` names now, or -1.
local function named_pool(fn, plan)
    if rawget(POOL_PROXY, "__call") ~= pool_call then return -1 end
    if plan[3] and (rawget(Response, "ok") ~= response_ok
            or rawget(Response, "__index") ~= Response) then
        return -1
    end
    local _, v = getupvalue(fn, 1)
    if plan[1] == BY_FIELD then
        if type(v) == "table" and getmetatable(v) == nil then
            v = rawget(v, plan[2])
        else
            v = nil
        end
    end
    if getmetatable(v) == POOL_PROXY and mtype(rawget(v, "_id")) == "integer" then
        return rawget(v, "_id")
    end
    return -1
end

-- For each route function given: the id of the pool it passes its requests to, as of now;
-- -1 when it has a pass-through shape but what it names is not a pool proxy (now), -2 when
-- it is not a pass-through route. (`retry` true: the same for the routes that ask again.)
local function shaped_pools(retry, ...)
    local out = {}
    local fgen_mt = state.FGEN_MT
    for i = 1, select("#", ...) do
        local fn = select(i, ...)
        local plan = getmetatable(fn) ~= fgen_mt and plan_of(fn)
        local id = -2
        if plan and plan[3] == retry then
            id = named_pool(fn, plan)
        elseif not retry and getmetatable(fn) == fgen_mt then
            id = state.v2.passthrough_pool(fn)  -- (mcp_funcgen.lua)
        end
        out[i] = id
    end
    return unpack(out, 1, select("#", ...))
end

local function passthrough_pools(...)
    return shaped_pools(false, ...)
end
state.retry_pools = function(...)
    return shaped_pools(true, ...)
end

-- retry_start(handle, hook, cmd, line, key, raw, status, code, vlen, mode, elapsed, rtype,
-- be): start a route of the retry shape whose first pool call Python made, with the answer
-- (not ok) it got. For that first call only, the route's upvalue (the pool, the table holding
-- it, or _ENV) reads as a stand-in that puts the variable back and returns the answer: the
-- rest of the route then runs on what the variable holds now, as it would have.
state.retry_start = function(handle, hook, cmd, line, key, raw, status, code, vlen, mode,
        elapsed, rtype, be)
    local plan = plans[hook]
    local res = new_response(raw, status, code, vlen, mode, elapsed, rtype, be)
    local _, saved = getupvalue(hook, 1)
    local used = false
    local standin = setmetatable({}, { __call = function()
        used = true
        setupvalue(hook, 1, saved)
        return res
    end })
    if plan[1] == BY_FIELD then standin = { [plan[2]] = standin } end
    local r = setmetatable({ _h = handle, _cmd = cmd, _line = line, _key = key }, Request)
    local co = idle_coroutine()
    setupvalue(hook, 1, standin)
    local ok, a, kind, id, rr, x1, x2, x3, x4 = co_resume(co, hook, r)
    if not used then setupvalue(hook, 1, saved) end
    return step(handle, co, nil, ok, a, kind, id, rr, x1, x2, x3, x4)
end

-- What the v2 chunk (mcp_funcgen.lua, run next in this VM) shares with this one.
state.shared = {
    Y = Y, DONE = DONE, Request = Request, Response = Response, POOL_PROXY = POOL_PROXY,
    KEYED = KEYED, rewrite_noreply = rewrite_noreply, new_response = new_response,
    content = content, YIELD_POOL = YIELD_POOL, YIELD_INTERNAL = YIELD_INTERNAL,
    YIELD_AWAIT = YIELD_AWAIT, MODE_NOREPLY = MODE_NOREPLY, shape = shape, parse = parse,
    int64 = int64, request_value = request_value,
}

return resume, fail, resume_await, abandon, start_batch, resume_batch, take, passthrough_pools
