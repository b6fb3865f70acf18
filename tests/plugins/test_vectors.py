"""The test vectors of spec section 5.6, every table, through the registered plugins."""

from __future__ import annotations

import hashlib

import pytest

from mcpframe.default_plugins.dist_ring_hash import continuum
from mcpframe.registry import Registry
from mcpframe.types import BackendInfo, Selector

U64 = (1 << 64) - 1


def xxh(registry: Registry, key: bytes, seed: int = 0) -> int:
    return registry.hashers["xxhash"].hash(key, seed)


def seed_of(registry: Registry, seed: str) -> int:
    # A pool's `seed` option becomes XXH3-64 (seed 0) of the string (spec 5.3).
    return xxh(registry, seed.encode())


def pool(n: int) -> list[BackendInfo]:
    return [BackendInfo(i + 1, "127.0.0.1", str(11511 + i), f"b{i + 1}") for i in range(n)]


def jump(registry: Registry, n: int) -> Selector:
    return registry.distributions["jump_hash"].build(pool(n), {})


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"", 3244421341483603138),
        (b"foo", 12352915711150947722),
        (b"a", 16629034431890738719),
        (b"/test/0", 10238115700393814458),
        (b"/foo/bar", 11513854866498986477),
        (b"hello", 10760762337991515389),
    ],
)
def test_xxh3_vectors(mcpframe_registry: Registry, key: bytes, expected: int) -> None:
    assert xxh(mcpframe_registry, key) == expected


def test_xxh3_hex_forms(mcpframe_registry: Registry) -> None:
    assert xxh(mcpframe_registry, b"") == 0x2D06800538D394C2
    assert xxh(mcpframe_registry, b"foo") == 0xAB6E5F64077E7D8A


@pytest.mark.parametrize(
    ("seed", "expected"),
    [("z1", 7273408066088704005), ("z2", 7552762824107439516), ("foo", 12352915711150947722)],
)
def test_pool_seed_values(mcpframe_registry: Registry, seed: str, expected: int) -> None:
    assert seed_of(mcpframe_registry, seed) == expected


@pytest.mark.parametrize(
    ("h", "buckets"),
    [
        (0, [0, 0, 0, 0, 0]),
        (1, [0, 0, 0, 0, 0]),
        (12345, [0, 1, 1, 1, 1]),
        (18446744073709551615, [0, 1, 2, 2, 2]),
        (3735928559, [0, 1, 2, 3, 3]),
    ],
)
def test_jump_hash_raw_table(mcpframe_registry: Registry, h: int, buckets: list[int]) -> None:
    assert [jump(mcpframe_registry, n)(h) for n in range(1, 6)] == buckets


def test_jump_hash_empty_pool_is_out_of_bounds(mcpframe_registry: Registry) -> None:
    assert jump(mcpframe_registry, 0)(12345) == -1


def test_default_pool_test_keys_3_backends(mcpframe_registry: Registry) -> None:
    # The keys t/proxyconfig.t routes: /test/0 .. /test/20 over b1, b2, b3.
    select = jump(mcpframe_registry, 3)
    placed = [select(xxh(mcpframe_registry, b"/test/%d" % i)) for i in range(21)]
    assert placed == [1, 1, 1, 2, 1, 2, 0, 2, 1, 2, 1, 0, 1, 1, 2, 0, 1, 2, 1, 0, 1]


@pytest.mark.parametrize(
    ("key", "by_size"),
    [
        (b"foo", [1, 2, 2, 2]),
        (b"bar", [1, 1, 3, 3]),
        (b"baz", [0, 0, 3, 3]),
        (b"/b/a", [0, 2, 2, 2]),
        (b"/test/a", [1, 1, 1, 1]),
        (b"/test/b", [0, 0, 3, 3]),
        (b"/test/c", [1, 1, 1, 1]),
        (b"/test/d", [0, 2, 3, 3]),
        (b"/test/e", [0, 0, 3, 3]),
        (b"/test/f", [0, 2, 2, 2]),
    ],
)
def test_default_pool_keys_n2_to_n5(
    mcpframe_registry: Registry, key: bytes, by_size: list[int]
) -> None:
    h = xxh(mcpframe_registry, key)
    assert [jump(mcpframe_registry, n)(h) for n in (2, 3, 4, 5)] == by_size


def test_default_pool_foo_n1_to_n10(mcpframe_registry: Registry) -> None:
    h = xxh(mcpframe_registry, b"foo")
    assert [jump(mcpframe_registry, n)(h) for n in range(1, 11)] == [0, 1, 2, 2, 2, 2, 2, 2, 2, 2]


@pytest.mark.parametrize(
    ("key", "h", "index"),
    [
        (b"/test/0", 13095814140807765288, 2),
        (b"/test/1", 1360094364358203126, 0),
        (b"/test/2", 14338634325467942424, 0),
        (b"/test/3", 1626152599730914570, 1),
        (b"foo", 5220840523985143772, 0),
        (b"bar", 10621169151726452909, 0),
    ],
)
def test_seeded_pool_z1(mcpframe_registry: Registry, key: bytes, h: int, index: int) -> None:
    seed = seed_of(mcpframe_registry, "z1")
    assert xxh(mcpframe_registry, key, seed) == h
    assert jump(mcpframe_registry, 3)(h) == index


def test_stop_filter_vector(mcpframe_registry: Registry) -> None:
    stop = mcpframe_registry.key_filters["stop"].build(b"|#|")
    key = b"foo:bar|#|restofkey"
    assert stop(key) == b"foo:bar"
    assert xxh(mcpframe_registry, stop(key)) == 5247068333699508192
    assert jump(mcpframe_registry, 3)(xxh(mcpframe_registry, stop(key))) == 2
    assert jump(mcpframe_registry, 3)(xxh(mcpframe_registry, key)) == 0  # without the filter


def test_tags_filter_vector(mcpframe_registry: Registry) -> None:
    tags = mcpframe_registry.key_filters["tags"].build(b"{}")
    key = b"user{1234}:profile"
    assert tags(key) == b"1234"
    assert xxh(mcpframe_registry, tags(key)) == 9777848219803310049
    assert jump(mcpframe_registry, 3)(xxh(mcpframe_registry, tags(key))) == 2


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"foo", 3675831724),
        (b"bar", 421377335),
        (b"baz", 2768240243),
        (b"/test/a", 124862535),
        (b"/test/b", 572189893),
        (b"/test/c", 1462554619),
        (b"/foo/bar", 2978083869),
        (b"hello", 708854109),
        (b"a", 3111502092),
        (b"", 3649838548),
    ],
)
def test_md5_key_hash(mcpframe_registry: Registry, key: bytes, value: int) -> None:
    md5 = mcpframe_registry.hashers["md5"]
    assert md5.hash(key, 0) == value
    assert md5.hash(key, 7273408066088704005) == value  # the seed is ignored


def test_md5_is_ring_hash_key_hasher(mcpframe_registry: Registry) -> None:
    ring = mcpframe_registry.distributions["ring_hash"]
    assert mcpframe_registry.key_hasher(ring) is mcpframe_registry.hashers["md5"]


def test_md5_ketama_points() -> None:
    digest = hashlib.md5(b"127.0.0.1:11211-0").hexdigest()
    assert digest == "e2fa569a4ecf5e58ab09bf98d948c859"
    servers = [BackendInfo(1, "127.0.0.1", "11211")]
    assert [p for p, _ in continuum(servers, "ketama", 4)] == sorted(
        [2589391586, 1482608462, 2562656683, 1506298073]
    )


THREE = [
    BackendInfo(1, "127.0.0.1", "11211", "b1"),
    BackendInfo(2, "127.0.0.2", "11211", "b2"),
    BackendInfo(3, "127.0.0.3", "11212", "b3"),
]

# key: {omode: (index with the MD5 hasher, index with the default XXH3 hasher)}
RING_LOOKUPS = {
    b"foo": {"ketama": (2, 0), "twemproxy": (0, 0), "evcache": (1, 0)},
    b"bar": {"ketama": (1, 0), "twemproxy": (0, 1), "evcache": (2, 0)},
    b"baz": {"ketama": (2, 1), "twemproxy": (2, 1), "evcache": (2, 1)},
    b"/test/a": {"ketama": (0, 0), "twemproxy": (0, 1), "evcache": (0, 2)},
    b"/test/b": {"ketama": (0, 1), "twemproxy": (2, 2), "evcache": (0, 2)},
    b"/test/c": {"ketama": (1, 1), "twemproxy": (1, 2), "evcache": (0, 1)},
    b"/foo/bar": {"ketama": (0, 0), "twemproxy": (2, 0), "evcache": (2, 1)},
    b"hello": {"ketama": (2, 2), "twemproxy": (2, 2), "evcache": (2, 0)},
    b"a": {"ketama": (1, 0), "twemproxy": (0, 2), "evcache": (0, 1)},
    b"": {"ketama": (1, 0), "twemproxy": (2, 1), "evcache": (0, 0)},
}


@pytest.mark.parametrize("omode", ["ketama", "twemproxy", "evcache"])
@pytest.mark.parametrize("key", list(RING_LOOKUPS))
def test_ring_lookups_3_servers(mcpframe_registry: Registry, omode: str, key: bytes) -> None:
    select = mcpframe_registry.distributions["ring_hash"].build(
        THREE, {"omode": omode, "obuckets": 160}
    )
    md5 = mcpframe_registry.hashers["md5"].hash(key, 0)
    assert (select(md5), select(xxh(mcpframe_registry, key))) == RING_LOOKUPS[key][omode]


def test_ring_continuum_has_480_points() -> None:
    for omode in ("ketama", "twemproxy", "evcache", "default"):
        assert len(continuum(THREE, omode, 160)) == 480


@pytest.mark.parametrize(
    ("omode", "first"),
    [
        ("ketama", [(8275958, 3), (13595443, 1), (58904517, 1), (64906862, 1), (65526290, 2)]),
        ("twemproxy", [(8275958, 3), (16590639, 1), (28619699, 2), (31832231, 2), (58852528, 2)]),
        ("evcache", [(9098405, 2), (11559074, 3), (31977462, 1), (33056010, 2), (63710428, 2)]),
    ],
)
def test_ring_first_sorted_points(omode: str, first: list[tuple[int, int]]) -> None:
    assert continuum(THREE, omode, 160)[:5] == first


def test_ring_ketama_last_point() -> None:
    assert continuum(THREE, "ketama", 160)[-1] == (4292320248, 1)
