"""Cache behaviour that needs a controllable clock, small limits, or differs on purpose."""

from __future__ import annotations

import random

import pytest

import mcpframe
from mcpframe.cache import VERSION, Cache
from mcpframe.cache.arena import record_size
from mcpframe.cache.item import item_size
from mcpframe.protocol.commands import (
    CMD_APPEND,
    CMD_CACHE_MEMLIMIT,
    CMD_DELETE,
    CMD_GET,
    CMD_INCR,
    CMD_LRU,
    CMD_MS,
    CMD_QUIT,
    CMD_SET,
    CMD_SHUTDOWN,
    CMD_SLABS,
    CMD_STATS,
    CMD_TOUCH,
    CMD_WATCH,
)
from mcpframe.protocol.request import Request
from tests.cache.wire import FakeClock, requests_from_bytes

DAY30 = 60 * 60 * 24 * 30


def run(cache: Cache, data: bytes) -> bytes:
    return b"".join(cache.execute(r) for r in requests_from_bytes(data))


def set_cmd(key: bytes, value: bytes, exptime: int = 0, flags: int = 0) -> bytes:
    return b"set %b %d %d %d\r\n%b\r\n" % (key, flags, exptime, len(value), value)


# --------------------------------------------------------------------- expiry


def test_relative_exptime(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    assert run(cache, set_cmd(b"a", b"1", exptime=10)) == b"STORED\r\n"
    clock.advance(9.99)
    assert run(cache, b"get a\r\n") == b"VALUE a 0 1\r\n1\r\nEND\r\n"
    assert run(cache, b"mg a t\r\n") == b"HD t1\r\n"
    clock.advance(0.01)
    assert run(cache, b"get a\r\n") == b"END\r\n"
    stats = cache.stats()
    assert stats["get_expired"] == 1
    assert stats["curr_items"] == 0
    assert stats["bytes"] == 0


def test_exptime_30_days_is_relative_and_larger_is_absolute(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    now = int(clock.now)
    run(cache, set_cmd(b"rel", b"1", exptime=DAY30))
    run(cache, set_cmd(b"abs", b"2", exptime=now + 100))
    run(cache, set_cmd(b"past", b"3", exptime=DAY30 + 1))  # 1970: long gone
    assert (
        run(cache, b"mg rel t\r\nmg abs t\r\nmg past t\r\n") == b"HD t2592000\r\nHD t100\r\nEN\r\n"
    )
    clock.advance(100)
    assert run(cache, b"get abs\r\n") == b"END\r\n"
    assert run(cache, b"get rel\r\n") == b"VALUE rel 0 1\r\n1\r\nEND\r\n"


def test_negative_exptime_stores_an_expired_item_replacing_the_old(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    run(cache, set_cmd(b"a", b"old"))
    assert run(cache, set_cmd(b"a", b"new", exptime=-1)) == b"STORED\r\n"
    assert run(cache, b"get a\r\n") == b"END\r\n"
    assert run(cache, b"add a 0 0 1\r\nx\r\n") == b"STORED\r\n"


def test_exptime_wraps_to_32_bits(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    run(cache, set_cmd(b"a", b"1", exptime=2**31))  # int32: -2**31, expired
    run(cache, set_cmd(b"b", b"1", exptime=-(2**31) - 1))  # int32: 2**31-1, year 2038
    assert run(cache, b"get a b\r\n") == b"VALUE b 0 1\r\n1\r\nEND\r\n"


def test_touch_and_gat_set_a_new_ttl(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    run(cache, set_cmd(b"a", b"1", exptime=5) + set_cmd(b"b", b"2", exptime=5))
    assert run(cache, b"touch a 100\r\ngat 50 b\r\n") == b"TOUCHED\r\nVALUE b 0 1\r\n2\r\nEND\r\n"
    clock.advance(10)
    assert run(cache, b"mg a t\r\nmg b t\r\n") == b"HD t90\r\nHD t40\r\n"
    assert run(cache, b"gats 0 a\r\nmg a t\r\n") == b"VALUE a 0 1 1\r\n1\r\nEND\r\nHD t-1\r\n"
    assert run(cache, b"touch b -1\r\nget b\r\n") == b"TOUCHED\r\nEND\r\n"


def test_meta_ttl_flags(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    run(cache, b"ms a 1 T30\r\n1\r\nma n N20 J5\r\n")
    clock.advance(10)
    assert (
        run(cache, b"mg a t T60\r\nmg a t\r\nma n t v\r\n")
        == b"HD t20\r\nHD t60\r\nVA 1 t10\r\n6\r\n"
    )
    clock.advance(10)
    assert run(cache, b"mg n v\r\n") == b"EN\r\n"


def test_recache_wins_once_when_ttl_runs_low(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    run(cache, b"ms a 1 T100\r\n1\r\n")
    assert run(cache, b"mg a R30 t\r\n") == b"HD t100\r\n"
    clock.advance(75)
    assert run(cache, b"mg a R30 t\r\n") == b"HD t25 W\r\n"
    assert run(cache, b"mg a R30 t\r\n") == b"HD t25 Z\r\n"
    # The winner refills the item; the token state starts over.
    assert run(cache, b"ms a 1 T100\r\n2\r\nmg a R30 v\r\n") == b"HD\r\nVA 1\r\n2\r\n"


def test_last_access_and_fetched(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    run(cache, b"ms a 1\r\n1\r\n")
    clock.advance(7)
    assert run(cache, b"mg a l h\r\n") == b"HD l7 h0\r\n"
    clock.advance(3)
    assert run(cache, b"mg a l h\r\n") == b"HD l3 h1\r\n"
    assert run(cache, b"me a\r\n") == b"ME a exp=-1 la=0 cas=1 fetch=yes cls=1 size=61\r\n"


def test_me_reports_seconds_left(clock: FakeClock) -> None:
    # memcached 1.6.20 prints this negated (now - exptime); we print what it means.
    cache = Cache(clock=clock)
    run(cache, b"ms a 1 T100\r\n1\r\n")
    clock.advance(40)
    assert run(cache, b"me a\r\n") == b"ME a exp=60 la=40 cas=1 fetch=no cls=1 size=61\r\n"


# --------------------------------------------------------------------- flush_all


def test_flush_all_now_drops_everything_and_takes_a_cas(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    run(cache, set_cmd(b"a", b"1") + set_cmd(b"b", b"2"))
    assert run(cache, b"flush_all\r\nget a b\r\n") == b"OK\r\nEND\r\n"
    assert cache.stats()["bytes"] == 0
    assert run(cache, set_cmd(b"c", b"3") + b"gets c\r\n").endswith(
        b"VALUE c 0 1 4\r\n3\r\nEND\r\n"
    )


def test_flush_all_with_delay(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    run(cache, set_cmd(b"a", b"1"))
    assert run(cache, b"flush_all 10\r\n") == b"OK\r\n"
    clock.advance(5)
    run(cache, set_cmd(b"b", b"2"))
    clock.advance(3.9)  # 8.9 s after the flush: still there
    assert run(cache, b"get a b\r\n") == b"VALUE a 0 1\r\n1\r\nVALUE b 0 1\r\n2\r\nEND\r\n"
    clock.advance(0.1)  # memcached flushes from (flush time - 1)
    assert run(cache, b"get a b\r\n") == b"END\r\n"
    run(cache, set_cmd(b"c", b"3"))
    clock.advance(100)
    assert run(cache, b"get c\r\n") == b"VALUE c 0 1\r\n3\r\nEND\r\n"
    assert cache.stats()["cmd_flush"] == 1


def test_flush_all_delay_forms(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    now = int(clock.now)
    run(cache, set_cmd(b"a", b"1"))
    # A later flush_all replaces a pending one; one second of delay means now.
    run(cache, b"flush_all 100\r\nflush_all 20\r\n")
    clock.advance(19)
    assert run(cache, b"get a\r\n") == b"END\r\n"
    run(cache, set_cmd(b"a", b"1") + b"flush_all 1\r\n")
    assert run(cache, b"get a\r\n") == b"END\r\n"
    # Absolute time; an immediate flush cancels the pending one.
    run(cache, set_cmd(b"a", b"1") + b"flush_all %d\r\n" % (now + 50) + b"flush_all noreply\r\n")
    run(cache, set_cmd(b"b", b"2"))
    clock.advance(100)
    assert run(cache, b"get b\r\n") == b"VALUE b 0 1\r\n2\r\nEND\r\n"
    # An absolute time in the past flushes now.
    assert run(cache, b"flush_all %d\r\nget b\r\n" % (now - 10)) == b"OK\r\nEND\r\n"


# --------------------------------------------------------------------- memory, LRU


def small_cache(clock: FakeClock, items: int = 4) -> Cache:
    """A cache holding exactly ``items`` one-byte items under two-byte keys.

    The limit counts what items really cost (their records) and the index, as it is when
    empty (it grows only past 5 items). So small a limit makes one shard: the LRU is exact
    (see store.py, "LRU").
    """
    cache = Cache(memory_limit=1, clock=clock)
    cache.memory_limit = cache.memory_used() + items * record_size(2, 3)
    return cache


def test_lru_evicts_the_oldest_untouched(clock: FakeClock) -> None:
    cache = small_cache(clock)
    run(cache, b"".join(set_cmd(b"k%d" % i, b"%d" % i) for i in range(4)))
    assert len(cache) == 4
    run(cache, b"get k0\r\n")  # k0 is now the youngest; k1 the oldest
    run(cache, set_cmd(b"k4", b"4"))
    assert run(cache, b"get k1\r\n") == b"END\r\n"
    assert run(cache, b"get k0 k2 k3 k4\r\n").count(b"VALUE") == 4
    stats = cache.stats()
    assert stats["evictions"] == 1
    assert stats["evicted_unfetched"] == 1
    assert cache.memory_used() <= cache.memory_limit


def test_every_kind_of_use_is_a_second_chance(clock: FakeClock) -> None:
    """Reads, touches, incr and ``add`` on an existing key mark the item used; ``mg ... u``
    does not. The oldest unused item goes first; used ones go to the young end, their mark
    cleared, and are evicted only after every item stored since (see store.py, "LRU")."""
    cache = small_cache(clock)
    run(cache, b"".join(set_cmd(b"k%d" % i, b"%d" % i) for i in range(4)))
    run(cache, b"touch k3 0\r\nmg k2 v\r\nincr k1 1\r\nmg k0 v u\r\nadd k3 0 0 1\r\nx\r\n")
    run(cache, set_cmd(b"k4", b"4"))
    assert run(cache, b"mg k0 u\r\nmg k1 u\r\nmg k2 u\r\nmg k3 u\r\n") == b"EN\r\n" + b"HD\r\n" * 3
    # Oldest first, the store holds k1 k2 k3 (used) and k4 (not): k5 moves k1 k2 k3 to the
    # young end, their marks cleared, and evicts k4.
    run(cache, set_cmd(b"k5", b"5"))
    assert run(cache, b"mg k4 u\r\nmg k1 u\r\nmg k2 u\r\nmg k3 u\r\nmg k5 u\r\n") == (
        b"EN\r\n" + b"HD\r\n" * 4
    )
    # Their marks are spent: k6 and k7 evict k1 and k2, the oldest.
    run(cache, set_cmd(b"k6", b"6") + set_cmd(b"k7", b"7"))
    assert run(cache, b"mg k1 u\r\nmg k2 u\r\nmg k3 u\r\n") == b"EN\r\nEN\r\nHD\r\n"


def test_expired_items_are_reclaimed_before_live_ones(clock: FakeClock) -> None:
    cache = small_cache(clock)
    run(cache, set_cmd(b"k0", b"0", exptime=5) + set_cmd(b"k1", b"1"))
    run(cache, set_cmd(b"k2", b"2") + set_cmd(b"k3", b"3"))
    clock.advance(10)
    run(cache, set_cmd(b"k4", b"4"))
    stats = cache.stats()
    assert (stats["reclaimed"], stats["evictions"]) == (1, 0)
    assert run(cache, b"get k1\r\n") == b"VALUE k1 0 1\r\n1\r\nEND\r\n"


def test_replacing_an_item_reuses_its_memory(clock: FakeClock) -> None:
    cache = small_cache(clock)
    run(cache, b"".join(set_cmd(b"k%d" % i, b"%d" % i) for i in range(4)))
    run(cache, set_cmd(b"k0", b"x") + set_cmd(b"k1", b"y"))
    assert cache.stats()["evictions"] == 0
    assert len(cache) == 4


def test_item_larger_than_memory_is_out_of_memory(clock: FakeClock) -> None:
    cache = Cache(memory_limit=1000, clock=clock)
    run(cache, set_cmd(b"a", b"small"))
    big = b"x" * 1000
    assert run(cache, set_cmd(b"a", big)) == b"SERVER_ERROR out of memory storing object\r\n"
    assert run(cache, b"get a\r\n") == b"END\r\n"  # set drops the old item
    run(cache, set_cmd(b"b", b"small"))
    assert run(cache, b"add b 0 0 1000\r\n" + big + b"\r\nget b\r\n") == (
        b"SERVER_ERROR out of memory storing object\r\nVALUE b 0 5\r\nsmall\r\nEND\r\n"
    )
    assert cache.stats()["store_no_memory"] == 2


def test_bytes_and_items_accounting(clock: FakeClock) -> None:
    cache = Cache(clock=clock)
    run(cache, set_cmd(b"a", b"12345", flags=1) + set_cmd(b"b", b"1"))
    assert cache.stats()["bytes"] == item_size(1, 7, 1) + item_size(1, 3, 0)
    run(cache, b"append b 0 0 2\r\n00\r\nincr b 1\r\ndelete a\r\n")  # b: "100" -> "101"
    stats = cache.stats()
    assert stats["bytes"] == item_size(1, 5, 0)
    assert (stats["curr_items"], stats["total_items"]) == (1, 3)  # incr rewrote in place


# --------------------------------------------------------------------- size limits


def test_item_size_max(clock: FakeClock) -> None:
    cache = Cache(item_size_max=100, clock=clock)
    fits = 100 - item_size(1, 2, 0)
    assert run(cache, set_cmd(b"a", b"x" * fits)) == b"STORED\r\n"
    assert (
        run(cache, set_cmd(b"a", b"x" * (fits + 1)))
        == b"SERVER_ERROR object too large for cache\r\n"
    )
    assert run(cache, b"get a\r\n") == b"END\r\n"
    # Non-zero flags cost four bytes.
    assert run(cache, set_cmd(b"b", b"x" * (fits - 4), flags=1)) == b"STORED\r\n"
    assert run(cache, set_cmd(b"b", b"x" * (fits - 3), flags=1)).startswith(b"SERVER_ERROR")
    # append past the limit is simply not stored.
    run(cache, set_cmd(b"c", b"x" * fits))
    assert run(cache, b"append c 0 0 1\r\ny\r\nget c\r\n").startswith(
        b"NOT_STORED\r\nVALUE c 0 %d" % fits
    )
    assert cache.stats()["store_too_large"] == 2


def test_value_swallowed_by_the_reader(clock: FakeClock) -> None:
    """value=None: the reader dropped a block over its limit (only set/ms drop the old item)."""
    cache = Cache(clock=clock)
    run(cache, set_cmd(b"a", b"1") + set_cmd(b"b", b"2") + set_cmd(b"c", b"3"))
    too_large = b"SERVER_ERROR object too large for cache\r\n"
    assert cache.execute(Request(CMD_SET, b"set a 0 0 9999999\r\n", b"a")) == too_large
    assert (
        cache.execute(Request(CMD_SET, b"set b 0 0 9999999 noreply\r\n", b"b", None, True)) == b""
    )
    assert cache.execute(Request(CMD_APPEND, b"append c 0 0 9999999\r\n", b"c")) == too_large
    assert run(cache, b"get a b c\r\n") == b"VALUE c 0 1\r\n3\r\nEND\r\n"
    run(cache, set_cmd(b"d", b"4"))
    # ms: in every mode, and q does not hide errors.
    assert cache.execute(Request(CMD_MS, b"ms d 9999999 MA q\r\n", b"d", None, True)) == too_large
    assert run(cache, b"get d\r\n") == b"END\r\n"


# --------------------------------------------------------------------- deliberate 1.6.20 behaviour


def test_ms_echoes_size() -> None:
    cache = Cache()
    out = run(cache, b"ms a 2 s\r\nhi\r\nms a 3 MA s c\r\nyou\r\nms b 1 MA s k\r\nx\r\n")
    assert out == b"HD s2\r\nHD s5 c2\r\nNS s1 kb\r\n"


def test_ms_append_vivify() -> None:
    cache = Cache()
    out = run(cache, b"ms a 2 MA N30 F3\r\nhi\r\nmg a v t f\r\nms a 1 MP N30\r\n>\r\nmg a v\r\n")
    assert out == b"HD\r\nVA 2 t30 f3\r\nhi\r\nHD\r\nVA 3\r\n>hi\r\n"
    assert run(cache, b"ms b 1 MA\r\nx\r\n") == b"NS\r\n"


def test_ma_ttl_survives_growth() -> None:
    cache = Cache()
    assert run(cache, b"ms n 2\r\n99\r\nma n T100 t v\r\nmg n t v\r\n") == (
        b"HD\r\nVA 3 t100\r\n100\r\nVA 3 t100\r\n100\r\n"
    )


def test_incr_in_place_after_read() -> None:
    # memcached copies instead when an unsent reply still holds the item; we always pad.
    cache = Cache()
    out = run(cache, b"set n 0 0 3\r\n100\r\nget n\r\ndecr n 1\r\nget n\r\n")
    assert out.endswith(b"99\r\nVALUE n 0 3\r\n99 \r\nEND\r\n")


def test_opaque_too_long_changes_nothing() -> None:
    cache = Cache()
    long_opaque = b"O" + b"o" * 32
    out = run(
        cache, b"ma n N0 J5 " + long_opaque + b"\r\nmg n N30 " + long_opaque + b"\r\nmg n\r\n"
    )
    assert out == b"CLIENT_ERROR opaque token too long\r\n" * 2 + b"EN\r\n"


def test_multiget_error_keeps_earlier_replies() -> None:
    cache = Cache()
    out = run(cache, set_cmd(b"a", b"1") + b"get a " + b"k" * 251 + b"\r\n")
    assert out == b"STORED\r\nCLIENT_ERROR bad command line format\r\n"


# --------------------------------------------------------------------- API edges


def test_version_matches_the_package() -> None:
    assert VERSION.decode() == mcpframe.MEMCACHED_VERSION
    assert run(Cache(), b"version\r\nversion x\r\n") == b"VERSION 1.6.45\r\n" * 2


@pytest.mark.parametrize(
    "cmd", [0, CMD_STATS, CMD_QUIT, CMD_WATCH, CMD_SLABS, CMD_LRU, CMD_SHUTDOWN, CMD_CACHE_MEMLIMIT]
)
def test_commands_that_are_not_ours(cmd: int) -> None:
    assert Cache().execute(Request(cmd, b"whatever\r\n")) == b"ERROR\r\n"


@pytest.mark.parametrize(
    "req",
    [
        Request(CMD_SET, b"set a 0 0\r\n", b"a", b"x\r\n"),
        Request(CMD_GET, b"get\r\n"),
        Request(CMD_INCR, b"incr\r\n"),
        Request(CMD_TOUCH, b"touch a\r\n", b"a"),
        Request(CMD_DELETE, b"\r\n"),
        Request(CMD_MS, b"ms\r\n"),
    ],
)
def test_wrong_token_counts_answer_error(req: Request) -> None:
    assert Cache().execute(req) == b"ERROR\r\n"


def test_requests_the_parser_would_not_build() -> None:
    cache = Cache()
    # A data block whose length disagrees with the line, or that lacks its CRLF.
    assert cache.execute(Request(CMD_SET, b"set a 0 0 2\r\n", b"a", b"xyz\r\n")) == (
        b"CLIENT_ERROR bad data chunk\r\n"
    )
    assert (
        cache.execute(Request(CMD_MS, b"ms a 2\r\n", b"a", b"xyzz"))
        == b"CLIENT_ERROR bad data chunk\r\n"
    )
    assert cache.execute(Request(CMD_SET, b"set a 0 0 2x\r\n", b"a", b"xy\r\n")) == (
        b"CLIENT_ERROR bad command line format\r\n"
    )
    assert (
        cache.execute(Request(CMD_MS, b"ms a\r\n", b"a", b"\r\n"))
        == b"CLIENT_ERROR bad command line format\r\n"
    )
    # A line without a terminator (as built by hand) and a NUL ending the line early.
    assert cache.execute(Request(CMD_SET, b"set a 0 0 1", b"a", b"x\r\n")) == b"STORED\r\n"
    assert cache.execute(Request(CMD_GET, b"get a\0 b\r\n", b"a")) == b"VALUE a 0 1\r\nx\r\nEND\r\n"


def test_cas_numbers_are_global_and_increasing() -> None:
    cache = Cache()
    out = run(
        cache,
        b"ms a 1 c\r\n1\r\nms b 1 c\r\n1\r\nmd a I\r\nmg a c\r\nincr b 1\r\nmg b c\r\n"
        b"append b 0 0 1\r\n0\r\nmg b c\r\nflush_all\r\nms a 1 c\r\n1\r\n",
    )
    assert (
        out
        == b"HD c1\r\nHD c2\r\nHD\r\nHD c3 X W\r\n2\r\nHD c4\r\nSTORED\r\nHD c5\r\nOK\r\nHD c7\r\n"
    )


def test_stats_names() -> None:
    stats = Cache(memory_limit=1 << 20).stats()
    names = (
        "cmd_get cmd_set cmd_flush cmd_touch get_hits get_misses get_expired get_flushed "
        "delete_misses delete_hits incr_misses incr_hits decr_misses decr_hits cas_misses "
        "cas_hits cas_badval touch_hits touch_misses bytes curr_items total_items evictions "
        "reclaimed limit_maxbytes"
    )
    for name in names.split():
        assert stats[name] == (1 << 20 if name == "limit_maxbytes" else 0)


# --------------------------------------------------------------------- stats by slab class


def test_slab_class_figures_follow_every_change(clock: FakeClock) -> None:
    """What ``stats items``/``slabs`` read (kept as items come and go) always equals the
    items' own ``me`` figures summed by class, through stores, resizes, deletes, expiry,
    evictions and ``flush_all``."""
    rng = random.Random(12)
    cache = Cache(memory_limit=64 * 1024, clock=clock)
    keys = [b"k%d" % i for i in range(60)]
    for step in range(3000):
        key = rng.choice(keys)
        n = rng.choice((0, 1, 7, 40, 90, 200, 1500, 9000))
        op = rng.randrange(12)
        if op < 5:
            value = b"7" * n if n < 20 else b"v" * n  # (incr reads at most 20 digits)
            data = set_cmd(key, value, exptime=rng.choice((0, 0, 2)), flags=op % 2)
        elif op == 5:
            data = b"append %b 0 0 %d\r\n%b\r\n" % (key, n, b"a" * n)
        elif op == 6:
            data = b"delete %b\r\nmd %b\r\n" % (key, rng.choice(keys))
        elif op == 7:
            data = b"incr %b 99999\r\nma %b N0 J7\r\n" % (key, key)
        elif op == 8:
            data = b"ms %b %d T1\r\n%b\r\n" % (key, n, b"m" * n)
        elif op == 9:
            data = b"get %b %b\r\n" % (key, rng.choice(keys))
        elif op == 10:
            clock.advance(1)
            data = b"touch %b 1\r\n" % key
        else:
            data = b"flush_all\r\n" if step % 500 == 0 else b"mn\r\n"
        run(cache, data)
        if step % 50:
            continue
        by_class: dict[int, list[int]] = {}
        for k in keys:
            reply = run(cache, b"me %b\r\n" % k)
            if reply.startswith(b"ME "):
                fields = dict(f.split(b"=") for f in reply.split()[2:])
                figures = by_class.setdefault(int(fields[b"cls"]), [0, 0])
                figures[0] += 1
                figures[1] += int(fields[b"size"])
        classes = cache.slab_classes()
        assert {c["class"]: [c["number"], c["mem_requested"]] for c in classes} == by_class
        assert sum(c["mem_requested"] for c in classes) == cache.stats()["bytes"]
    evicted = sum(c["evicted"] for c in cache.slab_classes())
    assert 0 < evicted <= cache.stats()["evictions"]


def test_reset_stats_restarts_counters_not_contents(clock: FakeClock) -> None:
    cache = small_cache(clock)
    run(cache, b"".join(set_cmd(b"k%d" % i, b"%d" % i) for i in range(6)) + b"get k5 k0\r\n")
    before = cache.stats()
    assert before["evictions"] == 2 and before["get_hits"] == 1
    figures = [(c["number"], c["mem_requested"]) for c in cache.slab_classes()]
    cache.reset_stats()
    after = cache.stats()
    kept = ("curr_items", "bytes", "limit_maxbytes", "item_size_max")
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    assert all(v == 0 for k, v in after.items() if k not in kept)
    assert [(c["number"], c["mem_requested"]) for c in cache.slab_classes()] == figures
    assert all(c["evicted"] == 0 for c in cache.slab_classes())
