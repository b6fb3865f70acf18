"""Talking to a real memcached in the binary protocol and in text, one request at a time."""

from __future__ import annotations

from mcpframe.protocol.binary import (
    OP_NOOP,
    BinaryRequest,
    BinaryResponseReader,
    encode_request,
)
from tests.helpers import Client

SENTINEL_OPAQUE = 0xFFFFFFFF
SENTINEL = encode_request(BinaryRequest(OP_NOOP, opaque=SENTINEL_OPAQUE))


def binary_exchange(client: Client, packet: bytes) -> bytes:
    """Send one request packet followed by a noop; return every reply byte before the noop's
    (nothing at all for a quiet request that is answered by silence)."""
    client.send(packet + SENTINEL)
    reader = BinaryResponseReader()
    out = b""
    while True:
        client._fill()
        data, client.buf = client.buf, b""
        for resp in reader.feed(data):
            if resp.opcode == OP_NOOP and resp.opaque == SENTINEL_OPAQUE:
                assert reader.buffered() == 0
                return out
            out += resp.encode()


def text_exchange(client: Client, request: bytes) -> bytes:
    """Send one text request; return its complete reply."""
    client.send(request)
    first = client.readline()
    if first.startswith(b"VA "):
        return first + client.readexactly(int(first.split()[1]) + 2)
    out = first
    if request.startswith(b"stats"):
        while first.startswith((b"STAT ", b"PREFIX ")):
            first = client.readline()
            out += first
    return out
