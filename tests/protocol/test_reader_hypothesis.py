"""Random pipelines of valid requests, cut into random chunks, parse to the same requests."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mcpframe.protocol import commands as c
from mcpframe.protocol.reader import RequestReader, _parse_line
from mcpframe.protocol.request import Request
from tests.protocol.helpers import feed_chunks

# Printable, no space; memcached keys may hold any such byte.
keys = st.binary(min_size=1, max_size=24).map(
    lambda b: bytes(0x21 + x % 94 for x in b)
) | st.sampled_from([b"noreply", b"q", b"qk", b"k" * 250, b"get", b"END"])
terms = st.sampled_from([b"\r\n", b"\n"])
spaces = st.sampled_from([b" ", b" ", b" ", b"  "])
values = st.binary(max_size=64) | st.sampled_from([b"\r\n", b"END\r\n", b"get k\r\n", b"\n"])
meta_flags = st.lists(
    st.sampled_from([b"v", b"t", b"f", b"c", b"k", b"s", b"q", b"O123", b"T30", b"N5"]),
    max_size=6,
    unique=True,
)


@st.composite
def request(draw: st.DrawFn) -> tuple[bytes, Request]:
    kind = draw(
        st.sampled_from(
            [
                "get",
                "multiget",
                "gat",
                "set",
                "cas",
                "ms",
                "mg",
                "arith",
                "touch",
                "delete",
                "local",
            ]
        )
    )
    sp = draw(spaces)
    term = draw(terms)
    key = draw(keys)
    if kind == "get":
        word = draw(st.sampled_from([b"get", b"gets"]))
        line = word + sp + key + term
        return line, Request(c.COMMANDS[word], line, key)
    if kind == "multiget":
        word = draw(st.sampled_from([b"get", b"gets"]))
        more = draw(st.lists(keys, min_size=1, max_size=5))
        line = word + sp + sp.join([key, *more]) + term
        return line, Request(c.COMMANDS[word], line, key, multiget=True)
    if kind == "gat":
        word = draw(st.sampled_from([b"gat", b"gats"]))
        more = draw(st.lists(keys, max_size=3))
        exptime = b"%d" % draw(st.integers(-10, 10**6))
        line = word + sp + exptime + sp + sp.join([key, *more]) + term
        return line, Request(c.COMMANDS[word], line, key, multiget=bool(more))
    if kind in ("set", "cas"):
        word = (
            b"cas"
            if kind == "cas"
            else draw(st.sampled_from([b"set", b"add", b"replace", b"append", b"prepend"]))
        )
        value = draw(values)
        noreply = draw(st.booleans())
        flags = b"%d" % draw(st.integers(0, 2**32 - 1))
        exptime = b"%d" % draw(st.integers(-1, 2**31 - 1))
        parts = [word, key, flags, exptime, b"%d" % len(value)]
        if kind == "cas":
            parts.append(b"%d" % draw(st.integers(0, 2**64 - 1)))
        if noreply:
            parts.append(b"noreply")
        line = sp.join(parts) + term
        return line + value + b"\r\n", Request(
            c.COMMANDS[word], line, key, value + b"\r\n", noreply
        )
    if kind == "ms":
        value = draw(values)
        mflags = draw(meta_flags)
        line = sp.join([b"ms", key, b"%d" % len(value), *mflags]) + term
        return line + value + b"\r\n", Request(c.CMD_MS, line, key, value + b"\r\n", b"q" in mflags)
    if kind == "mg":
        word = draw(st.sampled_from([b"mg", b"md", b"ma", b"me"]))
        mflags = draw(meta_flags)
        line = sp.join([word, key, *mflags]) + term
        return line, Request(c.COMMANDS[word], line, key, None, b"q" in mflags)
    if kind == "arith":
        word = draw(st.sampled_from([b"incr", b"decr"]))
        noreply = draw(st.booleans())
        parts = [word, key, b"%d" % draw(st.integers(0, 2**64 - 1))]
        line = sp.join(parts + [b"noreply"] * noreply) + term
        return line, Request(c.COMMANDS[word], line, key, None, noreply)
    if kind == "touch":
        noreply = draw(st.booleans())
        parts = [b"touch", key, b"%d" % draw(st.integers(-1, 10**6))]
        line = sp.join(parts + [b"noreply"] * noreply) + term
        return line, Request(c.CMD_TOUCH, line, key, None, noreply)
    if kind == "delete":
        extra = draw(st.sampled_from([[], [b"0"], [b"noreply"], [b"0", b"noreply"]]))
        line = sp.join([b"delete", key, *extra]) + term
        return line, Request(c.CMD_DELETE, line, key, None, b"noreply" in extra)
    word = draw(st.sampled_from([b"version", b"stats", b"mn", b"quit", b"watch", b"lru_crawler"]))
    args = draw(st.lists(keys, max_size=3))
    line = sp.join([word, *args]) + term
    return line, Request(c.COMMANDS[word], line)


@st.composite
def pipeline_and_cuts(draw: st.DrawFn) -> tuple[bytes, list[Request], list[bytes]]:
    reqs = draw(st.lists(request(), min_size=1, max_size=20))
    data = b"".join(raw for raw, _ in reqs)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return data, [req for _, req in reqs], chunks


@settings(max_examples=200, deadline=None)
@given(pipeline_and_cuts())
def test_random_chunking_gives_the_same_requests(
    case: tuple[bytes, list[Request], list[bytes]],
) -> None:
    data, expected, chunks = case
    whole = RequestReader().feed(data)
    assert whole == expected
    reader = RequestReader()
    assert feed_chunks(reader, chunks) == whole
    assert reader.buffered() == 0


# Lines near the two shapes the reader reads by hand ("get <key>", "set <key> <flags>
# <exptime> <bytes>"): every variation must parse as the general path (``_parse_line``) does.
line_parts = st.lists(
    st.sampled_from(
        [b"0", b"0", b"12", b"9" * 9, b"9" * 10, b"9" * 18, b"4294967296", b"-1", b"x", b"noreply",
         b"k", b"k" * 250, b"k" * 251, b"\x00", b"\t", b"\r", b"\x01"]
    ),
    max_size=6,
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from([b"get", b"set"]), st.lists(spaces, min_size=6, max_size=6), line_parts, terms
)
def test_get_and_set_lines_parse_as_the_general_path(
    word: bytes, gaps: list[bytes], parts: list[bytes], term: bytes
) -> None:
    line = word + b"".join(gap + part for gap, part in zip(gaps, parts, strict=False)) + term
    expected = _parse_line(line)
    data = line
    if isinstance(expected, tuple):
        req, vlen = expected
        if vlen > 100:
            return
        req.value = b"v" * vlen + b"\r\n"
        data += req.value
        expected = req
    assert RequestReader().feed(data) == [expected]
