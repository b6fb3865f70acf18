"""Two route handlers for mcpframe's route library that memcached's own library lacks.

``route_shadow{ child = ..., child_shadow = ..., sample = 0.1 }``
    answers from ``child`` and sends a sampled copy of the traffic (by key or at random, for
    the commands listed) to ``child_shadow``, without waiting for it: the client's answer and
    latency are the primary's.

``route_warmup{ child_cold = ..., child_warm = ..., ttl = 3600 }``
    reads from the cold pool; on a miss reads the warm pool, answers with its result and
    copies the value (with its client flags) into the cold pool in the background. Writes go
    to the cold pool, and with ``write_warm = true`` to the warm one as well.

Both are Lua (``route_shadow.lua``, ``route_warmup.lua`` beside this file), written against
the v2 proxy API exactly as memcached's route handlers are, so the same files also work with
memcached 1.6.45's own route library (``-o proxy_config=routelib:route_shadow.lua:...``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler

__all__ = ["HANDLERS", "mcpframe_route_handlers"]

HERE = Path(__file__).parent

HANDLERS = {
    "shadow": "answer from child; copy a sample of the traffic to child_shadow, not waited for",
    "warmup": "read a cold pool, fall back to a warm one and copy its hits into the cold pool",
}
"""Each handler's name and description; its source is ``route_<name>.lua`` in this package."""


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [
        RouteHandler.from_file(name, HERE / f"route_{name}.lua", description)
        for name, description in HANDLERS.items()
    ]
