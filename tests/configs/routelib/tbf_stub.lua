-- A stand-in for mcp.ratelim_tbf / mcp.ratelim_global_tbf while mcpframe lacks them (used by
-- tests/routelib/test_ratelim.py only): a bucket of `limit` tokens that never refills and,
-- like memcached's, refuses when it holds exactly the amount asked for.
if mcp.ratelim_tbf == nil then
    function mcp.ratelim_tbf(o)
        local tokens = o.limit
        return function(n)
            if tokens > n then
                tokens = tokens - n
                return true
            end
            return false
        end
    end
    mcp.ratelim_global_tbf = mcp.ratelim_tbf
end
