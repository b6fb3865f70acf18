-- route_ttl{ ttl = N, child = C }: sets the TTL of ms/set/add/cas requests to N, then sends
-- them to the child; other commands get SERVER_ERROR.
function route_ttl_conf(t, ctx)
    routelib.require_opt(t, "ttl", "integer")
    routelib.require_opt(t, "child", "child")
    local cmd = ctx:cmd()
    if cmd ~= mcp.CMD_ANY_STORAGE and cmd ~= mcp.CMD_MS and cmd ~= mcp.CMD_SET
        and cmd ~= mcp.CMD_ADD and cmd ~= mcp.CMD_CAS then
        error("invalid command for route_ttl", 0)
    end
    return t
end

function route_ttl_start(a, ctx, fgen)
    local o = { ttl = a.ttl, h = fgen:new_handle(a.child) }
    fgen:ready({ n = ctx:label(), a = o, f = function(rctx, o)
        local ttl, h = o.ttl, o.h
        local MS, SET, ADD, CAS = mcp.CMD_MS, mcp.CMD_SET, mcp.CMD_ADD, mcp.CMD_CAS
        return function(r)
            local cmd = r:command()
            if cmd == MS then
                r:flag_set("T", ttl)
            elseif cmd == SET or cmd == ADD or cmd == CAS then
                r:token(4, ttl)
            else
                return "SERVER_ERROR invalid command for route_ttl\r\n"
            end
            return rctx:enqueue_and_wait(r, h)
        end
    end })
end
