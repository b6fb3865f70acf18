"""One cached item, and how much memory memcached would charge for it."""

from __future__ import annotations

#: Per-item bytes memcached adds to key and value on a 64-bit build: the 48-byte item header,
#: the 8-byte CAS and the key's terminating NUL. The value is stored with its CRLF (as the
#: client sent it), and non-zero client flags take 4 more bytes. With this formula ``bytes``
#: and the ``size=`` of ``me`` equal memcached's ``ITEM_ntotal``, and the item size limit
#: falls exactly where memcached's does (a 1 MiB limit admits 1048516 data bytes under a
#: one-byte key with flags 0).
ITEM_OVERHEAD = 48 + 8 + 1
FLAGS_BYTES = 4


def item_size(nkey: int, nvalue: int, flags: int) -> int:
    """Charged size of an item; ``nvalue`` counts the value's trailing CRLF."""
    return ITEM_OVERHEAD + nkey + nvalue + (FLAGS_BYTES if flags else 0)


class Item:
    """A stored item.

    Attributes:
        key: the key bytes (decoded when it came with the meta ``b`` flag).
        value: the data *with* its trailing ``\\r\\n``, ready to be sent.
        flags: client flags (u32).
        exptime: 0 = never; otherwise the absolute clock second at which it is gone
            (``exptime <= now`` means expired; -1 marks "expired on arrival").
        cas: unique id from the cache's global counter, renewed on every change.
        time: clock second of the last store or access (meta ``l``, ``me la=``).
        size: charged bytes, see ``item_size``.
        fetched: read at least once (meta ``h``, ``me fetch=``).
        stale: marked stale by ``md <key> I`` or a stale ``ms ... I`` (meta ``X``).
        win: a win token (``W``) was handed out for this item (meta ``Z``).
        binary: stored through a base64 key; ``k`` echoes it re-encoded with `` b``.
    """

    __slots__ = (
        "binary",
        "cas",
        "exptime",
        "fetched",
        "flags",
        "key",
        "size",
        "stale",
        "time",
        "value",
        "win",
    )

    def __init__(
        self, key: bytes, value: bytes, flags: int, exptime: int, binary: bool = False
    ) -> None:
        self.key = key
        self.value = value
        self.flags = flags
        self.exptime = exptime
        self.cas = 0
        self.time = 0
        self.size = item_size(len(key), len(value), flags)
        self.fetched = False
        self.stale = False
        self.win = False
        self.binary = binary

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
