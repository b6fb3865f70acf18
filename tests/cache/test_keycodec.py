"""memcached's base64 key decoding (meta ``b`` flag)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpframe.cache.keycodec import b64decode_key, b64encode_key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (b"YWJj", b"abc"),
        (b"YQ==", b"a"),
        (b"YWI=", b"ab"),
        (b"YQ==YQ==", b"a"),  # decoding stops after the first padded block
        (b"YQ=a", b"a\x00"),  # one '=' drops one byte, whatever follows
        (b"YR==", b"a"),  # stray low bits are ignored
        (b"Y!Q==", b"a"),  # bytes outside the alphabet are skipped
        (b"YQ", None),  # not a multiple of four
        (b"YQ=", None),
        (b"Y!==", None),
        (b"====", None),  # more than two '=' in a block
        (b"", None),
    ],
)
def test_b64decode_key(text: bytes, key: bytes | None) -> None:
    assert b64decode_key(text) == key


@given(st.binary(min_size=1, max_size=200))
def test_b64_round_trip(key: bytes) -> None:
    encoded = b64encode_key(key)
    assert encoded == base64.b64encode(key)
    assert b64decode_key(encoded) == key


@given(st.binary(max_size=40))
def test_decoder_never_raises(data: bytes) -> None:
    b64decode_key(data)
