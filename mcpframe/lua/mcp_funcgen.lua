-- API v2 in the route VM (spec v2 sections 2 and 3): function generators, their slots, the
-- request context `rctx`, and the driver that runs slots for Python.
--
-- Run right after mcp_routes.lua, in the same VM, with (mcp, state); it shares that chunk's
-- request and response objects, yield markers and noreply rewrite (state.shared). v1 routes
-- (plain functions given to mcp.attach) keep running there, unchanged.
--
-- How a request runs. Python calls `v2_start(task, fgen, cmd, line, key, nr, ...)` for the
-- requests of a loop turn that are attached to a funcgen. Each takes a free slot of its
-- funcgen (or generates one) and resumes the slot's coroutine with the request. The route
-- runs until it returns, or waits: rctx wait methods yield to the driver, which dispatches
-- the slot's queued handles (pool handles become SEND actions for Python, child funcgens run
-- at once in their own slots), and leaves the slot suspended until its wait condition holds
-- or a timer fires. Python sends the bytes, and calls `v2_events(sub, raw, status, ..., sub,
-- ...)` once per loop turn with every reply (and fired timer) that arrived; the driver files
-- each under its slot and handle, runs the handle's callback, and resumes the slots whose
-- waits are over. Every driver call answers a flat list of actions, each as many values as its
-- kind says (state.action_widths, which Python reads):
--
--   SEND     task sub pool line value vh key mode cmd   (an edited or built request)
--   SEND_REQ task sub pool h      (the client request of task handle h, unchanged: Python
--                                  holds its bytes)
--   SEND_OWN task pool            (SEND_REQ of the task's own request, whose id is the task's
--                                  handle)
--   TIMER    task token seconds
--   REPLY    task kind a b c d released   (kind DONE_RES raw status code mode | DONE_STR s |
--            DONE_BAD | DONE_ERR msg traceback | START_FAIL msg; released: the slot is free)
--   REPLY_EV task i released      (the route returned, unedited, the response made from the
--                                  reply at 1-based position i of this `events` call, whose
--                                  raw, status, code and mode Python still holds)
--   REPLY_OWN i                   (REPLY_EV, released, for the reply to the task's SEND_OWN:
--                                  the task is that reply's id)
--   RELEASE  task                 (the slot is free again: the request stops counting as active)
--   LOG      task msg             (a proxy_error log line: a callback or a child raised)
--
-- A slot is released when its route has returned and every request it dispatched (its
-- children's included) has completed (spec 3.15); results that arrive after the route
-- returned still run their callbacks and are then dropped.
local mcp, state = ...
local sh = state.shared

local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local traceback = debug.traceback
local setmetatable, getmetatable, type, select, tostring, pcall = setmetatable, getmetatable,
    type, select, tostring, pcall
local tointeger, mtype = math.tointeger, math.type
local ssub, unpack = string.sub, table.unpack

local Y, DONE = sh.Y, sh.DONE
local Request, Response, POOL_PROXY, KEYED = sh.Request, sh.Response, sh.POOL_PROXY, sh.KEYED
local rewrite_noreply, new_response = sh.rewrite_noreply, sh.new_response
local YIELD_POOL, YIELD_INTERNAL = sh.YIELD_POOL, sh.YIELD_INTERNAL
local codes = state.codes
local DONE_RES, DONE_STR, DONE_BAD, DONE_ERR = codes.DONE_RES, codes.DONE_STR, codes.DONE_BAD,
    codes.DONE_ERR
local START_FAIL = 15
codes.START_FAIL = START_FAIL

local A_SEND, A_TIMER, A_REPLY, A_RELEASE, A_LOG, A_SEND_REQ, A_REPLY_EV, A_SEND_OWN,
    A_REPLY_OWN = 1, 2, 3, 4, 5, 6, 7, 8, 9
codes.A_SEND, codes.A_TIMER, codes.A_REPLY, codes.A_RELEASE, codes.A_LOG, codes.A_SEND_REQ,
    codes.A_REPLY_EV, codes.A_SEND_OWN, codes.A_REPLY_OWN = A_SEND, A_TIMER, A_REPLY,
    A_RELEASE, A_LOG, A_SEND_REQ, A_REPLY_EV, A_SEND_OWN, A_REPLY_OWN
-- Values per action (kind included), by kind.
state.action_widths = { 10, 4, 8, 2, 3, 5, 4, 3, 2 }
-- The pool id Python reads as "the proxy's own cache" (mcp.internal_handler, mcp.internal).
local INTERNAL_POOL = -1
codes.INTERNAL_POOL = INTERNAL_POOL

-- Yield kinds of rctx methods (after Y, like the v1 calls). YIELD_OWN: enqueue_and_wait's
-- common case, the client's request on a slot's only handle, a pool (see `enqueue_and_wait`).
local YIELD_WAIT, YIELD_SLEEP, YIELD_OWN = 20, 21, 22

local WAIT_ANY, WAIT_OK, WAIT_GOOD, WAIT_FASTGOOD = mcp.WAIT_ANY, mcp.WAIT_OK, mcp.WAIT_GOOD,
    mcp.WAIT_FASTGOOD
mcp.WAIT_RESUME = true
local RES_GOOD, RES_OK, RES_ANY = mcp.RES_GOOD, mcp.RES_OK, mcp.RES_ANY
local RES_ERROR = 128  -- memcached's internal bit on failed results (RES_ANY is also set)
local MCMC_CODE_END, MCMC_CODE_SERVER_ERROR = mcp.MCMC_CODE_END, mcp.MCMC_CODE_SERVER_ERROR
local STATUS_FAILED = 1
local MAX_STRING_REPLY = 1024

-- Handle states within one run of a slot (spec 3.2).
local IDLE, QUEUED, ACTIVE, COMPLETE, WAITED = 0, 1, 2, 3, 4
-- A v1 pool call or mcp.internal made from a funcgen route: its reply resumes the route.
local DIRECT = -1

-- Errors: `msg` at the caller `level` frames up, or without a position when that frame is
-- one of the drivers (a tail call from the route left no frame of its own).
local getinfo = debug.getinfo  -- (a config may replace the global `debug`, as routelib does)
local SELF_SOURCE = getinfo(1, "S").source
local error = error
local function raise(msg, level)
    local info = getinfo(level + 1, "S")
    if info == nil or info.source == SELF_SOURCE or info.what == "C" then
        error(msg, 0)
    end
    error(msg, level + 1)
end

---------------------------------------------------------------------------
-- actions for Python

local out, nout = {}, 0

-- One function per width: each value costs a store here and a conversion in Python, so an
-- action carries only what its kind needs.
local function emit2(a, task)
    local n = nout
    out[n + 1], out[n + 2] = a, task
    nout = n + 2
end

local function emit3(a, task, x1)
    local n = nout
    out[n + 1], out[n + 2], out[n + 3] = a, task, x1
    nout = n + 3
end

local function emit4(a, task, x1, x2)
    local n = nout
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = a, task, x1, x2
    nout = n + 4
end

local function emit5(a, task, x1, x2, x3)
    local n = nout
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = a, task, x1, x2, x3
    nout = n + 5
end

local function emit8(a, task, x1, x2, x3, x4, x5, x6)
    local n = nout
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = a, task, x1, x2, x3
    out[n + 6], out[n + 7], out[n + 8] = x4, x5, x6
    nout = n + 8
end

local function emit10(a, task, x1, x2, x3, x4, x5, x6, x7, x8)
    local n = nout
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = a, task, x1, x2, x3
    out[n + 6], out[n + 7], out[n + 8], out[n + 9], out[n + 10] = x4, x5, x6, x7, x8
    nout = n + 10
end

-- (`out` is kept from call to call, so that it does not grow from empty each time; what
-- lies past `nout` is stale.)
local function flush()
    local n = nout
    nout = 0
    return unpack(out, 1, n)
end

---------------------------------------------------------------------------
-- function generators

local FGEN = {}
FGEN.__index = FGEN
FGEN.__name = "mcp.funcgen"
state.FGEN_MT = FGEN

local RCTX = {}
RCTX.__index = RCTX
RCTX.__name = "mcp.rcontext"

local INTERNAL_BE = { __name = "mcp.internal_be" }
mcp.internal_handler = setmetatable({}, INTERNAL_BE)

local K_POOL, K_INTERNAL, K_CHILD = 1, 2, 3

-- References to a funcgen from hooks, handles and routers (spec 2.7): when the last one is
-- dropped (its hooks replaced), it is closed: it finishes what it runs, and can never be
-- attached or used as a handle again.
local function fgen_ref(fg, delta)
    if getmetatable(fg) ~= FGEN then return end
    local n = fg._refs + delta
    fg._refs = n
    if n <= 0 and delta < 0 then fg._closed = true end
end
state.fgen_ref = fgen_ref

-- Every funcgen made (weakly), for `stats proxyfuncs`.
local made = setmetatable({}, { __mode = "k" })
state.fgens_made = made

-- 1.6.45's clocks, in the route VM only (spec v2 3.16): integer milliseconds of the wall
-- clock and of the monotonic clock (Python's, state.now_ms and state.mono_ms).
local now_ms, mono_ms = state.now_ms, state.mono_ms

function mcp.time_real_millis()
    return now_ms()
end

function mcp.time_mono_millis()
    return mono_ms()
end

function mcp.funcgen_new()
    state.api_v2 = true  -- (mcp.request's error texts follow 1.6.45 from now on)
    -- _kinds/_targets: per handle (0-based), what it names; _free: LIFO of idle slots.
    local fg = setmetatable({ _kinds = {}, _targets = {}, _nh = 0, _ready = false, _free = {},
        _nfree = 0, _nslots = 0, _all = {}, _name = "anonymous", _u = 0, _refs = 0,
        _pressure = 0 }, FGEN)
    made[fg] = true
    return fg
end

function FGEN:new_handle(obj)
    if self._ready then
        raise("cannot modify function generator after calling ready", 2)
    end
    local mt = getmetatable(obj)
    local kind, target
    if mt == POOL_PROXY then
        kind, target = K_POOL, obj._id
    elseif mt == INTERNAL_BE then
        kind = K_INTERNAL
    elseif mt == FGEN then
        if obj._router then
            raise("cannot assign a router to a handle in new_handle", 2)
        end
        if obj._closed then
            raise("cannot use a replaced function in new_handle", 2)
        end
        fgen_ref(obj, 1)
        kind, target = K_CHILD, obj
    else
        raise("invalid argument to new_handle", 2)
    end
    local h = self._nh
    self._kinds[h], self._targets[h] = kind, target
    self._nh = h + 1
    return h
end

local new_slot

function FGEN:ready(opts)
    if type(opts) ~= "table" then
        raise("bad argument #1 to 'ready' (table expected, got "
            .. (opts == nil and "no value" or type(opts)) .. ")", 2)
    end
    if self._ready then
        raise("cannot modify function generator after calling ready", 2)
    end
    if type(opts.f) ~= "function" then
        raise("Must specify generator function ('f') to fgen:ready", 2)
    end
    local u = opts.u
    if type(u) == "number" then
        u = tointeger(u)
        if u == nil or u < 1 or u > 255 then
            raise("user obj ('u') in fgen:ready must be between 1 and 255", 2)
        end
        self._u = u
    end
    if type(opts.n) == "string" then self._name = ssub(opts.n, 1, 80) end
    self._f, self._a = opts.f, opts.a
    -- A child funcgen must be ready before its parent (its slots are made with the parent's).
    for h = 0, self._nh - 1 do
        if self._kinds[h] == K_CHILD and not self._targets[h]._ready then
            raise("failed to generate request slot during queue_assign()", 2)
        end
    end
    self._ready = true
    -- The first slot is made now: the generator's errors are ready's errors.
    local ok, slot = pcall(new_slot, self)
    if not ok then
        self._ready = false
        error(slot, 0)
    end
    self._nfree = 1
    self._free[1] = slot
end

---------------------------------------------------------------------------
-- slots

-- A slot's coroutine runs requests one after another; it yields DONE with the route's
-- result, and is resumed with the next request. One body for every slot, given its route
-- once (`slot_coroutine`): the route is then a local on the coroutine's own stack, not a
-- closure and an upvalue per slot for each request to read.
local function slot_body(route)
    local r = co_yield()
    while true do
        local res = route(r)
        r = co_yield(DONE, res)
    end
end

local function slot_coroutine(route)
    local co = co_create(slot_body)
    co_resume(co, route)
    return co
end

-- A slot: its rctx (the slot itself: rctx methods find everything on it), its route, its
-- coroutine, and the state of one run. Fields: fg, route, co, top (the top-level slot of a
-- run: itself, or the slot whose child it is), parent/ph (the parent slot and handle a child
-- reports to), st/req/res/flag/cb (per handle), child (pinned child slots per handle),
-- active (handles dispatched and not complete), pending (top only: requests of the whole
-- tree in flight, children running included), returned, task, waiting (a wait in
-- progress: mode, count, got, handle), token (of its timer), uobjs; rq (top-level slots: the
-- request object, refilled for each request), pool0 (the pool of its only handle, if so),
-- has_child (a child slot was ever pinned), own (see below).
--
-- `own`: handle 0 of a slot whose only handle is a pool, used the common way (the route's
-- first enqueue_and_wait, for its client request unedited, no timeout), keeps its state in
-- this one field instead of st/req/res/flag[0] and the active and pending counts: true while
-- the request is in flight, then the response; false otherwise (never nil: a field present
-- in the table is read without going through its metatable). `fast` says whether that way
-- is open: a slot whose only handle is a pool, without user objects (`plain`), whose handle
-- never had a callback and is still idle in this run (read instead of cb[0] and st[0]: two
-- tables fewer for each request to touch). Most routes never read more than the result
-- enqueue_and_wait returns, so the per-handle state is written only when an rctx method
-- needs it (`materialize`, called first by each method that reads or changes handles): what
-- it writes then is what the general path would have left. (1.6.45's rctx keeps that state
-- per handle in C, where it costs nothing.)
--
-- Slots made so far (read by proxy/hooks.py: plans of routers and failovers are made again
-- only when a new slot may have changed what a function generator does).
local slots_made = { n = 0 }

new_slot = function(fg)
    slots_made.n = slots_made.n + 1
    local slot = setmetatable({ fg = fg, st = {}, req = {}, res = {}, flag = {}, cb = {},
        child = {}, active = 0, pending = 0, returned = false, uleft = fg._u, uobjs = {},
        w = {}, own = false, fast = false }, RCTX)
    for h = 0, fg._nh - 1 do slot.st[h] = IDLE end
    slot.top = slot
    local route = fg._f(slot, fg._a)
    if type(route) ~= "function" then
        error("function generator didn't return a function", 0)
    end
    slot.route = route
    slot.co = slot_coroutine(route)
    -- The pool of its only handle (handles are fixed once the funcgen is ready), for the
    -- inline wait in `stepped`.
    if fg._nh == 1 and fg._kinds[0] == K_POOL then
        slot.pool0 = fg._targets[0]
        -- (and with no user objects, a run that took the inline paths from start to end
        -- leaves only handle 0 and the task to reset: see `stepped`)
        slot.plain = fg._u == 0
        slot.fast = slot.plain and slot.cb[0] == nil  -- (the generator may have set one)
    end
    fg._nslots = fg._nslots + 1
    fg._all[fg._nslots] = slot
    return slot
end

local function take_slot(fg)
    local n = fg._nfree
    if n > 0 then
        local slot = fg._free[n]
        fg._free[n] = nil
        fg._nfree = n - 1
        return slot
    end
    fg._pressure, fg._deadline = 0, nil  -- keep the slots a burst made, for now
    return new_slot(fg)
end

local function reset(slot)
    slot.own = false
    slot.fast = slot.plain == true and slot.cb[0] == nil
    local st, req, res, flag = slot.st, slot.req, slot.res, slot.flag
    for h = 0, slot.fg._nh - 1 do
        st[h], req[h], res[h], flag[h] = IDLE, nil, nil, nil
    end
    slot.active, slot.pending, slot.returned = 0, 0, false
    slot.waiting, slot.token, slot.task = nil, nil, nil
    slot.sleeping = nil
    local uobjs = slot.uobjs
    for i = 1, #uobjs do
        local o = uobjs[i]
        if getmetatable(o) == Response then
            o.raw = nil
        else
            o._value, o._vh = nil, nil
        end
    end
    if slot.broken then
        slot.broken = nil
        slot.co = slot_coroutine(slot.route)
    end
    if slot.has_child then
        for _, c in pairs(slot.child) do reset(c) end
    end
end

-- `quiet`: the REPLY action just emitted says so already.
-- Idle slot trimming (spec 2.6, 1.6.45's release-build numbers): while more than about half
-- of a funcgen's slots are free at each release, "pressure" rises (else it halves); once it
-- passes PRESSURE_MAX a deadline is set WAIT seconds ahead, and after it each such release
-- drops its slot instead of keeping it (pressure falls by PRESSURE_DROP each time). Making a
-- slot resets both. A burst's slots stay for at least a minute, then drain towards one.
-- (state.slot_trim: tests change the numbers.)
local trim = { pressure_max = 5000, pressure_drop = 200, wait = 60 }
state.slot_trim = trim
local os_time = os.time

local drop_slot
drop_slot = function(fg, slot)
    for _, child in pairs(slot.child) do drop_slot(child.fg, child) end  -- pinned with it
    local all, n = fg._all, fg._nslots
    for i = 1, n do
        if all[i] == slot then
            all[i] = all[n]
            all[n] = nil
            break
        end
    end
    fg._nslots = n - 1
end

-- A release while more than about half of `fg`'s slots are free: pressure rises; false
-- when the slot released is to be dropped.
local function keep_idle(fg)
    local p = fg._pressure
    fg._pressure = p + 1
    if p > trim.pressure_max then
        local now = os_time()
        if fg._deadline == nil then fg._deadline = now + trim.wait end
        fg._pressure = fg._pressure - trim.pressure_drop
        -- (the last slot is always kept: 1.6.45 may drop it, to make it again next)
        if now >= fg._deadline and fg._nslots > 1 then return false end
    end
    return true
end

-- The free list takes the reset slot `top` back, or it is dropped (trimming, above).
local function shelve(top)
    local fg = top.fg
    local n = fg._nfree
    if n > fg._nslots // 2 - 1 then
        if not keep_idle(fg) then return drop_slot(fg, top) end
    else
        -- (pressure halves and the deadline goes; a deadline is only ever set while the
        -- pressure is above zero, so at zero there is nothing to write)
        local p = fg._pressure
        if p ~= 0 then fg._pressure, fg._deadline = p >> 1, nil end
    end
    n = n + 1
    fg._free[n] = top
    fg._nfree = n
end

local function release(top, quiet)
    local task = top.task
    reset(top)
    shelve(top)
    if not quiet then emit2(A_RELEASE, task) end
end

---------------------------------------------------------------------------
-- results

-- Sub-request ids and timer tokens count down from -1; the request a top-level slot with one
-- handle sends first takes its task's handle (a positive number) as id, which Python then
-- need not be told (SEND_OWN).
-- sub-request id -> slot; sub_h[id] -> handle (DIRECT for v1 calls), absent for handle 0
-- (the common case: one key fewer to add to a table per request)
local subs = {}
local sub_h = {}
local timers = {}     -- timer token -> slot
local next_id = 0
-- Slots to resume now, with their values (see `schedule`): parallel arrays.
local runq, runa, runb, nrun = {}, {}, {}, 0

local function new_id()
    next_id = next_id - 1
    return next_id
end

-- Resume `slot` with up to two values once the current step is over.
local function schedule(slot, a, b)
    slot.waiting = nil
    slot.token = nil
    local n = nrun + 1
    runq[n], runa[n], runb[n] = slot, a, b
    nrun = n
end

-- Does the result with `flag` count for a wait in `mode`? (spec 3.5)
local function counts(mode, flag)
    if mode == WAIT_ANY then return true end
    if mode == WAIT_GOOD then return flag == RES_GOOD end
    return flag == RES_GOOD or flag == RES_OK
end

-- A wait in progress: is it over? Returns true when the slot was scheduled.
local function check_wait(slot, resume_now)
    local w = slot.waiting
    if w == nil then return false end
    if w.handle ~= nil then
        local h = w.handle
        if slot.st[h] == COMPLETE or (resume_now and slot.st[h] == WAITED) then
            slot.st[h] = WAITED
            schedule(slot, slot.res[h])
            return true
        end
        if resume_now then
            schedule(slot, slot.res[h])
            return true
        end
        return false
    end
    if w.got >= w.count or slot.active == 0 or resume_now or w.fast then
        schedule(slot, w.got)
        return true
    end
    return false
end

-- Count the handle's result for a wait_cond in progress (not for a wait_handle).
local function count_result(slot, h)
    local w = slot.waiting
    if w == nil or w.handle ~= nil then return end
    slot.st[h] = WAITED
    local flag = slot.flag[h]
    if counts(w.mode, flag) then
        w.got = w.got + 1
        if w.mode == WAIT_FASTGOOD and flag == RES_GOOD then w.fast = true end
    end
end

-- `res` (a response, or a child's string) is the result of handle `h` of `slot`.
local function deliver(slot, h, res)
    local flag = RES_ANY
    local resume_now = false
    if getmetatable(res) == Response then
        -- (natural_flag, inline)
        if res.status ~= 0 then
            flag = RES_ANY + RES_ERROR
        elseif res._code == MCMC_CODE_END then
            flag = RES_OK
        else
            flag = RES_GOOD
        end
        local cb = slot.cb[h]
        if cb ~= nil then
            local ok, f, again = pcall(cb, res, slot.req[h])
            if not ok then
                emit3(A_LOG, slot.top.task, tostring(f))
            elseif mtype(f) == "integer" then
                if f == WAIT_GOOD then
                    flag = RES_GOOD
                elseif f == WAIT_OK then
                    flag = RES_OK
                end
                resume_now = again and true or false
            end
        end
    end
    slot.res[h], slot.flag[h] = res, flag
    slot.active = slot.active - 1
    local w = slot.waiting
    if w and not slot.returned then
        if w.handle == h then
            -- (the common case: enqueue_and_wait or wait_handle on this handle)
            slot.st[h] = WAITED
            schedule(slot, res)
        else
            slot.st[h] = COMPLETE
            count_result(slot, h)
            check_wait(slot, resume_now)
        end
    else
        slot.st[h] = COMPLETE
    end
    -- (finish_pending, inline)
    local top = slot.top
    local p = top.pending - 1
    top.pending = p
    if p == 0 and top.returned then release(top) end
end

---------------------------------------------------------------------------
-- dispatch

local start_child

-- The request part of a SEND: a client request unchanged travels as its handle (Python
-- holds its bytes); otherwise its line, value (or the handle whose value it borrows), key,
-- reply mode and command.
local function emit_send(task, sub, pool, r)
    if not r._edited then
        emit5(A_SEND_REQ, task, sub, pool, r._h)
    else
        local vh = r._vh
        if vh == nil and r._h ~= 0 then vh = r._h end
        emit10(A_SEND, task, sub, pool, r._line, r._value, vh, r._key, r._mode or 0, r._cmd)
    end
end

-- Send every queued handle of `slot`, in handle order (spec 3.3).
local function dispatch(slot)
    local fg, st = slot.fg, slot.st
    local top = slot.top
    for h = 0, fg._nh - 1 do
        if st[h] == QUEUED then
            st[h] = ACTIVE
            slot.active = slot.active + 1
            top.pending = top.pending + 1
            local kind, r = fg._kinds[h], slot.req[h]
            if kind == K_CHILD then
                start_child(slot, h, r)
            else
                local sub = next_id - 1  -- (new_id, inline)
                next_id = sub
                subs[sub] = slot
                if h ~= 0 then sub_h[sub] = h end
                local pool = kind == K_POOL and fg._targets[h] or INTERNAL_POOL
                if r._nr and not r._rw then rewrite_noreply(r) end
                if not r._edited then  -- (emit_send's common case, inline)
                    emit5(A_SEND_REQ, top.task, sub, pool, r._h)
                else
                    emit_send(top.task, sub, pool, r)
                end
            end
        end
    end
end

---------------------------------------------------------------------------
-- rctx methods (spec 3.4 - 3.13)

-- The state of handle 0 kept in `slot.own` (see the slot's fields), written out where the
-- general path keeps it, as `deliver` would have left it; before any rctx method reads or
-- changes handles.
local function materialize(slot)
    local res = slot.own
    slot.own, slot.fast = false, false
    slot.req[0] = slot.rq
    if res == true then
        -- (in flight; an rctx method cannot run on a slot whose route waits, but a callback
        -- or another slot's route can hold this rctx)
        slot.st[0] = ACTIVE
        slot.active = slot.active + 1
        slot.pending = slot.pending + 1
        local w = slot.w
        w.handle = 0
        slot.waiting = w
    else
        -- (a response's status and code are never changed once it is made: its flag now is
        -- what it was when it arrived)
        slot.st[0] = WAITED
        slot.res[0] = res
        slot.flag[0] = res.status ~= 0 and RES_ANY + RES_ERROR
            or (res._code == MCMC_CODE_END and RES_OK or RES_GOOD)
    end
end

local function check_handle(slot, h, msg)
    local i = mtype(h) == "integer" and h or (type(h) == "number" and tointeger(h)) or nil
    if i == nil or i < 0 or i >= slot.fg._nh then raise(msg, 3) end
    return i
end

local function queue(slot, r, h)
    if slot.st[h] == IDLE then
        slot.st[h] = QUEUED
        slot.req[h] = r
        slot.fast = false
    end
end

local function check_enqueue(self, r, fname)
    if getmetatable(r) ~= Request then
        raise("bad argument #1 to '" .. fname .. "' (mcp.request expected, got "
            .. (r == nil and "no value" or type(r)) .. ")", 3)
    end
    if not KEYED[r._cmd] then
        raise("cannot queue requests without a key", 3)
    end
end

function RCTX:enqueue(r, hl)
    if self.own then materialize(self) end
    check_enqueue(self, r, "enqueue")
    if self.waiting then
        raise("enqueue: cannot enqueue new requests while in a wait", 2)
    end
    if type(hl) == "number" then
        local h = tointeger(hl)
        if h == nil or h < 0 or h >= self.fg._nh then
            raise("attempted to enqueue an invalid handle", 2)
        end
        queue(self, r, h)
    elseif type(hl) == "table" then
        for i = 1, #hl do
            local v = hl[i]
            if type(v) ~= "number" then
                raise("invalid handle passed to queue via array table", 2)
            end
            local h = tointeger(v)
            if h == nil or h < 0 or h >= self.fg._nh then
                raise("attempted to enqueue an invalid handle", 2)
            end
            queue(self, r, h)
        end
    else
        raise("must pass a handle or a table to queue", 2)
    end
end

local function check_timeout(t)
    if t ~= nil and type(t) ~= "number" then
        raise("timeout argument to wait or sleep must be a number", 3)
    end
    return t
end

function RCTX:wait_cond(count, ...)
    if self.own then materialize(self) end
    if count == nil then raise("must pass at least count to wait_cond", 2) end
    local n = type(count) == "number" and tointeger(count) or nil
    if n == nil or n < 0 then
        raise("wait count for wait_cond must be a positive integer", 2)
    end
    local mode, timeout = ...
    if select("#", ...) == 0 then mode = WAIT_ANY end
    -- [Q] as 1.6.45: an explicit nil mode is refused like any other bad mode.
    if mode ~= WAIT_ANY and mode ~= WAIT_OK and mode ~= WAIT_GOOD and mode ~= WAIT_FASTGOOD then
        raise("invalid mode sent to wait_cond", 2)
    end
    check_timeout(timeout)
    if self.waiting then raise("wait_cond: cannot call while already in wait mode", 2) end
    local w = self.w
    w.mode, w.count, w.got, w.handle, w.fast = mode, n, 0, nil, nil
    self.waiting = w
    return co_yield(Y, YIELD_WAIT, timeout)
end

function RCTX:enqueue_and_wait(r, h, timeout)
    -- The common case, first: the client's request, unedited, on the slot's only handle, a
    -- pool, with no callback and no timeout. The driver sends it (YIELD_OWN) and keeps the
    -- handle's state in `own`. (rq is nil in children and before the first request, and
    -- KEYED[cmd] is what check_enqueue checks of the slot's own request.)
    -- (`fast`: see the slot's fields. Not in a wait either: a slot whose only handle is idle,
    -- with no callback, cannot be left in one.)
    local rq = self.rq
    if r == rq and h == 0 and timeout == nil and rq ~= nil and self.fast and not self.own
            and not r._edited and not r._nr and KEYED[r._cmd] then
        return co_yield(Y, YIELD_OWN, self)
    end
    if self.own then materialize(self) end
    -- (the slot's own request is a Request: no metatable check for it)
    if r == nil or (r ~= self.rq and getmetatable(r) ~= Request) or not KEYED[r._cmd] then
        check_enqueue(self, r, "enqueue_and_wait")
    end
    if self.waiting then raise("wait_cond: cannot call while already in wait mode", 2) end
    local i = h
    if mtype(h) ~= "integer" then
        if type(h) ~= "number" then raise("invalid handle passed to enqueue_and_wait", 2) end
        i = tointeger(h)
    end
    if i == nil or i < 0 or i >= self.fg._nh then
        raise("attempted to enqueue an invalid handle", 2)
    end
    if timeout ~= nil then check_timeout(timeout) end
    local st = self.st
    if st[i] == IDLE then  -- (queue, inline)
        st[i] = QUEUED
        self.req[i] = r
        self.fast = false
    end
    local w = self.w
    w.handle = i
    self.waiting = w
    return co_yield(Y, YIELD_WAIT, timeout)
end

function RCTX:wait_handle(h, timeout)
    if self.own then materialize(self) end
    local i = type(h) == "number" and tointeger(h) or nil
    if i == nil or i < 0 or i >= self.fg._nh then
        raise("invalid handle passed to wait_handle", 2)
    end
    if self.st[i] == IDLE then raise("wait_handle called on unqueued handle", 2) end
    if self.waiting then raise("wait: cannot call while already in wait mode", 2) end
    check_timeout(timeout)
    local w = self.w
    w.handle = i
    self.waiting = w
    return co_yield(Y, YIELD_WAIT, timeout)
end

function RCTX:sleep(seconds)
    if self.waiting then raise("sleep: cannot call while already in wait mode", 2) end
    if type(seconds) ~= "number" then
        raise("timeout argument to wait or sleep must be a number", 2)
    end
    return co_yield(Y, YIELD_SLEEP, seconds)
end

local ACCESSOR_ERR = "invalid queue handle passed to :good/:ok:/:any"

local function done_state(s)
    return s == COMPLETE or s == WAITED
end

function RCTX:res_good(h)
    if self.own then materialize(self) end
    h = check_handle(self, h, ACCESSOR_ERR)
    if done_state(self.st[h]) and self.flag[h] == RES_GOOD then return self.res[h] end
    return nil
end

function RCTX:res_ok(h)
    if self.own then materialize(self) end
    h = check_handle(self, h, ACCESSOR_ERR)
    local f = self.flag[h]
    if done_state(self.st[h]) and (f == RES_GOOD or f == RES_OK) then return self.res[h] end
    return nil
end

function RCTX:res_any(h)
    if self.own then materialize(self) end
    h = check_handle(self, h, ACCESSOR_ERR)
    if done_state(self.st[h]) then return self.res[h] end
    return nil
end

local function masked(flag)
    if flag == RES_GOOD or flag == RES_OK then return flag end
    return RES_ANY
end

function RCTX:result(h)
    if self.own then materialize(self) end
    h = check_handle(self, h, ACCESSOR_ERR)
    if done_state(self.st[h]) then return self.res[h], masked(self.flag[h]) end
    return nil, nil
end

local function result_list(self, list, fname)
    if type(list) ~= "table" then raise("must pass a table to :" .. fname, 3) end
    local hs = {}
    for i = 1, #list do
        hs[i] = check_handle(self, list[i], "invalid queue handle passed to " .. fname)
    end
    return hs
end

function RCTX:best_result(list)
    if self.own then materialize(self) end
    local hs = result_list(self, list, "best_result")
    local ok_h, err_h
    for _, h in ipairs(hs) do
        if done_state(self.st[h]) then
            local f = self.flag[h]
            if f == RES_GOOD then return self.res[h], RES_GOOD end
            if f == RES_OK then ok_h = h else err_h = h end
        end
    end
    local h = ok_h or err_h
    if h == nil then return nil, nil end
    return self.res[h], masked(self.flag[h])
end

function RCTX:worst_result(list)
    if self.own then materialize(self) end
    local hs = result_list(self, list, "worst_result")
    local worst, wf = nil, -1
    for _, h in ipairs(hs) do
        if done_state(self.st[h]) and self.flag[h] >= wf then
            worst, wf = h, self.flag[h]
        end
    end
    if worst == nil then return nil, nil end
    return self.res[worst], masked(wf)
end

function RCTX:handle_set_cb(h, fn)
    -- (a callback changes how a result is delivered: not through `own`, now or later)
    if self.own then materialize(self) end
    self.fast = false
    if type(h) ~= "number" then
        raise("bad argument #1 to 'handle_set_cb' (number expected, got "
            .. (h == nil and "no value" or type(h)) .. ")", 2)
    end
    local i = tointeger(h)
    if i == nil or i < 0 or i >= self.fg._nh then
        raise("invalid handle passed to queue_set_cb", 2)
    end
    if type(fn) ~= "function" then
        raise("bad argument #2 to 'handle_set_cb' (function expected, got "
            .. (fn == nil and "no value" or type(fn)) .. ")", 2)
    end
    self.cb[i] = fn
end

function RCTX:cfd()
    -- [R] children answer their top-level slot's descriptor (1.6.45 answers 0). Python
    -- (proxy/funcgens.py) sets state.py_cfd.
    local task = self.top.task
    local f = state.py_cfd
    if task == nil or f == nil then return 0 end
    return f(task)
end

function RCTX:tls_peer_cn()
    -- The common name of the client's TLS certificate; nil without one, or once the reply
    -- was sent (1.6.45). Python (proxy/funcgens.py) sets state.py_tls_peer_cn.
    local task = self.top.task
    local f = state.py_tls_peer_cn
    if task == nil or f == nil then return nil end
    return f(task)
end

local function use_uobj(self)
    if self.uleft <= 0 then raise("rctx request new: object count limit reached", 3) end
    self.uleft = self.uleft - 1
end

function RCTX:request_new()
    use_uobj(self)
    -- A blank request: the line is a single space, never parsed, no command and no key.
    local r = setmetatable({ _h = 0, _cmd = 0, _line = " ", _key = "", _edited = true,
        _toks = {}, _starts = {}, _stop = 2, _fl = {} }, Request)
    self.uobjs[#self.uobjs + 1] = r
    return r
end

function RCTX:response_new()
    use_uobj(self)
    local res = new_response(nil, 0, 0, 0, 0, 0, 0, "")
    self.uobjs[#self.uobjs + 1] = res
    return res
end

---------------------------------------------------------------------------
-- the driver

local function error_response()
    return new_response("SERVER_ERROR backend failure\r\n", STATUS_FAILED,
        MCMC_CODE_SERVER_ERROR, 0, 0, 0, 0, "")
end

-- The route of `slot` returned `res` (ok) or raised `res` (not ok).
-- The response made from the reply being handled by `v2_events` now, that reply's position
-- in the call and its id (see REPLY_EV and REPLY_OWN).
local ev_res, ev_i, ev_id = nil, 0, 0

local function route_done(slot, ok, res)
    slot.returned = true
    slot.waiting = nil
    local parent = slot.parent
    if parent ~= nil then
        -- A child: its result is its parent's result for that handle (spec 2.9).
        if not ok then
            emit3(A_LOG, slot.top.task, tostring(res))
            res = error_response()
        elseif type(res) ~= "string" and getmetatable(res) ~= Response then
            res = error_response()
        end
        deliver(parent, slot.ph, res)
        return
    end
    local task = slot.task
    -- The last value of a REPLY says whether the slot is released with it (nothing of the
    -- request's tree is still in flight): the common case, one action instead of two.
    local now = slot.pending == 0
    if not ok then
        emit8(A_REPLY, task, DONE_ERR, tostring(res), traceback(slot.co, tostring(res)), nil,
            nil, now)
    elseif res == ev_res and res ~= nil and not res._edited then
        -- (the common case: Python sends the bytes it passed in, without a copy back)
        emit4(A_REPLY_EV, task, ev_i, now)
    elseif getmetatable(res) == Response then
        if res.raw == nil then
            -- [R] 1.6.45 sends nothing at all for a response that holds no bytes.
            emit8(A_REPLY, task, DONE_BAD, nil, nil, nil, nil, now)
        else
            emit8(A_REPLY, task, DONE_RES, res.raw, res.status, res._code, res._mode or 0, now)
        end
    elseif type(res) == "string" then
        if #res > MAX_STRING_REPLY then res = ssub(res, 1, MAX_STRING_REPLY) end
        emit8(A_REPLY, task, DONE_STR, res, nil, nil, nil, now)
    else
        emit8(A_REPLY, task, DONE_BAD, nil, nil, nil, nil, now)
    end
    -- (otherwise the last request of the tree to come back releases the slot)
    if now then release(slot, true) end
end

-- The slot is waiting (slot.waiting set by the rctx method): send its queue, count what
-- already arrived, and either schedule it again or leave it suspended, with a timer.
local function begin_wait(slot, timeout)
    dispatch(slot)
    local w = slot.waiting
    if w == nil then return end  -- a child ran at once and ended the wait
    if w.handle ~= nil then
        local h = w.handle
        local s = slot.st[h]
        if s == COMPLETE or s == WAITED then
            -- [R] a handle already counted returns its result again (1.6.45 hangs).
            slot.st[h] = WAITED
            schedule(slot, slot.res[h])
            return
        end
        if s ~= ACTIVE then
            -- (not dispatched: nothing will ever arrive for it)
            schedule(slot, nil, true)
            return
        end
    else
        for h = 0, slot.fg._nh - 1 do
            if slot.st[h] == COMPLETE then count_result(slot, h) end
        end
        -- count 0 dispatches and goes on; [R] with nothing outstanding, so does any count.
        if w.count == 0 or check_wait(slot, false) then
            if slot.waiting then schedule(slot, w.got) end
            return
        end
    end
    if timeout ~= nil then
        local token = new_id()
        timers[token] = slot
        slot.token = token
        emit4(A_TIMER, slot.top.task, token, timeout)
    end
end

-- Act on what a slot's coroutine did when resumed.
-- (The common cases, a route that waits on its only handle, a pool, for the client's request
-- unedited, and one that returns the response that resumed it, are done inline: what
-- begin_wait + dispatch and route_done + emit would do, without their calls.)
local function stepped(slot, ok, a, kind, x, r)
    if not ok then
        slot.broken = true  -- its coroutine is dead: the slot gets a new one when released
        return route_done(slot, false, a)
    end
    if a == DONE then
        if kind == ev_res and kind ~= nil and slot.pending == 0 and slot.parent == nil
                and not kind._edited then
            local n, task = nout, slot.task
            if ev_id == task then
                -- (the reply to its SEND_OWN: Python finds the task there too)
                out[n + 1], out[n + 2] = A_REPLY_OWN, ev_i
                nout = n + 2
            else
                out[n + 1], out[n + 2], out[n + 3], out[n + 4] = A_REPLY_EV, task, ev_i, true
                nout = n + 4
            end
            if slot.plain then
                -- (reset, for a slot whose only handle is a pool and that has no user
                -- objects: it has no children; having returned ok with nothing pending, it
                -- is not waiting, sleeping, broken or returned, and has no timer)
                slot.st[0], slot.req[0], slot.res[0], slot.flag[0] = IDLE, nil, nil, nil
                slot.task, slot.own = nil, false
                slot.fast = slot.cb[0] == nil
                return shelve(slot)
            end
            return release(slot, true)
        end
        return route_done(slot, true, kind)
    end
    if kind == YIELD_OWN and a == Y then
        if x ~= slot then
            -- (the rctx of another slot, whose route this one holds: what the general path
            -- would do, queue that handle and wait in this coroutine)
            x.st[0], x.req[0], x.fast = QUEUED, x.rq, false
            local w = x.w
            w.handle = 0
            x.waiting = w
            return stepped(slot, true, Y, YIELD_WAIT, nil, nil)
        end
        -- enqueue_and_wait's common case (checked there): the task's own request, sent
        -- with the task's handle as id (as below), its state in `own` until it is read
        local task, n = slot.task, nout
        slot.own = true
        subs[task] = slot
        out[n + 1], out[n + 2], out[n + 3] = A_SEND_OWN, task, slot.pool0
        nout = n + 3
        return
    end
    if kind == YIELD_WAIT and a == Y and x == nil then
        local pool, w = slot.pool0, slot.waiting
        if pool ~= nil and w ~= nil and w.handle == 0 then
            local st, req = slot.st, slot.req[0]
            if st[0] == QUEUED and not req._edited and not req._nr then
                st[0] = ACTIVE
                slot.active = slot.active + 1
                local top = slot.top
                top.pending = top.pending + 1
                local task, n = top.task, nout
                if slot == top and req._h == task then
                    -- (its only handle sends once per run: the task's handle is free as id)
                    subs[task] = slot
                    out[n + 1], out[n + 2], out[n + 3] = A_SEND_OWN, task, pool
                    nout = n + 3
                else
                    local sub = next_id - 1
                    next_id = sub
                    subs[sub] = slot
                    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = A_SEND_REQ,
                        task, sub, pool, req._h
                    nout = n + 5
                end
                return
            end
        end
        return begin_wait(slot, x)
    end
    if a ~= Y then
        -- The route called coroutine.yield itself: its coroutine is mid-route and is dropped.
        slot.broken = true
        return route_done(slot, false,
            "route yielded outside of a pool call, mcp.await or mcp.internal")
    end
    if kind == YIELD_WAIT then
        return begin_wait(slot, x)
    elseif kind == YIELD_SLEEP then
        local token = new_id()
        timers[token] = slot
        slot.token = token
        slot.sleeping = true
        emit4(A_TIMER, slot.top.task, token, x)
    elseif kind == YIELD_POOL or kind == YIELD_INTERNAL then
        -- A v1 call from a v2 route (1.6.23 - 1.6.29 allowed both in one config).
        if kind == YIELD_INTERNAL and slot.parent ~= nil then
            return schedule(slot, "cannot run mcp.internal from a sub request")
        end
        local sub = new_id()
        subs[sub], sub_h[sub] = slot, DIRECT
        slot.top.pending = slot.top.pending + 1
        emit_send(slot.top.task, sub, kind == YIELD_POOL and x or INTERNAL_POOL, r)
    else
        schedule(slot, "mcp.await is not available in a function generator's route")
    end
end

local function drain()
    local i = 1
    while i <= nrun do
        local slot, a, b = runq[i], runa[i], runb[i]
        runq[i], runa[i], runb[i] = nil, nil, nil
        stepped(slot, co_resume(slot.co, a, b))
        i = i + 1
    end
    nrun = 0
end

start_child = function(parent, h, r)
    local slot = parent.child[h]
    if slot == nil then
        local ok, s = pcall(take_slot, parent.fg._targets[h])
        if not ok then
            emit3(A_LOG, parent.top.task, tostring(s))
            deliver(parent, h, error_response())
            return
        end
        slot = s
        slot.parent, slot.ph = parent, h
        -- (a slot that ran top-level requests before keeps no request object: `rq` is how
        -- enqueue_and_wait knows the client's request of a top-level slot)
        slot.rq = nil
        parent.child[h] = slot
        parent.has_child = true
    end
    slot.top = parent.top
    slot.task = parent.top.task
    slot.returned = false
    -- (the parent's pending count stands for the child until it reports its result)
    schedule(slot, r)
end

-- A slot for a request of command `cmd` and key `key` attached to `fg` (a funcgen without a
-- free slot, or a router): (true, slot), or (false, the error text).
local function pick_slot(fg, cmd, key)
    local rt = fg._router
    if rt ~= nil then
        fg = state.route_pick(rt, cmd, key)  -- (mcp_router.lua)
        -- (a router picked by a router has no slots: it fails like a nil function)
        if fg ~= nil and fg._router then fg = nil end
    end
    if fg == nil or not fg._ready then return false, "attempt to call a nil value" end
    return pcall(take_slot, fg)
end

-- v2_start(task, fgen, cmd, line, key, nr, ...): six values per request, as v1's start_batch.
local function v2_start(...)
    local args, n = { ... }, select("#", ...)
    for i = 1, n, 6 do
        local task, fg = args[i], args[i + 1]
        local slot
        local nf = fg._nfree
        if nf > 0 then
            -- (take_slot, inline: a funcgen with a free slot is ready, and is not a router,
            -- which never has slots)
            slot = fg._free[nf]
            fg._free[nf] = nil
            fg._nfree = nf - 1
        else
            local ok, s = pick_slot(fg, args[i + 2], args[i + 4])
            if ok then
                slot = s
            else
                emit8(A_REPLY, task, START_FAIL, tostring(s), nil, nil, nil, true)
            end
        end
        if slot ~= nil then
            -- A top-level slot's request object is made once and refilled for each request
            -- it runs, as 1.6.45's rctx does (its fields: mcp_routes.lua, "request objects").
            local r = slot.rq
            if r == nil then
                r = setmetatable({}, Request)
                slot.rq = r
            elseif r._edited or r._toks or r._fl or r._value or r._vh then
                r._toks, r._starts, r._stop, r._fl = nil, nil, nil, nil
                r._mode, r._rw, r._edited, r._value, r._vh = nil, nil, nil, nil, nil
            end
            r._h, r._cmd, r._line, r._key = task, args[i + 2], args[i + 3], args[i + 4]
            r._nr = args[i + 5]  -- (a boolean: always a key of the table, never a miss)
            -- (a free slot is a top-level one, its own top, with nothing pending: children
            -- are pinned to their parent's slot and never shelved)
            slot.task = task
            -- The route runs now, until it waits or returns, as 1.6.45 runs each request as
            -- it is read (a slot it frees may be taken by the next request); what it started
            -- runs before the next request does.
            local ok, a, kind, x, rr = co_resume(slot.co, r)
            if kind == YIELD_OWN and x == slot and a == Y and ok then
                -- (stepped, inline: see there)
                local n = nout
                slot.own = true
                subs[task] = slot
                out[n + 1], out[n + 2], out[n + 3] = A_SEND_OWN, task, slot.pool0
                nout = n + 3
            else
                stepped(slot, ok, a, kind, x, rr)
                if nrun > 0 then drain() end
            end
        end
    end
    return flush()
end

-- v2_events(id, raw, status, code, vlen, mode, elapsed, rtype, be, ...): nine values per
-- reply to a sub-request; a fired timer comes as (token, false).
local function v2_events(...)
    local args, n = { ... }, select("#", ...)
    for i = 1, n, 9 do
        local id, raw = args[i], args[i + 1]
        if raw == false then
            local slot = timers[id]
            timers[id] = nil
            if slot ~= nil and slot.token == id then
                slot.token = nil
                if slot.sleeping then
                    slot.sleeping = nil
                    schedule(slot, true)
                else
                    local w = slot.waiting
                    if w ~= nil then
                        if w.handle ~= nil then
                            schedule(slot, nil, true)
                        else
                            schedule(slot, w.got, true)
                        end
                    end
                end
            end
        else
            local slot = subs[id]
            subs[id] = nil
            if slot ~= nil and slot.own == true then
                -- The reply to a request sent through `own` (its id is the task's handle, not
                -- in sub_h): the route waits for it, nothing else is due to run first.
                local res = setmetatable({ raw = raw, status = args[i + 2], _code = args[i + 3],
                    _vlen = args[i + 4], _mode = args[i + 5], _elapsed = args[i + 6],
                    _type = args[i + 7], _be = args[i + 8] }, Response)
                slot.own = res
                local ok, a, rv, x, rr = co_resume(slot.co, res)
                if a == DONE and rv == res and ok and slot.own == res and not res._edited then
                    -- The route returned this response, unedited, and read no handle state
                    -- (`own` is still it): nothing was sent since, nothing else is kept (a
                    -- slot with `fast` has no user objects). REPLY_OWN, and the slot's reset
                    -- is its `own` and task.
                    local k = nout
                    out[k + 1], out[k + 2] = A_REPLY_OWN, i
                    nout = k + 2
                    slot.own, slot.task = false, nil
                    -- (shelve, inline but for a pressure past its maximum; nothing was
                    -- scheduled: on to the next event)
                    local fg = slot.fg
                    local p = fg._pressure
                    k = fg._nfree
                    if k > fg._nslots // 2 - 1 then
                        if p > trim.pressure_max then
                            shelve(slot)
                            goto next
                        end
                        fg._pressure = p + 1
                    elseif p ~= 0 then
                        fg._pressure, fg._deadline = p >> 1, nil
                    end
                    k = k + 1
                    fg._free[k] = slot
                    fg._nfree = k
                    goto next
                else
                    ev_res, ev_i, ev_id = res, i, id
                    stepped(slot, ok, a, rv, x, rr)
                end
            elseif slot ~= nil then
                local h = sub_h[id]
                if h ~= nil then
                    sub_h[id] = nil
                else
                    h = 0
                end
                -- (new_response, inline)
                local res = setmetatable({ raw = raw, status = args[i + 2], _code = args[i + 3],
                    _vlen = args[i + 4], _mode = args[i + 5], _elapsed = args[i + 6],
                    _type = args[i + 7], _be = args[i + 8] }, Response)
                ev_res, ev_i, ev_id = res, i, id
                local w = slot.waiting
                if h == DIRECT then
                    -- a v1 call's reply: the route goes on with it
                    slot.top.pending = slot.top.pending - 1
                    schedule(slot, res)
                elseif w ~= nil and w.handle == h and nrun == 0 and slot.cb[h] == nil
                        and not slot.returned then
                    -- (deliver, schedule and drain, inline: the slot waits for this very
                    -- handle, and nothing else is due to run first)
                    local status = args[i + 2]
                    slot.res[h] = res
                    slot.flag[h] = status ~= 0 and RES_ANY + RES_ERROR
                        or (args[i + 3] == MCMC_CODE_END and RES_OK or RES_GOOD)
                    slot.active = slot.active - 1
                    slot.st[h] = WAITED
                    slot.waiting, slot.token = nil, nil
                    -- (the top is still pending: its own wait, or this child, stands for it)
                    local top = slot.top
                    top.pending = top.pending - 1
                    stepped(slot, co_resume(slot.co, res))
                else
                    deliver(slot, h, res)
                end
            end
        end
        if nrun > 0 then drain() end
        ev_res = nil
        ::next::
    end
    return flush()
end

---------------------------------------------------------------------------
-- pass-through funcgens

-- A funcgen whose route only forwards its request to one pool handle and returns the result
-- (`return rctx:enqueue_and_wait(r, h)`) is run by Python without entering Lua, as v1's
-- `return pool(r)` is (mcp_routes.lua, "pass-through routes", whose bytecode matcher this
-- uses): the reply is the same, byte for byte. Every slot made so far must have that route,
-- bound to its own rctx and to a handle naming a pool, with no callback on the handle and
-- rctx's method unchanged. (Slots are not taken for such requests, so the generator is not
-- called again for them.) Answers the pool id, or -1 (not now).
--
-- The same holds for the route that asks again when the answer is not ok (issue 15's route
-- with logic): `local res = rctx:enqueue_and_wait(r, h) if res:ok() then return res end
-- return rctx:enqueue_and_wait(r, h)`. A handle carries one request per run, and waiting
-- again on a handle already counted returns its result at once (`begin_wait`, [R]), so the
-- second call returns `res` itself: the route returns the first answer whatever `ok` says.
-- Held to that while `Response.ok` is ours (it cannot raise then).
local shape = sh.shape
local eaw = RCTX.enqueue_and_wait
local resp_ok = Response.ok
local getupvalue = debug.getupvalue
local REFERENCES
local MAX_CHECKED_SLOTS = 8

local function references()
    if REFERENCES == nil then
        local ok, refs = pcall(function()
            return {
                shape(load("local rctx, h; return function(r) "
                    .. "return rctx:enqueue_and_wait(r, h) end")()),
                shape(load("local rctx, h; return function(r) "
                    .. "local res = rctx:enqueue_and_wait(r, h) if res:ok() then return res end "
                    .. "return rctx:enqueue_and_wait(r, h) end")()),
            }
        end)
        REFERENCES = ok and refs or {}
    end
    return REFERENCES
end

local function same_constants(a, b)
    if #a ~= #b then return false end
    for i = 1, #a do
        if a[i] ~= b[i] then return false end
    end
    return true
end

local shaped = setmetatable({}, { __mode = "k" })  -- route function -> has a shape

local function has_shape(route)
    local known = shaped[route]
    if known ~= nil then return known end
    known = false
    local ok, s = pcall(shape, route)
    if ok and s then
        for _, ref in ipairs(references()) do
            if ref and s.code == ref.code and same_constants(s.k, ref.k)
                    and s.nparams == ref.nparams and s.vararg == ref.vararg and s.nups == 2 then
                known = true
                break
            end
        end
    end
    shaped[route] = known
    return known
end

-- The pool `slot`'s route forwards to now; or nil, and true when it never will (its code).
local function forwards_to(fg, slot)
    local route = slot.route
    if not has_shape(route) then return nil, true end
    if getmetatable(slot) ~= RCTX or rawget(RCTX, "enqueue_and_wait") ~= eaw
            or rawget(Response, "ok") ~= resp_ok or rawget(Response, "__index") ~= Response then
        return nil
    end
    local _, self = getupvalue(route, 1)
    local _, h = getupvalue(route, 2)
    if self ~= slot or mtype(h) ~= "integer" or fg._kinds[h] ~= K_POOL or slot.cb[h] ~= nil then
        return nil
    end
    return fg._targets[h]
end

-- -2 when the funcgen can never be a pass-through (slots are never dropped), as v1's routes.
local function passthrough_pool(fg)
    if fg._router then return -2 end
    if not fg._ready then return -1 end
    if #fg._all > MAX_CHECKED_SLOTS then return -2 end
    local pool
    for _, slot in ipairs(fg._all) do
        local p, never = forwards_to(fg, slot)
        if never then return -2 end
        if p == nil or (pool ~= nil and p ~= pool) then return -1 end
        pool = p
    end
    return pool or -1
end

-- A function generator the route library marked for Python's fast path (`fg._fast`, set by
-- route_failover over pools without `wait` or `stats`, by route_allfastest over pools
-- without `wait`, by route_split, route_random over pools and by route_zfailover over pools
-- without `stats`; proxy/hooks.py FastPlan): its kind ("failover", "allfastest", "split",
-- "zfailover" or "random"), how many children it may ask, whether a miss moves on, then the
-- pool of each handle in the order asked; nil when it is not one (or no longer: a handle that
-- is not a pool, a callback set on one).
local FAST_KINDS = { failover = true, allfastest = true, split = true, zfailover = true,
    random = true }
local function fast_plan(fg)
    local f = getmetatable(fg) == FGEN and rawget(fg, "_fast")
    if not f or not FAST_KINDS[f.kind] or not fg._ready or #fg._all > MAX_CHECKED_SLOTS then
        return nil
    end
    local out = { f.kind, f.limit or #f.handles, f.miss and true or false }
    for i, h in ipairs(f.handles) do
        if fg._kinds[h] ~= K_POOL then return nil end
        for _, slot in ipairs(fg._all) do
            if slot.cb[h] ~= nil then return nil end
        end
        out[i + 3] = fg._targets[h]
    end
    return unpack(out)
end

-- `stats proxyfuncs` (spec v2 10.3): per name, the funcgens in use (held by a hook, a
-- handle or a router, and not closed) and their slots; a plain function attached counts as
-- an "anonymous" funcgen, as 1.6.45 wraps it in one (its slots: 0 here, since v1 routes run
-- in the driver's coroutines; 1.6.45 counts those it made). Flat: name, funcs, slots, ...
local function funcs_stats()
    local funcs, slots, order = {}, {}, {}
    local function count(name, nslots)
        if funcs[name] == nil then
            order[#order + 1] = name
            funcs[name], slots[name] = 0, 0
        end
        funcs[name] = funcs[name] + 1
        slots[name] = slots[name] + nslots
    end
    for fg in pairs(made) do
        if fg._refs > 0 and not fg._closed then count(fg._name, fg._nslots) end
    end
    local seen = {}
    for _, by_cmd in pairs(state.hooks) do
        for _, fn in pairs(by_cmd) do
            if type(fn) == "function" and not seen[fn] then
                seen[fn] = true
                count("anonymous", 0)
            end
        end
    end
    table.sort(order)
    local out = {}
    for _, name in ipairs(order) do
        out[#out + 1], out[#out + 2], out[#out + 3] = name, funcs[name], slots[name]
    end
    return unpack(out)
end

local function is_funcgen(v)
    return getmetatable(v) == FGEN
end

state.v2 = { start = v2_start, events = v2_events, is_funcgen = is_funcgen,
    passthrough_pool = passthrough_pool, funcs_stats = funcs_stats,
    fast_plan = fast_plan, slots_made = slots_made }
