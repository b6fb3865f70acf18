"""One cached item: how it is stored (a ``bytes`` blob, packed by ``packer``), how much
memory it and the key table cost (as memcached counts it, and in Python), and ``Item``, its
decoded form for the commands."""

from __future__ import annotations

import functools
import struct
import sys
from collections.abc import Callable

#: Per-item bytes memcached adds to key and value on a 64-bit build: the 48-byte item header,
#: the 8-byte CAS and the key's terminating NUL. The value is counted with its CRLF (as the
#: client sent it), and non-zero client flags take 4 more bytes. With this formula ``bytes``
#: and the ``size=`` of ``me`` equal memcached's ``ITEM_ntotal``, and the item size limit
#: falls exactly where memcached's does (a 1 MiB limit admits 1048516 data bytes under a
#: one-byte key with flags 0).
ITEM_OVERHEAD = 48 + 8 + 1
FLAGS_BYTES = 4

#: The stored form of an item, the value of its key in the store's dict: one ``bytes`` object,
#: ``HEADER`` (little-endian u64 ``cas_bits``, u32 ``flags``, u32 ``exptime``, u32 ``time``)
#: followed by the value *without* its CRLF. ``bytes`` objects hold no references, so the
#: cyclic GC never tracks them, and a dict whose keys and values are all ``bytes`` is not
#: tracked either: however many items are stored, a collection walks none of them.
HEADER = struct.Struct("<QIII")
HEADER_SIZE = HEADER.size  # 20

#: What one item really costs this process beyond ``item_size``, in bytes (CPython 3.11,
#: 64-bit, pymalloc, whose blocks come in 16-byte steps): two objects, the key (a 33-byte
#: ``bytes`` header plus the key) and the blob (the same header, ``HEADER_SIZE`` and the value
#: less its CRLF), each rounded up to its block (8 bytes each on average); less the 57 bytes
#: ``item_size`` already counts for memcached's header (and the 2 of the CRLF it counts in the
#: value); plus 8 for the allocator (pool headers, partly used pools). No int object is made per
#: item: the fields live in the blob. The key table (the dict's index and entries, about 30 to
#: 42 bytes per item depending on how full it is) is not in here: the store measures it as it
#: grows.
#:
#: Checked two ways: ``tests/cache/test_memory.py`` adds up ``sys.getsizeof`` of one item's
#: objects (a CPython whose objects grow fails there), and the process RSS of a million
#: 19/100-byte items against what the cache charges (``bench/memory.py``).
PY_ITEM_OVERHEAD = (33 + 8) + (33 + HEADER_SIZE + 8) - ITEM_OVERHEAD - 2 + 8

# The low bits of cas_bits; the CAS is the rest (cas_bits >> CAS_SHIFT).
FETCHED = 1  # read at least once (meta h, me fetch=)
STALE = 2  # marked stale by md <key> I or a stale ms ... I (meta X)
WIN = 4  # a win token (W) was handed out for this item (meta Z)
BINARY = 8  # stored through a base64 key; k echoes it re-encoded with " b"
CAS_SHIFT = 4
BITS = (1 << CAS_SHIFT) - 1

CRLF = b"\r\n"


def item_size(nkey: int, nvalue: int, flags: int) -> int:
    """Charged size of an item as memcached counts it; ``nvalue`` counts the trailing CRLF."""
    return ITEM_OVERHEAD + nkey + nvalue + (FLAGS_BYTES if flags else 0)


def blob_size(nkey: int, blob: bytes, flags: int) -> int:
    """``item_size`` of a stored item, from its blob (which holds the value without CRLF)."""
    return ITEM_OVERHEAD + 2 - HEADER_SIZE + nkey + len(blob) + (FLAGS_BYTES if flags else 0)


#: A dict entry (hash, key, value) in a table whose keys are not all ``str``.
DICT_ENTRY = 24


#: ``struct`` packers of a header and an ``n``-byte value (``"s"`` copies the first ``n``
#: bytes, so the CRLF is left out without a temporary slice): one allocation per store.
#: Kept for values up to ``PACKED_VALUE_MAX`` bytes (at most that many small objects).
PACKERS: dict[int, Callable[..., bytes]] = {}
PACKED_VALUE_MAX = 4096


def packer(n: int) -> Callable[..., bytes]:
    """The packer of a header and the first ``n`` bytes of a value (a CRLF after them is
    left out)."""
    if n > PACKED_VALUE_MAX:
        return functools.partial(_pack_large, n)
    pack = struct.Struct(HEADER.format + f"{n}s").pack
    PACKERS[n] = pack
    return pack


def _pack_large(n: int, cas_bits: int, flags: int, exptime: int, now: int, value: bytes) -> bytes:
    return HEADER.pack(cas_bits, flags, exptime, now) + value[:n]


def _index_bytes(slots: int) -> int:
    """Bytes per slot of a CPython dict's index, by its number of slots."""
    return 1 if slots <= 0xFF else 2 if slots <= 0xFFFF else 4 if slots <= 0xFFFFFFFF else 8


#: ``sys.getsizeof`` of a dict less its index and entries (CPython 3.11: 96 bytes).
DICT_BASE = sys.getsizeof({b"": b""}) - 8 * _index_bytes(8) - 5 * DICT_ENTRY


def rebuilt_table(n: int) -> int:
    """The bytes of the table a dict of ``n`` live keys gets when CPython rebuilds it, which
    it does whenever re-insertions have used up its free entries: room for ``3 * n`` keys,
    rounded up to a power of two (``GROWTH_RATE``), two thirds of it entries."""
    slots = max(8, 1 << (3 * n - 1).bit_length())
    return DICT_BASE + slots * _index_bytes(slots) + (slots * 2 // 3) * DICT_ENTRY


def table_cost(items: dict[bytes, bytes]) -> int:
    """The key table's bytes: the dict's index and entries, as they are or as the next
    rebuild will make them, whichever is larger.

    Charging the rebuilt size at once matters under eviction: a dict that churns is rebuilt
    for three times its live keys, up to twice the table it had while it filled. Charged
    only when it happens, that growth would evict a fifth of the items at once, and their
    memory would stay with the allocator (free blocks for later items), above the limit.
    The cold batch is not charged: at most 1/64 of the keys, under one byte per item.
    """
    return max(sys.getsizeof(items), rebuilt_table(len(items)))


class Item:
    """An item as the commands see it: decoded from its blob by ``Store.lookup``, changed,
    and written back by the store (``bump``, ``touch_lru``, ``save``, ``link``). It lives for
    one request; only blobs are kept.

    Attributes:
        key: the key bytes (decoded when it came with the meta ``b`` flag).
        value: the data *with* its trailing ``\\r\\n``, ready to be sent.
        flags: client flags (u32).
        exptime: 0 = never; otherwise the absolute clock second at which it is gone
            (``exptime <= now`` means expired; 1 marks "expired on arrival").
        cas_bits: the CAS shifted left by ``CAS_SHIFT``, or-ed with the item's ``FETCHED``,
            ``STALE``, ``WIN`` and ``BINARY`` bits. The CAS is a unique id from the cache's
            global counter, renewed on every change (0 until the item is linked).
        time: clock second of the last store or access (meta ``l``, ``me la=``).
    """

    __slots__ = ("cas_bits", "exptime", "flags", "key", "time", "value")

    def __init__(
        self, key: bytes, value: bytes, flags: int, exptime: int, bits: int = 0, time: int = 0
    ) -> None:
        self.key = key
        self.value = value
        self.flags = flags
        self.exptime = exptime
        self.cas_bits = bits
        self.time = time

    @classmethod
    def decode(cls, key: bytes, blob: bytes) -> Item:
        """The item stored under ``key`` as ``blob``."""
        cas_bits, flags, exptime, time = HEADER.unpack_from(blob)
        return cls(key, blob[HEADER_SIZE:] + CRLF, flags, exptime, cas_bits, time)

    def encode(self) -> bytes:
        """The blob the store keeps for this item."""
        return HEADER.pack(self.cas_bits, self.flags, self.exptime, self.time) + self.value[:-2]

    @property
    def cas(self) -> int:
        """The item's CAS unique."""
        return self.cas_bits >> CAS_SHIFT

    def set_cas(self, cas: int) -> None:
        """Give the item a new CAS, keeping its bits."""
        self.cas_bits = cas << CAS_SHIFT | (self.cas_bits & BITS)

    @property
    def size(self) -> int:
        """memcached's size of this item (``item_size``): what ``bytes`` and ``me`` report."""
        return ITEM_OVERHEAD + len(self.key) + len(self.value) + (FLAGS_BYTES if self.flags else 0)

    def __repr__(self) -> str:
        return f"Item({self.key!r}, {len(self.value) - 2}B, flags={self.flags}, cas={self.cas})"


def slab_chunk_sizes(
    factor: float = 1.25, smallest: int = 96, chunk_max: int = 512 * 1024
) -> list[int]:
    """memcached's default slab class chunk sizes (``-f 1.25 -n 48``); ``me`` reports the class."""
    sizes: list[int] = []
    size = smallest
    while size < chunk_max / factor:
        if size % 8:
            size += 8 - size % 8
        sizes.append(size)
        size = int(size * factor)
    sizes.append(chunk_max)
    return sizes
