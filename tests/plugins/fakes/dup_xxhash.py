"""A plugin that claims the built-in name ``xxhash``: a conflict."""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Hasher


@hookimpl
def mcpframe_hashers() -> Iterable[Hasher]:
    return [Hasher("xxhash", lambda key, seed: 0)]
