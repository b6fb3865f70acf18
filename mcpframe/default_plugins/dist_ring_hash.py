"""``mcp.dist_ring_hash``: a ketama-style continuum, compatible with memcached 1.6.20.

Each backend puts points on a 32-bit circle; a key goes to the backend owning the first point
at or after the low 32 bits of its hash, wrapping to the first point past the top. Options, read
from the ``mcp.pool`` options table:

``omode`` (``"default"``, ``"ketama"``, ``"twemproxy"``, ``"evcache"``)
    How points are made. For ``k`` in ``0 .. B/4 - 1`` the MD5 modes hash one string per
    ``k`` and cut its 16-byte digest into 4 little-endian 32-bit points:

    * ketama: ``"<host>:<port>-<k>"``
    * twemproxy: ``"<host>-<k>"`` when the port is exactly ``"11211"``, else as ketama
    * evcache: ``"<host>/<host>:<port>-<k>"``

    ``default`` makes one point per ``k`` in ``0 .. B - 1``: the low 32 bits of XXH3-64
    (seed 0) of ``"<host>:<port>-<k>"``.
``obuckets`` (B, positive integer, default 160)
    Points per backend (rounded down to a multiple of 4 in the MD5 modes).

Host and port are the strings given to ``mcp.backend``, not resolved addresses and not the label.

Two 1.6.20 defects are fixed here, as the spec's [R] advises and later memcached does: default
mode really builds the continuum (1.6.20 keeps a single point and reads uninitialised memory),
and when B is not a multiple of 4 only the points actually made are used. The ring_hash
distribution does not change the pool's key hasher: ketama compatibility needs
``hash = mcp.dist_ring_hash.hash`` (MD5, published through ``key_hasher="md5"``).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import xxhash

from mcpframe.hookspecs import hookimpl
from mcpframe.types import BackendInfo, Distribution, PoolOptions, Selector

DEFAULT_BUCKETS = 160
BAD_OMODE = "ring_hash: bad omode argument"
BAD_BUCKETS = "ring_hash: option argument must be a positive integer"


def _md5_points(text: str) -> Iterator[int]:
    digest = hashlib.md5(text.encode()).digest()
    for j in range(0, 16, 4):
        yield int.from_bytes(digest[j : j + 4], "little")


def _ketama(s: BackendInfo, buckets: int) -> Iterator[int]:
    for k in range(buckets // 4):
        yield from _md5_points(f"{s.host}:{s.port}-{k}")


def _twemproxy(s: BackendInfo, buckets: int) -> Iterator[int]:
    for k in range(buckets // 4):
        if s.port == "11211":
            yield from _md5_points(f"{s.host}-{k}")
        else:
            yield from _md5_points(f"{s.host}:{s.port}-{k}")


def _evcache(s: BackendInfo, buckets: int) -> Iterator[int]:
    for k in range(buckets // 4):
        yield from _md5_points(f"{s.host}/{s.host}:{s.port}-{k}")


def _default(s: BackendInfo, buckets: int) -> Iterator[int]:
    for k in range(buckets):
        yield xxhash.xxh3_64_intdigest(f"{s.host}:{s.port}-{k}".encode()) & 0xFFFFFFFF


POINT_MODES: dict[str, Callable[[BackendInfo, int], Iterator[int]]] = {
    "default": _default,
    "ketama": _ketama,
    "twemproxy": _twemproxy,
    "evcache": _evcache,
}
"""``omode`` -> the points one backend puts on the circle, given ``obuckets``."""


def _options(options: PoolOptions) -> tuple[str, int]:
    omode = options.get("omode", "default")
    if not isinstance(omode, str):
        raise TypeError(f"ring_hash: omode must be a string, not {type(omode).__name__}")
    if omode not in POINT_MODES:
        raise ValueError(BAD_OMODE)
    buckets = options.get("obuckets", DEFAULT_BUCKETS)
    # Lua numbers arrive as int or float; 160.0 is the integer 160 to Lua, 1.5 is not.
    if isinstance(buckets, float) and buckets.is_integer():
        buckets = int(buckets)
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
        raise ValueError(BAD_BUCKETS)
    return omode, buckets


def continuum(
    servers: Sequence[BackendInfo], omode: str = "default", buckets: int = DEFAULT_BUCKETS
) -> list[tuple[int, int]]:
    """Every ``(point, server id)`` of the ring, sorted by point (ties by id)."""
    make_points = POINT_MODES[omode]
    return sorted((p, s.id) for s in servers for p in make_points(s, buckets))


def build_ring_hash(servers: Sequence[BackendInfo], options: PoolOptions) -> Selector:
    """Build the continuum once; the selector is a binary search on it."""
    omode, buckets = _options(options)
    ring = continuum(servers, omode, buckets)
    if not ring:  # no servers, or fewer than 4 buckets in an MD5 mode
        return lambda h: -1
    points = [p for p, _ in ring]
    # owners[i] is the 0-based index owning points[i]; one more entry for the wrap-around,
    # so a hash above the last point (bisect returns len(points)) lands on the first owner.
    owners = [server_id - 1 for _, server_id in ring]
    owners.append(owners[0])
    bisect_left = bisect.bisect_left

    def select_ring_hash(h: int) -> int:
        # The first point >= the low 32 bits; with equal points, the first of them.
        return owners[bisect_left(points, h & 0xFFFFFFFF)]

    return select_ring_hash


@hookimpl
def mcpframe_distributions() -> Iterable[Distribution]:
    return [
        Distribution(
            "ring_hash",
            build_ring_hash,
            key_hasher="md5",
            description="ketama continuum; omode default/ketama/twemproxy/evcache, obuckets",
        )
    ]
