-- mcp.time_real_millis(), mcp.time_mono_millis() (spec v2 3.16): route VM only.
function mcp_config_pools()
    return { config_vm = tostring(mcp.time_real_millis) .. " " .. tostring(mcp.time_mono_millis) }
end

function mcp_config_routes(c)
    mcp.attach(mcp.CMD_MG, function(r)
        local out = math.type(mcp.time_real_millis()) .. " " .. mcp.time_real_millis() .. " "
            .. math.type(mcp.time_mono_millis()) .. " " .. mcp.time_mono_millis() .. " "
            .. c.config_vm
        return "VALUE " .. r:key() .. " 0 " .. #out .. "\r\n" .. out .. "\r\nEND\r\n"
    end)
end
