"""Random pipelines of valid binary requests, cut into random chunks, read back as the same
records; random responses survive encoding and reading."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mcpframe.protocol import binary as b
from mcpframe.protocol.binary import (
    BinaryRequest,
    BinaryRequestReader,
    BinaryResponse,
    BinaryResponseReader,
    encode_request,
)
from mcpframe.protocol.request import ErrorReply
from tests.protocol.helpers import feed_chunks

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
keys = st.binary(min_size=1, max_size=250)
values = st.binary(max_size=300)

KEYED = [b.OP_GET, b.OP_GETQ, b.OP_GETK, b.OP_GETKQ, b.OP_DELETE, b.OP_DELETEQ]
STORE = [b.OP_SET, b.OP_SETQ, b.OP_ADD, b.OP_ADDQ, b.OP_REPLACE, b.OP_REPLACEQ]
CONCAT = [b.OP_APPEND, b.OP_APPENDQ, b.OP_PREPEND, b.OP_PREPENDQ]
ARITH = [b.OP_INCREMENT, b.OP_INCREMENTQ, b.OP_DECREMENT, b.OP_DECREMENTQ]
TOUCH = [b.OP_TOUCH, b.OP_GAT, b.OP_GATQ, b.OP_GATK, b.OP_GATKQ]
BARE = [b.OP_NOOP, b.OP_VERSION, b.OP_QUIT, b.OP_QUITQ]


@st.composite
def requests(draw: st.DrawFn) -> BinaryRequest:
    kind = draw(st.sampled_from(["keyed", "store", "concat", "arith", "touch", "bare", "other"]))
    opaque, cas = draw(u32), draw(u64)
    if kind == "keyed":
        return BinaryRequest(draw(st.sampled_from(KEYED)), draw(keys), b"", opaque, cas)
    if kind == "store":
        op = draw(st.sampled_from(STORE))
        return BinaryRequest(op, draw(keys), draw(values), opaque, cas, draw(u32), draw(u32))
    if kind == "concat":
        return BinaryRequest(draw(st.sampled_from(CONCAT)), draw(keys), draw(values), opaque, cas)
    if kind == "arith":
        op = draw(st.sampled_from(ARITH))
        return BinaryRequest(op, draw(keys), b"", opaque, cas, 0, draw(u32), draw(u64), draw(u64))
    if kind == "touch":
        op = draw(st.sampled_from(TOUCH))
        return BinaryRequest(op, draw(keys), b"", opaque, cas, 0, draw(u32))
    if kind == "bare":
        return BinaryRequest(draw(st.sampled_from(BARE)), b"", b"", opaque, cas)
    if draw(st.booleans()):
        op = draw(st.sampled_from([b.OP_FLUSH, b.OP_FLUSHQ]))
        return BinaryRequest(op, b"", b"", opaque, cas, 0, draw(u32))
    return BinaryRequest(b.OP_STAT, draw(st.binary(max_size=20)), b"", opaque, cas)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = sorted({p % (len(data) + 1) for p in points})
    return [data[i:j] for i, j in zip([0, *bounds], [*bounds, len(data)], strict=True)]


@settings(max_examples=300, deadline=None)
@given(st.lists(requests(), min_size=1, max_size=12), st.lists(st.integers(0, 10**6)))
def test_random_pipelines_any_chunking(reqs: list[BinaryRequest], points: list[int]) -> None:
    data = b"".join(encode_request(r) for r in reqs)
    assert BinaryRequestReader().feed(data) == reqs
    reader = BinaryRequestReader()
    assert feed_chunks(reader, cut(data, points)) == reqs
    assert reader.buffered() == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(requests(), min_size=1, max_size=6), st.lists(st.integers(0, 10**6)))
def test_a_too_large_value_does_not_desynchronise(
    reqs: list[BinaryRequest], points: list[int]
) -> None:
    big = BinaryRequest(b.OP_SETQ, b"big", b"x" * 400, 5)
    data = encode_request(big) + b"".join(encode_request(r) for r in reqs)
    # (values drawn are at most 300 bytes: all of them fit)
    out = feed_chunks(BinaryRequestReader(max_value=300), cut(data, points))
    assert out == [ErrorReply(b.error_response(b.OP_SETQ, b.STATUS_E2BIG, 5)), *reqs]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(
            BinaryResponse,
            st.integers(0, 255),
            st.integers(0, 0xFFFF),
            u32,
            u64,
            st.binary(max_size=20),
            st.binary(max_size=250),
            st.binary(max_size=300),
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.integers(0, 10**6)),
)
def test_responses_round_trip(responses: list[BinaryResponse], points: list[int]) -> None:
    data = b"".join(r.encode() for r in responses)
    reader = BinaryResponseReader()
    assert feed_chunks(reader, cut(data, points)) == responses
    assert reader.buffered() == 0
