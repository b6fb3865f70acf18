"""A hasher that raises for keys starting with ``boom`` (request-time failure)."""

from __future__ import annotations

from collections.abc import Iterator

import xxhash

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Hasher


def _hash(key: bytes, seed: int) -> int:
    if key.startswith(b"boom"):
        raise RuntimeError("cannot hash this key")
    return xxhash.xxh3_64_intdigest(key, seed)


@hookimpl
def mcpframe_hashers() -> Iterator[Hasher]:
    yield Hasher("fragile", _hash, "raises on keys starting with boom")
