"""The internal memcached-compatible store: items, LRU, CAS, and the classic text commands.

``Cache.execute(request)`` runs one parsed request and returns the exact bytes memcached
1.6 would send for it (``b""`` when ``noreply``/``q`` suppresses the reply). It does no I/O.

Rules worth knowing before reading the code (all checked against a real memcached):

* Tokens are separated by the space byte only; a tab belongs to its token. The line ends at
  its ``\\n`` (one preceding ``\\r`` is dropped) and, as in C, at a NUL byte.
* Wrong token counts answer plain ``ERROR``, before anything else is looked at. ``noreply``
  is the *last* token spelled exactly ``noreply``, and once seen it silences every reply of a
  classic command, errors included (``set k abc 0 1 noreply`` answers nothing).
* Numbers are read like C ``strto*`` (``mcpframe.protocol.numbers``): ``+5`` and ``-0``
  are fine, ``5x`` is not, and 32-bit fields wrap instead of failing.
* Time is whole seconds of ``clock()``. exptime 0 never expires; a negative one is already
  expired (the item is stored anyway and replaces the old one); up to 30 days is relative;
  larger is an absolute Unix time. An item is gone once ``now >= exptime``.
* Every store, append, incr/decr and ``md ... I`` takes the next value of one global CAS
  counter, starting at 1, as does an immediate ``flush_all``; CAS numbers therefore match a
  fresh memcached fed the same commands.
* A too-large value answers ``SERVER_ERROR object too large for cache``; for ``set`` (and
  for ``ms`` in any mode) the old item under that key is dropped too, so a failed update
  never leaves stale data behind.
* LRU: an ``OrderedDict`` in least-recently-used order. Reads, touches, ``add`` on an
  existing key and incr/decr move an item to the young end; stores go there. When the real
  memory cost (below) would pass ``memory_limit`` the oldest items are evicted (expired ones
  count as ``reclaimed``, live ones as ``evictions``).
* Memory is counted twice, on purpose. ``stats bytes`` (and ``me``'s ``size=``, the item
  size limit, ``SERVER_ERROR out of memory`` for an item larger than the whole limit) use
  memcached's item size, key + value + 57 bytes (``item.item_size``), so the numbers a
  client sees match memcached's. Eviction instead bounds what the items cost this process
  (``Cache.memory_used()``): memcached's size plus ``item.PY_ITEM_OVERHEAD`` per item (the
  Python objects: 238 bytes beyond key and value, against memcached's 57), plus the key
  table as ``sys.getsizeof`` last measured it (every ``TABLE_REFRESH`` stores; a table
  found grown makes room at once). With one accumulator (``_used``, the real cost) both
  figures stay exact: ``bytes`` is ``_used`` less the overhead per item. So ``--memory 64``
  holds about 64 MB of items in RSS terms (fewer items than memcached fits in 64 MB: see
  docs/performance.md, "Memory"), not the ~230 MB that charging memcached's sizes let the
  process grow to. Under eviction the key table is rebuilt every few hundred thousand
  stores; ``allocator.map_large_blocks`` makes glibc return each old table to the system.
* Items are kept small: six slots, the CAS and the four flag bits in one int, and one int
  object per clock second, per expiry and per large flags value shared by the items stored
  with it (``item.Item``, ``item.PY_ITEM_OVERHEAD``).
* ``flush_all`` (no delay, or a delay of at most one second) empties the cache at once;
  with a delay ``d`` the cache is emptied when the clock reaches ``now + d - 1``, which is
  when memcached starts hiding the items stored before that moment.
* The cache reads ``noreply`` and the meta ``q`` from the line itself (same rule as the
  reader), so ``Request.noreply`` is not consulted; requests the reader already refused
  (bad numbers, long keys, wrong counts) are still answered here exactly as memcached would.

Deliberate differences from memcached (tests/cache/test_cache.py pins each one):
* An incr/decr result that fits is always written in place, space padded (the documented
  rule). memcached does that only while no unsent reply still references the item; after a
  pipelined get of the same key it builds a new item of exact length instead.
* A multiget that fails on an over-long key drops its own hits only; memcached also discards
  the unsent replies of commands pipelined before it.
* Flushed items are dropped at once rather than found stale later, so ``get_flushed`` stays 0.

Meta commands live in ``mcpframe.cache.meta``; they share the store primitives here.
"""

from __future__ import annotations

import sys
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable

from mcpframe.cache import meta
from mcpframe.cache.allocator import map_large_blocks
from mcpframe.cache.constants import (
    ADD,
    APPEND,
    APPEND_VIVIFY,
    BAD_CHUNK,
    BAD_DELTA,
    BAD_EXPTIME,
    BAD_FORMAT,
    CAS,
    DELETE_USAGE,
    DELTA_CAS_MISMATCH,
    DELTA_NON_NUMERIC,
    DELTA_NOT_FOUND,
    DELTA_OK,
    ERROR,
    EXISTS,
    EXPIRED,
    KEY_MAX_LENGTH,
    NO_MEMORY,
    NON_NUMERIC,
    NOT_FOUND,
    NOT_STORED,
    PREPEND,
    PREPEND_VIVIFY,
    REALTIME_MAXDELTA,
    REPLACE,
    SET,
    STORED,
    TOO_LARGE,
)
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
from mcpframe.protocol.commands import (
    CMD_ADD,
    CMD_APPEND,
    CMD_CAS,
    CMD_DECR,
    CMD_DELETE,
    CMD_FLUSH_ALL,
    CMD_GAT,
    CMD_GATS,
    CMD_GET,
    CMD_GETS,
    CMD_INCR,
    CMD_MA,
    CMD_MD,
    CMD_ME,
    CMD_MG,
    CMD_MN,
    CMD_MS,
    CMD_PREPEND,
    CMD_REPLACE,
    CMD_SET,
    CMD_TOUCH,
    CMD_VERBOSITY,
    CMD_VERSION,
)
from mcpframe.protocol.numbers import strtol32, strtoul32, strtoull
from mcpframe.protocol.request import Request

#: The version this cache reports; the same string as ``mcpframe.MEMCACHED_VERSION``
#: (not imported: ``cache`` depends on nothing but ``protocol``; a test keeps them equal).
VERSION = b"1.6.20"

U64_MAX = (1 << 64) - 1

_STORE_REPLIES = {
    STORED: b"STORED\r\n",
    EXISTS: b"EXISTS\r\n",
    NOT_FOUND: b"NOT_FOUND\r\n",
    NOT_STORED: b"NOT_STORED\r\n",
}
_NOREPLY = b"noreply"

#: memcached's default slab classes: the chunk size of class ``i + 1`` is ``CHUNK_SIZES[i]``.
CHUNK_SIZES = slab_chunk_sizes()
#: The class index (class - 1) of an item of memcached size ``s`` up to the largest chunk:
#: ``CLASS_INDEX[(s + 7) >> 3]`` (chunk sizes are multiples of 8; a table lookup costs a
#: store half what a bisection would). Larger items count in the largest class, as ``me``
#: reports them.
CLASS_INDEX = bytes(bisect_left(CHUNK_SIZES, i << 3) for i in range((CHUNK_SIZES[-1] >> 3) + 1))
CLASS_INDEX_END = len(CLASS_INDEX)
LARGEST_CLASS = len(CHUNK_SIZES) - 1

#: The key table's size (``sys.getsizeof`` of the LRU dict) is read again every this many
#: stores (a power of two); it only changes when the dict resizes, and reading it costs ~0.1 us.
TABLE_REFRESH = 1024
TABLE_REFRESH_MASK = TABLE_REFRESH - 1

Handler = Callable[["Cache", Request, list[bytes], int], bytes]


def _table_cost(items: OrderedDict[bytes, Item]) -> int:
    """The key table's bytes: the dict's slots and the LRU's index (its links are per item)."""
    return sys.getsizeof(items) - ODICT_NODE * len(items)


def _tokens(line: bytes) -> list[bytes]:
    """Split a request line into tokens exactly as memcached's tokenizer does."""
    # memcached drops the \r only when something precedes it: "\r\n" alone is a token.
    if line[-2:] == b"\r\n" and len(line) > 2:
        line = line[:-2]
    elif line[-1:] == b"\n":
        line = line[:-1]
    if 0 in line:  # a NUL ends the line (an int test is a plain memchr)
        line = line[: line.index(0)]
    toks = line.split(b" ")
    if b"" in toks:
        toks = [t for t in toks if t]
    return toks


class Cache:
    """An in-process memcached: execute parsed requests, get memcached's reply bytes."""

    __slots__ = (
        "_cas",
        "_cas_badval",
        "_cas_hits",
        "_cas_misses",
        "_class_bytes",
        "_class_evictions",
        "_class_items",
        "_clock",
        "_decr_hits",
        "_decr_misses",
        "_delete_hits",
        "_delete_misses",
        "_evicted_unfetched",
        "_evictions",
        "_flush_at",
        "_flush_cmds",
        "_get_cmds",
        "_get_expired",
        "_get_hits",
        "_get_misses",
        "_incr_hits",
        "_incr_misses",
        "_items",
        "_last_exptime",
        "_last_flags",
        "_meta_cmds",
        "_now",
        "_now_end",
        "_now_start",
        "_reclaimed",
        "_set_cmds",
        "_store_no_memory",
        "_store_too_large",
        "_table",
        "_total_items",
        "_touch_cmds",
        "_touch_hits",
        "_touch_misses",
        "_used",
        "item_size_max",
        "memory_limit",
    )

    def __init__(
        self,
        memory_limit: int = 64 * 1024 * 1024,
        item_size_max: int = 1024 * 1024,
        clock: Callable[[], float] = time.time,
        release_tables: bool = True,
    ) -> None:
        """``memory_limit`` bounds what the items really cost (``memory_used``); values
        over ``item_size_max`` are refused. ``release_tables`` has glibc map large blocks
        (the key table) on their own, so a resized table's memory goes back to the system
        (``allocator.map_large_blocks``, process-wide)."""
        if release_tables:
            map_large_blocks(512 * 1024)
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
        cache holds (``curr_items``, ``bytes``, the items per class) is not a counter."""
        #: Per slab class index, [evicted, evicted_nonzero, evicted_time, evicted_unfetched,
        #: reclaimed] as ``stats items`` names them.
        self._class_evictions = [[0, 0, 0, 0, 0] for _ in CHUNK_SIZES]
        # Counters, named after memcached's stats.
        self._total_items = 0
        self._get_cmds = 0
        self._get_hits = 0
        self._get_misses = 0
        self._get_expired = 0
        self._set_cmds = 0
        self._flush_cmds = 0
        self._touch_cmds = 0
        self._touch_hits = 0
        self._touch_misses = 0
        self._meta_cmds = 0
        self._delete_hits = 0
        self._delete_misses = 0
        self._incr_hits = 0
        self._incr_misses = 0
        self._decr_hits = 0
        self._decr_misses = 0
        self._cas_hits = 0
        self._cas_misses = 0
        self._cas_badval = 0
        self._store_too_large = 0
        self._store_no_memory = 0
        self._evictions = 0
        self._evicted_unfetched = 0
        self._reclaimed = 0

    # ----------------------------------------------------------------- public API

    def execute(self, req: Request) -> bytes:
        """Run one request; return the reply bytes (``b""`` when noreply/quiet hides it)."""
        handler = _DISPATCH.get(req.cmd)
        if handler is None:
            return ERROR
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
        return handler(self, req, _tokens(req.line), now)

    def stats(self) -> dict[str, int]:
        """Counters under memcached's ``stats`` names."""
        return {
            "cmd_get": self._get_cmds,
            "cmd_set": self._set_cmds,
            "cmd_flush": self._flush_cmds,
            "cmd_touch": self._touch_cmds,
            "cmd_meta": self._meta_cmds,
            "get_hits": self._get_hits,
            "get_misses": self._get_misses,
            "get_expired": self._get_expired,
            # Flushed items are dropped eagerly, so none is ever found "flushed" later.
            "get_flushed": 0,
            "delete_misses": self._delete_misses,
            "delete_hits": self._delete_hits,
            "incr_misses": self._incr_misses,
            "incr_hits": self._incr_hits,
            "decr_misses": self._decr_misses,
            "decr_hits": self._decr_hits,
            "cas_misses": self._cas_misses,
            "cas_hits": self._cas_hits,
            "cas_badval": self._cas_badval,
            "touch_hits": self._touch_hits,
            "touch_misses": self._touch_misses,
            "store_too_large": self._store_too_large,
            "store_no_memory": self._store_no_memory,
            "bytes": self._used - len(self._items) * PY_ITEM_OVERHEAD,
            "curr_items": len(self._items),
            "total_items": self._total_items,
            "evictions": self._evictions,
            "evicted_unfetched": self._evicted_unfetched,
            "reclaimed": self._reclaimed,
            "limit_maxbytes": self.memory_limit,
            "item_size_max": self.item_size_max,
        }

    def slab_classes(self) -> list[dict[str, int]]:
        """What ``stats items`` and ``stats slabs`` report, per slab class holding items.

        A class is one of memcached's default chunk sizes (``-f 1.25 -n 48``), the one an
        item of that memcached size would be stored in; nothing is allocated by class here.
        ``age`` is the age of the oldest item in the cache: there is one LRU, not one per
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

    # ----------------------------------------------------------- store primitives

    def _next_cas(self) -> int:
        self._cas += 1
        return self._cas

    def _realtime(self, exptime: int, now: int) -> int:
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

    def _share_flags(self, flags: int) -> int:
        """Flags over 256 (CPython caches smaller ints) as the int object the previous
        store used, when equal: one object for a run of stores with the same flags."""
        if flags == self._last_flags:
            return self._last_flags
        self._last_flags = flags
        return flags

    def _lookup(self, key: bytes, now: int) -> Item | None:
        """The live item under ``key``, without touching the LRU; expired items are dropped."""
        it = self._items.get(key)
        if it is not None and it.exptime and it.exptime <= now:
            self._unlink(it)
            self._get_expired += 1
            return None
        return it

    def _bump(self, it: Item, now: int) -> None:
        """A read: mark fetched, record the access, move to the young end of the LRU."""
        cas_bits = it.cas_bits
        if not cas_bits & FETCHED:
            it.cas_bits = cas_bits | FETCHED
        it.time = now
        self._items.move_to_end(it.key)

    def _touch_lru(self, it: Item, now: int) -> None:
        """An update that keeps the item warm without counting as a fetch."""
        it.time = now
        self._items.move_to_end(it.key)

    def _unlink(self, it: Item) -> None:
        key = it.key
        del self._items[key]
        size = ITEM_OVERHEAD + len(key) + len(it.value) + (FLAGS_BYTES if it.flags else 0)
        self._used -= PY_ITEM_OVERHEAD + size
        i = (size + 7) >> 3
        cls = CLASS_INDEX[i] if i < CLASS_INDEX_END else LARGEST_CLASS
        self._class_items[cls] -= 1
        self._class_bytes[cls] -= size

    def _link(self, it: Item, now: int) -> None:
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
        self._total_items += 1
        if not self._total_items & TABLE_REFRESH_MASK:
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
                self._reclaimed += 1
                figures[4] += 1
            else:
                self._evictions += 1
                figures[0] += 1
                figures[2] = now - victim.time
                if victim.exptime:
                    figures[1] += 1
                if not victim.cas_bits & FETCHED:
                    self._evicted_unfetched += 1
                    figures[3] += 1
        return used

    def _drop_all(self) -> None:
        self._items.clear()
        self._class_items = [0] * len(CHUNK_SIZES)
        self._class_bytes = [0] * len(CHUNK_SIZES)
        self._used = 0
        self._table = _table_cost(self._items)

    def _alloc_error(
        self, key: bytes, nvalue: int, flags: int, now: int, unlink: bool
    ) -> bytes | None:
        """memcached's allocation check; on failure the error line (old item dropped if asked)."""
        size = item_size(len(key), nvalue, flags)
        if size <= self.item_size_max and size <= self.memory_limit:
            return None
        if size > self.item_size_max:
            self._store_too_large += 1
            reply = TOO_LARGE
        else:
            self._store_no_memory += 1
            reply = NO_MEMORY
        if unlink:
            old = self._lookup(key, now)
            if old is not None:
                self._unlink(old)
        return reply

    def _store(self, comm: int, it: Item, cas_in: int, now: int, stale_ok: bool = False) -> int:
        """memcached's ``do_store_item``: apply ``it`` under mode ``comm``; return the outcome.

        ``cas_in`` 0 means "no CAS given". ``stale_ok`` (meta ``I`` with ``C``) lets a CAS
        older than the item's replace it, keeping its TTL and marking the result stale.
        """
        old = self._lookup(it.key, now)
        if old is None:
            if comm in (SET, ADD, APPEND_VIVIFY, PREPEND_VIVIFY):
                self._link(it, now)
                return STORED
            if comm == CAS:
                self._cas_misses += 1
                return NOT_FOUND
            return NOT_STORED  # replace/append/prepend need an existing item

        if comm in (SET, REPLACE):
            self._link(it, now)
            return STORED
        if comm == ADD:
            # add never overwrites, but it does count as a use of the existing item.
            self._touch_lru(old, now)
            return NOT_STORED
        if comm == CAS:
            if cas_in == old.cas:
                self._cas_hits += 1
                self._link(it, now)
                return STORED
            if stale_ok and 0 < cas_in < old.cas:
                # A late writer may replace an invalidated item: it stays stale, keeps its
                # TTL and any win token already handed out, so clients keep recaching.
                it.exptime = old.exptime
                it.cas_bits |= STALE | (old.cas_bits & WIN)
                self._cas_hits += 1
                self._link(it, now)
                return STORED
            self._cas_badval += 1
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
        self._link(Item(old.key, value, old.flags, old.exptime, old.cas_bits & BINARY), now)
        return STORED

    def _add_delta(
        self, key: bytes, incr: bool, delta: int, now: int, cas_in: int = 0
    ) -> tuple[int, Item | None, bytes]:
        """memcached's ``do_add_delta``: (outcome, item, new value digits)."""
        it = self._lookup(key, now)
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
            self._incr_hits += 1
        else:
            value = value - delta if delta <= value else 0  # stops at 0
            self._decr_hits += 1
        digits = b"%d" % value
        if len(digits) + 2 <= len(data):
            # memcached rewrites the digits in place and pads with spaces ("10" decr 1 is
            # "9 "), so the length, and thus the item size, never changes here.
            it.value = digits + b" " * (len(data) - 2 - len(digits)) + b"\r\n"
            it.set_cas(self._next_cas())
            self._touch_lru(it, now)
            return DELTA_OK, it, digits
        new = Item(it.key, digits + b"\r\n", it.flags, it.exptime, it.cas_bits & BINARY)
        self._link(new, now)
        return DELTA_OK, new, digits

    def _flush(self, exptime: int, now: int) -> None:
        if exptime > 0:
            # memcached hides items stored up to (flush time - 1), from that second on.
            at = self._realtime(exptime, now) - 1
            if at > now:
                self._flush_at = at
                return
        self._flush_at = 0
        self._drop_all()
        self._next_cas()  # memcached takes a CAS id as its flush watermark

    def _slab_class(self, size: int) -> int:
        i = (size + 7) >> 3
        return (CLASS_INDEX[i] if i < CLASS_INDEX_END else LARGEST_CLASS) + 1

    # ----------------------------------------------------------- classic commands

    def _retrieve(self, toks: list[bytes], now: int, with_cas: bool, touch: bool) -> bytes:
        if len(toks) < 2:
            return ERROR
        exptime = 0
        first = 1
        if touch:
            exp = strtol32(toks[1])
            if exp is None:
                return BAD_EXPTIME
            exptime = self._realtime(exp, now)
            first = 2
        out: list[bytes] = []
        for i in range(first, len(toks)):
            key = toks[i]
            if len(key) > KEY_MAX_LENGTH:
                # memcached abandons the whole reply, hits already collected included.
                return BAD_FORMAT
            it = self._lookup(key, now)
            if it is None:
                if touch:
                    self._touch_cmds += 1
                    self._touch_misses += 1
                else:
                    self._get_cmds += 1
                    self._get_misses += 1
                continue
            self._bump(it, now)
            if touch:
                it.exptime = exptime
                self._touch_cmds += 1
                self._touch_hits += 1
            else:
                self._get_cmds += 1
                self._get_hits += 1
            if with_cas:
                out.append(
                    b"VALUE %b %d %d %d\r\n"
                    % (key, it.flags, len(it.value) - 2, it.cas_bits >> CAS_SHIFT)
                )
            else:
                out.append(b"VALUE %b %d %d\r\n" % (key, it.flags, len(it.value) - 2))
            out.append(it.value)
        out.append(b"END\r\n")
        return b"".join(out)

    def _cmd_get(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._retrieve(toks, now, False, False)

    def _cmd_gets(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._retrieve(toks, now, True, False)

    def _cmd_gat(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._retrieve(toks, now, False, True)

    def _cmd_gats(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._retrieve(toks, now, True, True)

    def _update(self, req: Request, toks: list[bytes], now: int, comm: int) -> bytes:
        ntok = len(toks)
        if comm == CAS:
            if ntok != 6 and ntok != 7:
                return ERROR
        elif ntok != 5 and ntok != 6:
            return ERROR
        noreply = toks[-1] == _NOREPLY
        reply = self._update_reply(req, toks, now, comm)
        return b"" if noreply else reply

    def _update_reply(self, req: Request, toks: list[bytes], now: int, comm: int) -> bytes:
        key = toks[1]
        if len(key) > KEY_MAX_LENGTH:
            return BAD_FORMAT
        tok = toks[2]
        flags = 0 if tok == b"0" else strtoul32(tok)  # "0" is by far the commonest
        tok = toks[3]
        exp = 0 if tok == b"0" else strtol32(tok)
        vlen = strtol32(toks[4])
        if flags is None or exp is None or vlen is None:
            return BAD_FORMAT
        cas_in = 0
        if comm == CAS:
            c = strtoull(toks[5])
            if c is None:
                return BAD_FORMAT
            cas_in = c
        if vlen < 0 or vlen > 0x7FFFFFFD:
            return BAD_FORMAT
        value = req.value
        # Only `set` drops the old item when the new one cannot be allocated.
        if value is None:  # the reader swallowed a value larger than it accepts
            self._store_too_large += 1
            if comm == SET:
                old = self._lookup(key, now)
                if old is not None:
                    self._unlink(old)
            return TOO_LARGE
        size = ITEM_OVERHEAD + len(key) + vlen + 2 + (FLAGS_BYTES if flags else 0)
        if size > self.item_size_max or size > self.memory_limit:
            err = self._alloc_error(key, vlen + 2, flags, now, comm == SET)
            if err is not None:
                return err
        self._set_cmds += 1
        if len(value) != vlen + 2 or not value.endswith(b"\r\n"):
            return BAD_CHUNK
        if flags > 256:
            flags = self._share_flags(flags)
        it = Item(key, value, flags, self._realtime(exp, now))
        return _STORE_REPLIES[self._store(comm, it, cas_in, now)]

    def _cmd_set(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._update(req, toks, now, SET)

    def _cmd_add(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._update(req, toks, now, ADD)

    def _cmd_replace(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._update(req, toks, now, REPLACE)

    def _cmd_append(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._update(req, toks, now, APPEND)

    def _cmd_prepend(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._update(req, toks, now, PREPEND)

    def _cmd_cas(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._update(req, toks, now, CAS)

    def _arith(self, toks: list[bytes], now: int, incr: bool) -> bytes:
        if len(toks) != 3 and len(toks) != 4:
            return ERROR
        noreply = toks[-1] == _NOREPLY
        key = toks[1]
        if len(key) > KEY_MAX_LENGTH:
            reply = BAD_FORMAT
        else:
            delta = strtoull(toks[2])
            if delta is None:
                reply = BAD_DELTA
            else:
                status, _, digits = self._add_delta(key, incr, delta, now)
                if status == DELTA_OK:
                    reply = digits + b"\r\n"
                elif status == DELTA_NOT_FOUND:
                    if incr:
                        self._incr_misses += 1
                    else:
                        self._decr_misses += 1
                    reply = b"NOT_FOUND\r\n"
                else:
                    reply = NON_NUMERIC
        return b"" if noreply else reply

    def _cmd_incr(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._arith(toks, now, True)

    def _cmd_decr(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return self._arith(toks, now, False)

    def _cmd_touch(self, req: Request, toks: list[bytes], now: int) -> bytes:
        if len(toks) != 3 and len(toks) != 4:
            return ERROR
        noreply = toks[-1] == _NOREPLY
        key = toks[1]
        exp = strtol32(toks[2])
        if len(key) > KEY_MAX_LENGTH:
            reply = BAD_FORMAT
        elif exp is None:
            reply = BAD_EXPTIME
        else:
            self._touch_cmds += 1
            it = self._lookup(key, now)
            if it is None:
                self._touch_misses += 1
                reply = b"NOT_FOUND\r\n"
            else:
                self._bump(it, now)
                it.exptime = self._realtime(exp, now)
                self._touch_hits += 1
                reply = b"TOUCHED\r\n"
        return b"" if noreply else reply

    def _cmd_delete(self, req: Request, toks: list[bytes], now: int) -> bytes:
        ntok = len(toks)
        if ntok < 2 or ntok > 4:
            return ERROR
        noreply = False
        if ntok > 2:
            # Only the historical "delete <key> 0" hold time and "noreply" may follow the key.
            hold_is_zero = toks[2] == b"0"
            noreply = toks[-1] == _NOREPLY
            if not (
                (ntok == 3 and (hold_is_zero or noreply))
                or (ntok == 4 and hold_is_zero and noreply)
            ):
                return b"" if noreply else DELETE_USAGE
        key = toks[1]
        if len(key) > KEY_MAX_LENGTH:
            reply = BAD_FORMAT
        else:
            it = self._lookup(key, now)
            if it is None:
                self._delete_misses += 1
                reply = b"NOT_FOUND\r\n"
            else:
                self._unlink(it)
                self._delete_hits += 1
                reply = b"DELETED\r\n"
        return b"" if noreply else reply

    def _cmd_flush_all(self, req: Request, toks: list[bytes], now: int) -> bytes:
        ntok = len(toks)
        if ntok < 1 or ntok > 3:
            return ERROR
        noreply = toks[-1] == _NOREPLY
        self._flush_cmds += 1
        exptime = 0
        if ntok != (2 if noreply else 1):
            exp = strtol32(toks[1])
            if exp is None:
                return b"" if noreply else BAD_EXPTIME
            exptime = exp
        self._flush(exptime, now)
        return b"" if noreply else b"OK\r\n"

    def _cmd_verbosity(self, req: Request, toks: list[bytes], now: int) -> bytes:
        if len(toks) != 2 and len(toks) != 3:
            return ERROR
        noreply = toks[-1] == _NOREPLY
        reply = b"OK\r\n" if strtoul32(toks[1]) is not None else BAD_FORMAT
        return b"" if noreply else reply

    def _cmd_version(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return b"VERSION " + VERSION + b"\r\n"

    def _cmd_mn(self, req: Request, toks: list[bytes], now: int) -> bytes:
        return b"MN\r\n"


_DISPATCH: dict[int, Handler] = {
    CMD_GET: Cache._cmd_get,
    CMD_GETS: Cache._cmd_gets,
    CMD_GAT: Cache._cmd_gat,
    CMD_GATS: Cache._cmd_gats,
    CMD_SET: Cache._cmd_set,
    CMD_ADD: Cache._cmd_add,
    CMD_REPLACE: Cache._cmd_replace,
    CMD_APPEND: Cache._cmd_append,
    CMD_PREPEND: Cache._cmd_prepend,
    CMD_CAS: Cache._cmd_cas,
    CMD_INCR: Cache._cmd_incr,
    CMD_DECR: Cache._cmd_decr,
    CMD_TOUCH: Cache._cmd_touch,
    CMD_DELETE: Cache._cmd_delete,
    CMD_FLUSH_ALL: Cache._cmd_flush_all,
    CMD_VERBOSITY: Cache._cmd_verbosity,
    CMD_VERSION: Cache._cmd_version,
    CMD_MN: Cache._cmd_mn,
    CMD_MG: meta.mg,
    CMD_MS: meta.ms,
    CMD_MD: meta.md,
    CMD_MA: meta.ma,
    CMD_ME: meta.me,
}
