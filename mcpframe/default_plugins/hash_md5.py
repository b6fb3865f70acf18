"""``mcp.hash_md5``, also published as ``mcp.dist_ring_hash.hash``: the ketama key hash.

memcached 1.6.20 takes the MD5 digest of the (filtered) key and reads its first 4 bytes as a
little-endian unsigned 32-bit number (``d[0] | d[1] << 8 | d[2] << 16 | d[3] << 24``), stored
as a 64-bit value with the high half zero. The pool seed is ignored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Hasher


def md5_hash(key: bytes, seed: int) -> int:
    """First 4 bytes of MD5(key), little-endian; ``seed`` is ignored."""
    return int.from_bytes(hashlib.md5(key).digest()[:4], "little")


@hookimpl
def mcpframe_hashers() -> Iterable[Hasher]:
    return [Hasher("md5", md5_hash, "first 4 bytes of MD5, little-endian; seed ignored (ketama)")]
