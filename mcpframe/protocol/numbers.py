"""Numbers parsed exactly the way memcached's text protocol parses them.

memcached reads numeric tokens with C ``strtol``/``strtoul``/``strtoull`` on a 64-bit
``long`` and then accepts the token when the character after the digits is a C space
(``" \\t\\n\\v\\f\\r"``) or the end of the token (``safe_strto*`` in ``util.c``). Python's
``int()`` is not a substitute: it accepts ``1_000``, trailing whitespace-only garbage in other
places, and never truncates. Verified against memcached 1.6.18:

* leading C spaces and one ``+``/``-`` sign are allowed: ``+5`` and ``\\t5`` are 5;
* after the digits only a C space or the end may follow, and anything may follow a space:
  ``5x`` is rejected, ``5\\tx`` is 5;
* no digit at all, or a magnitude beyond the 64-bit range (``ERANGE``), is rejected;
* ``safe_strtol`` stores the 64-bit result in an ``int32_t`` (two's-complement wrap):
  ``4294967301`` is 5, ``-4294967291`` is 5 and ``-9223372036854775808`` is 0;
* ``safe_strtoul``/``safe_strtoull`` reject a result whose top bit is set when a ``-`` was
  seen (``-1``), but accept ``-18446744073709551615`` (which C negates to 1); ``safe_strtoul``
  then stores it in a ``uint32_t`` (truncation).

The fast path (plain ASCII digits, short) costs one ``isdigit`` and one ``int``.
"""

from __future__ import annotations

from typing import Final

#: The bytes C ``isspace`` accepts in the "C" locale.
C_SPACE: Final = b" \t\n\v\f\r"
_DIGITS: Final = b"0123456789"

_LONG_MAX: Final = (1 << 63) - 1
_ULONG_MAX: Final = (1 << 64) - 1
#: Digits of the largest magnitude any caller accepts (``_ULONG_MAX`` has 20).
_MAX_DIGITS: Final = 20


def _scan(token: bytes) -> tuple[bool, int] | None:
    """(negative, magnitude) of a C-style decimal token, or None when memcached rejects it."""
    s = token.lstrip(C_SPACE)
    negative = False
    if s[:1] == b"-":
        negative = True
        s = s[1:]
    elif s[:1] == b"+":
        s = s[1:]
    ndigits = len(s) - len(s.lstrip(_DIGITS))
    if ndigits == 0:
        return None
    if ndigits < len(s) and s[ndigits] not in C_SPACE:
        return None
    digits = s[:ndigits].lstrip(b"0")
    if len(digits) > _MAX_DIGITS:
        # Out of range of every C type; int() would also refuse past 4300 digits.
        return negative, _ULONG_MAX + 1
    return negative, int(digits or b"0")


def strtol64(token: bytes) -> int | None:
    """C ``strtol`` (64-bit long) plus memcached's end check; None when rejected."""
    if token.isdigit() and len(token) < 19:
        return int(token)
    scanned = _scan(token)
    if scanned is None:
        return None
    negative, magnitude = scanned
    if negative:
        return None if magnitude > _LONG_MAX + 1 else -magnitude
    return None if magnitude > _LONG_MAX else magnitude


def strtol32(token: bytes) -> int | None:
    """memcached ``safe_strtol``: :func:`strtol64` wrapped into an ``int32_t``."""
    if token.isdigit() and len(token) < 10:
        return int(token)
    value = strtol64(token)
    if value is None:
        return None
    return ((value + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def strtoull(token: bytes) -> int | None:
    """memcached ``safe_strtoull`` (64-bit unsigned); None when rejected."""
    if token.isdigit() and len(token) < 20:
        return int(token)
    scanned = _scan(token)
    if scanned is None:
        return None
    negative, magnitude = scanned
    if magnitude > _ULONG_MAX:
        return None
    value = (-magnitude) & _ULONG_MAX if negative else magnitude
    if negative and value > _LONG_MAX:
        return None
    return value


def strtoul32(token: bytes) -> int | None:
    """memcached ``safe_strtoul`` into a ``uint32_t`` (client flags); None when rejected."""
    if token.isdigit() and len(token) < 10:
        return int(token)
    value = strtoull(token)
    return None if value is None else value & 0xFFFFFFFF
