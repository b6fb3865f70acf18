-- spec/mcp-v2.md's handler written in Lua, unchanged.
function route_hello_conf(t, ctx)
    t.msg = "SERVER_ERROR hello from " .. ctx:label() .. "\r\n"
    return t
end

function route_hello_start(t, ctx, fgen)
    fgen:ready({ n = ctx:label(), a = t.msg, f = function(rctx, msg)
        return function(r) return msg end
    end })
end

register_route_handlers({ "hello" })
