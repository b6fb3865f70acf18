"""Base64 keys (the meta ``b`` flag), decoded and echoed exactly as memcached does."""

from __future__ import annotations

import binascii

# base64 as memcached decodes keys given with the meta `b` flag: bytes outside the alphabet
# are skipped, the count of alphabet bytes ('=' included) must be a non-zero multiple of 4,
# decoding stops after the first block that holds padding, and more than two '=' in that
# block is an error. So "YQ==YQ==" is "a", "YQ=a" is b"a\0", and "YQ" or "====" fail.
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DTABLE = [0x80] * 256
for _i, _c in enumerate(_B64):
    _DTABLE[_c] = _i
_DTABLE[ord("=")] = 0
_EQ = ord("=")


def b64decode_key(src: bytes) -> bytes | None:
    """Decode a base64 key the way memcached does; None where memcached reports an error."""
    count = 0
    for c in src:
        if _DTABLE[c] != 0x80:
            count += 1
    if count == 0 or count % 4:
        return None
    out = bytearray()
    block = [0, 0, 0, 0]
    n = 0
    pad = 0
    for c in src:
        v = _DTABLE[c]
        if v == 0x80:
            continue
        if c == _EQ:
            pad += 1
        block[n] = v
        n += 1
        if n == 4:
            out.append(((block[0] << 2) | (block[1] >> 4)) & 0xFF)
            out.append(((block[1] << 4) | (block[2] >> 2)) & 0xFF)
            out.append(((block[2] << 6) | block[3]) & 0xFF)
            n = 0
            if pad:
                if pad == 1:
                    del out[-1]
                elif pad == 2:
                    del out[-2:]
                else:
                    return None
                break
    return bytes(out) if out else None


def b64encode_key(key: bytes) -> bytes:
    """Standard padded base64 without line breaks (how memcached echoes binary keys)."""
    return binascii.b2a_base64(key, newline=False)
