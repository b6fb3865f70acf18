"""A shard's index (``arena.Index``) and its incremental growth: while a larger table fills
from the old one, a few clusters per insertion, every entry stays reachable, and entries
can be replaced and removed in either table. (Small tables grow at once; most tests here
make every table grow incrementally, as only tables of ``INCREMENTAL_SLOTS`` and more do.)"""

from __future__ import annotations

import random

from mcpframe.cache import Cache
from mcpframe.cache.arena import (
    EMPTY,
    HASH_MASK,
    INCREMENTAL_SLOTS,
    MIN_SLOTS,
    MOVE_SLOTS,
    OLD_SLOT,
    POSITION_BITS,
    Index,
)
from mcpframe.protocol.commands import CMD_DELETE, CMD_GET, CMD_SET
from mcpframe.protocol.request import Request
from tests.cache.wire import FakeClock


def entries(index: Index) -> list[int]:
    return sorted(e for table in (index.table, index.old) for e in table if e != EMPTY)


def test_a_growth_moves_the_entries_over_the_next_insertions() -> None:
    index = Index(incremental_slots=0)
    # Hash bits crowded into a few home slots, so that the tables hold long clusters.
    rng = random.Random(5)
    live: dict[int, int] = {}  # position -> hash bits
    position = 0
    grown_at = []
    while len(live) < 3000:
        hb = rng.randrange(64) * 97 & HASH_MASK if rng.random() < 0.3 else rng.randrange(1 << 20)
        position += 1
        slots_before = index.mask + 1
        index.insert(hb, hb << POSITION_BITS | position, -1)
        live[position] = hb
        if index.mask + 1 != slots_before:
            grown_at.append(len(live))
            # The insertion that starts a growth reinserts nothing (past the smallest tables).
            if slots_before > MIN_SLOTS * 4:
                assert len(index.old) == slots_before
                assert sum(e != EMPTY for e in index.table) == 1
        if rng.random() < 0.25:  # replace, then remove, a random live entry in either table
            victim = rng.choice(list(live))
            vhb = live[victim]
            slot = index.slot_of(vhb, victim)
            position += 1
            index.put(slot, vhb << POSITION_BITS | position)
            del live[victim]
            live[position] = vhb
            if rng.random() < 0.5:
                index.remove(index.slot_of(vhb, position))
                del live[position]
        assert index.count == len(live)
        if len(live) % 97 == 0 or (index.old_mask >= 0 and position % 3 == 0):
            assert entries(index) == sorted(hb << POSITION_BITS | p for p, hb in live.items())
            for p, hb in live.items():
                index.slot_of(hb, p)  # (asserts it is found)
    assert len(grown_at) >= 4
    assert entries(index) == sorted(hb << POSITION_BITS | p for p, hb in live.items())


def test_an_insertion_during_a_growth_moves_a_bounded_share() -> None:
    """At the default size: a table under ``INCREMENTAL_SLOTS`` grows at once, a larger one
    a bounded share per insertion."""
    index = Index()
    rng = random.Random(7)
    position = 0
    while index.mask + 1 < INCREMENTAL_SLOTS:
        position += 1
        hb = rng.randrange(1 << 20)
        index.insert(hb, hb << POSITION_BITS | position, -1)
        assert index.old_mask < 0
    while index.mask + 1 < 2 * INCREMENTAL_SLOTS:
        position += 1
        hb = rng.randrange(1 << 20)
        index.insert(hb, hb << POSITION_BITS | position, -1)
    assert index.old_mask >= 0  # the growth to 16k slots has just begun
    old_slots = index.old_mask + 1
    steps = 0
    while index.old_mask >= 0:
        left = index.left
        position += 1
        hb = rng.randrange(1 << 20)
        index.insert(hb, hb << POSITION_BITS | position, -1)
        assert index.old_mask < 0 or left - index.left < MOVE_SLOTS + 64
        steps += 1
    assert old_slots // (MOVE_SLOTS + 64) < steps <= old_slots // MOVE_SLOTS + 1
    assert index.old.tolist() == []


def test_find_reports_slots_of_the_old_table() -> None:
    """Keys stored before a growth are found (and dropped) while they sit in the old
    table, through the cache's commands."""
    cache = Cache(memory_limit=1 << 20, clock=FakeClock())  # one shard
    [index] = cache._indexes = [Index(incremental_slots=0)]  # (every growth incremental)
    value = b"v\r\n"
    n = 0
    while index.old_mask < 0 or index.mask + 1 < 1 << 12:
        key = b"k%d" % n
        cache.execute(Request(CMD_SET, b"set %b 0 0 1\r\n" % key, key, value))
        n += 1
    segs = cache._log.segs
    old_keys = [
        key
        for key in (b"k%d" % i for i in range(n))
        if index.find(key, hash(key) & HASH_MASK, segs) & OLD_SLOT
    ]
    assert len(old_keys) > 20
    for key in old_keys[:20]:
        assert cache.execute(Request(CMD_GET, b"get %b\r\n" % key, key, None)) == (
            b"VALUE %b 0 1\r\nv\r\nEND\r\n" % key
        )
        assert cache.execute(Request(CMD_DELETE, b"delete %b\r\n" % key, key, None)) == (
            b"DELETED\r\n"
        )
        assert cache.execute(Request(CMD_GET, b"get %b\r\n" % key, key, None)) == b"END\r\n"
    assert len(cache) == n - 20 == index.count


def test_random_commands_match_a_dict_through_growths() -> None:
    cache = Cache(memory_limit=1 << 22, clock=FakeClock())  # two shards, no eviction
    cache._indexes = [Index(incremental_slots=0) for _ in cache._indexes]
    rng = random.Random(11)
    model: dict[bytes, bytes] = {}
    for _ in range(30000):
        key = b"key%d" % rng.randrange(12000)
        op = rng.random()
        if op < 0.6:
            value = b"x" * rng.randrange(1, 20)
            line = b"set %b 0 0 %d\r\n" % (key, len(value))
            assert cache.execute(Request(CMD_SET, line, key, value + b"\r\n")) == b"STORED\r\n"
            model[key] = value
        elif op < 0.8:
            reply = cache.execute(Request(CMD_DELETE, b"delete %b\r\n" % key, key, None))
            assert reply == (
                b"DELETED\r\n" if model.pop(key, None) is not None else b"NOT_FOUND\r\n"
            )
        else:
            reply = cache.execute(Request(CMD_GET, b"get %b\r\n" % key, key, None))
            value = model.get(key)
            expected = (
                b"END\r\n"
                if value is None
                else b"VALUE %b 0 %d\r\n%b\r\nEND\r\n"
                % (
                    key,
                    len(value),
                    value,
                )
            )
            assert reply == expected
    assert cache.stats()["evictions"] == 0
    assert len(cache) == len(model) == sum(index.count for index in cache._indexes)
    assert {it.key: it.value[:-2] for it in cache.items()} == model
