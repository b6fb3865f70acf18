"""The item store behind the internal cache: memcached's storage rules, CAS numbering, time,
counters.

Sans-I/O and command-free: ``classic`` and ``meta`` execute requests on top of this public
API (``engine.Cache`` dispatches them). Where the items are kept, how room is made for new
ones and what they cost is ``records`` (``Records``, this class's base). Rules worth
knowing before reading the code (all checked against a real memcached):

* Time is whole seconds of ``clock()`` (:meth:`Store.tick`). exptime 0 never expires; a
  negative one is already expired (the item is stored anyway and replaces the old one); up to
  30 days is relative; larger is an absolute Unix time. An item is gone once ``now >=
  exptime``.
* Every store, append, incr/decr and ``md ... I`` takes the next value of one global CAS
  counter, starting at 1, as does an immediate ``flush_all``; CAS numbers therefore match a
  fresh memcached fed the same commands.
* ``flush_all`` (no delay, or a delay of at most one second) empties the store at once;
  with a delay ``d`` it is emptied when the clock reaches ``now + d - 1``, which is when
  memcached starts hiding the items stored before that moment. Flushed items are dropped at
  once rather than found stale later, so ``get_flushed`` stays 0 (a deliberate difference).

"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from mypy_extensions import i64

from mcpframe.cache.arena import DEAD, OFFSET_MASK, SEGMENT_BITS, SID_MASK, STATE_AT, WORD_MASK
from mcpframe.cache.item import (
    BINARY,
    BITS,
    FETCHED,
    HEADER,
    STALE,
    WIN,
    Item,
    item_size,
)
from mcpframe.cache.records import (
    CHUNK_SIZES,
    CLASS_INDEX,
    CLASS_INDEX_END,
    LARGEST_CLASS,
    RECORD_UNPACK,
    Records,
)
from mcpframe.protocol.numbers import strtoull
from mcpframe.protocol.replies import NO_MEMORY, TOO_LARGE

#: Largest relative exptime (30 days); larger values are absolute Unix times.
REALTIME_MAXDELTA: Final = 60 * 60 * 24 * 30
#: exptime of an item that arrived already expired (any value <= every clock reading, and
#: not 0, which means "never"; exptimes are stored as u32).
EXPIRED: Final = 1

# Store modes of :meth:`Store.store_item` (memcached's NREAD_* values, plus the meta
# append/prepend that vivify).
SET = 1
ADD = 2
REPLACE = 3
APPEND = 4
PREPEND = 5
CAS = 6
APPEND_VIVIFY = 7
PREPEND_VIVIFY = 8

# Store outcomes.
STORED = 0
EXISTS = 1
NOT_FOUND = 2
NOT_STORED = 3

# incr/decr outcomes (:meth:`Store.add_delta`).
DELTA_OK = 0
DELTA_NON_NUMERIC = 1
DELTA_NOT_FOUND = 2
DELTA_CAS_MISMATCH = 3

U64_MAX = (1 << 64) - 1

_pack_header: Final = HEADER.pack_into


class Store(Records):
    """memcached's item storage, in process: the commands in ``classic`` and ``meta`` use
    the public methods and count what they execute in the public counters (named after
    memcached's ``stats``)."""

    __slots__ = (
        "_clock",
        "_flush_at",
        "_now",
        "_now_end",
        "_now_start",
        "cas_badval",
        "cas_hits",
        "cas_misses",
        "decr_hits",
        "decr_misses",
        "delete_hits",
        "delete_misses",
        "flush_cmds",
        "get_cmds",
        "get_hits",
        "get_misses",
        "incr_hits",
        "incr_misses",
        "item_size_max",
        "meta_cmds",
        "set_cmds",
        "store_no_memory",
        "store_too_large",
        "touch_cmds",
        "touch_hits",
        "touch_misses",
    )

    def __init__(
        self,
        memory_limit: int = 64 * 1024 * 1024,
        item_size_max: int = 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``memory_limit`` bounds what the items really cost (``memory_used``); values
        over ``item_size_max`` are refused."""
        super().__init__(memory_limit)
        self.item_size_max = item_size_max
        self._clock = clock
        # The clock second of the last request (and the float range it covers).
        self._now = 0
        self._now_start = 0.0
        self._now_end = 0.0
        self._flush_at = 0  # clock second at which a delayed flush_all empties the cache
        self.reset_stats()

    def reset_stats(self) -> None:
        """``stats reset``: the counters start again from zero (as memcached's do); what the
        store holds (``curr_items``, ``bytes``, the items per class) is not a counter."""
        self.reset_record_stats()
        # Counters, named after memcached's stats.
        self.get_cmds = 0
        self.get_hits = 0
        self.get_misses = 0
        self.set_cmds = 0
        self.flush_cmds = 0
        self.touch_cmds = 0
        self.touch_hits = 0
        self.touch_misses = 0
        self.meta_cmds = 0
        self.delete_hits = 0
        self.delete_misses = 0
        self.incr_hits = 0
        self.incr_misses = 0
        self.decr_hits = 0
        self.decr_misses = 0
        self.cas_hits = 0
        self.cas_misses = 0
        self.cas_badval = 0
        self.store_too_large = 0
        self.store_no_memory = 0

    # ----------------------------------------------------------------- public API

    def tick(self) -> int:
        """The clock second a request runs at; a delayed ``flush_all`` due by then empties
        the store first."""
        t = self._clock()
        if self._now_start <= t < self._now_end:
            now = self._now
        else:
            now = self._now = int(t)
            self._now_start = float(now)
            self._now_end = now + 1.0
        if self._flush_at and now >= self._flush_at:
            self._flush_at = 0
            self._drop_all()
        return now

    def stats(self) -> dict[str, int]:
        """Counters under memcached's ``stats`` names."""
        return {
            "cmd_get": self.get_cmds,
            "cmd_set": self.set_cmds,
            "cmd_flush": self.flush_cmds,
            "cmd_touch": self.touch_cmds,
            "cmd_meta": self.meta_cmds,
            "get_hits": self.get_hits,
            "get_misses": self.get_misses,
            "get_expired": self.get_expired,
            # Flushed items are dropped eagerly, so none is ever found "flushed" later.
            "get_flushed": 0,
            "delete_misses": self.delete_misses,
            "delete_hits": self.delete_hits,
            "incr_misses": self.incr_misses,
            "incr_hits": self.incr_hits,
            "decr_misses": self.decr_misses,
            "decr_hits": self.decr_hits,
            "cas_misses": self.cas_misses,
            "cas_hits": self.cas_hits,
            "cas_badval": self.cas_badval,
            "touch_hits": self.touch_hits,
            "touch_misses": self.touch_misses,
            "store_too_large": self.store_too_large,
            "store_no_memory": self.store_no_memory,
            "bytes": self._bytes,
            "curr_items": self._count,
            "total_items": self.total_items,
            "evictions": self.evictions,
            "evicted_unfetched": self.evicted_unfetched,
            "reclaimed": self.reclaimed,
            "limit_maxbytes": self.memory_limit,
            "item_size_max": self.item_size_max,
        }

    def slab_classes(self) -> list[dict[str, int]]:
        """What ``stats items`` and ``stats slabs`` report, per slab class holding items.

        A class is one of memcached's default chunk sizes (``-f 1.25 -n 48``), the one an
        item of that memcached size would be stored in; nothing is allocated by class here.
        ``age`` is the age of the oldest item in the store: there is one LRU, not one per
        class. The counts are kept as items come and go: no item is visited.
        """
        # The oldest access: that of the oldest live record.
        oldest = -1
        for seg, off in self._log.records():
            if seg[off + STATE_AT] != DEAD:
                oldest = RECORD_UNPACK(seg, off)[3]
                break
        age = int(self._clock()) - oldest if oldest >= 0 else 0
        out = []
        for cls, number in enumerate(self._class_items):
            if not number:
                continue
            evicted, nonzero, evicted_time, unfetched, reclaimed = self._class_evictions[cls]
            out.append(
                {
                    "class": cls + 1,
                    "chunk_size": CHUNK_SIZES[cls],
                    "number": number,
                    "age": age,
                    "mem_requested": self._class_bytes[cls],
                    "evicted": evicted,
                    "evicted_nonzero": nonzero,
                    "evicted_time": evicted_time,
                    "reclaimed": reclaimed,
                    "evicted_unfetched": unfetched,
                }
            )
        return out

    def next_cas(self) -> int:
        """Take the next value of the global CAS counter."""
        self._cas += 1
        return self._cas

    def realtime(self, exptime: int, now: int) -> int:
        """A client exptime as the absolute second the item dies at (0 = never)."""
        if exptime == 0:
            return 0
        if exptime < 0:
            return EXPIRED
        if exptime <= REALTIME_MAXDELTA:
            exptime += now
        # else absolute; in the past means expired on arrival
        return exptime if exptime > EXPIRED else EXPIRED

    # ------------------------------------------------------------- items, decoded

    def lookup(self, key: bytes, now: int) -> Item | None:
        """The live item under ``key``, without touching the LRU; expired items are dropped."""
        index, i = self._find(key)
        if i < 0:
            return None
        it = self._decode(key, index)
        if it.exptime and it.exptime <= now:
            self._forget(key)
            self.get_expired += 1
            return None
        return it

    def bump(self, it: Item, now: int) -> None:
        """A read: mark fetched, record the access, move to the young end of the LRU (and
        write back whatever else the command changed in ``it``: its exptime, its bits)."""
        it.cas_bits |= FETCHED
        self.touch_lru(it, now)

    def touch_lru(self, it: Item, now: int) -> None:
        """An update that keeps the item warm without counting as a fetch (and writes ``it``
        back, in place: its value must keep its length)."""
        it.time = now
        index, _ = self._find(it.key)
        h: i64 = hash(it.key)
        self._log.rewrite(
            index.entry, it.key, it.value, h & WORD_MASK, it.cas_bits, it.flags, it.exptime, now
        )

    def save(self, it: Item) -> None:
        """Write back a linked item whose header changed (exptime, bits, CAS), in place: the
        LRU is not touched."""
        index, _ = self._find(it.key)
        e = index.entry
        seg = self._log.segs[e >> SEGMENT_BITS & SID_MASK]
        _pack_header(seg, e & OFFSET_MASK, it.cas_bits, it.flags, it.exptime, it.time)

    def unlink(self, it: Item) -> None:
        """Remove ``it`` (a linked item) from the store."""
        self._forget(it.key)

    def _forget(self, key: bytes) -> None:
        index, i = self._find(key)
        found = index.found
        flags: int = found[1]
        nvalue: i64 = found[4]
        nkey: i64 = found[5]
        e = index.entry
        seg = self._log.segs[e >> SEGMENT_BITS & SID_MASK]
        self._drop(index, i, seg, e & OFFSET_MASK, nkey, nvalue, flags)

    def link_item(self, it: Item, now: int) -> None:
        """``link`` for a decoded item, which gets its CAS and access time."""
        it.cas_bits = self.link(it.key, it.value, it.flags, it.exptime, it.cas_bits & BITS, now)
        it.time = now

    def link(self, key: bytes, value: bytes, flags: int, exptime: int, bits: int, now: int) -> int:
        """Store ``value`` (with its CRLF) under ``key`` at the young end, replacing whatever
        holds it, with a fresh CAS; return the new ``cas_bits``.

        Evicts from the old end of the LRU while the real cost (``memory_used``) with the new
        item in would pass ``memory_limit``.
        """
        return self._link(key, value, flags, exptime, bits, now, False)

    def set_blob(self, key: bytes, value: bytes, flags: int, exptime: int, now: int) -> None:
        """A plain ``set`` (the commonest store, on the fast path): ``store_item(SET, ...)``
        without decoding the item it replaces (an expired one is counted as ``lookup``
        counts it, as memcached's lookup does)."""
        self._link(key, value, flags, exptime, 0, now, True)

    def alloc_error(
        self, key: bytes, nvalue: int, flags: int, now: int, unlink: bool
    ) -> bytes | None:
        """memcached's allocation check; on failure the error line (old item dropped if asked)."""
        size = item_size(len(key), nvalue, flags)
        if size <= self.item_size_max and size <= self.memory_limit:
            return None
        if size > self.item_size_max:
            self.store_too_large += 1
            reply = TOO_LARGE
        else:
            self.store_no_memory += 1
            reply = NO_MEMORY
        if unlink:
            old = self.lookup(key, now)
            if old is not None:
                self.unlink(old)
        return reply

    def store_item(self, comm: int, it: Item, cas_in: int, now: int, stale_ok: bool = False) -> int:
        """memcached's ``do_store_item``: apply ``it`` under mode ``comm``; return the outcome.

        ``cas_in`` 0 means "no CAS given". ``stale_ok`` (meta ``I`` with ``C``) lets a CAS
        older than the item's replace it, keeping its TTL and marking the result stale.
        """
        old = self.lookup(it.key, now)
        if old is None:
            if comm in (SET, ADD, APPEND_VIVIFY, PREPEND_VIVIFY):
                self.link_item(it, now)
                return STORED
            if comm == CAS:
                self.cas_misses += 1
                return NOT_FOUND
            return NOT_STORED  # replace/append/prepend need an existing item

        if comm in (SET, REPLACE):
            self.link_item(it, now)
            return STORED
        if comm == ADD:
            # add never overwrites, but it does count as a use of the existing item.
            self.touch_lru(old, now)
            return NOT_STORED
        if comm == CAS:
            if cas_in == old.cas:
                self.cas_hits += 1
                self.link_item(it, now)
                return STORED
            if stale_ok and 0 < cas_in < old.cas:
                # A late writer may replace an invalidated item: it stays stale, keeps its
                # TTL and any win token already handed out, so clients keep recaching.
                it.exptime = old.exptime
                it.cas_bits |= STALE | (old.cas_bits & WIN)
                self.cas_hits += 1
                self.link_item(it, now)
                return STORED
            self.cas_badval += 1
            return EXISTS
        # append / prepend (also the vivifying variants, which found an item here)
        if cas_in and cas_in != old.cas:
            return EXISTS
        data = it.value
        value = old.value[:-2] + data if comm in (APPEND, APPEND_VIVIFY) else data[:-2] + old.value
        if item_size(len(old.key), len(value), old.flags) > min(
            self.item_size_max, self.memory_limit
        ):
            return NOT_STORED  # the combined item cannot be allocated
        # The result keeps the old item's flags and exptime; the new data's are ignored.
        self.link(old.key, value, old.flags, old.exptime, old.cas_bits & BINARY, now)
        return STORED

    def add_delta(
        self, key: bytes, incr: bool, delta: int, now: int, cas_in: int = 0
    ) -> tuple[int, Item | None, bytes]:
        """memcached's ``do_add_delta``: (outcome, item, new value digits)."""
        it = self.lookup(key, now)
        if it is None:
            return DELTA_NOT_FOUND, None, b""
        data = it.value
        if len(data) <= 2:
            return DELTA_NON_NUMERIC, it, b""
        if cas_in and it.cas != cas_in:
            return DELTA_CAS_MISMATCH, None, b""
        # C reads the number from the item's bytes: the CRLF (or padding spaces) end it, and
        # so does a NUL, which ends the C string ("12\0" counts as 12).
        nul = data.find(b"\0")
        value = strtoull(data if nul < 0 else data[:nul])
        if value is None:
            return DELTA_NON_NUMERIC, it, b""
        if incr:
            value = (value + delta) & U64_MAX  # wraps at 2**64
            self.incr_hits += 1
        else:
            value = value - delta if delta <= value else 0  # stops at 0
            self.decr_hits += 1
        digits = b"%d" % value
        if len(digits) + 2 <= len(data):
            # memcached rewrites the digits in place and pads with spaces ("10" decr 1 is
            # "9 "), so the length, and thus the item size, never changes here.
            it.value = digits + b" " * (len(data) - 2 - len(digits)) + b"\r\n"
            it.set_cas(self.next_cas())
            self.touch_lru(it, now)
            return DELTA_OK, it, digits
        new = Item(it.key, digits + b"\r\n", it.flags, it.exptime, it.cas_bits & BINARY)
        self.link_item(new, now)
        return DELTA_OK, new, digits

    def flush(self, exptime: int, now: int) -> None:
        """``flush_all [exptime]``: empty the store now, or when the delay has passed."""
        if exptime > 0:
            # memcached hides items stored up to (flush time - 1), from that second on.
            at = self.realtime(exptime, now) - 1
            if at > now:
                self._flush_at = at
                return
        self._flush_at = 0
        self._drop_all()
        self.next_cas()  # memcached takes a CAS id as its flush watermark

    def slab_class(self, size: int) -> int:
        """The memcached slab class (1-based) an item of ``size`` bytes would live in."""
        i = (size + 7) >> 3
        return (CLASS_INDEX[i] if i < CLASS_INDEX_END else LARGEST_CLASS) + 1
