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
* Layout (``arena``): every item is a *record* (a 30-byte header, the key, the value with
  its CRLF) in one *log* of 64 KiB ``mmap`` segments, written one after another, and
  one entry (8 bytes) in the open-addressing index (an ``array('q')``) of its *shard*. No
  Python object is made per item, so the cyclic GC walks none (one ``Item`` object per key
  once made every full collection walk them all: 855 ms with 2M items), and an item costs
  its record and its index slot: 30 + key + value + 2 bytes, plus 8 bytes a slot at one
  quarter to one half full (two ``bytes`` objects and a dict entry per item, the layout
  before, cost ~90 bytes more; docs/operations.md, "The embedded cache: memory and
  pauses", has the figures). Commands
  see an item decoded into an ``item.Item`` for the request and the store writes it back;
  ``classic`` reads the record directly on its hot paths (get, set).
* Shards: a key's index is that of shard ``(hash(key) >> 20) & (shards - 1)`` (the top bits
  of its hash word, see ``arena``). The number is fixed when the store is made, from
  ``memory_limit``: one per ``SHARD_BYTES`` (a power of two, at least 1, at most
  ``MAX_SHARDS``). The log is one for all; shards keep each index small. An index grows
  incrementally (``arena``): the store that starts a growth only allocates the larger
  table (2.3 ms for 512k slots, the largest at 8 GB), and its entries move over the next
  insertions, ~64 slots each (one dict of 2M keys once stopped the process for 140-800 ms
  at each rebuild; a whole 130k-entry index reinserted at once took 27 ms).
* LRU: a second-chance (CLOCK) order over the log, which runs from the oldest write at its
  head to the youngest. A store of a new key, or of a value of another length, writes a
  record at the tail (the old one is marked dead); reads, touches, ``add`` on an existing
  key, incr/decr and stores of the same length rewrite the record in place and mark it
  ``REFERENCED``. Room is made at the head, record by record: a dead record is dropped for
  free; a referenced one is moved to the tail, its mark cleared (so an item used since it
  was written survives one more pass of the whole log); any other is evicted (expired ones
  count as ``reclaimed``, live ones as ``evictions``). While a quarter or more of the log is
  dead, unreferenced live records are moved too rather than evicted (the log compacts
  itself: no live item goes while that much is garbage). At most ``MOVES_MAX`` moves per
  store bound the work. This is exact FIFO for items never used again, and the order of
  memcached's own LRU for the rest: new items that are never read go first, items read
  since they were written get another pass (memcached's segmented LRU moves them to WARM).
  Before, each read moved its key to the young end of its shard's dict; a read now writes
  nothing once the record is marked, unless its header changes (first fetch, a new second).
* Memory is counted twice, on purpose. ``stats bytes`` (and ``me``'s ``size=``, the item
  size limit, ``SERVER_ERROR out of memory`` for an item larger than the whole limit) use
  memcached's item size, key + value + 57 bytes (``item.item_size``), so the numbers a
  client sees match memcached's. Eviction instead bounds what the items cost this process
  (``Store.memory_used()``): the bytes of every record in the log, dead ones included
  (``arena.record_size``), and every index (8 bytes a slot). Not charged: the log's partly
  written tail segment and partly evicted head segment (at most 128 KiB), and the few
  objects of the log and of each index. So ``--memory 64`` holds about 64 MB of items in
  RSS terms. A record is smaller than memcached's item (30 bytes of header against 56), so
  ``stats bytes`` can pass ``limit_maxbytes`` when the store is full.
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
from typing import Final

from mypy_extensions import i64

from mcpframe.cache.arena import (
    DEAD,
    HASH_MASK,
    OFFSET_MASK,
    POSITION_BITS,
    RECORD,
    RECORD_SIZE,
    SEGMENT_BITS,
    SID_MASK,
    STATE_AT,
    WORD_MASK,
    Index,
    Log,
    Segment,
)
from mcpframe.cache.item import (
    BINARY,
    BITS,
    CAS_SHIFT,
    FETCHED,
    FLAGS_BYTES,
    HEADER,
    ITEM_OVERHEAD,
    REFERENCED,
    STALE,
    WIN,
    Item,
    item_size,
    slab_chunk_sizes,
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

#: memcached's default slab classes: the chunk size of class ``i + 1`` is ``CHUNK_SIZES[i]``.
CHUNK_SIZES: Final = slab_chunk_sizes()
#: The class index (class - 1) of an item of memcached size ``s`` up to the largest chunk:
#: ``CLASS_INDEX[(s + 7) >> 3]`` (chunk sizes are multiples of 8; a table lookup costs a
#: store half what a bisection would). Larger items count in the largest class, as ``me``
#: reports them.
CLASS_INDEX: Final = bytes(
    bisect_left(CHUNK_SIZES, i << 3) for i in range((CHUNK_SIZES[-1] >> 3) + 1)
)
CLASS_INDEX_END: Final = len(CLASS_INDEX)
LARGEST_CLASS: Final = len(CHUNK_SIZES) - 1

#: One shard per this many bytes of ``memory_limit`` (see the docstring), rounded down to a
#: power of two of shards, at most ``MAX_SHARDS``: a full 2 MB shard holds ~30k records of
#: ~60 bytes, up to 2 GB; past that shards grow with the limit (~130k records at 8 GB, a
#: table of 512k slots, 4 MB, allocated in ~2 ms when it grows). More shards cost gets: 4096
#: made them 12 % slower.
SHARD_BYTES = 2 * 1024 * 1024
MAX_SHARDS = 1024


def shard_count(memory_limit: int) -> int:
    """The shards of a store of ``memory_limit`` bytes (see the docstring)."""
    n = 1
    while n < MAX_SHARDS and n * 2 * SHARD_BYTES <= memory_limit:
        n *= 2
    return n


#: A shard is picked by bits 20-31 of a key's hash (its hash word's top bits, see
#: ``arena``), at most ``MAX_SHARDS`` of them.
SHARD_SHIFT: Final = 20
#: At most this many live records are moved from the head to the tail (second chances, or
#: compaction) for one store; then the head record is evicted whatever its state.
MOVES_MAX: Final = 256

_unpack_record: Final = RECORD.unpack_from
_pack_header: Final = HEADER.pack_into
assert RECORD.size == RECORD_SIZE


class Store:
    """memcached's item storage, in process: the commands in ``classic`` and ``meta`` use
    the public methods and count what they execute in the public counters (named after
    memcached's ``stats``)."""

    __slots__ = (
        "_bytes",
        "_cas",
        "_class_bytes",
        "_class_evictions",
        "_class_items",
        "_clock",
        "_count",
        "_flush_at",
        "_indexes",
        "_log",
        "_mask",
        "_now",
        "_now_end",
        "_now_start",
        "_nshards",
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
        "hit_cas_bits",
        "hit_flags",
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
        self._nshards = shard_count(memory_limit)
        self._mask: i64 = self._nshards - 1
        self._indexes: list[Index] = []  # one per shard
        self._log = Log()
        # What the items really cost: their records (dead ones too) and the indexes.
        self._used: i64 = 0
        # memcached's size of the items (``stats bytes``), and how many there are.
        self._bytes = 0
        self._count = 0
        self._new_shards()
        self._cas = 0
        # The clock second of the last request (and the float range it covers).
        self._now = 0
        self._now_start = 0.0
        self._now_end = 0.0
        self._flush_at = 0  # clock second at which a delayed flush_all empties the cache
        # Items and their memcached sizes per slab class (index: class - 1), kept as items
        # are linked and unlinked: ``stats items``/``slabs`` walk no item.
        self._class_items = [0] * len(CHUNK_SIZES)
        self._class_bytes = [0] * len(CHUNK_SIZES)
        # What the last ``fetch`` that hit found besides the value.
        self.hit_flags = 0
        self.hit_cas_bits = 0
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
                oldest = _unpack_record(seg, off)[3]
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

    def __len__(self) -> int:
        return self._count

    def shard_index(self, key: bytes) -> i64:
        """The index of the shard that holds ``key`` (see the docstring).

        On machine integers (``i64``): ``hash`` spans 64 bits, which a Python int would box
        half the time; the key caches its hash, so the lookup that follows does not
        compute it again."""
        h: i64 = hash(key)
        return (h >> SHARD_SHIFT) & self._mask

    def shard_keys(self, i: int) -> list[bytes]:
        """The keys of shard ``i``'s live items, oldest write first (for tests and tools)."""
        out = []
        for seg, off in self._log.records():
            _, _, _, _, _, word, state, nkey = _unpack_record(seg, off)
            if state != DEAD and (word >> SHARD_SHIFT) & self._mask == i:
                out.append(bytes(seg[off + RECORD_SIZE : off + RECORD_SIZE + nkey]))
        return out

    def items(self) -> Iterator[Item]:
        """Every item stored, decoded, oldest write first."""
        keys = []
        for seg, off in self._log.records():
            _, _, _, _, _, _, state, nkey = _unpack_record(seg, off)
            if state != DEAD:
                keys.append(bytes(seg[off + RECORD_SIZE : off + RECORD_SIZE + nkey]))
        for key in keys:
            it = self.peek(key)
            assert it is not None
            yield it

    def memory_used(self) -> int:
        """The bytes charged against ``memory_limit``: what the items really cost (see the
        docstring): every record in the logs and every index."""
        return self._used

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

    # ----------------------------------------------------------- items, as records

    def fetch(self, key: bytes, now: int, exptime: int = -1) -> bytes | None:
        """A read of ``key`` (``get``, and with ``exptime`` >= 0 ``gat``/``touch``, which
        also set it): the value with its CRLF, its flags and cas_bits left in ``hit_flags``
        and ``hit_cas_bits``; or None for a miss (an expired item is dropped and counted).
        The item is marked fetched and referenced, and its access recorded, in place (see
        the docstring, "LRU")."""
        h: i64 = hash(key)
        index = self._indexes[(h >> SHARD_SHIFT) & self._mask]
        segs = self._log.segs
        i = index.find(key, h & HASH_MASK, segs)
        if i < 0:
            return None
        found = index.found
        cas_bits: int = found[0]
        flags: int = found[1]
        dies: int = found[2]
        t: int = found[3]
        nvalue: i64 = found[4]
        nkey: i64 = found[5]
        e = index.entry
        seg = segs[e >> SEGMENT_BITS & SID_MASK]
        off = e & OFFSET_MASK
        if dies and dies <= now:
            self._drop(index, i, seg, off, nkey, nvalue, flags)
            self.get_expired += 1
            return None
        start = off + RECORD_SIZE + nkey
        if exptime < 0:
            exptime = dies
        if t != now or exptime != dies or cas_bits & (FETCHED | REFERENCED) != FETCHED | REFERENCED:
            _pack_header(seg, off, cas_bits | FETCHED | REFERENCED, flags, exptime, now)
        self.hit_flags = flags
        self.hit_cas_bits = cas_bits
        return seg[start : start + nvalue]

    def _put(
        self,
        index: Index,
        i: i64,
        ins: i64,
        key: bytes,
        value: bytes | bytearray,
        word: i64,
        cas_bits: int,
        flags: int,
        exptime: int,
        now: int,
    ) -> None:
        """Write the record of ``key`` (hash word ``word``) at the tail: ``i`` is the slot of
        its entry in ``index`` (its old record already marked dead), or -1 for a key not
        stored, whose entry goes to slot ``ins`` (-1: look for one). Room is made first
        (and the old record is then no longer the key's)."""
        size = RECORD_SIZE + len(key) + len(value)
        if self._used + size > self.memory_limit:
            if i >= 0:
                index.remove(i)
                self._count -= 1
                i = -1
            ins = -1
            self._evict(size, now)
        hb = word & HASH_MASK
        e = hb << POSITION_BITS | self._log.append(key, value, word, cas_bits, flags, exptime, now)
        self._used += size
        if i >= 0:
            index.put(i, e)
        else:
            self._used += index.insert(hb, e, ins)
            self._count += 1

    def _drop(
        self, index: Index, i: i64, seg: Segment, off: i64, nkey: i64, nvalue: i64, flags: int
    ) -> None:
        """Forget the live item of slot ``i`` (record at ``off`` of ``seg``)."""
        self._log.kill(seg, off, RECORD_SIZE + nkey + nvalue)
        index.remove(i)
        self._count -= 1
        size = ITEM_OVERHEAD + nkey + nvalue + (FLAGS_BYTES if flags else 0)
        self._bytes -= size
        c = (size + 7) >> 3
        cls = CLASS_INDEX[c] if c < CLASS_INDEX_END else LARGEST_CLASS
        self._class_items[cls] -= 1
        self._class_bytes[cls] -= size

    # ------------------------------------------------------------- items, decoded

    def _find(self, key: bytes) -> tuple[Index, i64]:
        """(index, slot) of ``key``; the slot is negative when it is not stored
        (``Index.find``)."""
        h: i64 = hash(key)
        index = self._indexes[(h >> SHARD_SHIFT) & self._mask]
        return index, index.find(key, h & HASH_MASK, self._log.segs)

    def _decode(self, key: bytes, index: Index) -> Item:
        """The item ``index.find`` just found."""
        cas_bits, flags, exptime, t, nvalue, nkey, _ = index.found
        e = index.entry
        seg = self._log.segs[e >> SEGMENT_BITS & SID_MASK]
        start = (e & OFFSET_MASK) + RECORD_SIZE + nkey
        return Item(key, bytes(seg[start : start + nvalue]), flags, exptime, cas_bits, t)

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

    def peek(self, key: bytes) -> Item | None:
        """The item under ``key`` as stored, expired or not; nothing is touched or counted."""
        index, i = self._find(key)
        return None if i < 0 else self._decode(key, index)

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

    def _link(
        self,
        key: bytes,
        value: bytes,
        flags: int,
        exptime: int,
        bits: int,
        now: int,
        count_expired: bool,
    ) -> int:
        h: i64 = hash(key)
        index = self._indexes[(h >> SHARD_SHIFT) & self._mask]
        i = index.find(key, h & HASH_MASK, self._log.segs)
        size = ITEM_OVERHEAD + len(key) + len(value) + (FLAGS_BYTES if flags else 0)
        ins: i64 = -1
        if i < 0:
            ins = ~i
            i = -1
            c = (size + 7) >> 3
            cls = CLASS_INDEX[c] if c < CLASS_INDEX_END else LARGEST_CLASS
            self._class_items[cls] += 1
            self._class_bytes[cls] += size
            self._bytes += size
        else:
            found = index.found
            old_flags: int = found[1]
            dies: int = found[2]
            old_nvalue: i64 = found[4]
            e = index.entry
            if count_expired and dies and dies <= now:
                self.get_expired += 1
            old_size = ITEM_OVERHEAD + len(key) + old_nvalue + (FLAGS_BYTES if old_flags else 0)
            self._bytes += size - old_size
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
            if old_nvalue == len(value):
                # The same length: written over in place, referenced (a store is a use).
                self._cas += 1
                cas_bits = self._cas << CAS_SHIFT | bits
                self._log.rewrite(e, key, value, h & WORD_MASK, cas_bits, flags, exptime, now)
                self.total_items += 1
                return cas_bits
            self._log.kill(
                self._log.segs[e >> SEGMENT_BITS & SID_MASK],
                e & OFFSET_MASK,
                RECORD_SIZE + len(key) + old_nvalue,
            )
        self._cas += 1
        cas_bits = self._cas << CAS_SHIFT | bits
        self._put(index, i, ins, key, value, h & WORD_MASK, cas_bits, flags, exptime, now)
        self.total_items += 1
        return cas_bits

    def _evict(self, need: i64, now: int) -> None:
        """Drop records from the head of the log until ``need`` more bytes fit in
        ``memory_limit``: dead records for free, referenced ones moved to the tail (a second
        chance), the others evicted, or moved too while a quarter or more of the log is
        dead (see the docstring, "LRU"); at most ``MOVES_MAX`` moves."""
        log = self._log
        indexes = self._indexes
        room = self.memory_limit - need
        class_items = self._class_items
        class_bytes = self._class_bytes
        class_evictions = self._class_evictions
        moves = 0
        while self._used > room:
            pos = log.head_position()
            if pos < 0:
                break
            seg = log.segs[pos >> SEGMENT_BITS]
            off = pos & OFFSET_MASK
            header = _unpack_record(seg, off)
            cas_bits: int = header[0]
            flags: int = header[1]
            exptime: int = header[2]
            t: int = header[3]
            nvalue: i64 = header[4]
            word: i64 = header[5]
            state: i64 = header[6]
            nkey: i64 = header[7]
            record = RECORD_SIZE + nkey + nvalue
            if state == DEAD:
                log.drop_head(record, True)
                self._used -= record
                continue
            index = indexes[(word >> SHARD_SHIFT) & self._mask]
            hb = word & HASH_MASK
            slot = index.slot_of(hb, pos)
            expired = exptime != 0 and exptime <= now
            if (
                not expired
                and moves < MOVES_MAX
                and (cas_bits & REFERENCED or log.dead * 4 >= log.span)
            ):
                index.put(slot, hb << POSITION_BITS | log.move_to_tail(seg, off, record))
                moves += 1
                continue
            log.drop_head(record, False)
            self._used -= record
            index.remove(slot)
            self._count -= 1
            size = ITEM_OVERHEAD + nkey + nvalue + (FLAGS_BYTES if flags else 0)
            self._bytes -= size
            c = (size + 7) >> 3
            cls = CLASS_INDEX[c] if c < CLASS_INDEX_END else LARGEST_CLASS
            class_items[cls] -= 1
            class_bytes[cls] -= size
            figures = class_evictions[cls]
            if expired:
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

    def _new_shards(self) -> None:
        """An empty log and ``_nshards`` empty indexes; what they cost (the indexes)."""
        self._log = Log()
        self._indexes = [Index() for _ in range(self._nshards)]
        self._used = sum(index.table_bytes() for index in self._indexes)
        self._count = 0
        self._bytes = 0

    def _drop_all(self) -> None:
        self._new_shards()
        self._class_items = [0] * len(CHUNK_SIZES)
        self._class_bytes = [0] * len(CHUNK_SIZES)

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
