-- route_{{ cookiecutter.name }}: {{ cookiecutter.description }}.
--
--   route_{{ cookiecutter.name }}{ children = { "main", "backup" } }
--
-- As generated: ask the children in order and answer with the first result that is not an
-- error (a hit or a miss); if every child fails, answer with the last failure. Edit it to
-- make it yours. Only the two functions below may be global: the route library runs every
-- handler's file in one Lua state, so helpers are local.

-- Config VM, once per use in a config: check the arguments (an error names this file and
-- line) and return the table each worker gets.
function route_{{ cookiecutter.name }}_conf(t, ctx)
    if type(t.children) ~= "table" or #t.children == 0 then
        error("route_{{ cookiecutter.name }} (" .. ctx:label() .. "): children must be a list of pools")
    end
    return t
end

-- Worker VM, once per slot: the route function, called once per request.
local function route_{{ cookiecutter.name }}_f(rctx, handles)
    return function(r)
        local res = nil
        for _, h in ipairs(handles) do
            res = rctx:enqueue_and_wait(r, h)
            if res ~= nil and res:ok() then
                return res
            end
        end
        return res
    end
end

-- Worker VM, once per use in a config: `children` now holds pools (or other handlers).
function route_{{ cookiecutter.name }}_start(a, ctx, fgen)
    local handles = {}
    for _, child in ipairs(a.children) do
        handles[#handles + 1] = fgen:new_handle(child)
    end
    fgen:ready({ a = handles, n = ctx:label(), f = route_{{ cookiecutter.name }}_f })
end
