"""Unit tests for mcpframe-twemproxy. The placement proof is in test_against_nutcracker.py."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from collections.abc import Callable

import pytest
from mcpframe.config import LoadedConfig
from mcpframe.registry import Registry
from mcpframe.testing import check_distribution, check_hasher, check_key_filter
from mcpframe.types import BackendInfo

from mcpframe_twemproxy import build_hash_tag
from mcpframe_twemproxy.distributions import (
    build_ketama,
    build_modula,
    ketama_points_per_server,
    server_names,
    twemproxy_order,
)
from mcpframe_twemproxy.hashes import HASHES, lookup3

HASHERS = [f"tw_{name}" for name in HASHES]


def test_listed_by_mcpframe_plugins_list() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "mcpframe", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {
        (row["kind"], row["name"]): row
        for row in json.loads(listed.stdout)
        if row["package"] == "mcpframe-twemproxy"
    }
    expected = {("hasher", name) for name in HASHERS}
    expected |= {("distribution", "tw_ketama"), ("distribution", "tw_modula")}
    expected |= {("key_filter", "tw_hash_tag")}
    assert set(rows) == expected
    assert all(row["status"] == "ok" for row in rows.values())
    # The dists publish twemproxy's default hash as mcp.dist_tw_ketama.hash.
    assert rows[("hasher", "tw_fnv1a_64")]["lua_name"] == (
        "mcp.hash_tw_fnv1a_64, mcp.dist_tw_ketama.hash, mcp.dist_tw_modula.hash"
    )


@pytest.mark.parametrize("name", [n for n in HASHERS if n != "tw_crc32"])
def test_hashers_meet_the_contract(mcpframe_registry: Registry, name: str) -> None:
    check_hasher(mcpframe_registry.hashers[name])


def test_crc32_is_libmemcacheds_15_bit_hash(mcpframe_registry: Registry) -> None:
    # Faithful to twemproxy, and therefore below the contract's spread requirement.
    with pytest.raises(AssertionError, match="distinct low 32-bit values"):
        check_hasher(mcpframe_registry.hashers["tw_crc32"])
    assert all(HASHES["crc32"](b"key%d" % i) < 0x8000 for i in range(1000))


def test_hashers_ignore_the_seed(mcpframe_registry: Registry) -> None:
    for name in HASHERS:
        hasher = mcpframe_registry.hashers[name]
        assert hasher.hash(b"foo", 0) == hasher.hash(b"foo", 2**64 - 1)


def test_known_vectors() -> None:
    # Published vectors of the underlying algorithms.
    assert lookup3(b"", 0) == 0xDEADBEEF
    assert lookup3(b"", 0xDEADBEEF) == 0xBD5B7DDE
    assert lookup3(b"Four score and seven years ago", 0) == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161
    assert HASHES["jenkins"](b"abc") == lookup3(b"abc", 13)
    assert HASHES["one_at_a_time"](b"a") == 0xCA2E9442
    assert HASHES["one_at_a_time"](b"The quick brown fox jumps over the lazy dog") == 0x519E91F5
    assert HASHES["fnv1a_32"](b"a") == 0xE40C292C
    assert HASHES["fnv1_32"](b"a") == 0x050C5D7E
    assert HASHES["fnv1_64"](b"a") == 0xAF63BD4C8601B7BE & 0xFFFFFFFF
    assert HASHES["crc16"](b"123456789") & 0xFFFF == 0x31C3  # CRC-16/XMODEM check value
    assert HASHES["crc32a"](b"123456789") == zlib.crc32(b"123456789") == 0xCBF43926
    assert HASHES["md5"](b"foo") == 3675831724  # = memcached's MD5 key hash


def test_bytes_above_127_are_signed_chars() -> None:
    # twemproxy mixes in (uint32_t)(char)0xe9 = 0xffffffe9 for the byte 0xe9.
    h = 2166136261
    h = ((h ^ 0xFFFFFFE9) * 16777619) & 0xFFFFFFFF
    assert HASHES["fnv1a_32"](b"\xe9") == h
    assert HASHES["fnv1a_32"](b"\xe9") != HASHES["fnv1a_32"](b"\x69")


def test_ketama_points_follow_weights_in_float_arithmetic() -> None:
    assert ketama_points_per_server(1, 3, 3) == 160
    assert ketama_points_per_server(1, 6, 3) == 80
    # 29/60 * 40 * 3 is 58 exactly, but in C floats it is 57.99999, so 57 * 4 points.
    assert ketama_points_per_server(29, 60, 3) == 228


def test_servers_are_ordered_like_nutcracker() -> None:
    assert twemproxy_order(["10.0.0.10", "10.0.0.9", "b", "a"]) == [3, 2, 1, 0]
    pool = [
        BackendInfo(1, "10.0.0.1", "11211", "x"),
        BackendInfo(2, "10.0.0.1", "11212", "y"),
    ]
    assert server_names(pool, {}, "tw_ketama") == ["10.0.0.1", "10.0.0.1:11212"]
    named = [BackendInfo(1, "h", "1", "alpha@2"), BackendInfo(2, "h", "2", "beta")]
    assert server_names(named, {"tw_names": True}, "tw_ketama") == ["alpha", "beta"]


def test_modula_table_is_in_name_order_with_weights() -> None:
    pool = [
        BackendInfo(1, "10.0.0.2", "11211", "a@1"),
        BackendInfo(2, "10.0.0.1", "11211", "b@2"),
    ]
    select = build_modula(pool, {})
    # Sorted by name: 10.0.0.1 (weight 2, index 1) then 10.0.0.2 (index 0): table [1, 1, 0].
    assert [select(h) for h in range(6)] == [1, 1, 0, 1, 1, 0]
    assert select(2**32 + 2) == 0  # only the low 32 bits count


@pytest.mark.parametrize("build", [build_ketama, build_modula])
def test_bad_labels_and_options_are_refused(build: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        build([BackendInfo(1, "h", "1", "a@0")], {})
    with pytest.raises(ValueError, match="two backends are named"):
        build([BackendInfo(1, "h", "11211", "a"), BackendInfo(2, "h", "11211", "b")], {})
    with pytest.raises(ValueError, match="no name"):
        build([BackendInfo(1, "h", "1", "@2")], {"tw_names": True})
    with pytest.raises(TypeError, match="tw_names must be a boolean"):
        build([BackendInfo(1, "h", "1", "a")], {"tw_names": "yes"})
    assert build([], {})(5) == -1  # type: ignore[operator]


def test_ketama_meets_the_distribution_contract(mcpframe_registry: Registry) -> None:
    check_distribution(mcpframe_registry.distributions["tw_ketama"])


def test_modula_meets_the_contract_except_consistency(mcpframe_registry: Registry) -> None:
    check_distribution(mcpframe_registry.distributions["tw_modula"], consistent=False)


@pytest.mark.parametrize("conf", [b"{}", b"$$", b"::"])
def test_hash_tag_meets_the_key_filter_contract(mcpframe_registry: Registry, conf: bytes) -> None:
    check_key_filter(mcpframe_registry.key_filters["tw_hash_tag"], conf)


def test_hash_tag_is_twemproxys() -> None:
    tag = build_hash_tag(b"{}")
    assert tag(b"user{1234}:profile") == b"1234"
    assert tag(b"a{}b") == b"a{}b"  # an empty tag hashes the whole key (mcpframe's tags: b"")
    assert tag(b"{x") == b"{x"
    assert tag(b"x}y{z}") == b"z"
    assert build_hash_tag(b"$$")(b"a$b$c$") == b"b"


def test_a_config_using_it_loads(mcpframe_load_config: Callable[[str], LoadedConfig]) -> None:
    loaded = mcpframe_load_config("""
        function mcp_config_pools()
            local b = {
                mcp.backend("s1", "10.0.0.1", 11211),
                mcp.backend("s2", "10.0.0.2", 11211),
                mcp.backend("s3", "10.0.0.3", 11211),
            }
            return {
                ketama = mcp.pool(b, { dist = mcp.dist_tw_ketama, hash = mcp.dist_tw_ketama.hash,
                                       filter = "tw_hash_tag", filter_conf = "{}" }),
                modula = mcp.pool(b, { dist = mcp.dist_tw_modula, hash = mcp.hash_tw_murmur }),
            }
        end
        function mcp_config_routes(pools)
            mcp.attach(mcp.CMD_ANY_STORAGE, function(r) return pools.ketama(r) end)
        end
    """)
    pools = loaded.named_pools()
    assert (pools["ketama"].dist, pools["ketama"].hash) == ("tw_ketama", "tw_fnv1a_64")
    assert (pools["modula"].dist, pools["modula"].hash) == ("tw_modula", "tw_murmur")
    ketama = pools["ketama"]
    assert ketama.select(b"user{42}:name") == ketama.select(b"user{42}:email")
    assert {ketama.select(b"session:%d" % i) for i in range(1000)} == {0, 1, 2}
