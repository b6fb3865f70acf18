"""Where the internal cache keeps its items: packed one after another in one *log* of
segments (``Log``), found through per-shard open-addressing indexes of
machine integers (``Index``). ``Records`` (``records.py``) decides what goes where; this
module only keeps the layout.

* A *record* is one item: ``RECORD`` (30 bytes: CAS and bits, flags, exptime, last access,
  state, key length, value length, the key's hash word) followed by the key and the value
  *with* its CRLF (a ``get`` reply slices it out whole). Records are written at the log's
  *tail* and never change size: a read or a store of the same length rewrites a record in
  place; a store of another length writes a new one and marks the old one ``DEAD``. So the
  log runs from the oldest write at its *head* to the youngest; ``Records`` evicts from the
  head (see its "LRU").
* Segments are ``SEGMENT_SIZE`` (64 KiB) anonymous ``mmap`` objects (``Segment``), in log
  order in ``Log.order`` (their ids, the head's first); a record larger than a segment
  gets one of its own, of its exact size. A segment whose records have all left the head
  is unmapped (or kept as one of two spares for the next tails) and its id reused. A
  record's *position* is its segment's id (22 bits) and offset (16 bits).
* The *hash word* of a key is the low 32 bits of ``hash(key)``: its bits 20-31 pick the
  key's shard (``Records``), its low ``HASH_BITS`` (20) are the key's hash in that shard's
  index. The record keeps the word, so a record found at the head leads to its index entry
  without hashing the key again.
* An index (``Index.table``, an ``array('q')`` of a power-of-two size that doubles when
  half full, quadruples while under 1,024 slots) holds one *entry* per live item: its hash
  bits above its position, or ``EMPTY``. Linear probing from ``hash & mask``; an
  entry whose hash bits differ is passed without reading its record; a deletion shifts the
  entries after it back (no tombstones, so no rebuild under churn). Growing reinserts the
  entries from their own hash bits (no record is read): at once while the table is small
  (under ``INCREMENTAL_SLOTS``, at most 16k entries), incrementally from there: the larger
  table is made empty (``Index.old`` keeps the previous one) and each insertion then moves
  ``MOVE_SLOTS`` slots' worth of whole clusters across, until the old table is empty and
  dropped; in between a key is looked for in both. So no single store reinserts a large
  table (at ``--memory 8192`` one of a shard's ~130k entries took 27 ms at once).

Nothing here is a Python object per item: the log and each index are a handful of objects
whatever they hold: one ``mmap`` per segment and one ``array`` per index, which hold no
references (a collection visits each as one object), so a full collection walks no item.
Records written one after another sit one after another in memory, as objects allocated in
that order did.
"""

from __future__ import annotations

import functools
import struct
from array import array
from collections.abc import Callable, Iterator
from mmap import mmap
from typing import Any, Final

from mypy_extensions import i64

from mcpframe.cache.item import REFERENCED

#: A record's header: cas_bits (u64), flags, exptime, time (u32 each: the first four are
#: ``item.HEADER``'s), state and key length (u8 each), value length with CRLF and hash word
#: (u32 each); the key and the value follow.
RECORD: Final = struct.Struct("@QIIIIIBB")
RECORD_SIZE: Final = 30
STATE_AT: Final = 28
NKEY_AT: Final = 29
DEAD: Final = 1  # (state) the item left: its entry is gone or points at a newer record

SEGMENT_BITS: Final = 16
SEGMENT_SIZE: Final = 1 << SEGMENT_BITS  # 64 KiB
#: Freed segments kept to be the next tails (a store that evicts frees one every few hundred
#: records; mapping a new one costs two system calls and a page fault per 4 KiB).
SPARE_SEGMENTS: Final = 2
OFFSET_MASK: Final = SEGMENT_SIZE - 1
SID_BITS: Final = 22
SID_MASK: Final = (1 << SID_BITS) - 1
POSITION_BITS: Final = SEGMENT_BITS + SID_BITS  # 38
HASH_BITS: Final = 20
HASH_MASK: Final = (1 << HASH_BITS) - 1
WORD_MASK: Final = 0xFFFFFFFF
EMPTY: Final = -1
#: The smallest index (slots); each slot is 8 bytes.
MIN_SLOTS: Final = 64
#: Tables smaller than this many slots grow fourfold, larger ones double.
QUADRUPLE_BELOW: Final = 1024
#: Slots of the old table that an insertion moves to the new one while a table grows (the
#: whole cluster the last one is in, so a few more): such an insertion takes ~7.5 us instead
#: of ~0.5 (~4k of them after a growth at 131k entries, 3 % of the shard's insertions before
#: its next growth); the move ends long before the next growth is due.
MOVE_SLOTS: Final = 64
#: Tables of fewer slots grow at once (at most 16k entries, ~3 ms): their old table comes
#: from malloc's heap, and old tables kept alive over many stores (every shard grows at about
#: the same time) left that much more heap behind: ``--memory 64`` at 3x grew 1.08x the limit
#: instead of 1.03x. From 64k slots an old table is 512 KiB, which the server maps on its own
#: (``proxy.allocator.LARGE_BLOCK``), so its pages go back to the system when it is dropped.
INCREMENTAL_SLOTS: Final = 65536
#: Added to a slot of ``Index.old`` (an index still growing) in what ``Index.find`` and
#: ``Index.slot_of`` return, so that ``Index.put`` and ``Index.remove`` know the table.
OLD_SLOT: Final = 1 << 40

#: A segment: an anonymous ``mmap``, so that its pages are mapped as records are written and
#: go back to the system when the head frees it (``bytearray`` segments left holes in
#: malloc's heap between the server's read buffers: up to 10 % over ``--memory``).
Segment = mmap

_EMPTY_TABLE: Final = array("q", [EMPTY])
_NO_TABLE: Final = array("q")
_CAS: Final = struct.Struct("@Q")
_NO_SEGMENT: Final = Segment(-1, 1)  # where a freed segment was (its id is reused)

#: ``unpack_from`` of a record's fields but the hash word, and its ``n``-byte key (what a
#: lookup reads), for every key length a record holds.
KEY_UNPACKERS: Final = [struct.Struct(f"@QIIII4x1xB{n}s").unpack_from for n in range(256)]
_KEY_PACKERS: Final = [struct.Struct(RECORD.format + f"{n}s").pack_into for n in range(256)]

#: ``pack_into`` of a whole record (header, key, value), by key length then value length:
#: one call writes it. Kept for values up to ``PACKED_VALUE_MAX`` bytes (a list of that many
#: slots per key length in use, filled as records of each size come); other records take two
#: calls.
PACKERS: Final[list[list[Callable[..., None] | None] | None]] = [None] * 256
PACKED_VALUE_MAX: Final = 4096


def packer(nkey: int, nvalue: int) -> Callable[..., None]:
    """The ``pack_into`` of a record of a ``nkey``-byte key and ``nvalue``-byte value."""
    if nvalue > PACKED_VALUE_MAX:
        return functools.partial(_pack_in_two, _KEY_PACKERS[nkey], RECORD_SIZE + nkey, nvalue)
    by_value = PACKERS[nkey]
    if by_value is None:
        by_value = PACKERS[nkey] = [None] * (PACKED_VALUE_MAX + 1)
    pack = by_value[nvalue] = struct.Struct(RECORD.format + f"{nkey}s{nvalue}s").pack_into
    return pack


def _packer(nkey: int, nvalue: int) -> Callable[..., None]:
    """``packer``, from ``PACKERS`` when it holds it (the usual case)."""
    by_value = PACKERS[nkey]
    pack = by_value[nvalue] if by_value is not None and nvalue <= PACKED_VALUE_MAX else None
    return packer(nkey, nvalue) if pack is None else pack


def _pack_in_two(
    pack_key: Callable[..., None],
    start: int,
    nvalue: int,
    seg: Segment,
    off: int,
    *fields_key_value: Any,
) -> None:
    pack_key(seg, off, *fields_key_value[:-1])
    seg[off + start : off + start + nvalue] = fields_key_value[-1]


def record_size(nkey: int, nvalue: int) -> int:
    """Bytes of the record of a ``nkey``-byte key and ``nvalue`` bytes of value (CRLF
    included)."""
    return RECORD_SIZE + nkey + nvalue


class Index:
    """One shard's index: hash bits and position of each live record (see the module
    docstring)."""

    def __init__(self, incremental_slots: i64 = INCREMENTAL_SLOTS) -> None:
        """``incremental_slots``: the smallest table that grows incrementally."""
        self.incremental_slots = incremental_slots
        self.table = _EMPTY_TABLE * MIN_SLOTS
        self.mask: i64 = MIN_SLOTS - 1
        self.count: i64 = 0  # entries, in both tables while growing
        # What the last ``find`` that hit read: the record's fields and key, its entry.
        self.found: tuple[Any, ...] = ()
        self.entry: i64 = EMPTY
        # While growing: the previous table, whose slots ``_move`` empties into ``table``
        # from ``cursor`` on (``left`` of them still to look at); ``old_mask`` is -1 when
        # no growth is under way.
        self.old = _NO_TABLE
        self.old_mask: i64 = -1
        self.cursor: i64 = 0
        self.left: i64 = 0

    def find(self, key: bytes, hb: i64, segs: list[Segment]) -> i64:
        """The slot of ``key`` (whose hash bits are ``hb``; ``segs`` is ``Log.segs``), its
        record's fields and key left in ``found`` (``KEY_UNPACKERS``' tuple) and its entry
        in ``entry``; or, when it is not stored, ``~slot`` of the empty slot where its
        entry would go."""
        i = self._probe(self.table, self.mask, key, hb, segs)
        if i < 0 and self.old_mask >= 0:
            # a growth under way: the key may still be in the table being emptied
            j = self._probe(self.old, self.old_mask, key, hb, segs)
            if j >= 0:
                return j | OLD_SLOT
        return i

    def _probe(self, table: array[int], mask: i64, key: bytes, hb: i64, segs: list[Segment]) -> i64:
        # ``find`` in one table: the slot of ``key`` (``found`` and ``entry`` set), or
        # ``~slot`` of the empty slot that ends its probe.
        nkey = len(key)
        i = hb & mask
        while True:
            e: i64 = table[i]
            if e == EMPTY:
                return ~i
            if (e >> POSITION_BITS) == hb:
                try:
                    found = KEY_UNPACKERS[nkey](
                        segs[(e >> SEGMENT_BITS) & SID_MASK], e & OFFSET_MASK
                    )
                except struct.error:  # another key's record, shorter, at the end of its segment
                    found = ()
                if found:
                    stored_nkey: i64 = found[5]
                    stored: bytes = found[6]
                    if stored_nkey == nkey and stored == key:
                        self.found = found
                        self.entry = e
                        return i
            i = (i + 1) & mask

    def slot_of(self, hb: i64, position: i64) -> i64:
        """The slot whose entry points at ``position`` (a live record's)."""
        entry = hb << POSITION_BITS | position
        i = _slot_in(self.table, self.mask, hb, entry)
        if i >= 0:
            return i
        assert self.old_mask >= 0, "a live record without its entry"
        i = _slot_in(self.old, self.old_mask, hb, entry)
        assert i >= 0, "a live record without its entry"
        return i | OLD_SLOT

    def put(self, i: i64, entry: i64) -> None:
        """Replace the entry in slot ``i`` (``find``'s or ``slot_of``'s) by ``entry``, the
        same key's."""
        if i & OLD_SLOT:
            self.old[i ^ OLD_SLOT] = entry
        else:
            self.table[i] = entry

    def insert(self, hb: i64, entry: i64, i: i64) -> i64:
        """Add the entry of a key that has none, in slot ``i`` (``~find``) or, if ``i`` is
        -1, wherever probing finds room; return how many bytes the table grew by."""
        grown: i64 = 0
        if self.old_mask >= 0:
            self._move(MOVE_SLOTS)  # (which may take slot i)
            i = -1
        if (self.count + 1) * 2 > self.mask + 1:
            grown = self._grow()
            i = -1
        table = self.table
        if i < 0:
            mask = self.mask
            i = hb & mask
            while table[i] != EMPTY:
                i = (i + 1) & mask
        table[i] = entry
        self.count += 1
        return grown

    def remove(self, i: i64) -> None:
        """Drop the entry in slot ``i``, shifting the entries of its cluster back so that
        every entry stays reachable from its home slot (no tombstones)."""
        if i & OLD_SLOT:
            _remove_in(self.old, self.old_mask, i ^ OLD_SLOT)
        else:
            _remove_in(self.table, self.mask, i)
        self.count -= 1

    def _grow(self) -> i64:
        # Small tables grow fourfold, so a fill reinserts less; large ones double, so that
        # their free slots stay a small share of the memory. The entries of a large one move
        # over the next insertions (``_move``); a growth still under way is finished first
        # (it is not: MOVE_SLOTS per insertion empty the old table long before the new one
        # is half full).
        if self.old_mask >= 0:
            self._move(self.left)
        old = self.table
        old_slots: i64 = self.mask + 1
        slots: i64 = old_slots * (4 if self.mask < QUADRUPLE_BELOW else 2)
        # Start after an empty slot: every cluster is then moved whole (see ``_move``).
        start: i64 = 0
        while old[start] != EMPTY:
            start += 1
        self.old = old
        self.old_mask = self.mask
        self.cursor = (start + 1) & self.mask
        self.left = old_slots - 1
        self.table = _EMPTY_TABLE * slots
        self.mask = slots - 1
        if old_slots < self.incremental_slots:
            self._move(self.left)
        return (slots - old_slots) * 8

    def _move(self, budget: i64) -> None:
        # Move the entries of at least ``budget`` old slots to the new table, then of the
        # rest of the cluster the last one is in: a cluster is moved whole, so an entry left
        # in the old table is still found by probing from its home slot there (every slot
        # between its home and it is still taken). Deletions in the old table only shift
        # entries back within their cluster, and nothing is inserted there.
        old = self.old
        omask = self.old_mask
        table = self.table
        mask = self.mask
        c = self.cursor
        left = self.left
        while left > 0:
            e: i64 = old[c]
            if e != EMPTY:
                i = (e >> POSITION_BITS) & mask
                while table[i] != EMPTY:
                    i = (i + 1) & mask
                table[i] = e
                old[c] = EMPTY
            elif budget <= 0:
                break
            c = (c + 1) & omask
            left -= 1
            budget -= 1
        if left > 0:
            self.cursor = c
            self.left = left
        else:
            self.old = _NO_TABLE
            self.old_mask = -1

    def table_bytes(self) -> i64:
        """The table's bytes (8 per slot; a table still being emptied is not counted)."""
        return (self.mask + 1) * 8


def _slot_in(table: array[int], mask: i64, hb: i64, entry: i64) -> i64:
    """The slot of ``entry`` (whose hash bits are ``hb``) in ``table``, or -1."""
    i = hb & mask
    while True:
        e: i64 = table[i]
        if e == entry:
            return i
        if e == EMPTY:
            return -1
        i = (i + 1) & mask


def _remove_in(table: array[int], mask: i64, i: i64) -> None:
    """``Index.remove`` in one table."""
    j = i
    while True:
        j = (j + 1) & mask
        e: i64 = table[j]
        if e == EMPTY:
            break
        home = (e >> POSITION_BITS) & mask
        # e may fill the hole at i unless its home lies cyclically in (i, j].
        if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
            table[i] = e
            i = j
    table[i] = EMPTY


class Log:
    """The records, oldest first, in segments (see the module docstring)."""

    def __init__(self) -> None:
        self.segs: list[Segment] = []  # by id (freed ones are _NO_SEGMENT)
        self.ends: list[int] = []  # by id: where its records end (the tail's is ``fill``)
        self.order: list[int] = []  # ids in log order, the head's first
        self.free: list[int] = []  # freed ids
        self.spare: list[Segment] = []  # freed segments kept for the next tails
        self.tail: Segment = _NO_SEGMENT
        self.tail_id: i64 = -1
        self.fill: i64 = 0  # the tail's first free byte
        self.cap: i64 = 0  # the tail's size
        self.head: i64 = 0  # offset of the oldest record in segs[order[0]]
        self.span: i64 = 0  # bytes of the records from the head to the tail, dead ones too
        self.dead: i64 = 0  # bytes of the dead records among them

    def append(
        self,
        key: bytes,
        value: bytes | bytearray,
        word: i64,
        cas_bits: int,
        flags: int,
        exptime: int,
        now: int,
    ) -> i64:
        """Write a record at the tail (``value`` with its CRLF, ``word`` the key's hash
        word); return its position."""
        nkey = len(key)
        nvalue = len(value)
        size = RECORD_SIZE + nkey + nvalue
        off = self.fill
        if off + size > self.cap:
            self._new_tail(size)
            off = 0
        pack = _packer(nkey, nvalue)
        pack(self.tail, off, cas_bits, flags, exptime, now, nvalue, word, 0, nkey, key, value)
        self.fill = off + size
        self.span += size
        return self.tail_id << SEGMENT_BITS | off

    def rewrite(
        self,
        entry: i64,
        key: bytes,
        value: bytes | bytearray,
        word: i64,
        cas_bits: int,
        flags: int,
        exptime: int,
        now: int,
    ) -> None:
        """Write the record of ``entry`` again in place (``value`` of the stored length),
        marked ``item.REFERENCED``."""
        nkey = len(key)
        nvalue = len(value)
        pack = _packer(nkey, nvalue)
        seg = self.segs[(entry >> SEGMENT_BITS) & SID_MASK]
        off = entry & OFFSET_MASK
        pack(
            seg, off, cas_bits | REFERENCED, flags, exptime, now, nvalue, word, 0, nkey, key, value
        )

    def move_to_tail(self, seg: Segment, off: i64, size: i64) -> i64:
        """Copy the live record at the head (``off`` of ``seg``) to the tail, its state
        cleared, and move the head past the old copy; return the new position."""
        if self.fill + size > self.cap:
            self._new_tail(size)
        new_off = self.fill
        tail = self.tail
        tail[new_off : new_off + size] = seg[off : off + size]
        cas_bits: int = _CAS.unpack_from(tail, new_off)[0]
        _CAS.pack_into(tail, new_off, cas_bits & ~REFERENCED)
        self.fill = new_off + size
        self.head += size
        return self.tail_id << SEGMENT_BITS | new_off

    def _new_tail(self, size: i64) -> None:
        if self.tail_id >= 0:
            self.ends[self.tail_id] = self.fill
        if size <= SEGMENT_SIZE and self.spare:
            seg = self.spare.pop()
        else:
            seg = Segment(-1, SEGMENT_SIZE if size <= SEGMENT_SIZE else size)
        if self.free:
            sid = self.free.pop()
            self.segs[sid] = seg
        else:
            sid = len(self.segs)
            assert sid <= SID_MASK, "a log of more than 2**22 segments"
            self.segs.append(seg)
            self.ends.append(0)
        if not self.order:
            self.head = 0
        self.order.append(sid)
        self.tail = seg
        self.tail_id = sid
        self.cap = len(seg)
        self.fill = 0

    def kill(self, seg: Segment, off: i64, size: i64) -> None:
        """Mark the record at ``off`` dead (its entry is gone or points elsewhere)."""
        seg[off + STATE_AT] = DEAD
        self.dead += size

    def head_position(self) -> i64:
        """The position of the oldest record, or -1 when the log holds none; segments left
        behind by the head are freed on the way."""
        while self.order:
            sid = self.order[0]
            end = self.fill if sid == self.tail_id else self.ends[sid]
            if self.head < end:
                return sid << SEGMENT_BITS | self.head
            if sid == self.tail_id:
                return -1
            self.order.pop(0)
            seg = self.segs[sid]
            if len(self.spare) < SPARE_SEGMENTS and len(seg) == SEGMENT_SIZE:
                self.spare.append(seg)  # the next tail: no unmapping and mapping again
            self.segs[sid] = _NO_SEGMENT
            self.free.append(sid)
            self.head = 0
        return -1

    def drop_head(self, size: i64, dead: bool) -> None:
        """Move the head past its record of ``size`` bytes (dead, or evicted)."""
        self.head += size
        self.span -= size
        if dead:
            self.dead -= size

    def records(self) -> Iterator[tuple[Segment, i64]]:
        """(segment, offset) of every record, dead ones too, oldest first."""
        off: i64 = self.head
        for sid in self.order:
            seg = self.segs[sid]
            end: i64 = self.fill if sid == self.tail_id else self.ends[sid]
            while off < end:
                yield seg, off
                off += RECORD_SIZE + seg[off + NKEY_AT] + RECORD.unpack_from(seg, off)[4]
            off = 0
