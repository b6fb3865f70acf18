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
* Layout: the key table is split into *shards*, plain ``dict`` objects from key to *blob*,
  a ``bytes`` object holding the item's header (``item.HEADER``, 20 bytes: CAS and bits,
  flags, exptime, last access) and its value without the CRLF. Neither keys nor blobs hold
  references, so the cyclic GC tracks none of them and the shards stay untracked: a full
  collection costs the same with ten items or ten million (one ``Item`` object per key, as
  before, made every full collection walk them all: 855 ms with 2M items). Two objects and
  one dict entry per item is also the smallest layout CPython offers short of an allocator
  of our own (``item.PY_ITEM_OVERHEAD``; docs/operations.md, "Memory", has the figures).
  Commands see an item decoded into an ``item.Item`` for the request and the store writes
  it back; ``classic`` reads the blob directly on its hot paths (get, set).
* Shards: a key lives in shard ``(hash(key) >> 32) & (shards - 1)`` (bits above those a
  shard's dict starts its probes from: with the low bits, every key of a shard would start
  from one of ``slots / shards`` places, and gets were 3 % slower). The number is fixed
  when the store is made, from ``memory_limit``: one per ``SHARD_BYTES`` (a power of two, at
  least 1, at most ``MAX_SHARDS``), so a full store holds about 8k items per shard with
  ~250-byte items (about 12k with the smallest). Why: a dict grows, and is rebuilt at the
  same size once re-insertions have used up its free entries, by copying its whole table;
  one dict of 2M keys stopped the process for 140-800 ms at each rebuild. A shard's rebuild
  copies ~10k entries (about a millisecond). It costs a ``hash`` and an index per operation
  (the key caches its hash, so the dict does not compute it again), and small tables take
  2-byte indexes instead of 4. A count fixed from the limit, rather than shards split as the
  store grows (linear hashing), copies no item: that cost a fill up to 8 extra copies of
  every item at 2M items.
* LRU: each shard's own insertion order, oldest first. Reads, touches, ``add`` on an
  existing key and incr/decr re-insert the key at the young end of its shard (a delete and
  a store: the blob is rebuilt only when its header changes, on the first fetch or the
  first read in a new second); stores go there too. Eviction takes the oldest item *of the
  shard the new item goes to* (the next non-empty shard if that one is empty): with one
  shard (a limit under ``2 * SHARD_BYTES``) this is the exact LRU; with more, each shard is an exact
  LRU of a random 1/n of the keys and receives 1/n of the stores, so what is evicted is
  among the oldest of the whole store without any per-item stamp (memcached's own LRU is
  per slab class and segmented, not one global order either). Evicting from a shard's
  old end needs its first live entry, which CPython finds by scanning past the dummies
  that deletions left at the front: so the store takes the oldest ``len >> 6`` keys of the
  shard (at least 64) in one scan, the shard's *cold batch* (``_colds[i]``: key -> None,
  youngest first, so ``popitem`` gives the oldest), and evicts from it. A key re-inserted
  or deleted leaves the batch at once, so a batch always holds exactly the oldest keys of
  its shard, in order. When the real memory cost (below) would pass ``memory_limit`` the
  oldest items are evicted (expired ones count as ``reclaimed``, live ones as
  ``evictions``).
* Pauses: the longest a request waits on the store is a shard's table rebuild or a split,
  about a millisecond (docs/operations.md).
* Memory is counted twice, on purpose. ``stats bytes`` (and ``me``'s ``size=``, the item
  size limit, ``SERVER_ERROR out of memory`` for an item larger than the whole limit) use
  memcached's item size, key + value + 57 bytes (``item.item_size``), so the numbers a
  client sees match memcached's. Eviction instead bounds what the items cost this process
  (``Store.memory_used()``): memcached's size plus ``item.PY_ITEM_OVERHEAD`` per item (the
  key's and the blob's object headers and block rounding), plus the shards' tables as
  ``sys.getsizeof`` last measured them (a shard is measured again every ``TABLE_REFRESH``
  stores that land in some shard, that one; a table found grown makes room at once; the
  cold batches, under a byte per item, are not charged). With one
  accumulator (``_used``, the real cost) both figures stay exact: ``bytes`` is ``_used``
  less the overhead per item. So ``--memory 64`` holds about 64 MB of items in RSS terms.
  Under eviction each shard's table is rebuilt every few thousand stores; the server has
  glibc return large old tables to the system (``mcpframe.proxy.allocator``: a process-wide
  setting, so not the store's to make).
* Items and bytes per slab class (``stats items``/``slabs``) are counted as items come and
  go; an overwrite of the same size, the usual one, costs nothing there.
* ``flush_all`` (no delay, or a delay of at most one second) empties the store at once;
  with a delay ``d`` it is emptied when the clock reaches ``now + d - 1``, which is when
  memcached starts hiding the items stored before that moment. Flushed items are dropped at
  once rather than found stale later, so ``get_flushed`` stays 0 (a deliberate difference).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import islice

from mypy_extensions import i64

from mcpframe.cache.item import (
    BINARY,
    BITS,
    CAS_SHIFT,
    FETCHED,
    FLAGS_BYTES,
    HEADER,
    HEADER_SIZE,
    ITEM_OVERHEAD,
    PACKERS,
    PY_ITEM_OVERHEAD,
    STALE,
    WIN,
    Item,
    item_size,
    packer,
    slab_chunk_sizes,
    table_cost,
)
from mcpframe.protocol.numbers import strtoull
from mcpframe.protocol.replies import NO_MEMORY, TOO_LARGE

#: Largest relative exptime (30 days); larger values are absolute Unix times.
REALTIME_MAXDELTA = 60 * 60 * 24 * 30
#: exptime of an item that arrived already expired (any value <= every clock reading, and
#: not 0, which means "never"; exptimes are stored as u32).
EXPIRED = 1

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

#: Every this many stores (a power of two), the table of the shard stored into is measured
#: again (``sys.getsizeof``: it only changes when the dict resizes; reading it costs ~0.1 us).
TABLE_REFRESH = 64
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

#: One shard per this many bytes of ``memory_limit`` (see the docstring), rounded down to a
#: power of two of shards, at most ``MAX_SHARDS`` (more cost speed: 4096 shards made gets
#: 7 % slower; 16 GB of ~250-byte items make ~60k items per shard, a ~5 ms rebuild).
SHARD_BYTES = 2 * 1024 * 1024
MAX_SHARDS = 1024


def shard_count(memory_limit: int) -> int:
    """The shards of a store of ``memory_limit`` bytes (see the docstring)."""
    n = 1
    while n < MAX_SHARDS and n * 2 * SHARD_BYTES <= memory_limit:
        n *= 2
    return n


#: A shard's cold batch (its oldest keys, taken in one scan when eviction needs them) holds
#: ``len(shard) >> COLD_SHIFT`` keys, at least ``COLD_MIN``: a scan then passes at most
#: ~64 dummy entries per key evicted, and the batch costs ~1/64 of the shard's table.
COLD_SHIFT = 6
COLD_MIN = 64

#: ``item_size`` from the blob: the blob lacks the value's CRLF and has the header.
BLOB_TO_SIZE = ITEM_OVERHEAD + 2 - HEADER_SIZE
NO_FLAGS = bytes(4)


_unpack_header = HEADER.unpack_from
assert HEADER_SIZE == 20 and FETCHED == 1  # (fetch spells them out: it is the hottest path)


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
        "_colds",
        "_count",
        "_evicted",
        "_flush_at",
        "_mask",
        "_now",
        "_now_end",
        "_now_start",
        "_nshards",
        "_shards",
        "_table",
        "_tables",
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
        # The shards: key -> blob (``item.HEADER`` + value without CRLF), oldest first; and
        # per shard its cold batch, the oldest keys, youngest first (``popitem`` gives the
        # oldest), and its table's bytes as last measured. See the docstring.
        self._nshards = shard_count(memory_limit)
        self._mask: i64 = self._nshards - 1
        self._shards: list[dict[bytes, bytes]] = []
        self._colds: list[dict[bytes, None]] = []
        self._tables: list[int] = []
        self._table = 0  # their sum
        self._count = 0  # items, over all shards
        self._evicted = False  # whether any cold batch was taken (since the last flush)
        self._new_shards()
        self._cas = 0
        # What the items cost: memcached's size plus PY_ITEM_OVERHEAD each, summed (so
        # ``stats bytes`` is this less PY_ITEM_OVERHEAD per item).
        self._used = 0
        # The clock second of the last request (and the float range it covers).
        self._now = 0
        self._now_start = 0.0
        self._now_end = 0.0
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
            "bytes": self._used - self._count * PY_ITEM_OVERHEAD,
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
        # The oldest access: per shard, that of the last of its cold batch, or of the first
        # key of the dict (a scan past the dummies at its front: fine for a stats command).
        oldest = -1
        for items, cold in zip(self._shards, self._colds, strict=True):
            key = next(reversed(cold)) if cold else next(iter(items), None)
            if key is not None:
                t = HEADER.unpack_from(items[key])[3]
                if oldest < 0 or t < oldest:
                    oldest = t
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

    def __len__(self) -> int:
        return self._count

    def shard_index(self, key: bytes) -> i64:
        """The index of the shard that holds ``key`` (see the docstring).

        On machine integers (``i64``): ``hash`` spans 64 bits, which a Python int would box
        half the time; the key caches its hash, so the dict lookup that follows does not
        compute it again."""
        h: i64 = hash(key)
        return (h >> 32) & self._mask

    def blobs(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, blob) stored, shard by shard, each shard oldest first."""
        for items in self._shards:
            yield from items.items()

    def memory_used(self) -> int:
        """The bytes charged against ``memory_limit``: what the items really cost in Python.

        ``stats bytes`` plus ``PY_ITEM_OVERHEAD`` per item plus the shards' tables as last
        measured (see the docstring).
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
        return exptime if exptime > EXPIRED else EXPIRED

    # ------------------------------------------------------------- items, as blobs

    def peek_blob(self, key: bytes) -> bytes | None:
        """The blob under ``key`` as stored, expired or not; nothing is touched or counted."""
        return self._shards[self.shard_index(key)].get(key)

    def fetch(self, key: bytes, now: int, exptime: int = -1) -> tuple[int, int, bytes] | None:
        """A read of ``key`` (``get``, and with ``exptime`` >= 0 ``gat``/``touch``, which
        also set it): (flags, cas_bits, value without CRLF), or None for a miss (an expired
        item is dropped and counted). The item is marked fetched, its access recorded, and it
        moves to the young end; its blob is rebuilt only when its header changes (the first
        fetch, the first read in a new second, a new exptime)."""
        i = self.shard_index(key)
        items = self._shards[i]
        blob = items.get(key)
        if blob is None:
            return None
        cas_bits, flags, dies, t = _unpack_header(blob)
        if dies and dies <= now:
            self._forget(key, BLOB_TO_SIZE + len(key) + len(blob) + (FLAGS_BYTES if flags else 0))
            self.get_expired += 1
            return None
        del items[key]
        if self._evicted:
            cold = self._colds[i]
            if cold:
                cold.pop(key, None)
        value = blob[20:]  # HEADER_SIZE
        if exptime >= 0 or t != now or not cas_bits & 1:  # FETCHED
            n = len(value)
            pack = PACKERS.get(n)
            if pack is None:
                pack = packer(n)
            items[key] = pack(
                cas_bits | FETCHED, flags, dies if exptime < 0 else exptime, now, value
            )
        else:
            items[key] = blob
        return flags, cas_bits, value

    # ------------------------------------------------------------- items, decoded

    def lookup(self, key: bytes, now: int) -> Item | None:
        """The live item under ``key``, without touching the LRU; expired items are dropped."""
        blob = self._shards[self.shard_index(key)].get(key)
        if blob is None:
            return None
        it = Item.decode(key, blob)
        if it.exptime and it.exptime <= now:
            self._forget(key, it.size)
            self.get_expired += 1
            return None
        return it

    def peek(self, key: bytes) -> Item | None:
        """The item under ``key`` as stored, expired or not; nothing is touched or counted."""
        blob = self._shards[self.shard_index(key)].get(key)
        return None if blob is None else Item.decode(key, blob)

    def bump(self, it: Item, now: int) -> None:
        """A read: mark fetched, record the access, move to the young end of the LRU (and
        write back whatever else the command changed in ``it``: its exptime, its bits)."""
        it.cas_bits |= FETCHED
        self.touch_lru(it, now)

    def touch_lru(self, it: Item, now: int) -> None:
        """An update that keeps the item warm without counting as a fetch (and writes ``it``
        back: its value must keep its length)."""
        it.time = now
        key = it.key
        i = self.shard_index(key)
        items = self._shards[i]
        del items[key]
        if self._evicted:
            cold = self._colds[i]
            if cold:
                cold.pop(key, None)
        items[key] = it.encode()

    def save(self, it: Item) -> None:
        """Write back a linked item whose header changed (exptime, bits, CAS), in place: the
        LRU is not touched."""
        key = it.key
        self._shards[self.shard_index(key)][key] = it.encode()

    def unlink(self, it: Item) -> None:
        """Remove ``it`` (a linked item) from the store."""
        self._forget(it.key, it.size)

    def _forget(self, key: bytes, size: int) -> None:
        i = self.shard_index(key)
        del self._shards[i][key]
        if self._evicted:
            cold = self._colds[i]
            if cold:
                cold.pop(key, None)
        self._count -= 1
        self._used -= PY_ITEM_OVERHEAD + size
        c = (size + 7) >> 3
        cls = CLASS_INDEX[c] if c < CLASS_INDEX_END else LARGEST_CLASS
        self._class_items[cls] -= 1
        self._class_bytes[cls] -= size

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
        return self._link(self.shard_index(key), key, value, flags, exptime, bits, now)

    def _link(
        self, i: i64, key: bytes, value: bytes, flags: int, exptime: int, bits: int, now: int
    ) -> int:
        """``link`` into shard ``i``, the key's."""
        items = self._shards[i]
        old = items.pop(key, None)
        size = ITEM_OVERHEAD + len(key) + len(value) + (FLAGS_BYTES if flags else 0)
        used = self._used + PY_ITEM_OVERHEAD + size
        if old is None:
            c = (size + 7) >> 3
            cls = CLASS_INDEX[c] if c < CLASS_INDEX_END else LARGEST_CLASS
            self._class_items[cls] += 1
            self._class_bytes[cls] += size
        else:
            if self._evicted:
                cold = self._colds[i]
                if cold:
                    cold.pop(key, None)
            old_size = (
                BLOB_TO_SIZE + len(key) + len(old) + (0 if old[8:12] == NO_FLAGS else FLAGS_BYTES)
            )
            used -= PY_ITEM_OVERHEAD + old_size
            if old_size != size:  # (an overwrite of the same size, the usual one, is free)
                class_items = self._class_items
                class_bytes = self._class_bytes
                c = (old_size + 7) >> 3
                cls = CLASS_INDEX[c] if c < CLASS_INDEX_END else LARGEST_CLASS
                class_items[cls] -= 1
                class_bytes[cls] -= old_size
                c = (size + 7) >> 3
                cls = CLASS_INDEX[c] if c < CLASS_INDEX_END else LARGEST_CLASS
                class_items[cls] += 1
                class_bytes[cls] += size
        if used + self._table > self.memory_limit:
            used = self._evict(used, now, i)
        self._used = used
        self._cas += 1
        cas_bits = self._cas << CAS_SHIFT | bits
        nvalue = len(value) - 2
        pack = PACKERS.get(nvalue)
        if pack is None:
            pack = packer(nvalue)
        items[key] = pack(cas_bits, flags, exptime, now, value)
        if old is None:
            self._count += 1
        self.total_items += 1
        if not self.total_items & TABLE_REFRESH_MASK:
            self._measure(i)
            if used + self._table > self.memory_limit:  # the table grew: make room now
                self._used = self._evict(used, now, i)
        return cas_bits

    def _measure(self, i: i64) -> None:
        """Measure shard ``i``'s table again (``table_cost``) and keep the sum."""
        cost = table_cost(self._shards[i])
        self._table += cost - self._tables[i]
        self._tables[i] = cost

    def _evict(self, used: int, now: int, i: i64) -> int:
        """Drop the oldest items of shard ``i`` (of the next shards while it is empty) until
        ``used`` (the items' cost, a new one's included) and the tables fit in
        ``memory_limit``; return what ``used`` is then."""
        shards = self._shards
        colds = self._colds
        room = self.memory_limit - self._table
        class_items = self._class_items
        class_bytes = self._class_bytes
        class_evictions = self._class_evictions
        unpack = HEADER.unpack_from
        while used > room and self._count:
            items = shards[i]
            cold = colds[i]
            if not cold:
                if not items:
                    i = i + 1 if i + 1 < len(shards) else 0
                    continue
                # One scan from the front for a batch of the oldest keys (see the docstring).
                n = max(COLD_MIN, len(items) >> COLD_SHIFT)
                cold = colds[i] = dict.fromkeys(reversed(list(islice(items, n))))
                self._evicted = True
            key = cold.popitem()[0]
            blob = items.pop(key)
            self._count -= 1
            cas_bits, flags, exptime, t = unpack(blob)
            size = BLOB_TO_SIZE + len(key) + len(blob) + (FLAGS_BYTES if flags else 0)
            used -= PY_ITEM_OVERHEAD + size
            c = (size + 7) >> 3
            cls = CLASS_INDEX[c] if c < CLASS_INDEX_END else LARGEST_CLASS
            class_items[cls] -= 1
            class_bytes[cls] -= size
            figures = class_evictions[cls]
            if exptime and exptime <= now:
                self.reclaimed += 1
                figures[4] += 1
            else:
                self.evictions += 1
                figures[0] += 1
                figures[2] = now - t
                if exptime:
                    figures[1] += 1
                if not cas_bits & FETCHED:
                    self.evicted_unfetched += 1
                    figures[3] += 1
        return used

    def _new_shards(self) -> None:
        """Empty shards, cold batches and table figures, ``_nshards`` of each."""
        self._shards = [{} for _ in range(self._nshards)]
        self._colds = [{} for _ in range(self._nshards)]
        self._tables = [table_cost(items) for items in self._shards]
        self._table = sum(self._tables)
        self._count = 0
        self._evicted = False

    def _drop_all(self) -> None:
        self._new_shards()
        self._class_items = [0] * len(CHUNK_SIZES)
        self._class_bytes = [0] * len(CHUNK_SIZES)
        self._used = 0

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

    def set_blob(self, key: bytes, value: bytes, flags: int, exptime: int, now: int) -> None:
        """A plain ``set`` (the commonest store, on the fast path): ``store_item(SET, ...)``
        without decoding the item it replaces."""
        i = self.shard_index(key)
        old = self._shards[i].get(key)
        if old is not None:
            _, old_flags, dies, _ = HEADER.unpack_from(old)
            if dies and dies <= now:  # memcached's lookup counts it, as ``lookup`` does
                size = BLOB_TO_SIZE + len(key) + len(old) + (FLAGS_BYTES if old_flags else 0)
                self._forget(key, size)
                self.get_expired += 1
        self._link(i, key, value, flags, exptime, 0, now)

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
