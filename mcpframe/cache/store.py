"""The item store behind the internal cache: items, LRU, CAS numbering, memory, counters.

Sans-I/O and command-free: ``classic`` and ``meta`` execute requests on top of this public
API (``engine.Cache`` dispatches them). Rules worth knowing before reading the code (all
checked against a real memcached):

* Time is whole seconds of ``clock()`` (:meth:`Store.tick`). exptime 0 never expires; a
  negative one is already expired (the item is stored anyway and replaces the old one); up to
  30 days is relative; larger is an absolute Unix time. An item is gone once ``now >=
  exptime``.
* Every store, append, incr/decr and ``md ... I`` takes the next value of one global CAS
  counter, starting at 1, as does an immediate ``flush_all``; CAS numbers therefore match a
  fresh memcached fed the same commands.
* LRU: an ``OrderedDict`` in least-recently-used order. Reads, touches, ``add`` on an
  existing key and incr/decr move an item to the young end; stores go there. When the real
  memory cost (below) would pass ``memory_limit`` the oldest items are evicted (expired ones
  count as ``reclaimed``, live ones as ``evictions``).
* Memory is counted twice, on purpose. ``stats bytes`` (and ``me``'s ``size=``, the item
  size limit, ``SERVER_ERROR out of memory`` for an item larger than the whole limit) use
  memcached's item size, key + value + 57 bytes (``item.item_size``), so the numbers a
  client sees match memcached's. Eviction instead bounds what the items cost this process
  (``Store.memory_used()``): memcached's size plus ``item.PY_ITEM_OVERHEAD`` per item (the
  Python objects: 238 bytes beyond key and value, against memcached's 57), plus the key
  table as ``sys.getsizeof`` last measured it (every ``TABLE_REFRESH`` stores; a table
  found grown makes room at once). With one accumulator (``_used``, the real cost) both
  figures stay exact: ``bytes`` is ``_used`` less the overhead per item. So ``--memory 64``
  holds about 64 MB of items in RSS terms (fewer items than memcached fits in 64 MB: see
  docs/performance.md, "Memory"), not the ~230 MB that charging memcached's sizes let the
  process grow to. Under eviction the key table is rebuilt every few hundred thousand
  stores; the server has glibc return each old table to the system
  (``mcpframe.proxy.allocator``: a process-wide setting, so not the store's to make).
* Items are kept small: six slots, the CAS and the four flag bits in one int, and one int
  object per clock second, per expiry and per large flags value shared by the items stored
  with it (``item.Item``, ``item.PY_ITEM_OVERHEAD``).
* ``flush_all`` (no delay, or a delay of at most one second) empties the store at once;
  with a delay ``d`` it is emptied when the clock reaches ``now + d - 1``, which is when
  memcached starts hiding the items stored before that moment. Flushed items are dropped at
  once rather than found stale later, so ``get_flushed`` stays 0 (a deliberate difference).
"""

from __future__ import annotations

import sys
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable

from mcpframe.cache.item import (
    BINARY,
    CAS_SHIFT,
    FETCHED,
    FLAGS_BYTES,
    ITEM_OVERHEAD,
    ODICT_NODE,
    PY_ITEM_OVERHEAD,
    STALE,
    WIN,
    Item,
    item_size,
    slab_chunk_sizes,
)
from mcpframe.protocol.numbers import strtoull
from mcpframe.protocol.replies import NO_MEMORY, TOO_LARGE

#: Largest relative exptime (30 days); larger values are absolute Unix times.
REALTIME_MAXDELTA = 60 * 60 * 24 * 30
#: exptime of an item that arrived already expired (any value <= every clock reading).
EXPIRED = -1

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

#: The key table's size (``sys.getsizeof`` of the LRU dict) is read again every this many
#: stores (a power of two); it only changes when the dict resizes, and reading it costs ~0.1 us.
TABLE_REFRESH = 1024
TABLE_REFRESH_MASK = TABLE_REFRESH - 1

#: memcached's default slab classes: the chunk size of class ``i + 1`` is ``CHUNK_SIZES[i]``.
CHUNK_SIZES = slab_chunk_sizes()
#: The class index (class - 1) of an item of memcached size ``s`` up to the largest chunk:
#: ``CLASS_INDEX[(s + 7) >> 3]`` (chunk sizes are multiples of 8; a table lookup costs a
#: store half what a bisection would). Larger items count in the largest class, as ``me``
#: reports them.
CLASS_INDEX = bytes(bisect_left(CHUNK_SIZES, i << 3) for i in range((CHUNK_SIZES[-1] >> 3) + 1))
CLASS_INDEX_END = len(CLASS_INDEX)
LARGEST_CLASS = len(CHUNK_SIZES) - 1


def _table_cost(items: OrderedDict[bytes, Item]) -> int:
    """The key table's bytes: the dict's slots and the LRU's index (its links are per item)."""
    return sys.getsizeof(items) - ODICT_NODE * len(items)


class Store:
    """memcached's item storage, in process: the commands in ``classic`` and ``meta`` use
    the public methods and count what they execute in the public counters (named after
    memcached's ``stats``)."""

    __slots__ = (
        "_cas",
        "_class_bytes",
        "_class_evictions",
        "_class_items",
        "_clock",
        "_flush_at",
        "_items",
        "_last_exptime",
        "_last_flags",
        "_now",
        "_now_end",
        "_now_start",
        "_table",
        "_used",
        "cas_badval",
        "cas_hits",
        "cas_misses",
        "decr_hits",
        "decr_misses",
        "delete_hits",
        "delete_misses",
        "evicted_unfetched",
        "evictions",
        "flush_cmds",
        "get_cmds",
        "get_expired",
        "get_hits",
        "get_misses",
        "incr_hits",
        "incr_misses",
        "item_size_max",
        "memory_limit",
        "meta_cmds",
        "reclaimed",
        "set_cmds",
        "store_no_memory",
        "store_too_large",
        "total_items",
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
        self.memory_limit = memory_limit
        self.item_size_max = item_size_max
        self._clock = clock
        self._items: OrderedDict[bytes, Item] = OrderedDict()
        self._cas = 0
        # What the items cost: memcached's size plus PY_ITEM_OVERHEAD each, summed (so
        # ``stats bytes`` is this less PY_ITEM_OVERHEAD per item).
        self._used = 0
        self._table = _table_cost(self._items)  # the LRU dict's table, as last measured
        # The clock second of the last request, as one int object shared by every item
        # stored or read in that second (and the float range it covers); likewise one
        # int per absolute expiry and per large flags value (see ``item.PY_ITEM_OVERHEAD``).
        self._now = 0
        self._now_start = 0.0
        self._now_end = 0.0
        self._last_exptime = 0
        self._last_flags = 0
        self._flush_at = 0  # clock second at which a delayed flush_all empties the cache
        # Items and their memcached sizes per slab class (index: class - 1), kept as items
        # are linked and unlinked: ``stats items``/``slabs`` walk no item.
        self._class_items = [0] * len(CHUNK_SIZES)
        self._class_bytes = [0] * len(CHUNK_SIZES)
        self.reset_stats()

    def reset_stats(self) -> None:
        """``stats reset``: the counters start again from zero (as memcached's do); what the
        store holds (``curr_items``, ``bytes``, the items per class) is not a counter."""
        #: Per slab class index, [evicted, evicted_nonzero, evicted_time, evicted_unfetched,
        #: reclaimed] as ``stats items`` names them.
        self._class_evictions = [[0, 0, 0, 0, 0] for _ in CHUNK_SIZES]
        # Counters, named after memcached's stats.
        self.total_items = 0
        self.get_cmds = 0
        self.get_hits = 0
        self.get_misses = 0
        self.get_expired = 0
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
        self.evictions = 0
        self.evicted_unfetched = 0
        self.reclaimed = 0

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
            "bytes": self._used - len(self._items) * PY_ITEM_OVERHEAD,
            "curr_items": len(self._items),
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
        oldest = next(iter(self._items.values()), None)
        age = int(self._clock()) - oldest.time if oldest is not None else 0
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

    def __len__(self) -> int:
        return len(self._items)

    def memory_used(self) -> int:
        """The bytes charged against ``memory_limit``: what the items really cost in Python.

        ``stats bytes`` plus ``PY_ITEM_OVERHEAD`` per item plus the key table as last
        measured (refreshed every ``TABLE_REFRESH`` stores and on ``flush_all``).
        """
        return self._used + self._table

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
        if exptime == self._last_exptime:
            return self._last_exptime  # share the int object with the items stored before
        self._last_exptime = exptime
        return exptime

    def share_flags(self, flags: int) -> int:
        """Flags over 256 (CPython caches smaller ints) as the int object the previous
        store used, when equal: one object for a run of stores with the same flags."""
        if flags == self._last_flags:
            return self._last_flags
        self._last_flags = flags
        return flags

    def lookup(self, key: bytes, now: int) -> Item | None:
        """The live item under ``key``, without touching the LRU; expired items are dropped."""
        it = self._items.get(key)
        if it is not None and it.exptime and it.exptime <= now:
            self.unlink(it)
            self.get_expired += 1
            return None
        return it

    def peek(self, key: bytes) -> Item | None:
        """The item under ``key`` as stored, expired or not; nothing is touched or counted."""
        return self._items.get(key)

    def bump(self, it: Item, now: int) -> None:
        """A read: mark fetched, record the access, move to the young end of the LRU."""
        cas_bits = it.cas_bits
        if not cas_bits & FETCHED:
            it.cas_bits = cas_bits | FETCHED
        it.time = now
        self._items.move_to_end(it.key)

    def touch_lru(self, it: Item, now: int) -> None:
        """An update that keeps the item warm without counting as a fetch."""
        it.time = now
        self._items.move_to_end(it.key)

    def unlink(self, it: Item) -> None:
        """Remove ``it`` (a linked item) from the store."""
        key = it.key
        del self._items[key]
        size = ITEM_OVERHEAD + len(key) + len(it.value) + (FLAGS_BYTES if it.flags else 0)
        self._used -= PY_ITEM_OVERHEAD + size
        i = (size + 7) >> 3
        cls = CLASS_INDEX[i] if i < CLASS_INDEX_END else LARGEST_CLASS
        self._class_items[cls] -= 1
        self._class_bytes[cls] -= size

    def link(self, it: Item, now: int) -> None:
        """Insert ``it`` (replacing whatever holds its key) with a fresh CAS.

        Evicts from the old end of the LRU while the real cost (``memory_used``) with ``it``
        in would pass ``memory_limit``.
        """
        items = self._items
        key = it.key
        old = items.pop(key, None)
        size = ITEM_OVERHEAD + len(key) + len(it.value) + (FLAGS_BYTES if it.flags else 0)
        used = self._used + PY_ITEM_OVERHEAD + size
        if old is None:
            i = (size + 7) >> 3
            cls = CLASS_INDEX[i] if i < CLASS_INDEX_END else LARGEST_CLASS
            self._class_items[cls] += 1
            self._class_bytes[cls] += size
        else:
            old_size = ITEM_OVERHEAD + len(key) + len(old.value) + (FLAGS_BYTES if old.flags else 0)
            used -= PY_ITEM_OVERHEAD + old_size
            if old_size != size:  # (an overwrite of the same size, the usual one, is free)
                class_items = self._class_items
                class_bytes = self._class_bytes
                i = (old_size + 7) >> 3
                cls = CLASS_INDEX[i] if i < CLASS_INDEX_END else LARGEST_CLASS
                class_items[cls] -= 1
                class_bytes[cls] -= old_size
                i = (size + 7) >> 3
                cls = CLASS_INDEX[i] if i < CLASS_INDEX_END else LARGEST_CLASS
                class_items[cls] += 1
                class_bytes[cls] += size
        if used + self._table > self.memory_limit:
            used = self._evict(used, now)
        self._used = used
        self._cas += 1
        it.cas_bits |= self._cas << CAS_SHIFT  # a new item: its CAS part is still 0
        it.time = now
        items[key] = it
        self.total_items += 1
        if not self.total_items & TABLE_REFRESH_MASK:
            self._table = _table_cost(items)
            if used + self._table > self.memory_limit:  # the table grew: make room now
                self._used = self._evict(used, now)

    def _evict(self, used: int, now: int) -> int:
        """Drop the oldest items until ``used`` (the items' cost, a new one's included) and
        the table fit in ``memory_limit``; return what ``used`` is then."""
        items = self._items
        popitem = items.popitem
        room = self.memory_limit - self._table
        class_items = self._class_items
        class_bytes = self._class_bytes
        class_evictions = self._class_evictions
        while used > room and items:
            victim = popitem(False)[1]
            size = (
                ITEM_OVERHEAD + len(victim.key) + len(victim.value)
                + (FLAGS_BYTES if victim.flags else 0)
            )  # fmt: skip
            used -= PY_ITEM_OVERHEAD + size
            i = (size + 7) >> 3
            cls = CLASS_INDEX[i] if i < CLASS_INDEX_END else LARGEST_CLASS
            class_items[cls] -= 1
            class_bytes[cls] -= size
            figures = class_evictions[cls]
            if victim.exptime and victim.exptime <= now:
                self.reclaimed += 1
                figures[4] += 1
            else:
                self.evictions += 1
                figures[0] += 1
                figures[2] = now - victim.time
                if victim.exptime:
                    figures[1] += 1
                if not victim.cas_bits & FETCHED:
                    self.evicted_unfetched += 1
                    figures[3] += 1
        return used

    def _drop_all(self) -> None:
        self._items.clear()
        self._class_items = [0] * len(CHUNK_SIZES)
        self._class_bytes = [0] * len(CHUNK_SIZES)
        self._used = 0
        self._table = _table_cost(self._items)

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
                self.link(it, now)
                return STORED
            if comm == CAS:
                self.cas_misses += 1
                return NOT_FOUND
            return NOT_STORED  # replace/append/prepend need an existing item

        if comm in (SET, REPLACE):
            self.link(it, now)
            return STORED
        if comm == ADD:
            # add never overwrites, but it does count as a use of the existing item.
            self.touch_lru(old, now)
            return NOT_STORED
        if comm == CAS:
            if cas_in == old.cas:
                self.cas_hits += 1
                self.link(it, now)
                return STORED
            if stale_ok and 0 < cas_in < old.cas:
                # A late writer may replace an invalidated item: it stays stale, keeps its
                # TTL and any win token already handed out, so clients keep recaching.
                it.exptime = old.exptime
                it.cas_bits |= STALE | (old.cas_bits & WIN)
                self.cas_hits += 1
                self.link(it, now)
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
        self.link(Item(old.key, value, old.flags, old.exptime, old.cas_bits & BINARY), now)
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
        self.link(new, now)
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
