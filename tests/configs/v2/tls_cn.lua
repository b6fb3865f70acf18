-- rctx:tls_peer_cn() (spec v2 3.12): every mg answers the common name of the client's
-- certificate ("nil" without one).
function mcp_config_pools()
    return {}
end

function mcp_config_routes()
    local fg = mcp.funcgen_new()
    fg:ready({ n = "cn", f = function(rctx)
        return function(r)
            local cn = tostring(rctx:tls_peer_cn())
            return "VALUE " .. r:key() .. " 0 " .. #cn .. "\r\n" .. cn .. "\r\nEND\r\n"
        end
    end })
    mcp.attach(mcp.CMD_MG, fg)
end
