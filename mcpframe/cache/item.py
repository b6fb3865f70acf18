"""One cached item: how much memory memcached counts for it, the header fields its record
starts with (``arena.RECORD``), and ``Item``, its decoded form for the commands."""

from __future__ import annotations

import struct
from typing import Final

#: Per-item bytes memcached adds to key and value on a 64-bit build: the 48-byte item header,
#: the 8-byte CAS and the key's terminating NUL. The value is counted with its CRLF (as the
#: client sent it), and non-zero client flags take 4 more bytes. With this formula ``bytes``
#: and the ``size=`` of ``me`` equal memcached's ``ITEM_ntotal``, and the item size limit
#: falls exactly where memcached's does (a 1 MiB limit admits 1048516 data bytes under a
#: one-byte key with flags 0).
ITEM_OVERHEAD: Final = 48 + 8 + 1
FLAGS_BYTES: Final = 4

#: The first fields of an item's record (``arena.RECORD``, in native byte order): u64
#: ``cas_bits``, u32 ``flags``, u32 ``exptime``, u32 ``time``; ``Store.save`` and a read
#: rewrite them in place.
HEADER: Final = struct.Struct("@QIII")
HEADER_SIZE: Final = HEADER.size  # 20

# The low bits of cas_bits; the CAS is the rest (cas_bits >> CAS_SHIFT).
FETCHED: Final = 1  # read at least once (meta h, me fetch=)
STALE: Final = 2  # marked stale by md <key> I or a stale ms ... I (meta X)
WIN: Final = 4  # a win token (W) was handed out for this item (meta Z)
BINARY: Final = 8  # stored through a base64 key; k echoes it re-encoded with " b"
#: Used (read, touched, stored again) since the record was written or last moved: the
#: store's second chance (``store``, "LRU"); not one of the item's own bits (``BITS``).
REFERENCED: Final = 16
CAS_SHIFT: Final = 5
BITS: Final = FETCHED | STALE | WIN | BINARY

CRLF = b"\r\n"


def item_size(nkey: int, nvalue: int, flags: int) -> int:
    """Charged size of an item as memcached counts it; ``nvalue`` counts the trailing CRLF."""
    return ITEM_OVERHEAD + nkey + nvalue + (FLAGS_BYTES if flags else 0)


class Item:
    """An item as the commands see it: decoded from its record by ``Store.lookup``,
    changed, and written back by the store (``bump``, ``touch_lru``, ``save``, ``link``). It
    lives for one request; only records are kept.

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
