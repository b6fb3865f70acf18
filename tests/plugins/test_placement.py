"""Every dist x hasher x seed x filter places thousands of keys exactly as an independent,
straightforward computation written here from the spec (no code shared with the plugins)."""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mmh3
import pytest
import xxhash

from mcpframe.default_plugins.dist_jump_hash import _stop_threshold
from mcpframe.registry import Registry
from mcpframe.types import BackendInfo

M64 = 2**64

# --- the reference computations -------------------------------------------------------------


def ref_xxhash(key: bytes, seed: int) -> int:
    return xxhash.xxh3_64(key, seed=seed).intdigest()


def ref_md5(key: bytes, seed: int) -> int:
    (value,) = struct.unpack_from("<I", hashlib.md5(key).digest())
    return int(value)


def ref_murmur3(key: bytes, seed: int) -> int:
    return int(mmh3.hash128(key, seed % 2**32, x64arch=True, signed=False)) % M64


REF_HASHERS: dict[str, Callable[[bytes, int], int]] = {
    "xxhash": ref_xxhash,
    "md5": ref_md5,
    "murmur3": ref_murmur3,
}


def ref_jump(h: int, n: int) -> int:
    # The loop of spec 5.4, transcribed literally (modulo instead of a mask, math.trunc).
    b, j = -1, 0
    while j < n:
        b = j
        h = (h * 2862933555777941757 + 1) % M64
        j = math.trunc(float(b + 1) * (float(2**31) / float((h >> 33) + 1)))
    return b


@functools.cache
def ref_ring(
    servers: tuple[tuple[str, str], ...], omode: str, buckets: int
) -> list[tuple[int, int]]:
    """The spec 5.5 table: (point, 0-based index), sorted."""
    points: list[tuple[int, int]] = []
    for index, (host, port) in enumerate(servers):
        if omode == "default":
            for k in range(buckets):
                name = f"{host}:{port}-{k}".encode()
                points.append((xxhash.xxh3_64(name).intdigest() % 2**32, index))
            continue
        for k in range(buckets // 4):
            if omode == "ketama":
                text = f"{host}:{port}-{k}"
            elif omode == "twemproxy":
                text = f"{host}-{k}" if port == "11211" else f"{host}:{port}-{k}"
            else:
                text = f"{host}/{host}:{port}-{k}"
            digest = hashlib.md5(text.encode()).digest()
            points.extend((int(p), index) for p in struct.unpack("<4I", digest))
    return sorted(points)


def ref_ring_many(ring: list[tuple[int, int]], hashes: list[int]) -> list[int]:
    # Not a binary search: sort the keys and walk the ring once, wrapping past the top.
    out = [0] * len(hashes)
    order = sorted(range(len(hashes)), key=lambda i: hashes[i] % 2**32)
    pos = 0
    for i in order:
        h32 = hashes[i] % 2**32
        while pos < len(ring) and ring[pos][0] < h32:
            pos += 1
        out[i] = ring[pos][1] if pos < len(ring) else ring[0][1]
    return out


def identity(key: bytes) -> bytes:
    return key


def ref_stop(conf: bytes) -> Callable[[bytes], bytes]:
    return lambda key: key.split(conf, 1)[0]


def ref_tags(conf: bytes) -> Callable[[bytes], bytes]:
    # First X, then the first Y after it (the [R] fix); lazy match = the first such Y.
    pattern = re.compile(re.escape(conf[:1]) + b"(.*?)" + re.escape(conf[1:2]), re.DOTALL)

    def apply(key: bytes) -> bytes:
        found = pattern.search(key)
        return key if found is None else found.group(1)

    return apply


REF_FILTERS: dict[str, Callable[[bytes], Callable[[bytes], bytes]]] = {
    "stop": ref_stop,
    "tags": ref_tags,
}

# --- the matrix ------------------------------------------------------------------------------

HOSTS = [
    ("127.0.0.1", "11211"),
    ("127.0.0.2", "11211"),
    ("127.0.0.3", "11212"),
    ("cache-a.example", "11211"),
    ("10.1.2.3", "21211"),
    ("10.1.2.4", "11211"),
    ("::1", "11211"),
]
SIZES = (1, 3, 7)
SEEDS = {"none": 0, "z1": ref_xxhash(b"z1", 0), "foo": ref_xxhash(b"foo", 0)}
FILTERS: dict[str, tuple[str, bytes] | None] = {
    "none": None,
    "stop": ("stop", b"|#|"),
    "tags": ("tags", b"{}"),
    "tags$$": ("tags", b"$$"),
}
DISTS: dict[str, tuple[str, dict[str, object]]] = {
    "jump_hash": ("jump_hash", {}),
    "ring_default": ("ring_hash", {}),
    "ring_ketama": ("ring_hash", {"omode": "ketama"}),
    "ring_twemproxy": ("ring_hash", {"omode": "twemproxy", "obuckets": 160}),
    "ring_evcache": ("ring_hash", {"omode": "evcache", "obuckets": 100}),
}


def make_keys(count: int = 2000) -> list[bytes]:
    rng = random.Random(5)
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789/:_-"
    keys = [b"", b"|#|", b"{}", b"$$", b"{", b"$", b"a{", b"x$y"]

    def word() -> bytes:
        return bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))

    while len(keys) < count:
        shape = rng.randrange(5)
        if shape == 0:
            keys.append(word() + b"|#|" + word())
        elif shape == 1:
            keys.append(word() + b"{" + word() + b"}" + word())
        elif shape == 2:
            keys.append(word() + b"$" + word() + b"$" + word())
        elif shape == 3:
            keys.append(word() + b"{" + word())
        else:
            keys.append(word() + word())
    return keys


KEYS = make_keys()


@pytest.mark.parametrize("filter_id", list(FILTERS))
@pytest.mark.parametrize("seed_id", list(SEEDS))
@pytest.mark.parametrize("hasher_name", list(REF_HASHERS))
@pytest.mark.parametrize("dist_id", list(DISTS))
def test_placement_matches_reference(
    mcpframe_registry: Registry, dist_id: str, hasher_name: str, seed_id: str, filter_id: str
) -> None:
    dist_name, options = DISTS[dist_id]
    seed = SEEDS[seed_id]
    hasher = mcpframe_registry.hashers[hasher_name].hash
    ref_hasher = REF_HASHERS[hasher_name]
    filter_spec = FILTERS[filter_id]
    filt: Callable[[bytes], bytes]
    ref_filt: Callable[[bytes], bytes]
    if filter_spec is None:
        filt = ref_filt = identity
    else:
        name, conf = filter_spec
        filt = mcpframe_registry.key_filters[name].build(conf)
        ref_filt = REF_FILTERS[name](conf)

    hashes = [hasher(filt(k), seed) for k in KEYS]
    assert hashes == [ref_hasher(ref_filt(k), seed) for k in KEYS]

    for n in SIZES:
        servers = [BackendInfo(i + 1, h, p, f"b{i + 1}") for i, (h, p) in enumerate(HOSTS[:n])]
        select = mcpframe_registry.distributions[dist_name].build(servers, options)
        placed = [select(h) for h in hashes]
        if dist_name == "jump_hash":
            expected = [ref_jump(h, n) for h in hashes]
        else:
            omode = str(options.get("omode", "default"))
            buckets = int(str(options.get("obuckets", 160)))
            expected = ref_ring_many(ref_ring(tuple(HOSTS[:n]), omode, buckets), hashes)
        assert placed == expected, f"{n} servers"


def test_jump_hash_matches_reference_on_wide_range(mcpframe_registry: Registry) -> None:
    # The selector skips the float arithmetic on its last step; check that shortcut over many
    # pool sizes (up to 2000) and random 64-bit hashes, edge values included.
    rng = random.Random(11)
    hashes = [0, 1, M64 - 1, 2**63, 2**33 - 1, 2**33] + [rng.getrandbits(64) for _ in range(800)]
    dist = mcpframe_registry.distributions["jump_hash"]
    for n in [*range(0, 40), 64, 100, 127, 128, 129, 255, 1000, 1024, 2000]:
        select = dist.build([BackendInfo(i + 1, "h", "1") for i in range(n)], {})
        assert [select(h) for h in hashes] == [ref_jump(h, n) for h in hashes], n


def test_jump_hash_interpreted_and_compiled_agree() -> None:
    # Compiled, the jump hash runs on machine integers (mypy_extensions.i64); interpreted (a
    # plain-Python install), on Python ints. Run mcpframe/placement.py's source interpreted
    # next to the installed module and check both against the reference.
    import mcpframe.placement as installed

    interpreted: dict[str, Any] = {"__name__": "placement_interpreted"}
    source = Path(installed.__file__).parent / "placement.py"  # next to the .so, if compiled
    exec(compile(source.read_text(), str(source), "exec"), interpreted)
    assert interpreted["_NATIVE"] is False
    rng = random.Random(12)
    hashes = [0, 1, M64 - 1, 2**63 - 1, 2**63, 2**32] + [rng.getrandbits(64) for _ in range(2000)]
    for n in (1, 2, 3, 7, 100, 1000):
        stop = [_stop_threshold(b, n) for b in range(n)]
        expected = [ref_jump(h, n) for h in hashes]
        assert [installed.JumpHash(stop)(h) for h in hashes] == expected, n
        assert [interpreted["JumpHash"](stop)(h) for h in hashes] == expected, n


def test_one_hash_places_as_place(mcpframe_registry: Registry) -> None:
    # A fan-out over pools that hash alike hashes the key once (Selector.hash_key) and lets
    # each pool place that hash (place_hash): the same backend as place() for every pool,
    # and pools with another hasher, seed or a key filter are never taken as alike.
    from mcpframe.config import BackendSpec, PoolSpec
    from mcpframe.placement import Selector, build_selector

    def pool(n: int, **kw: Any) -> Selector:
        backends = [BackendSpec(f"b{i}", "127.0.0.1", str(11211 + i)) for i in range(n)]
        selector = build_selector(mcpframe_registry, PoolSpec(backends, **kw))
        assert isinstance(selector, Selector)
        return selector

    plain = [pool(3), pool(2), pool(5, dist="ring_hash")]
    for selector in plain:
        assert plain[0].hashes_like(selector)
        for key in KEYS:
            assert selector.place_hash(key, plain[0].hash_key(key)) == selector.place(key)
    others = [
        pool(3, hash="md5"),
        pool(3, seed=b"s"),
        pool(3, filter="tags", filter_conf=b"{}"),
    ]
    for selector in others:
        assert not plain[0].hashes_like(selector)
        assert not selector.hashes_like(plain[0])
        for key in KEYS:
            assert selector.place_hash(key, selector.hash_key(key)) == selector.place(key)
