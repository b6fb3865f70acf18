"""Mutators (``mcp.req_mutator_new``, ``mcp.res_mutator_new``) through the wire: requests
rendered into ``rctx:request_new()`` objects as a backend receives them, responses rendered
into ``rctx:response_new()`` objects as the client receives them, return values and error
texts (spec v2 5.8; memcached's t/proxymut.t). Expected bytes recorded from memcached
1.6.45's proxy on tests/configs/v2/mutate.lua (see conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.route_api.conftest import Mocks, Proxy
from tests.v2.conftest import REFERENCE, StartProxy


@pytest.fixture
def one_mock() -> Iterator[Mocks]:
    m = Mocks(1)
    yield m
    m.close()


@pytest.fixture
def mutate(start_v2: StartProxy, one_mock: Mocks) -> Proxy:
    proxy = start_v2("mutate.lua", one_mock.env())
    one_mock.accept_all()
    return proxy


def value(key: str, text: str) -> bytes:
    return f"VALUE {key} 0 {len(text)}\r\n{text}\r\nEND\r\n".encode()


REQUESTS = [
    # (client request, what the backend receives)
    (b"mg mgreq\r\n", b"mg override\r\n"),
    (b"mg mgflagreq\r\n", b"mg override s t Oopaque N33\r\n"),
    (b"mg mgreqcopy\r\n", b"md differentkey\r\n"),
    # cmdcopy from a request copies the command and the space after it (1.6.45's quirk);
    # a flag the source lacks adds nothing
    (b"mg fromreq T30 v\r\n", b"mg  cc T30 v\r\n"),
    # valcopy from a client request: its value, its length as a token
    (b"ms msval 5 T9\r\nhello\r\n", b"ms copied 5 T0\r\nhello\r\n"),
    (b"mg strval\r\n", b"ms kk 3 F77\r\nabc\r\n"),
    (b"mg flagsreq\r\n", b"mg fk t v O1 k\r\n"),
]


@pytest.mark.parametrize(("request_", "sent"), REQUESTS)
def test_request_mutator(mutate: Proxy, one_mock: Mocks, request_: bytes, sent: bytes) -> None:
    mutate.send(request_)
    got = one_mock[0].read_line()
    if b"\r\n" in sent[:-2]:
        got += one_mock[0].read_line()
    assert got == sent
    one_mock[0].send(b"HD\r\n")
    assert mutate.readline() == b"HD\r\n"


RESPONSES = [
    # (client request, backend reply or None when the route asks no backend, client reply)
    (b"mg mgres\r\n", None, b"HD\r\n"),
    (b"mg mgresval\r\n", None, b"VA 13\r\nexample value\r\n"),
    (b"mg mgresflag v\r\n", b"HD Oabc t99\r\n", b"HD t37 Oabc\r\n"),
    (b"mg mgresflag2\r\n", None, b"HD t37 Otoast\r\n"),
    (b"mg mgresflag3\r\n", None, b"HD t37\r\n"),
    (b"mg mgresflag4\r\n", None, b"HD t37 O\r\n"),
    (
        b"mg mgresflagall v\r\n",
        b"VA 2 t41 Oopaque s2 X W Z\r\nhi\r\n",
        b"HD t41 Oopaque s2 X W Z\r\n",
    ),
    (b"mg reserr\r\n", None, b"SERVER_ERROR teapot\r\n"),
    (b"mg resnull v\r\n", None, b"EN\r\n"),
    (b"get getnull\r\n", None, b"END\r\n"),
    (b"set setnull 0 0 2\r\nhi\r\n", None, b"NOT_STORED\r\n"),
    (b"mg rescode k\r\n", b"EN kabc\r\n", b"EN kabc\r\n"),
    (b"ms valres 3\r\nxyz\r\n", None, b"VA 3\r\nxyz\r\n"),
]


@pytest.mark.parametrize(("request_", "backend", "reply"), RESPONSES)
def test_response_mutator(
    mutate: Proxy, one_mock: Mocks, request_: bytes, backend: bytes | None, reply: bytes
) -> None:
    mutate.send(request_)
    if backend is not None:
        assert one_mock[0].read_line() == request_
        one_mock[0].send(backend)
    assert mutate.client.read_available(0.3) == reply


CASES = [
    # a rendered response behaves like any; rendered twice in one request
    "ok:nil|true 15|mutator: result has already been rendered",
    "ok:nil|false 21",
    # reserr client, then a code that does not parse
    "ok:nil",
    "mutator: failed to parse new result",
    # an unknown two-letter code parses (as a failed meta reply)
    "ok:nil",
    # sources a step cannot use: false, the destination untouched
    "ok:false",
    "ok:false",
    "ok:false",
    "ok:false",
    "ok:nil",
    "ok:false",
    "ok:false",
    "ok:false",
    "ok:false",
    # a client request without a value can be rendered over
    "ok:nil",
    # the wrong kind of destination
    "bad argument #2 to '?' (invalid argument to mutator object)",
    "bad argument #2 to '?' (invalid argument to mutator object)",
    "bad argument #2 to '?' (userdata expected, got no value)",
    "bad argument #2 to '?' (userdata expected, got number)",
    # too long, does not parse
    "mutator: new request is too long",
    "mutator: failed to parse new request",
    # more sources a step cannot use
    "ok:false",
    "ok:false",
    "ok:false",
    "ok:false",
    "ok:false",
    # an argument left out fails its step; a request holding a value is rendered already
    "ok:false|ok:nil|mutator: request has already been rendered|"
    "mutator: request has already been rendered",
    # constructor errors
    "mutator failed to initialize, no steps given",
    "mutator step 1: step incompatible with mutator type",
    "mutator step 2: step incompatible with mutator type",
    "mutator step 1: step incompatible with mutator type",
    "mutator step 1: must provide 'cmd' argument",
    "mutator step 1: 'cmd' too long",
    "mutator step 1: must provide 'idx' argument",
    "mutator step 1: 'idx' argument must be greater than 0",
    "mutator step 1: must provide 'idx' argument as an integer",
    "mutator step 1: must provide 'val' argument",
    "mutator step 1: 'val' must have nonzero length",
    "mutator step 1: must provide 'val' argument",
    "mutator step 1: must provide 'flag' argument",
    "mutator step 1: 'flag' must be a single character",
    "mutator step 1: 'flag' must be alphanumeric",
    "mutator step 1: unsupported type for 'val'",
    "mutator step 1: must provide 'idx' argument",
    "mutator step 1: must provide 'code' argument",
    "mutator step 1: code must be 'error', server', or 'client'",
    "mutator step 1: 'msg' must be a nonzero length string",
    # [R] a bare reserr code renders (1.6.45: "memory not filled correctly")
    "ok:false 23",
    # type errors; a mutator returns nothing on success
    "bad argument #1 to '?' (table expected, got number)",
    "bad argument #-1 to '?' (number expected, got string)",
    "0",
    # [R] no step rendered anything: false (1.6.45 writes before its buffer, and crashes)
    "ok:false",
]

#: The cases where mcpframe takes the fix of 1.6.45's defect (case number: 1.6.45's answer).
REFERENCE_DIFFERS = {48: "mutator failed to properly initialize, memory not filled correctly"}


@pytest.mark.parametrize("n", range(1, len(CASES) + 1))
def test_case(mutate: Proxy, n: int) -> None:
    """One check per request (``mg caseN`` in mutate.lua): its return value or error."""
    want = CASES[n - 1]
    if REFERENCE:
        if n == len(CASES):
            pytest.skip("crashes memcached 1.6.45")
        want = REFERENCE_DIFFERS.get(n, want)
    mutate.send(f"mg case{n}\r\n".encode())
    assert mutate.read_until(b"END\r\n") == value(f"case{n}", want)


def test_rctx_objects_are_blank_again_for_the_next_request(mutate: Proxy, one_mock: Mocks) -> None:
    """The objects a slot made with rctx:request_new()/response_new() are cleared after each
    request: rendered again by the next one, not "already rendered"."""
    for _ in range(3):
        mutate.send(b"mg mgres\r\n")
        assert mutate.readline() == b"HD\r\n"
    for _ in range(2):
        mutate.send(b"ms msval 2 T9\r\nhi\r\n")
        assert one_mock[0].read_line() == b"ms copied 2 T0\r\n"
        assert one_mock[0].read_line() == b"hi\r\n"
        one_mock[0].send(b"HD\r\n")
        assert mutate.readline() == b"HD\r\n"
