"""``mcp.dist_rendezvous``: rendezvous (highest random weight) hashing, with weights.

For each key, every backend draws a pseudo-random score from the key hash and its own
identity; the key goes to the highest score. Adding a backend only takes keys *to* it,
removing one only moves *its* keys, and the order of the pool's list does not matter.

A backend's identity and weight come from its label, ``"<name>@<weight>"``::

    mcp.pool({
        mcp.backend("cache1@2", "10.0.0.1", 11211),   -- name cache1, twice the keys
        mcp.backend("cache2", "10.0.0.2", 11211),     -- name cache2, weight 1
        mcp.backend("cache3@0", "10.0.0.3", 11211),   -- drained: gets no key
    }, { dist = mcp.dist_rendezvous })

The identity is the name, not the address, so moving ``cache1`` to another host (same label)
keeps its keys in place. Two backends of one pool may not share a name. A weight is any
number >= 0 (``@1.5`` is fine); a backend's expected share of keys is its weight over the
sum of weights (the logarithmic method: the score is ``w / -ln(u)`` for a uniform draw u).

Cost: one XXH3 of 8 bytes per backend per request, about 0.6 us for 8 backends in CPython
(1.8 us with unequal weights), so it suits pools of tens of backends, not thousands.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import xxhash
from mcpframe.hookspecs import hookimpl
from mcpframe.types import BackendInfo, Distribution, PoolOptions, Selector

__all__ = ["build_rendezvous", "identity", "mcpframe_distributions"]


def identity(server: BackendInfo) -> tuple[str, float]:
    """A backend's name and weight, read from its label ``"<name>@<weight>"``."""
    name, at, weight = server.label.rpartition("@")
    if not at:
        return server.label, 1.0
    try:
        value = float(weight)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"rendezvous: backend label {server.label!r}: the weight after '@' must be a "
            f"number >= 0"
        )
    return name, value


def build_rendezvous(servers: Sequence[BackendInfo], options: PoolOptions) -> Selector:
    """Read names and weights once; the selector scores every backend with weight > 0."""
    members = [identity(s) for s in servers]
    names = [name for name, _ in members]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"rendezvous: two backends are named {name!r}")
    # (seed, weight, index) of every backend that may receive keys.
    active = [
        (xxhash.xxh3_64_intdigest(name.encode()), weight, index)
        for index, (name, weight) in enumerate(members)
        if weight > 0
    ]
    if not active:
        return lambda h: -1  # empty or fully drained pool: the pool call fails
    digest = xxhash.xxh3_64_intdigest

    if len({weight for _, weight, _ in active}) == 1:
        # Equal weights: the highest raw draw wins, no logarithm needed.
        def select_rendezvous(h: int) -> int:
            key = h.to_bytes(8, "little")
            best, chosen = -1, -1
            for seed, _, index in active:
                draw = digest(key, seed)
                if draw > best:
                    best, chosen = draw, index
            return chosen

        return select_rendezvous

    log = math.log

    def select_weighted_rendezvous(h: int) -> int:
        key = h.to_bytes(8, "little")
        best, chosen = -1.0, -1
        for seed, weight, index in active:
            # u in (0, 1): the top 52 bits of the draw, centred; -ln(u) > 0.
            u = ((digest(key, seed) >> 12) + 0.5) * 2.0**-52
            score = weight / -log(u)
            if score > best:
                best, chosen = score, index
        return chosen

    return select_weighted_rendezvous


@hookimpl
def mcpframe_distributions() -> Iterable[Distribution]:
    return [
        Distribution(
            "rendezvous",
            build_rendezvous,
            description="rendezvous (highest random weight); labels 'name@weight'",
        )
    ]
