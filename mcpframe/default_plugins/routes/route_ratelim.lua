-- route_ratelim{ child = C, limit = N, fillrate = N, tickrate = 1000, global = false,
-- fail_until_limit = false, stats = false, stats_name = label }: a token bucket in front of
-- the child; a request without a token gets its command's null reply (EN, NS, ...).
-- fail_until_limit = true inverts it: null replies while tokens last, then the child.
-- Experimental upstream.
function route_ratelim_conf(t, ctx)
    local opt = routelib.opt
    routelib.require_opt(t, "child", "child")
    if t.limit == nil then error("must specify limit to route_ratelim", 0) end
    if t.fillrate == nil then error("must specify fillrate to route_ratelim", 0) end
    opt(t, "limit", "count")
    opt(t, "fillrate", "count")
    opt(t, "tickrate", "count", 1000)
    opt(t, "global", "boolean")
    opt(t, "fail_until_limit", "boolean")
    opt(t, "stats", "boolean")
    opt(t, "stats_name", "string")
    if t.stats then
        t.stats_id = ctx:get_stats_id((t.stats_name or ctx:label()) .. "_limits")
    end
    if t.global then
        if mcp.ratelim_global_tbf == nil then
            error("mcp.ratelim_global_tbf is not available in this mcpframe", 0)
        end
        t.tbf_global = mcp.ratelim_global_tbf({ limit = t.limit, fillrate = t.fillrate,
            tickrate = t.tickrate })
    end
    return t
end

function route_ratelim_start(a, ctx, fgen)
    local o = { h = fgen:new_handle(a.child), invert = a.fail_until_limit,
        stats_id = a.stats_id }
    if a.global then
        o.take = a.tbf_global
    else
        if mcp.ratelim_tbf == nil then
            error("mcp.ratelim_tbf is not available in this mcpframe", 0)
        end
        o.take = mcp.ratelim_tbf({ limit = a.limit, fillrate = a.fillrate,
            tickrate = a.tickrate })
    end
    fgen:ready({ n = ctx:label(), a = o, f = function(rctx, o)
        local take, h, invert, sid = o.take, o.h, o.invert, o.stats_id
        local null_reply, stat = routelib.null_reply, mcp.stat
        return function(r)
            local got = take(1)
            if invert then got = not got end
            if got then return rctx:enqueue_and_wait(r, h) end
            if sid then stat(sid, 1) end
            return null_reply(r)
        end
    end })
end
