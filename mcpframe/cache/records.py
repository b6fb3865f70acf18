"""The records of the internal cache's items and the shards' indexes over them: where an
item is, how room is made, what the items cost. ``store.Store`` builds memcached's commands
on top (``Records`` is its base class); ``arena`` keeps the layout itself.

* Layout (``arena``): every item is a *record* (a 30-byte header, the key, the value with
  its CRLF) in one *log* of 64 KiB ``mmap`` segments, written one after another, and
  one entry (8 bytes) in the open-addressing index (an ``array('q')``) of its *shard*. No
  Python object is made per item, so the cyclic GC walks none (one ``Item`` object per key
  once made every full collection walk them all: 855 ms with 2M items), and an item costs
  its record and its index slot: 30 + key + value + 2 bytes, plus 8 bytes a slot at one
  quarter to one half full (two ``bytes`` objects and a dict entry per item, the layout
  before, cost ~90 bytes more; docs/operations.md, "The embedded cache: memory and
  pauses", has the figures). Commands see an item decoded into an ``item.Item`` for the
  request and the store writes it back; ``classic`` reads the record directly on its hot
  paths (get, set).
* Shards: a key's index is that of shard ``(hash(key) >> 20) & (shards - 1)`` (the top bits
  of its hash word, see ``arena``). The number is fixed when the store is made, from
  ``memory_limit``: one per ``SHARD_BYTES`` (a power of two, at least 1, at most
  ``MAX_SHARDS``). The log is one for all; shards keep each index small. A large index
  grows incrementally (``arena``): the store that starts a growth only allocates the larger
  table (2.5 ms for 512k slots, the largest at 8 GB), and its entries move over the next
  insertions, ~64 slots each; tables under 64k slots grow at once (3.6 ms at most). (One
  dict of 2M keys once stopped the process for 140-800 ms at each rebuild; a whole
  130k-entry index reinserted at once took 27 ms.)
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
  (``Records.memory_used()``): the bytes of every record in the log, dead ones included
  (``arena.record_size``), and every index (8 bytes a slot). Not charged: the log's partly
  written tail segment and partly evicted head segment (at most 128 KiB), the old table of
  an index still growing (half the new one's size, for ~3 % of the shard's insertions),
  and the few objects of the log and of each index. So ``--memory 64`` holds about 64 MB of items in
  RSS terms. A record is smaller than memcached's item (30 bytes of header against 56), so
  ``stats bytes`` can pass ``limit_maxbytes`` when the store is full.
* Items and bytes per slab class (``stats items``/``slabs``) are counted as items come and
  go; an overwrite of the same size, the usual one, costs nothing there.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
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
    WORD_MASK,
    Index,
    Log,
    Segment,
)
from mcpframe.cache.item import (
    CAS_SHIFT,
    FETCHED,
    FLAGS_BYTES,
    HEADER,
    ITEM_OVERHEAD,
    REFERENCED,
    Item,
    slab_chunk_sizes,
)

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

#: ``unpack_from`` of a record's header.
RECORD_UNPACK: Final = RECORD.unpack_from
_pack_header: Final = HEADER.pack_into
assert RECORD.size == RECORD_SIZE


class Records:
    """The items' records and the shards' indexes (see the module docstring), with what
    they cost and the counters that change as records come and go."""

    __slots__ = (
        "_bytes",
        "_cas",
        "_class_bytes",
        "_class_evictions",
        "_class_items",
        "_count",
        "_indexes",
        "_log",
        "_mask",
        "_nshards",
        "_used",
        "evicted_unfetched",
        "evictions",
        "get_expired",
        "hit_cas_bits",
        "hit_flags",
        "memory_limit",
        "reclaimed",
        "total_items",
    )

    def __init__(self, memory_limit: int) -> None:
        self.memory_limit = memory_limit
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
        # Items and their memcached sizes per slab class (index: class - 1), kept as items
        # are linked and unlinked: ``stats items``/``slabs`` walk no item.
        self._class_items = [0] * len(CHUNK_SIZES)
        self._class_bytes = [0] * len(CHUNK_SIZES)
        # What the last ``fetch`` that hit found besides the value.
        self.hit_flags = 0
        self.hit_cas_bits = 0
        self.reset_record_stats()

    def reset_record_stats(self) -> None:
        """The counters kept here start again from zero (``Store.reset_stats``)."""
        #: Per slab class index, [evicted, evicted_nonzero, evicted_time, evicted_unfetched,
        #: reclaimed] as ``stats items`` names them.
        self._class_evictions = [[0, 0, 0, 0, 0] for _ in CHUNK_SIZES]
        self.total_items = 0
        self.get_expired = 0
        self.evictions = 0
        self.evicted_unfetched = 0
        self.reclaimed = 0

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
            _, _, _, _, _, word, state, nkey = RECORD_UNPACK(seg, off)
            if state != DEAD and (word >> SHARD_SHIFT) & self._mask == i:
                out.append(bytes(seg[off + RECORD_SIZE : off + RECORD_SIZE + nkey]))
        return out

    def items(self) -> Iterator[Item]:
        """Every item stored, decoded, oldest write first."""
        keys = []
        for seg, off in self._log.records():
            _, _, _, _, _, _, state, nkey = RECORD_UNPACK(seg, off)
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

    def peek(self, key: bytes) -> Item | None:
        """The item under ``key`` as stored, expired or not; nothing is touched or counted."""
        index, i = self._find(key)
        return None if i < 0 else self._decode(key, index)

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
            header = RECORD_UNPACK(seg, off)
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
