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
        local ttl_flag = "T" .. ttl
        -- r:flag_set where the request has it (API v2); else replace or add the T token
        local function set_flag(r)
            if r.flag_set then
                r:flag_set("T", ttl)
            elseif r:has_flag("T") then
                r:flag_token("T", ttl_flag)
            else
                local n = r:ntokens()
                r:token(n, r:token(n) .. " " .. ttl_flag)
            end
        end
        return function(r)
            local cmd = r:command()
            if cmd == MS then
                set_flag(r, ttl)
            elseif cmd == SET or cmd == ADD or cmd == CAS then
                r:token(4, ttl)
            else
                return "SERVER_ERROR invalid command for route_ttl\r\n"
            end
            return rctx:enqueue_and_wait(r, h)
        end
    end })
end
