"""Key placement: a pool's key -> backend index function, compiled with mypyc
(``mcpframe/native.py``).

A pool's selector runs once per routed key: the key filter (if any), the hasher, the
distribution, then a bounds check. :func:`build_selector` assembles it from the plugins once
per load (the config loader in ``lua/`` calls it); the plugins stay ordinary Python, and the
built-in jump hash hands over its loop to :class:`JumpHash` here. It imports no layer: only
the records (``config``, ``types``), the registry and the exception tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from mypy_extensions import i64

from mcpframe.config import PoolSpec
from mcpframe.errors import PluginRuntimeError
from mcpframe.registry import AnyTable, Registry
from mcpframe.types import BackendInfo

_MASK64: Final = 0xFFFFFFFFFFFFFFFF
_LCG: Final = 2862933555777941757
_TWO63: Final = 1 << 63
_TWO64: Final = 1 << 64


def _i64_wraps() -> bool:
    """True when ``i64`` arithmetic wraps around at 64 bits, as it does compiled by mypyc
    (machine integers); interpreted, ``i64`` is a plain ``int``."""
    x: i64 = 1 << 62
    return x * 4 == 0


#: Compiled, the generator runs on machine integers: Python's arbitrary-precision ones cost
#: about 200 ns per key here.
_NATIVE: Final = _i64_wraps()


class JumpHash:
    """Jump consistent hash over ``len(stop)`` buckets (``dist_jump_hash`` has the
    derivation of ``stop``: the step from bucket ``b`` leaves the loop exactly when the
    generator's top 31 bits are below ``stop[b]``)."""

    def __init__(self, stop: list[int]) -> None:
        self.stop = stop

    def __call__(self, h: int) -> int:
        return self.place(h)

    def place(self, h: int) -> int:
        """The bucket of hash ``h`` (what calling it answers; compiled code calls this)."""
        stop = self.stop
        b = 0  # the first iteration always sets b = 0
        if _NATIVE:
            # The same steps on the two's complement view of h; wrapping multiplication
            # is the "mod 2**64", and the mask keeps the top 31 bits of the unsigned value.
            s: i64 = i64(h - _TWO64 if h >= _TWO63 else h)
            while True:
                s = s * _LCG + 1
                y: i64 = (s >> 33) & 0x7FFFFFFF
                if y < stop[b]:
                    return b
                b = int((b + 1) * (2147483648.0 / float(y + 1)))
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
        #: the built-in jump hash, called as compiled code calls compiled code (a call of
        #: ``dist`` goes through Python's calling convention)
        self.jump = dist if isinstance(dist, JumpHash) else None
        self.n = n
        self.key_filter = key_filter
        self.blame = blame

    def __call__(self, key: bytes) -> int:
        return self.place(key)

    def place(self, key: bytes) -> int:
        """The backend index of ``key`` (what calling the selector answers; compiled code
        calls this method directly)."""
        try:
            f = self.key_filter
            h = self.hasher(key if f is None else f(key), self.seed)
            jump = self.jump
            i = jump.place(h) if jump is not None else self.dist(h)
        except Exception as e:
            raise self.blame(key, e) from e
        if i < 0 or i >= self.n:
            raise IndexError("key dist hasher tried to use out of bounds index")
        return i

    def hash_key(self, key: bytes) -> int:
        """The hash ``place`` computes for ``key`` (the key filter, then the hasher)."""
        try:
            f = self.key_filter
            return self.hasher(key if f is None else f(key), self.seed)
        except Exception as e:
            raise self.blame(key, e) from e

    def place_hash(self, key: bytes, h: int) -> int:
        """The backend index of ``key`` whose hash (``hash_key``) is ``h``: ``place``
        without hashing again."""
        try:
            jump = self.jump
            i = jump.place(h) if jump is not None else self.dist(h)
        except Exception as e:
            raise self.blame(key, e) from e
        if i < 0 or i >= self.n:
            raise IndexError("key dist hasher tried to use out of bounds index")
        return i

    def hashes_like(self, other: Selector) -> bool:
        """Whether ``other`` hashes every key as this selector does (the same hasher and
        seed, and no key filter), so that one ``hash_key`` serves both."""
        return (
            self.key_filter is None
            and other.key_filter is None
            and self.seed == other.seed
            and self.hasher == other.hasher
        )


def build_selector(registry: Registry, spec: PoolSpec) -> Callable[[bytes], int]:
    """The pool's key -> backend index function: filter, then hasher(key, seed), then dist.

    Everything plugin-provided is looked up here, once per load, so the request path calls
    plain Python callables.
    """
    hasher: Callable[[bytes, int], int] = registry.hashers[spec.hash].hash
    seed = 0
    if spec.seed is not None:
        seed = registry.hashers["xxhash"].hash(spec.seed, 0)
    servers = [
        BackendInfo(id=i + 1, host=b.host, port=b.port, label=b.label)
        for i, b in enumerate(spec.backends)
    ]
    dist: Callable[[int], int] = registry.distributions[spec.dist].build(servers, spec.options)
    filt: Callable[[bytes], bytes] | None = None
    if spec.filter is not None:
        filt = registry.key_filters[spec.filter].build(spec.filter_conf or b"")

    def blame(key: bytes, error: Exception) -> Exception:
        # The error path only: find which plugin raised, for the operator's log line.
        stages: list[tuple[str, str, AnyTable, Callable[[Any], Any]]] = []
        if filt is not None:
            stages.append(("key filter", spec.filter or "", registry.key_filters, filt))
        stages.append(("hasher", spec.hash, registry.hashers, lambda k: hasher(k, seed)))
        stages.append(("distribution", spec.dist, registry.distributions, dist))
        value: Any = key
        for kind, name, table, fn in stages:
            try:
                value = fn(value)
            except Exception as e:
                try:
                    src = table.source(name)
                    source = f" (package {src.package} {src.version})"
                except Exception:
                    source = ""
                return PluginRuntimeError(
                    f"{kind} plugin {name!r}{source} raised {e!r} for pool at {spec.where}"
                )
        return PluginRuntimeError(f"pool at {spec.where}: {error!r}")

    return Selector(hasher, seed, dist, len(servers), filt, blame)
