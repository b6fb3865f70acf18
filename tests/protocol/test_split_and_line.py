"""split_multiget (spec 6.4) and parse_request_line (mcp.request, spec 2.12)."""

from __future__ import annotations

import pytest

from mcpframe.protocol import commands as c
from mcpframe.protocol.reader import RequestReader, parse_request_line, split_multiget
from mcpframe.protocol.request import Request

K250 = b"k" * 250
K251 = b"k" * 251
TOO_LONG = b"CLIENT_ERROR key too long\r\n"


def parsed(line: bytes) -> Request:
    (req,) = RequestReader().feed(line)
    assert isinstance(req, Request)
    return req


def sub(cmd: int, line: bytes, key: bytes) -> Request:
    return Request(cmd, line, key)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b"get a b c\r\n",
            [
                sub(c.CMD_GET, b"get a\r\n", b"a"),
                sub(c.CMD_GET, b"get b\r\n", b"b"),
                sub(c.CMD_GET, b"get c\r\n", b"c"),
            ],
        ),
        (
            b"gets a  b \n",
            [sub(c.CMD_GETS, b"gets a\r\n", b"a"), sub(c.CMD_GETS, b"gets b\r\n", b"b")],
        ),
        (
            b"  get  a b\r\n",
            [sub(c.CMD_GET, b"  get  a\r\n", b"a"), sub(c.CMD_GET, b"  get  b\r\n", b"b")],
        ),
        (
            b"gat 10 /foo/a /foo/b\r\n",
            [
                sub(c.CMD_GAT, b"gat 10 /foo/a\r\n", b"/foo/a"),
                sub(c.CMD_GAT, b"gat 10 /foo/b\r\n", b"/foo/b"),
            ],
        ),
        (
            b"gats  -1   a b\r\n",
            [
                sub(c.CMD_GATS, b"gats  -1   a\r\n", b"a"),
                sub(c.CMD_GATS, b"gats  -1   b\r\n", b"b"),
            ],
        ),
        (
            b"get a " + K251 + b" " + K250 + b"\r\n",
            [
                sub(c.CMD_GET, b"get a\r\n", b"a"),
                TOO_LONG,
                sub(c.CMD_GET, b"get " + K250 + b"\r\n", K250),
            ],
        ),
        (b"get " + K251 + b" " + K251 + b"\r\n", [TOO_LONG, TOO_LONG]),
        (
            b"get a b\0c\r\n",
            [sub(c.CMD_GET, b"get a\r\n", b"a"), sub(c.CMD_GET, b"get b\r\n", b"b")],
        ),
        (
            b"get a\tb c\r\n",
            [sub(c.CMD_GET, b"get a\tb\r\n", b"a\tb"), sub(c.CMD_GET, b"get c\r\n", b"c")],
        ),
    ],
)
def test_split_multiget(line: bytes, expected: list[Request | bytes]) -> None:
    req = parsed(line)
    assert req.multiget
    out = split_multiget(req)
    assert out == expected
    assert all(not r.multiget for r in out if isinstance(r, Request))


def test_split_single_key_is_unchanged() -> None:
    req = parsed(b"get a\r\n")
    assert split_multiget(req) == [req]
    assert split_multiget(req)[0] is req


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"mg /foo c\r\n", Request(c.CMD_MG, b"mg /foo c\r\n", b"/foo")),
        (b"mg /foo q\n", Request(c.CMD_MG, b"mg /foo q\n", b"/foo", noreply=True)),
        (b"ms /request/a 5\r\n", Request(c.CMD_MS, b"ms /request/a 5\r\n", b"/request/a")),
        (
            b"set k 0 0 2 noreply\r\n",
            Request(c.CMD_SET, b"set k 0 0 2 noreply\r\n", b"k", noreply=True),
        ),
        (b"get a b\r\n", Request(c.CMD_GET, b"get a b\r\n", b"a", multiget=True)),
        (b"version\r\n", Request(c.CMD_VERSION, b"version\r\n")),
        (b"x" * 0 + b"get " + K250 + b"\r\n", Request(c.CMD_GET, b"get " + K250 + b"\r\n", K250)),
        (b"get " + b"k" * 2044 + b"\r\n", None),  # key too long, not line too long
        (b"mn " + b"k" * 2045 + b"\r\n", Request(c.CMD_MN, b"mn " + b"k" * 2045 + b"\r\n")),
    ],
)
def test_parse_request_line(line: bytes, expected: Request | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="failed to parse request"):
            parse_request_line(line)
    else:
        assert parse_request_line(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        b"mg /foo c",  # no terminator (1.6.20 would have eaten the last two bytes)
        b"mg /foo c\r",
        b"mg a\r\nmg b\r\n",  # two lines
        b"mg a\nb\r\n",
        b"\r\n",
        b"bogus\r\n",
        b"get\r\n",
        b"gat 10\r\n",  # memcached answers END: no request to send
        b"set k x 0 2\r\n",
        b"ms k\r\n",
        b"delete k 5\r\n",
        b"mg " + K251 + b"\r\n",
        b"mn " + b"k" * 2046 + b"\r\n",  # over max_line
    ],
)
def test_parse_request_line_rejects(line: bytes) -> None:
    with pytest.raises(ValueError, match="failed to parse request"):
        parse_request_line(line)


def test_parse_request_line_max_line() -> None:
    assert parse_request_line(b"mn " + b"k" * 497 + b"\r\n", max_line=500).cmd == c.CMD_MN
    with pytest.raises(ValueError):
        parse_request_line(b"mn " + b"k" * 498 + b"\r\n", max_line=500)
