"""``mcp.hash_xxhash``: XXH3-64 with a 64-bit seed, the default key hasher.

memcached 1.6.20's proxy hashes the (filtered) key with ``XXH3_64bits_withSeed``; the seed is 0,
or XXH3-64 of the pool's ``seed`` string. The ``xxhash`` package computes the same function in C,
so its function is the hasher itself: no Python frame per request.
"""

from __future__ import annotations

from collections.abc import Iterable

import xxhash

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Hasher


@hookimpl
def mcpframe_hashers() -> Iterable[Hasher]:
    return [
        Hasher(
            "xxhash",
            xxhash.xxh3_64_intdigest,
            "XXH3-64 of the key with the pool seed (memcached's default)",
        )
    ]
