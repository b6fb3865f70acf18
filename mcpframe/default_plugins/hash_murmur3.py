"""``mcp.hash_murmur3``: MurmurHash3, 64 bits. An mcpframe addition; memcached's proxy has none.

The value is the first 64-bit word of MurmurHash3_x64_128 (``mmh3.hash64(key, seed,
signed=False)[0]``, equal to the low 64 bits of ``mmh3.hash128(key, seed, x64arch=True)``).
MurmurHash3 takes a 32-bit seed, so the pool's 64-bit seed is cut to its low 32 bits: pools with
seed strings whose XXH3 values share their low half place keys identically.
"""

from __future__ import annotations

from collections.abc import Iterable

import mmh3

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Hasher


def murmur3_hash(key: bytes, seed: int) -> int:
    """MurmurHash3_x64_128 of ``key``, first 64-bit word, seed cut to 32 bits."""
    return int(mmh3.hash64(key, seed & 0xFFFFFFFF, signed=False)[0])


@hookimpl
def mcpframe_hashers() -> Iterable[Hasher]:
    return [
        Hasher(
            "murmur3",
            murmur3_hash,
            "MurmurHash3_x64_128, first 64 bits; low 32 bits of the seed",
        )
    ]
