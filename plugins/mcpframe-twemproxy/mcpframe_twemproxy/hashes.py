"""twemproxy's key hashes (``hash:`` in a nutcracker pool), bit for bit.

Each function takes the key bytes and returns twemproxy's ``uint32_t`` result (an mcpframe
hasher may return up to 64 bits; these never set the high half). The pool seed is ignored:
twemproxy has no seed.

Compatibility notes, from twemproxy 0.5.0's ``src/hashkit/``:

* twemproxy reads keys through ``const char *``, and C's ``char`` is signed on x86-64. So
  fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, one_at_a_time and (for the third byte of a
  3-byte tail) hsieh see a byte >= 0x80 as a negative number, sign-extended to 32 or 64 bits
  before it is mixed in; we do the same, through the ``_SX32``/``_SX64`` tables. (crc16 and
  crc32 read bytes the same way but mask them back to 8 bits; crc32a, md5, murmur and
  jenkins read unsigned bytes. A nutcracker built for a CPU with unsigned ``char``, such as
  ARM, hashes keys holding such bytes differently; ASCII keys hash the same everywhere.)
* ``fnv1a_64`` is not FNV-1a 64: twemproxy keeps a 32-bit state and multiplies by the low
  32 bits of the 64-bit prime (0x1b3), starting from the low 32 bits of the 64-bit offset
  basis. ``fnv1_64`` is real FNV-1 64 truncated to its low 32 bits.
* ``crc32`` is libmemcached's variant, bits 16..30 of the CRC-32: only 32768 different
  values. With ketama that puts almost every key on the server owning the lowest points of
  the continuum; that is what twemproxy does, so it is what this does. ``crc32a`` is the
  plain CRC-32. ``crc16`` is nutcracker 0.5.0's: CRC-16/XMODEM in a 32-bit variable that is
  never masked, so the value has up to 32 bits. (Some later twemproxy sources use a
  CRC-16/ARC table instead, which places keys differently; the placement test pins 0.5.0.)
* ``murmur`` is MurmurHash2 with the seed ``0xdeadbeef * len(key)``; ``jenkins`` is Bob
  Jenkins' lookup3 ``hashlittle`` with initval 13; ``hsieh`` is Paul Hsieh's SuperFastHash.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable

__all__ = ["HASHES", "lookup3"]

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF

# A signed char widened to uint32_t / uint64_t.
_SX32 = tuple(b | 0xFFFFFF00 if b & 0x80 else b for b in range(256))
_SX64 = tuple(b | 0xFFFFFFFFFFFFFF00 if b & 0x80 else b for b in range(256))


def _crc16_table() -> tuple[int, ...]:
    # CRC-16/XMODEM (polynomial 0x1021, not reflected), the table of nutcracker 0.5.0's crc16.
    table = []
    for n in range(256):
        crc = n << 8
        for _ in range(8):
            crc = (crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC16 = _crc16_table()


def one_at_a_time(key: bytes) -> int:
    h = 0
    for b in key:
        h = (h + _SX32[b]) & _M32
        h = (h + (h << 10)) & _M32
        h ^= h >> 6
    h = (h + (h << 3)) & _M32
    h ^= h >> 11
    return (h + (h << 15)) & _M32


def md5(key: bytes) -> int:
    return int.from_bytes(hashlib.md5(key).digest()[:4], "little")


def crc16(key: bytes) -> int:
    # nutcracker keeps the CRC in a uint32_t and never cuts it to 16 bits, so the bits shifted
    # out to the left stay: the low 16 bits are CRC-16/XMODEM, the high ones are not a CRC.
    crc = 0
    for b in key:
        crc = ((crc << 8) & _M32) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


def crc32(key: bytes) -> int:
    return (zlib.crc32(key) >> 16) & 0x7FFF


def crc32a(key: bytes) -> int:
    return zlib.crc32(key)


def fnv1_64(key: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in key:
        h = ((h * 0x100000001B3) & _M64) ^ _SX64[b]
    return h & _M32


def fnv1a_64(key: bytes) -> int:
    h = 0x84222325  # (uint32_t) of the 64-bit offset basis
    for b in key:
        h = ((h ^ _SX32[b]) * 0x1B3) & _M32  # (uint32_t) of the 64-bit prime
    return h


def fnv1_32(key: bytes) -> int:
    h = 2166136261
    for b in key:
        h = ((h * 16777619) & _M32) ^ _SX32[b]
    return h


def fnv1a_32(key: bytes) -> int:
    h = 2166136261
    for b in key:
        h = ((h ^ _SX32[b]) * 16777619) & _M32
    return h


def hsieh(key: bytes) -> int:
    n = len(key)
    if n == 0:
        return 0
    h = 0
    i = 0
    for _ in range(n >> 2):
        h = (h + (key[i] | key[i + 1] << 8)) & _M32
        tmp = ((key[i + 2] | key[i + 3] << 8) << 11) ^ h
        h = ((h << 16) & _M32) ^ tmp
        h = (h + (h >> 11)) & _M32
        i += 4
    rem = n & 3
    if rem == 3:
        h = (h + (key[i] | key[i + 1] << 8)) & _M32
        h ^= (h << 16) & _M32
        h ^= (_SX32[key[i + 2]] << 18) & _M32  # the one signed read
        h = (h + (h >> 11)) & _M32
    elif rem == 2:
        h = (h + (key[i] | key[i + 1] << 8)) & _M32
        h ^= (h << 11) & _M32
        h = (h + (h >> 17)) & _M32
    elif rem == 1:
        h = (h + key[i]) & _M32
        h ^= (h << 10) & _M32
        h = (h + (h >> 1)) & _M32
    h ^= (h << 3) & _M32
    h = (h + (h >> 5)) & _M32
    h ^= (h << 4) & _M32
    h = (h + (h >> 17)) & _M32
    h ^= (h << 25) & _M32
    return (h + (h >> 6)) & _M32


def murmur(key: bytes) -> int:
    m = 0x5BD1E995
    n = len(key)
    h = ((0xDEADBEEF * n) & _M32) ^ n
    i = 0
    while n - i >= 4:
        k = (int.from_bytes(key[i : i + 4], "little") * m) & _M32
        k = ((k ^ (k >> 24)) * m) & _M32
        h = ((h * m) & _M32) ^ k
        i += 4
    rest = n - i
    if rest == 3:
        h ^= key[i + 2] << 16
    if rest >= 2:
        h ^= key[i + 1] << 8
    if rest >= 1:
        h = ((h ^ key[i]) * m) & _M32
    h ^= h >> 13
    h = (h * m) & _M32
    return h ^ (h >> 15)


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M32


def lookup3(key: bytes, initval: int) -> int:
    """Bob Jenkins' lookup3 ``hashlittle(key, len(key), initval)`` (little-endian reads)."""
    n = len(key)
    a = b = c = (0xDEADBEEF + n + initval) & _M32
    i = 0
    while n - i > 12:
        a = (a + int.from_bytes(key[i : i + 4], "little")) & _M32
        b = (b + int.from_bytes(key[i + 4 : i + 8], "little")) & _M32
        c = (c + int.from_bytes(key[i + 8 : i + 12], "little")) & _M32
        # mix(a, b, c)
        a = ((a - c) & _M32) ^ _rot(c, 4)
        c = (c + b) & _M32
        b = ((b - a) & _M32) ^ _rot(a, 6)
        a = (a + c) & _M32
        c = ((c - b) & _M32) ^ _rot(b, 8)
        b = (b + a) & _M32
        a = ((a - c) & _M32) ^ _rot(c, 16)
        c = (c + b) & _M32
        b = ((b - a) & _M32) ^ _rot(a, 19)
        a = (a + c) & _M32
        c = ((c - b) & _M32) ^ _rot(b, 4)
        b = (b + a) & _M32
        i += 12
    if n - i == 0:
        return c  # zero-length tail: no final mix
    tail = key[i:].ljust(12, b"\0")
    a = (a + int.from_bytes(tail[0:4], "little")) & _M32
    b = (b + int.from_bytes(tail[4:8], "little")) & _M32
    c = (c + int.from_bytes(tail[8:12], "little")) & _M32
    # final(a, b, c)
    c = ((c ^ b) - _rot(b, 14)) & _M32
    a = ((a ^ c) - _rot(c, 11)) & _M32
    b = ((b ^ a) - _rot(a, 25)) & _M32
    c = ((c ^ b) - _rot(b, 16)) & _M32
    a = ((a ^ c) - _rot(c, 4)) & _M32
    b = ((b ^ a) - _rot(a, 14)) & _M32
    return ((c ^ b) - _rot(b, 24)) & _M32


def jenkins(key: bytes) -> int:
    return lookup3(key, 13)


HASHES: dict[str, Callable[[bytes], int]] = {
    "one_at_a_time": one_at_a_time,
    "md5": md5,
    "crc16": crc16,
    "crc32": crc32,
    "crc32a": crc32a,
    "fnv1_64": fnv1_64,
    "fnv1a_64": fnv1a_64,
    "fnv1_32": fnv1_32,
    "fnv1a_32": fnv1a_32,
    "hsieh": hsieh,
    "murmur": murmur,
    "jenkins": jenkins,
}
"""twemproxy's name for each hash (the ``hash:`` value) -> ``hash(key) -> uint32``."""
