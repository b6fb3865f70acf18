-- The request and response methods that 1.6.45 adds (spec v2 5.1-5.6). The key of each
-- client request names a scenario; the route answers `RES <values>\r\n` with what the
-- methods returned (errors as `E:<message>`, without a position). Run unchanged by
-- memcached 1.6.45's proxy to record the expected lines. The test stores "hi" under the
-- keys rs, rsblank, rshd, rsclose and mr first (one handle carries one request per run).
function mcp_config_pools()
    mcp.backend_connect_timeout(0.5)
    local b1 = mcp.backend("b1", "127.0.0.1", os.getenv("MCP_B1"))
    local down = mcp.backend("down", "127.0.0.1", os.getenv("MCP_DOWN"))
    return { p = mcp.pool({ b1 }), down = mcp.pool({ down }) }
end

local function show(...)
    local out = {}
    for i = 1, select("#", ...) do
        local v = select(i, ...)
        if type(v) == "string" then
            v = "'" .. v:gsub("\r", "\\r"):gsub("\n", "\\n") .. "'"
        elseif type(v) == "table" or type(v) == "userdata" then
            v = "obj"
        end
        out[i] = tostring(v)
    end
    return table.concat(out, ",")
end

local function try(f, ...)
    local t = table.pack(pcall(f, ...))
    if not t[1] then
        return "E:" .. (tostring(t[2]):gsub("^[^:]*:%d+: ", ""):gsub("\r\n", "\\r\\n"))
    end
    return show(table.unpack(t, 2, t.n))
end

local S = {}

S.tokint = function(r)  -- set tokint 12 -3 5
    local o = {}
    for n = 1, 6 do o[n] = show(r:token_int(n)) end
    o[7] = show(r:token_int())
    o[8] = show(r:token_int(0))
    return o
end

S.tok = function(r)  -- mg tok a b
    return { show(r:token(1), r:token(2), r:token(3), r:token(4), r:token(5), r:token(0)) }
end

S.ftokint = function(r)  -- mg ftokint Oabc N10 F59 q
    local o = {}
    for i, f in ipairs({ "O", "N", "F", "q", "Z" }) do o[i] = show(r:flag_token_int(f)) end
    o[#o + 1] = try(r.flag_token_int, r, "OO")
    o[#o + 1] = try(r.flag_token_int, r, "1")
    o[#o + 1] = show(r:flag_set("F", 591), r:flag_token_int("F"))
    o[#o + 1] = show(r:raw_line())
    return o
end

S.flagedit = function(r)  -- mg flagedit s t Oabc N10
    local o = {}
    local function step(v) o[#o + 1] = show(v, r:raw_line()) end
    step(r:flag_add("O", "x"))
    step(r:flag_add("q"))
    step(r:flag_add("E", 123))
    step(r:flag_set("N", "20"))
    step(r:flag_set("T", 30))
    step(r:flag_replace("s", "f"))
    step(r:flag_replace("z", "h", "1"))
    step(r:flag_del("t"))
    step(r:flag_del("t"))
    o[#o + 1] = show(r:has_flag("h"), r:has_flag("t"), r:flag_token("h"), r:ntokens())
    return o
end

S.flagerr = function(r)  -- mg flagerr v
    return {
        try(r.flag_add, r, "OO"), try(r.flag_add, r, ""), try(r.flag_add, r, "1"),
        try(r.flag_add, r, 5), try(r.flag_add, r, "O", {}), try(r.flag_set, r, "{"),
        try(r.flag_replace, r, "v", "11"), try(r.flag_replace, r, "v", "@"),
        try(r.flag_del, r, "vv"), try(r.flag_add, r, "O", 2.0), try(r.flag_set, r, "O", true),
        show(r:raw_line()),
    }
end

S.flagq = function(r)  -- mg flagq v N50 Oexists T73 c
    return { show(r:flag_set("O"), r:raw_line()), show(r:flag_del("N"), r:raw_line()),
        show(r:flag_set("k", ""), r:raw_line()) }
end

S.flaglong = function(r)  -- mg flaglong v
    return { show(r:flag_add("O", string.rep("x", 600)), r:raw_line()),
        show(r:flag_set("v", string.rep("y", 600)), r:raw_line()) }
end

S.clflag = function(r)  -- get clflag
    return { show(r:flag_add("O", "x")), show(r:flag_del("O")), show(r:raw_line()) }
end

S.raw = function(r)  -- ms raw 2 T5 / hi
    return { show(r:raw_line(), r:raw_value()) }
end

S.rawmg = function(r)  -- mg rawmg v (with either terminator)
    return { show(r:raw_line(), r:raw_value()) }
end

S.trimraw = function(r)  -- mg /foo/trimraw v
    return { show(r:raw_line()) }
end

S.mkreq = function(r)  -- mg mkreq
    local long = "mg a" .. string.rep(" v", 250) .. "\r\n"
    local a = mcp.request("ms a 2\r\n", "hi\r\n")
    local b = mcp.request("ms b 2\r\n", a)
    local v = mcp.request("version\r\n")
    return {
        try(mcp.request, "mg foo"), try(mcp.request, "mg foo\n"), try(mcp.request, long),
        try(mcp.request, "xx foo\r\n"), try(mcp.request, "ms foo 2\r\n", "hi"),
        show(mcp.request("ms foo 5\r\n", "hi\r\n"):raw_value()), show(b:raw_value()),
        show(v:command(), v:key(), v:raw_line(), v:raw_value()),
        try(mcp.request, "ms foo 2\r\n", 5), try(mcp.request, "ms foo 2\r\n", "5\r\n"),
    }
end

S.mkreqodd = function(r)  -- mg mkreqodd
    return { try(mcp.request, "ms foo 2\r\n", {}), try(mcp.request, "ms foo 2\r\n", true) }
end

S.rs = function(r, rctx, h)  -- mg rs v k t Oab
    local res = rctx:enqueue_and_wait(r, h[1])
    local c = mcp.request("ms c 2\r\n", res)
    return { show(res:line(), res:raw_string(), res:code(), res:vlen()),
        show(r:match_res(res)), show(c:raw_value()),
        try(res.flag_blank, res, "OO"), try(res.flag_blank, res, "1"),
        show(res:flag_blank("Z"), res:flag_blank("k"), res:line(), res:raw_string()) }
end

S.rsblank = function(r, rctx, h)  -- mg rsblank k Oab t: returns the reply, O blanked
    local res = rctx:enqueue_and_wait(r, h[1])
    res:flag_blank("O")
    return res
end

S.rshd = function(r, rctx, h)  -- mg rshd
    local res = rctx:enqueue_and_wait(r, h[1])
    local miss = rctx:enqueue_and_wait(mcp.request("mg rsmiss v\r\n"), h[2])
    local get = rctx:enqueue_and_wait(mcp.request("get rshd\r\n"), h[3])
    return { show(res:line(), res:raw_string(), res:flag_blank("O"), r:match_res(res)),
        show(miss:line(), miss:raw_string(), miss:code()),
        show(get:line(), get:raw_string(), get:flag_blank("V"), get:code()) }
end

S.rsclose = function(r, rctx, h)  -- mg rsclose v
    local res = rctx:enqueue_and_wait(r, h[1])
    local kept
    do
        local res2 <close> = rctx:enqueue_and_wait(mcp.request("mg rsclose v\r\n"), h[2])
        kept = res2
    end
    res:close()
    return { show(res:code(), res:ok(), res:hit(), res:line(), res:raw_string(), res:vlen()),
        show(res:close(), res:code(), kept:code(), kept:raw_string()) }
end

S.rsclosed = function(r, rctx, h)  -- mg rsclosed v: returns a closed response
    local res = rctx:enqueue_and_wait(r, h[1])
    res:close()
    return res
end

S.mr = function(r, rctx, h)  -- ms mr 2 T99 O9876 k c / hi
    local res = rctx:enqueue_and_wait(r, h[1])
    local function m(line, x) return show(mcp.request(line):match_res(x or res)) end
    local plain = rctx:enqueue_and_wait(mcp.request("mg mr\r\n"), h[2])
    local konly = rctx:enqueue_and_wait(mcp.request("mg mr k\r\n"), h[3])
    local oonly = rctx:enqueue_and_wait(mcp.request("mg mr O77\r\n"), h[4])
    return { show(r:match_res(res)), m("mg other k\r\n"), m("mg mr O4321\r\n"),
        m("mg mr O9876\r\n"), m("mg mr\r\n"), m("mg mr\r\n", plain), m("mg mr O5\r\n", konly),
        m("mg mr O\r\n", oonly), m("mg mr O77\r\n", oonly), m("mg mr O7\r\n", oonly),
        try(r.match_res, r, "x"), try(r.match_res, r, r) }
end

S.mkreqbad = function(r, rctx)  -- mg mkreqbad: [R] (crashes 1.6.45: not for recording)
    return { try(mcp.request, "ms foo 2\r\n", rctx) }
end

S.misc = function(r, rctx, h)  -- mg misc q v
    local ms = mcp.request("ms Tkey 2 T5 F1\r\n", "hi\r\n")
    local mgo = mcp.request("mg Okey v\r\n")
    local cl = mcp.request("get misc\r\n")
    return { try(r.token_int, r, "2"), try(r.token_int, r, 1.5), show(cl:flag_token_int("O")),
        show(ms:flag_set("T", 9), ms:flag_del("F"), ms:flag_add("T"), ms:raw_line(), ms:key()),
        show(mgo:flag_add("O", 1), mgo:raw_line(), mgo:flag_del("k"), mgo:flag_del("O")),
        show(mgo:raw_line(), mgo:key()) }
end

S.quiet = function(r, rctx, h)  -- mg quiet q v k
    local before = r:raw_line()
    local res = rctx:enqueue_and_wait(r, h[1])
    return { show(before, r:raw_line(), r:has_flag("q"), res:raw_string()) }
end

S.failed = function(r, rctx, h)  -- mg failed v: a result from a backend that is down
    local res = rctx:enqueue_and_wait(r, h.down)
    return { show(res:ok(), res:hit(), res:code(), res:vlen(), res:line(), res:raw_string()),
        show(r:match_res(res)), show(res:flag_blank("O")) }
end

function mcp_config_routes(pools)
    local fg = mcp.funcgen_new()
    local h = {}
    for i = 1, 4 do h[i] = fg:new_handle(pools.p) end
    h.down = fg:new_handle(pools.down)
    fg:ready({ n = "reqapi", f = function(rctx)
        return function(r)
            local s = S[r:key()] or S[string.match(r:key(), "[^/]*$")]
            if s == nil then return "SERVER_ERROR no scenario\r\n" end
            local out = s(r, rctx, h)
            if type(out) ~= "table" or out[1] == nil then return out end
            return "RES " .. table.concat(out, " | ") .. "\r\n"
        end
    end })
    for _, c in ipairs({ mcp.CMD_MG, mcp.CMD_MS, mcp.CMD_GET, mcp.CMD_SET }) do
        mcp.attach(c, fg)
    end
end
