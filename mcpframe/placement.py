"""Key placement on the request path, compiled with mypyc (``mcpframe/native.py``).

It imports nothing from mcpframe: both the config loader (``lua/``) and the built-in jump hash
plugin use it.

A pool's selector runs once per routed key: the key filter (if any), the hasher, the
distribution, then a bounds check. ``lua/config.py`` assembles it from the plugins once per
load; the plugins stay ordinary Python, and the built-in jump hash hands over its loop to
:class:`JumpHash` here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

_MASK64: Final = 0xFFFFFFFFFFFFFFFF
_LCG: Final = 2862933555777941757


class JumpHash:
    """Jump consistent hash over ``len(stop)`` buckets (``dist_jump_hash`` has the
    derivation of ``stop``: the step from bucket ``b`` leaves the loop exactly when the
    generator's top 31 bits are below ``stop[b]``)."""

    def __init__(self, stop: list[int]) -> None:
        self.stop = stop

    def __call__(self, h: int) -> int:
        stop = self.stop
        b = 0  # the first iteration always sets b = 0
        while True:
            h = (h * _LCG + 1) & _MASK64
            x = h >> 33
            if x < stop[b]:
                return b
            b = int((b + 1) * (2147483648.0 / (x + 1)))


class Selector:
    """key -> backend index for one pool. ``blame`` turns a plugin's exception into the
    error that names the plugin (the error path only)."""

    def __init__(
        self,
        hasher: Callable[[bytes, int], int],
        seed: int,
        dist: Callable[[int], int],
        n: int,
        key_filter: Callable[[bytes], bytes] | None,
        blame: Callable[[bytes, Exception], Exception],
    ) -> None:
        self.hasher = hasher
        self.seed = seed
        self.dist = dist
        self.n = n
        self.key_filter = key_filter
        self.blame = blame

    def __call__(self, key: bytes) -> int:
        try:
            f = self.key_filter
            i = self.dist(self.hasher(key if f is None else f(key), self.seed))
        except Exception as e:
            raise self.blame(key, e) from e
        if i < 0 or i >= self.n:
            raise IndexError("key dist hasher tried to use out of bounds index")
        return i
