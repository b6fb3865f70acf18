"""mcpframe with this plugin stores every key on the backend where nutcracker stores it.

Three real memcached backends. One nutcracker serves a pool per (hash, distribution, weights,
names, hash_tag) combination, each on its own port; the keys of each pool are sent through it,
and each backend is then asked directly which keys it holds. The backends are flushed, the
same keys go through mcpframe (started with its CLI, one tagged listener per pool, as the
migration guide shows), and each key must be found on the same backend as before.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mcpframe.testing import Servers, WireClient, free_ports, require_binary

from mcpframe_twemproxy.hashes import HASHES

KEYS_PER_POOL = 250
NAMES = ("alpha", "beta", "gamma")


@dataclass(frozen=True)
class Pool:
    tag: str
    hash: str
    dist: str  # ketama or modula
    weights: tuple[int, int, int] = (1, 1, 1)
    named: bool = False
    hash_tag: str | None = None


def _pools() -> list[Pool]:
    combos = []
    for name in HASHES:
        combos.append((name, "ketama", (1, 1, 1), False, None))
        combos.append((name, "modula", (1, 1, 1), False, None))
        combos.append((name, "modula", (5, 6, 7), False, None))
    combos += [
        ("fnv1a_64", "ketama", (1, 2, 3), True, None),
        ("md5", "ketama", (1, 2, 3), False, None),
        ("murmur", "ketama", (3, 1, 1), True, None),
        # float rounding gives the two heavy servers 228 points each, not 232
        ("fnv1a_64", "ketama", (2, 29, 29), False, None),
        ("fnv1a_64", "ketama", (1, 1, 1), False, "{}"),
        ("crc32a", "modula", (1, 1, 1), False, "{}"),
        ("jenkins", "ketama", (1, 1, 1), False, "$$"),
    ]
    return [Pool(f"p{i:02d}", *combo) for i, combo in enumerate(combos)]


POOLS = _pools()


def keys_for(pool: Pool) -> list[bytes]:
    """Keys of many lengths, some with bytes >= 0x80 (signed char!) and some with hash tags."""
    rng = random.Random(pool.tag)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/_-.{}$"
    keys = [f"{pool.tag}:{i}" for i in range(50)]
    keys += [f"{pool.tag}:ключ{i}" for i in range(10)] + [f"{pool.tag}:é€{i}ü" for i in range(10)]
    keys += [f"{pool.tag}:user{{{i}}}:x" for i in range(10)] + [
        f"{pool.tag}:$t{i}$" for i in range(5)
    ]
    keys += [f"{pool.tag}:a{{}}b", f"{pool.tag}:{{x", f"{pool.tag}}}y{{z}}"]
    unique = dict.fromkeys(keys)
    while len(unique) < KEYS_PER_POOL:
        size = rng.choice([1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 24, 25, 40, 100, 200])
        unique[f"{pool.tag}:" + "".join(rng.choice(alphabet) for _ in range(size))] = None
    return [k.encode() for k in unique]


def nutcracker_yaml(ports: dict[str, int], backends: list[int]) -> str:
    out = []
    for pool in POOLS:
        out += [
            f"{pool.tag}:",
            f"  listen: 127.0.0.1:{ports[pool.tag]}",
            f"  hash: {pool.hash}",
            f"  distribution: {pool.dist}",
            "  timeout: 5000",
        ]
        if pool.hash_tag:
            out.append(f'  hash_tag: "{pool.hash_tag}"')
        out.append("  servers:")
        for i, (port, weight) in enumerate(zip(backends, pool.weights, strict=True)):
            name = f" {NAMES[i]}" if pool.named else ""
            out.append(f"   - 127.0.0.1:{port}:{weight}{name}")
    return "\n".join(out) + "\n"


def mcpframe_lua(backends: list[int]) -> str:
    out = ["function mcp_config_pools()", "    local pools = {}"]
    for pool in POOLS:
        labels = [
            f"{NAMES[i] if pool.named else f'b{i + 1}'}@{w}" for i, w in enumerate(pool.weights)
        ]
        listed = ", ".join(
            f'mcp.backend("{label}", "127.0.0.1", {port})'
            for label, port in zip(labels, backends, strict=True)
        )
        options = [f"dist = mcp.dist_tw_{pool.dist}", f"hash = mcp.hash_tw_{pool.hash}"]
        if pool.named:
            options.append("tw_names = true")
        if pool.hash_tag:
            options.append(f'filter = "tw_hash_tag", filter_conf = "{pool.hash_tag}"')
        out.append(f"    pools.{pool.tag} = mcp.pool({{ {listed} }}, {{ {', '.join(options)} }})")
    out += [
        "    return pools",
        "end",
        "",
        "function mcp_config_routes(pools)",
        "    for tag, pool in pairs(pools) do",
        "        mcp.attach(mcp.CMD_ANY_STORAGE, function(r) return pool(r) end, tag)",
        "    end",
        "end",
    ]
    return "\n".join(out) + "\n"


def store(port: int, keys: list[bytes]) -> None:
    with WireClient(port) as conv:
        replies = conv.lines(b"".join(b"set %s 0 0 1\r\nv\r\n" % k for k in keys), len(keys))
    assert set(replies) == {b"STORED"}, replies[:5]


def locate(backends: list[int], keys: Iterable[bytes]) -> dict[bytes, int]:
    """Which backend (0-based) holds each key; every key must be on exactly one."""
    keys = list(keys)
    found: dict[bytes, list[int]] = {k: [] for k in keys}
    for index, port in enumerate(backends):
        with WireClient(port) as conv:
            replies = conv.lines(b"".join(b"mg %s\r\n" % k for k in keys), len(keys))
        for key, reply in zip(keys, replies, strict=True):
            assert reply in (b"HD", b"EN"), reply
            if reply == b"HD":
                found[key].append(index)
    lost = {k: v for k, v in found.items() if len(v) != 1}
    assert not lost, f"keys not on exactly one backend: {list(lost.items())[:5]}"
    return {k: v[0] for k, v in found.items()}


def flush(backends: list[int]) -> None:
    for port in backends:
        with WireClient(port) as conv:
            assert conv.lines(b"flush_all\r\n", 1) == [b"OK"]


def retrying(start: Callable[[], dict[str, int]], attempts: int = 3) -> dict[str, int]:
    """Start a server on fresh free ports, again if it died at start-up.

    A port found free can be taken by another process before the server binds it (other
    test suites may run on the same machine); the server then exits, and new ports are tried.
    """
    for attempt in range(attempts):
        try:
            return start()
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def test_mcpframe_places_keys_like_nutcracker(mcpframe_servers: Servers, tmp_path: Path) -> None:
    nutcracker = require_binary("nutcracker", "/usr/sbin/nutcracker")
    backends = [mcpframe_servers.memcached() for _ in range(3)]
    keys = {pool.tag: keys_for(pool) for pool in POOLS}
    all_keys = [k for pool_keys in keys.values() for k in pool_keys]

    def start_nutcracker() -> dict[str, int]:
        *ports, stats_port = free_ports(len(POOLS) + 1)
        nc_ports = dict(zip([p.tag for p in POOLS], ports, strict=True))
        yaml = tmp_path / "nutcracker.yml"
        yaml.write_text(nutcracker_yaml(nc_ports, backends))
        logs = ["-o", str(yaml.with_suffix(".log")), "-p", str(yaml.with_suffix(".pid"))]
        stats = ["-s", str(stats_port), "-a", "127.0.0.1"]
        # every pool's port is bound before the last one
        mcpframe_servers.start([nutcracker, "-c", str(yaml), *stats, *logs], ports[-1])
        return nc_ports

    nc_ports = retrying(start_nutcracker)
    for pool in POOLS:
        store(nc_ports[pool.tag], keys[pool.tag])
    by_nutcracker = locate(backends, all_keys)
    flush(backends)

    lua = tmp_path / "twemproxy.lua"
    lua.write_text(mcpframe_lua(backends))

    def start_mcpframe() -> dict[str, int]:
        mf_ports = dict(zip([p.tag for p in POOLS], free_ports(len(POOLS)), strict=True))
        listens = [a for p in POOLS for a in ("--listen", f"127.0.0.1:{mf_ports[p.tag]}:{p.tag}")]
        mcpframe_servers.mcpframe("--config", str(lua), *listens)
        return mf_ports

    mf_ports = retrying(start_mcpframe)
    for pool in POOLS:
        store(mf_ports[pool.tag], keys[pool.tag])
    by_mcpframe = locate(backends, all_keys)

    report = []
    for pool in POOLS:
        differ = [k for k in keys[pool.tag] if by_nutcracker[k] != by_mcpframe[k]]
        used = sorted({by_nutcracker[k] for k in keys[pool.tag]})
        report.append((pool, len(keys[pool.tag]) - len(differ), differ[:3], used))
    print("\npool hash dist weights named hash_tag: same/keys, backends used")
    for pool, same, _, used in report:
        print(
            f"{pool.tag} {pool.hash} {pool.dist} {pool.weights} {pool.named} {pool.hash_tag}: "
            f"{same}/{KEYS_PER_POOL}, {used}"
        )
    assert [(p.tag, d) for p, _, d, _ in report if d] == []
    # The comparison means something only if keys spread: every pool but those hashing with
    # crc32 (15 bits, so ketama keeps nearly everything on one server) uses all 3 backends.
    assert all(used == [0, 1, 2] for p, _, _, used in report if p.hash != "crc32")
