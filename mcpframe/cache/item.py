"""One cached item, and how much memory it costs: as memcached counts it, and in Python."""

from __future__ import annotations

#: Per-item bytes memcached adds to key and value on a 64-bit build: the 48-byte item header,
#: the 8-byte CAS and the key's terminating NUL. The value is stored with its CRLF (as the
#: client sent it), and non-zero client flags take 4 more bytes. With this formula ``bytes``
#: and the ``size=`` of ``me`` equal memcached's ``ITEM_ntotal``, and the item size limit
#: falls exactly where memcached's does (a 1 MiB limit admits 1048516 data bytes under a
#: one-byte key with flags 0).
ITEM_OVERHEAD = 48 + 8 + 1
FLAGS_BYTES = 4

#: The LRU's link for one key: the C ``OrderedDict`` allocates a 32-byte node per key (key,
#: hash, prev, next). ``sys.getsizeof`` of the dict counts them; ``Cache`` charges them per
#: item instead, so that the table figure it measures now and then is the slots alone.
ODICT_NODE = 32

#: What one item really costs this process beyond ``item_size``, in bytes (CPython 3.11,
#: 64-bit, pymalloc, whose blocks come in 16-byte steps): the ``Item`` object (six slots and
#: the GC header: an 80-byte block), the ``bytes`` headers of key and value (33 each) and
#: their rounding up to a block (8 each on average), the ``cas_bits`` int (a 32-byte block)
#: and the LRU node; less the 57 bytes ``item_size`` already counts for memcached's header;
#: plus 12 for the allocator (pool headers, partly used pools, blocks left free when the
#: table's growth forces evictions). ``flags``, ``exptime`` and ``time`` usually cost no
#: object of their own: CPython caches ints up to 256, and the cache hands every item stored
#: in the same second (or with the same expiry, or the same large flags as the store before)
#: the same int object. The key table (the dict's slots and the LRU's index) is not in here:
#: the cache measures it as it grows.
#:
#: Checked two ways: ``tests/cache/test_memory.py`` adds up ``sys.getsizeof`` of one item's
#: objects (a CPython whose objects grow fails there), and the process RSS of a million
#: 19/100-byte items is within 2% of what the cache charges (``bench/memory.py``).
PY_ITEM_OVERHEAD = 80 + 33 + 8 + 33 + 8 + 32 + ODICT_NODE - ITEM_OVERHEAD + 12

# The low bits of Item.cas_bits; the CAS is the rest (cas_bits >> CAS_SHIFT).
FETCHED = 1  # read at least once (meta h, me fetch=)
STALE = 2  # marked stale by md <key> I or a stale ms ... I (meta X)
WIN = 4  # a win token (W) was handed out for this item (meta Z)
BINARY = 8  # stored through a base64 key; k echoes it re-encoded with " b"
CAS_SHIFT = 4
BITS = (1 << CAS_SHIFT) - 1


def item_size(nkey: int, nvalue: int, flags: int) -> int:
    """Charged size of an item as memcached counts it; ``nvalue`` counts the trailing CRLF."""
    return ITEM_OVERHEAD + nkey + nvalue + (FLAGS_BYTES if flags else 0)


class Item:
    """A stored item: six slots (an 80-byte object), so that millions of them stay affordable.

    Attributes:
        key: the key bytes (decoded when it came with the meta ``b`` flag).
        value: the data *with* its trailing ``\\r\\n``, ready to be sent.
        flags: client flags (u32).
        exptime: 0 = never; otherwise the absolute clock second at which it is gone
            (``exptime <= now`` means expired; -1 marks "expired on arrival").
        cas_bits: the CAS shifted left by ``CAS_SHIFT``, or-ed with the item's ``FETCHED``,
            ``STALE``, ``WIN`` and ``BINARY`` bits. The CAS is a unique id from the cache's
            global counter, renewed on every change (0 until the item is linked). Sharing
            one int saves a slot, and an int object per item if the bits had their own.
        time: clock second of the last store or access (meta ``l``, ``me la=``).
    """

    __slots__ = ("cas_bits", "exptime", "flags", "key", "time", "value")

    def __init__(self, key: bytes, value: bytes, flags: int, exptime: int, bits: int = 0) -> None:
        self.key = key
        self.value = value
        self.flags = flags
        self.exptime = exptime
        self.cas_bits = bits
        self.time = 0

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
