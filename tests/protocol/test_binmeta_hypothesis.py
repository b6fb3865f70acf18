"""Every translation is one well-formed text request; every text reply, even garbage, becomes
binary replies to the same request (never an exception)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mcpframe.protocol.binary import (
    OP_STAT,
    BinaryRequest,
    BinaryResponseReader,
)
from mcpframe.protocol.binmeta import key_token, to_binary, to_text
from mcpframe.protocol.reader import RequestReader
from mcpframe.protocol.request import Request
from tests.protocol.test_binary_hypothesis import requests

replies = st.one_of(
    st.binary(max_size=60),
    st.sampled_from(
        [
            b"HD\r\n",
            b"HD c18446744073709551616\r\n",
            b"HD f-1 c-1\r\n",
            b"VA 2 f1 c2\r\nab\r\n",
            b"VA x\r\n",
            b"VA 3 c1\r\n-12\r\n",
            b"VA 20\r\n18446744073709551616\r\n",
            b"EN\r\n",
            b"NS\r\n",
            b"EX\r\n",
            b"NF\r\n",
            b"MN\r\n",
            b"OK\r\n",
            b"END\r\n",
            b"STAT a b\r\nSTAT c\r\nEND\r\n",
            b"VERSION 1.6.18\r\n",
            b"SERVER_ERROR backend failure\r\n",
            b"CLIENT_ERROR bad data chunk\r\n",
            b"ERROR\r\n",
        ]
    ),
)


@settings(max_examples=400, deadline=None)
@given(requests())
def test_every_translation_is_one_text_request(req: BinaryRequest) -> None:
    text = to_text(req)
    if not text:
        return
    reader = RequestReader()
    parsed = reader.feed(text)
    assert reader.buffered() == 0
    assert len(parsed) == 1
    request = parsed[0]
    assert isinstance(request, Request), (req, text, request)
    assert not request.noreply
    if req.opcode != OP_STAT and req.key:
        assert request.key == key_token(req.key)[0]


@settings(max_examples=400, deadline=None)
@given(requests(), replies)
def test_any_reply_becomes_replies_to_that_request(req: BinaryRequest, reply: bytes) -> None:
    out = to_binary(req, reply)
    reader = BinaryResponseReader()
    for resp in reader.feed(out):
        assert resp.opcode == req.opcode
        assert resp.opaque == req.opaque
    assert reader.buffered() == 0
