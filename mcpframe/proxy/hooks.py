"""The routes of a loaded config as the router looks them up: the hook for a command on a
connection, and which hooks are pass-through routes, with the pool each names now.

A pass-through route (``return pool(r)``; the Lua driver recognises its shape) is run by
the router without entering Lua. ``lua_ran`` says Lua code ran since the pools were read: a
route may have reassigned what a pass-through route names, so they are read again before use.
"""

from __future__ import annotations

from typing import Any, Final

from mcpframe.config import Routes
from mcpframe.proxy.limits import Limits

#: What ``passthrough_pools`` answers for a route that is not a pass-through route.
NOT_PASSTHROUGH: Final = -2


class Hooks(Limits):
    """The router's route table. The router inherits it (as it inherits ``Limits``) so that
    the request path reads it without a hop."""

    def __init__(self, vm: Routes, tunables: dict[str, Any], workers: int) -> None:
        super().__init__(tunables, workers)
        self.hooks: dict[int, Any] = vm.hooks.get("", {})
        self.tagged: dict[str, dict[int, Any]] = {t: h for t, h in vm.hooks.items() if t}
        self.passthrough_pools = vm.passthrough_pools
        #: Pass-through routes: hook -> pool index.
        self.pass_hooks: list[Any] = []
        self.passthrough: dict[Any, int] = {}
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
        pools = self._as_tuple(self.retry_pools(*hooks))
        found = zip(hooks, pools, strict=True)
        self.retry_hooks = [fn for fn, pool in found if pool != NOT_PASSTHROUGH]
        self._read_passthrough()

    def _read_passthrough(self) -> None:
        """(Re)read the pool of every pass-through route (and retry route)."""
        self.lua_ran = False
        hooks = self.pass_hooks
        if hooks:
            pools = self._as_tuple(self.passthrough_pools(*hooks))
            found = zip(hooks, pools, strict=True)
            self.passthrough = {fn: pool for fn, pool in found if pool >= 0}
        hooks = self.retry_hooks
        if hooks:
            pools = self._as_tuple(self.retry_pools(*hooks))
            self.retry = {fn: pool for fn, pool in zip(hooks, pools, strict=True) if pool >= 0}

    def passthrough_pool(self, hook: Any) -> int:
        """The pool ``hook`` passes its requests to, or -1 when it is not a pass-through
        route (now)."""
        if self.lua_ran:
            self._read_passthrough()
        return self.passthrough.get(hook, -1)

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
