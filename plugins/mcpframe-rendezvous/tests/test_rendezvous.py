"""Tests for mcpframe-rendezvous. Install the package first: ``pip install -e '.[test]'``."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence

import pytest
from mcpframe.config import LoadedConfig
from mcpframe.registry import Registry
from mcpframe.testing import check_distribution, sample_servers
from mcpframe.types import BackendInfo, Distribution, PoolOptions, Selector

from mcpframe_rendezvous import build_rendezvous, identity

_RNG = random.Random(5)
HASHES = [_RNG.getrandbits(64) for _ in range(20000)]


def servers(*labels: str) -> list[BackendInfo]:
    return [BackendInfo(i + 1, f"10.0.0.{i + 1}", "11211", label) for i, label in enumerate(labels)]


def placement(labels: list[str], hashes: list[int] = HASHES) -> list[str]:
    """The label each hash lands on."""
    pool = servers(*labels)
    select = build_rendezvous(pool, {})
    return [pool[select(h)].label for h in hashes]


def test_listed_by_mcpframe_plugins_list() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "mcpframe", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [row for row in json.loads(listed.stdout) if row["package"] == "mcpframe-rendezvous"]
    assert [(r["name"], r["lua_name"], r["status"]) for r in rows] == [
        ("rendezvous", "mcp.dist_rendezvous", "ok")
    ]


def test_meets_the_distribution_contract(mcpframe_registry: Registry) -> None:
    check_distribution(mcpframe_registry.distributions["rendezvous"])


def test_weighted_pools_meet_the_contract_too(mcpframe_registry: Registry) -> None:
    dist = mcpframe_registry.distributions["rendezvous"]

    def build_weighted(pool: Sequence[BackendInfo], options: PoolOptions) -> Selector:
        # The contract's servers, with weights 1, 2, 3, 1, 2, 3 ...
        weighted = [BackendInfo(s.id, s.host, s.port, f"{s.label}@{s.id % 3 + 1}") for s in pool]
        return dist.build(weighted, options)

    # Unequal weights make unequal shares, so the "fair share" check does not apply.
    check_distribution(Distribution("weighted", build_weighted), balanced=False)


def test_order_of_the_pool_list_does_not_matter() -> None:
    forward = placement(["a", "b", "c", "d"])
    backward = placement(["d", "c", "b", "a"])
    assert forward == backward


def test_removing_a_backend_moves_only_its_keys() -> None:
    before = placement(["a", "b", "c", "d"])
    after = placement(["a", "b", "d"])
    moved = [(x, y) for x, y in zip(before, after, strict=True) if x != y]
    assert moved and all(x == "c" for x, _ in moved)


def test_weights_set_the_shares() -> None:
    counts = Counter(placement(["a@1", "b@2", "c@3", "d@0"]))
    assert "d@0" not in counts
    shares = {label: count / len(HASHES) for label, count in counts.items()}
    for label, expected in (("a@1", 1 / 6), ("b@2", 2 / 6), ("c@3", 3 / 6)):
        assert abs(shares[label] - expected) < 0.015, shares


def test_changing_one_weight_moves_keys_only_to_or_from_that_backend() -> None:
    before = placement(["a@1", "b@1", "c@1"])
    after = placement(["a@1", "b@1", "c@2"])
    moved = [(x, y) for x, y in zip(before, after, strict=True) if x != y]
    assert moved and all(y == "c@2" for _, y in moved)


def test_identity_is_the_name_not_the_address() -> None:
    pool = servers("a", "b", "c")
    moved = [BackendInfo(s.id, "192.168.1.9", "22122", s.label) for s in pool]
    one, two = build_rendezvous(pool, {}), build_rendezvous(moved, {})
    assert [one(h) for h in HASHES[:2000]] == [two(h) for h in HASHES[:2000]]


def test_labels() -> None:
    assert identity(BackendInfo(1, "h", "1", "cache1")) == ("cache1", 1.0)
    assert identity(BackendInfo(1, "h", "1", "cache1@2.5")) == ("cache1", 2.5)
    assert identity(BackendInfo(1, "h", "1", "a@b@3")) == ("a@b", 3.0)
    for bad in ("x@", "x@-1", "x@heavy", "x@inf", "x@nan"):
        with pytest.raises(ValueError, match="must be a number >= 0"):
            identity(BackendInfo(1, "h", "1", bad))


def test_refuses_two_backends_with_one_name() -> None:
    with pytest.raises(ValueError, match="two backends are named 'a'"):
        build_rendezvous(servers("a@1", "b", "a@2"), {})


def test_empty_or_drained_pool_selects_out_of_range() -> None:
    assert build_rendezvous([], {})(123) == -1
    assert build_rendezvous(servers("a@0", "b@0"), {})(123) == -1


def test_a_config_using_it_loads(mcpframe_load_config: Callable[[str], LoadedConfig]) -> None:
    loaded = mcpframe_load_config("""
        function mcp_config_pools()
            local b = {
                mcp.backend("cache1@2", "127.0.0.1", 11211),
                mcp.backend("cache2", "127.0.0.1", 11212),
                mcp.backend("cache3@0", "127.0.0.1", 11213),
            }
            return { main = mcp.pool(b, { dist = mcp.dist_rendezvous }) }
        end
        function mcp_config_routes(pools)
            mcp.attach(mcp.CMD_ANY_STORAGE, function(r) return pools.main(r) end)
        end
    """)
    pool = loaded.named_pools()["main"]
    assert pool.dist == "rendezvous"
    counts = Counter(pool.select(b"key%d" % i) for i in range(3000))
    assert set(counts) == {0, 1}
    assert 1.6 < counts[0] / counts[1] < 2.4


def test_a_config_with_a_bad_weight_names_the_label(
    mcpframe_load_config: Callable[[str], LoadedConfig],
) -> None:
    with pytest.raises(Exception, match="cache1@lots"):
        mcpframe_load_config("""
            function mcp_config_pools()
                local b = { mcp.backend("cache1@lots", "127.0.0.1", 11211) }
                return { main = mcp.pool(b, { dist = mcp.dist_rendezvous }) }
            end
            function mcp_config_routes(pools) end
        """)


def test_sample_servers_spread() -> None:
    pool = sample_servers(5)
    select = build_rendezvous(pool, {})
    assert set(Counter(select(h) for h in HASHES[:5000])) == set(range(5))
