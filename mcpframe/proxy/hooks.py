"""The routes of a loaded config as the router looks them up: the hook for a command on a
connection, and which hooks are pass-through routes, with the pool each names now.

A pass-through route (``return pool(r)``; the Lua driver recognises its shape) is run by
the router without entering Lua. ``lua_ran`` says Lua code ran since the pools were read: a
route may have reassigned what a pass-through route names, so they are read again before use.
A router (``mcp.router_new``) is mirrored by a :class:`RouterPlan`: for each request it picks
the target the router would pick, and when that target only forwards to a pool (a
pass-through function generator, e.g. the route library's ``route_direct``), the request is
placed without entering Lua either.
"""

from __future__ import annotations

from typing import Any, Final

from mcpframe.config import Routes
from mcpframe.protocol import commands as c
from mcpframe.proxy.limits import Limits

#: What ``passthrough_pools`` answers for a route that is not a pass-through route.
NOT_PASSTHROUGH: Final = -2


_ANY_STORAGE: Final = c.CMD_ANY_STORAGE
#: What :meth:`Hooks.passthrough_pool_for` answers for the i-th fast plan: ``FAST - i``.
FAST: Final = -10


class FastPlan:
    """A route library handler over pools that the router runs without Lua: a
    ``route_failover`` without ``wait`` or ``stats`` (the pools in the order tried, at most
    ``limit`` of them) or, with ``fastest``, a ``route_allfastest`` without ``wait`` (every
    pool at once); ``miss``: a miss is not an answer (failover: try the next; allfastest:
    wait for a hit). With ``split`` (and ``fastest``: it asks every pool at once), a
    ``route_split``: ``pools`` are child B's and child A's, and A's reply is the answer.
    With ``zone``, a ``route_zfailover`` without ``stats``: the local zone's pool first, and
    unless it answers (a hit; a miss too unless ``miss``) every other pool at once. With
    ``pick``, a ``route_random``: one of the pools at random, whose reply is the answer."""

    def __init__(
        self,
        pools: list[int],
        limit: int,
        miss: bool,
        fastest: bool,
        split: bool = False,
        zone: bool = False,
        pick: bool = False,
    ) -> None:
        self.pools = pools
        self.limit = limit
        self.miss = miss
        self.fastest = fastest
        self.split = split
        self.zone = zone
        self.pick = pick
        #: every pool places keys by the same hash (``Router._fan_out``): 1, 0, or -1 for
        #: not known yet
        self.one_hash = -1


class RouterPlan:
    """What a router picks for a (command, key), as ``route_pick`` in mcp_router.lua does,
    with each target as the pool it forwards to (-1: a target that runs in Lua, or none)."""

    def __init__(
        self,
        anchor: bool,
        start: bytes,
        stop: bytes,
        has_map: bool,
        prefixes: dict[bytes, Any],
        cmap: dict[int, int],
        default: int,
    ) -> None:
        self.anchor = anchor
        self.start = start
        self.stop = stop
        self.has_map = has_map
        #: prefix -> pool id, or a command table (command -> pool id)
        self.prefixes = prefixes
        self.cmap = cmap
        self.default = default

    def prefix_of(self, key: bytes) -> bytes | None:
        stop = self.stop
        if self.anchor:
            start = self.start
            n = len(start)
            if not key.startswith(start) or len(key) < n + 2:
                return None
            e = key.find(stop, n)
            if e <= n:
                return None
            return key[n:e]
        e = key.find(stop)
        if e <= 0:
            return None
        return key[:e]

    def pick(self, cmd: int, key: bytes) -> int:
        """The pool the request goes to without Lua, or -1 (it runs in Lua)."""
        if not key:
            return -1
        if self.has_map:
            prefix = self.prefix_of(key)
            if prefix is not None:
                hit = self.prefixes.get(prefix)
                if hit is not None:
                    if type(hit) is int:
                        return hit
                    pool = hit.get(cmd)
                    if pool is None:
                        pool = hit.get(_ANY_STORAGE)
                    if pool is not None:
                        return int(pool)
        pool = self.cmap.get(cmd)
        return self.default if pool is None else pool


class Hooks(Limits):
    """The router's route table. The router inherits it (as it inherits ``Limits``) so that
    the request path reads it without a hop."""

    def __init__(
        self,
        vm: Routes,
        tunables: dict[str, Any],
        workers: int,
        logged_pools: frozenset[int] = frozenset(),
    ) -> None:
        super().__init__(tunables, workers)
        #: pools with a backend that logs its results (spec v2 8.8): their routes run in Lua,
        #: where results are logged, never as pass-through routes or router/failover plans.
        self.logged_pools = logged_pools
        self.hooks: dict[int, Any] = vm.hooks.get("", {})
        self.tagged: dict[str, dict[int, Any]] = {t: h for t, h in vm.hooks.items() if t}
        self.passthrough_pools = vm.passthrough_pools
        v2 = vm.state[b"v2"] if vm.state is not None else None
        self.router_plan: Any = v2[b"router_plan"] if v2 is not None else None
        #: Pass-through routes: hook -> pool index.
        self.pass_hooks: list[Any] = []
        self.passthrough: dict[Any, int] = {}
        #: Routers attached: hook -> its plan (re-read with the pass-through routes).
        self.router_hooks: list[Any] = []
        self.router_plans: dict[Any, RouterPlan] = {}
        #: Failovers and allfastests run without Lua (``FAST - i`` is the i-th), and the
        #: attached ones.
        self.fast_plans: list[FastPlan] = []
        self.fast_hooks: dict[Any, int] = {}
        self.fast_plan: Any = v2[b"fast_plan"] if v2 is not None else None
        self.slots_made: Any = v2[b"slots_made"] if v2 is not None else None
        #: ``slots_made.n`` when the router and failover plans were made
        self.planned_at = -1
        #: Routes that ask again when the answer is not ok (``state.retry_pools`` in
        #: mcp_routes.lua): hook -> pool index, as for pass-through routes.
        self.retry_pools = vm.state[b"retry_pools"]
        self.retry_hooks: list[Any] = []
        self.retry: dict[Any, int] = {}
        self.lua_ran = False
        self._find_passthrough()

    def _find_passthrough(self) -> None:
        hooks = [fn for table in (self.hooks, *self.tagged.values()) for fn in table.values()]
        if not hooks:
            return
        pools = self._as_tuple(self.passthrough_pools(*hooks))
        found = zip(hooks, pools, strict=True)
        self.pass_hooks = [fn for fn, pool in found if pool != NOT_PASSTHROUGH]
        plan = self.router_plan
        if plan is not None:
            self.router_hooks = list({fn: None for fn in hooks if plan(fn) is not None})
        pools = self._as_tuple(self.retry_pools(*hooks))
        found = zip(hooks, pools, strict=True)
        self.retry_hooks = [fn for fn, pool in found if pool != NOT_PASSTHROUGH]
        self._read_passthrough()

    def _read_passthrough(self) -> None:
        """(Re)read the pool of every pass-through route and retry route, and the plan of
        every router."""
        self.lua_ran = False
        hooks = self.pass_hooks
        if hooks:
            pools = self._as_tuple(self.passthrough_pools(*hooks))
            logged = self.logged_pools
            self.passthrough = {
                fn: pool
                for fn, pool in zip(hooks, pools, strict=True)
                if pool >= 0 and pool not in logged
            }
        hooks = self.retry_hooks
        if hooks:
            pools = self._as_tuple(self.retry_pools(*hooks))
            logged = self.logged_pools
            self.retry = {
                fn: pool
                for fn, pool in zip(hooks, pools, strict=True)
                if pool >= 0 and pool not in logged
            }
        made = self.slots_made[b"n"] if self.slots_made is not None else 0
        if made == self.planned_at:
            return  # no new slot: the plans stand
        self.planned_at = made
        self.fast_plans = []
        self.fast_hooks = {}
        if self.fast_plan is not None:
            for fn in self._hooks_but(self.passthrough):
                code = self._fast(fn)
                if code <= FAST:
                    self.fast_hooks[fn] = code
        if self.router_hooks:
            self.router_plans = {fn: self._plan(fn) for fn in self.router_hooks}

    def _hooks_but(self, skip: dict[Any, int]) -> list[Any]:
        """The attached hooks, each once, but those in ``skip``."""
        found = {fn: None for table in (self.hooks, *self.tagged.values()) for fn in table.values()}
        return [fn for fn in found if fn not in skip]

    def _fast(self, fgen: Any) -> int:
        """``FAST - i`` for a funcgen with a fast plan (the i-th, added now), else -1."""
        found = self.fast_plan(fgen) if self.fast_plan is not None else None
        if found is None:
            return -1
        kind, limit, miss, *pools = found if type(found) is tuple else (found,)
        logged = self.logged_pools
        if not pools or any(not isinstance(p, int) or p < 0 or p in logged for p in pools):
            return -1
        split = kind == b"split"
        if split and len(pools) != 2:
            return -1
        fastest = split or kind == b"allfastest"
        zone = kind == b"zfailover"
        pick = kind == b"random"
        plan = FastPlan([int(p) for p in pools], int(limit), bool(miss), fastest, split, zone, pick)
        self.fast_plans.append(plan)
        return FAST - (len(self.fast_plans) - 1)

    def _plan(self, hook: Any) -> RouterPlan:
        anchor, start, stop, has_map, prefixes, cmap, default, fast = self.router_plan(hook)
        # the router's fast targets (``FAST - i`` of its own list) as plans of this table
        codes = {FAST - i: self._fast(fg) for i, fg in enumerate(fast.values())}

        logged = self.logged_pools

        def target(code: Any) -> int:
            code = int(code)
            if code <= FAST:
                return codes.get(code, -1)
            return -1 if code in logged else code

        table: dict[bytes, Any] = {}
        for prefix, entry in prefixes.items():
            if isinstance(entry, int):
                table[prefix] = target(entry)
            else:
                table[prefix] = {int(k): target(v) for k, v in entry.items()}
        return RouterPlan(
            bool(anchor),
            start or b"",
            stop or b"/",
            bool(has_map),
            table,
            {int(k): target(v) for k, v in cmap.items()},
            target(default),
        )

    def passthrough_pool(self, hook: Any) -> int:
        """The pool ``hook`` passes its requests to, or -1 when it is not a pass-through
        route (now)."""
        if self.lua_ran:
            self._read_passthrough()
        return self.passthrough.get(hook, -1)

    def passthrough_pool_for(self, hook: Any, cmd: int, key: bytes) -> int:
        """Where a request with ``cmd`` and ``key`` goes without Lua: ``hook``'s pool as
        :meth:`passthrough_pool`, or for a router the one its pick forwards to; ``FAST - i``
        for the i-th of :attr:`fast_plans`; else -1 (the route runs in Lua)."""
        if self.lua_ran:
            self._read_passthrough()
        pool = self.passthrough.get(hook, -1)
        if pool >= 0:
            return pool
        if self.fast_hooks:
            code = self.fast_hooks.get(hook)
            if code is not None:
                return code
        if not self.router_plans:
            return -1
        plan = self.router_plans.get(hook)
        return -1 if plan is None else plan.pick(cmd, key)

    def retry_pool(self, hook: Any) -> int:
        """The pool of ``hook``'s first call when it is a retry route (now), else -1."""
        if self.lua_ran:
            self._read_passthrough()
        return self.retry.get(hook, -1)

    @staticmethod
    def _as_tuple(values: Any) -> tuple[Any, ...]:
        # lupa hands back a bare value when Lua returned only one.
        return values if type(values) is tuple else (values,)

    def hook_for(self, cmd: int, tag: str | None) -> Any:
        """The hook for a command on a connection (spec 2.8): tagged first, then untagged."""
        if tag is not None:
            hooks = self.tagged.get(tag)
            if hooks is not None:
                fn = hooks.get(cmd)
                if fn is not None:
                    return fn
        return self.hooks.get(cmd)
