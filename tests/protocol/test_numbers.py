"""C-compatible number parsing (memcached's safe_strto* on a 64-bit Linux)."""

from __future__ import annotations

import pytest

from mcpframe.protocol.numbers import strtol32, strtol64, strtoul32, strtoull

# token -> (strtol32, strtoul32, strtoull); None = rejected. Rows marked (live) were checked
# against memcached 1.6.18 through set's byte count / flags and cas's unique.
CASES: list[tuple[bytes, int | None, int | None, int | None]] = [
    (b"0", 0, 0, 0),
    (b"5", 5, 5, 5),
    (b"05", 5, 5, 5),  # (live)
    (b"+5", 5, 5, 5),  # (live)
    (b"-0", 0, 0, 0),
    (b"-5", -5, None, None),  # (live: flags -1 rejected)
    (b"\t5", 5, 5, 5),  # (live)
    (b"5\t", 5, 5, 5),  # (live)
    (b"5\tx", 5, 5, 5),  # (live)
    (b"5\r", 5, 5, 5),
    (b"5x", None, None, None),  # (live)
    (b"0x5", None, None, None),  # (live)
    (b"1_0", None, None, None),  # (live)
    (b"", None, None, None),
    (b"-", None, None, None),
    (b"+", None, None, None),
    (b"x", None, None, None),
    (b"--5", None, None, None),
    (b"2147483647", 2147483647, 2147483647, 2147483647),
    (b"2147483648", -2147483648, 2147483648, 2147483648),
    (b"4294967295", -1, 4294967295, 4294967295),  # (live: flags kept)
    (b"4294967296", 0, 0, 4294967296),
    (b"4294967301", 5, 5, 4294967301),  # (live: byte count 5)
    (b"-4294967291", 5, None, None),  # (live: byte count 5)
    (b"9223372036854775807", -1, 4294967295, 9223372036854775807),
    (b"9223372036854775808", None, 0, 9223372036854775808),  # (live: bytes rejected, flags 0)
    (b"-9223372036854775808", 0, None, None),  # (live: byte count 0)
    (b"-9223372036854775809", None, 4294967295, 9223372036854775807),  # (live: flags)
    (b"18446744073709551615", None, 4294967295, 18446744073709551615),  # (live: flags, cas)
    (b"18446744073709551616", None, None, None),  # (live: flags, cas rejected)
    (b"-18446744073709551615", None, 1, 1),  # (live: flags accepted)
    (b"99999999999999999999999", None, None, None),
]


@pytest.mark.parametrize(("token", "l32", "ul32", "ull"), CASES, ids=[c[0].decode() for c in CASES])
def test_numbers(token: bytes, l32: int | None, ul32: int | None, ull: int | None) -> None:
    assert strtol32(token) == l32
    assert strtoul32(token) == ul32
    assert strtoull(token) == ull


def test_strtol64() -> None:
    assert strtol64(b"4294967301") == 4294967301
    assert strtol64(b"-9223372036854775808") == -(1 << 63)
    assert strtol64(b"9223372036854775808") is None
