-- route_null{}: answers every request with its command's "nothing there" reply (EN, NS, NF,
-- END, NOT_STORED, NOT_FOUND) without asking any backend.
function route_null_conf(t, ctx)
    return t
end

function route_null_start(a, ctx, fgen)
    local null_reply = routelib.null_reply
    fgen:ready({ n = ctx:label(), f = function(rctx)
        return function(r) return null_reply(r) end
    end })
end
