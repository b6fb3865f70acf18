"""``mcp.dist_jump_hash``: Lamping & Veach's jump consistent hash, memcached's default dist.

memcached 1.6.20 (``proxy_jump_hash.c``) computes, for a 64-bit key hash ``h`` and ``n``
backends::

    b = -1; j = 0
    while j < n:
        b = j
        h = h * 2862933555777941757 + 1                      # mod 2**64
        j = (int64_t)((b + 1) * ((double)(1LL << 31) / (double)((h >> 33) + 1)))
    return b

The division and the multiplication are IEEE doubles, then truncated; Python floats are the
same doubles, so ``int((b + 1) * (2147483648.0 / ((h >> 33) + 1)))`` reproduces every bit,
including the rare cases where rounding the quotient crosses an integer.

This runs once per request, so the selector (``mcpframe.placement.JumpHash``, compiled
with mypyc) works on precomputed data, and the last step of the loop skips the float
arithmetic: with ``x = h >> 33``, the step from bucket ``b`` leaves the loop (``j >= n``)
exactly when ``x < stop[b]``. ``stop[b]`` is found at build time with the very same float
expression, and the expression never increases as ``x`` grows (a correctly rounded division
or product is monotonic), so the comparison gives the same answer as computing ``j``. It
saves about a fifth of the time per key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mcpframe.hookspecs import hookimpl
from mcpframe.placement import JumpHash
from mcpframe.types import BackendInfo, Distribution, PoolOptions, Selector

_X_LIMIT = 1 << 31  # x = h >> 33 is in [0, 2**31)


def _jump(b: int, x: int) -> int:
    """The next bucket from bucket ``b`` when the generator's top 31 bits are ``x``."""
    return int((b + 1) * (2147483648.0 / (x + 1)))


def _stop_threshold(b: int, n: int) -> int:
    """The smallest ``x`` for which the step from ``b`` stays below ``n`` (so the loop goes on).

    ``_jump(b, x)`` never increases with ``x``, so every ``x`` below the threshold ends the
    loop at ``b`` and every ``x`` from it on continues. Returns ``2**31`` when no ``x`` continues.
    """
    x = min(_X_LIMIT, ((b + 1) << 31) // n)  # close to the answer; the loops make it exact
    while x > 0 and _jump(b, x - 1) < n:
        x -= 1
    while x < _X_LIMIT and _jump(b, x) >= n:
        x += 1
    return x


def build_jump_hash(servers: Sequence[BackendInfo], options: PoolOptions) -> Selector:
    """A selector for ``len(servers)`` buckets; ``options`` are ignored (as in memcached)."""
    n = len(servers)
    if n == 0:
        return lambda h: -1  # the pool call then fails with the out-of-bounds error
    if n == 1:
        return lambda h: 0  # the first step always lands on bucket 0 and then >= 1
    return JumpHash([_stop_threshold(b, n) for b in range(n)])


@hookimpl
def mcpframe_distributions() -> Iterable[Distribution]:
    return [
        Distribution(
            "jump_hash",
            build_jump_hash,
            description="Lamping-Veach jump consistent hash (memcached's default)",
        )
    ]
