"""A second provider of ``crc32`` (``good`` has one): a conflict between two third parties."""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Hasher


@hookimpl
def mcpframe_hashers() -> Iterable[Hasher]:
    return [Hasher("crc32", lambda key, seed: 1)]
