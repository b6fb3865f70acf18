"""Inspectors (``mcp.req_inspector_new``, ``mcp.res_inspector_new``) through the wire, on
client requests and on the internal cache's responses (spec v2 5.7; memcached's
t/proxyins.t). Expected replies recorded from memcached 1.6.45's proxy on
tests/configs/v2/inspect.lua (see conftest.py)."""

from __future__ import annotations

import pytest

from tests.route_api.conftest import Proxy
from tests.v2.conftest import StartProxy


@pytest.fixture
def inspect(start_v2: StartProxy) -> Proxy:
    return start_v2("inspect.lua", {})


def value(key: str, text: str) -> bytes:
    return f"VALUE {key} 0 {len(text)}\r\n{text}\r\nEND\r\n".encode()


NO_FLAGS = "false,false,nil,false,nil,false,nil,false,nil,false,nil"
NOT_META = "false,inspector error: response is not meta protocol"

CASES = [
    # sepkey with a map (pos 2), keybegin | sepkey pos 1 | sepkey without map | flags
    (b"mg sepkey/bar/restofkey v\r\n",
     value("sepkey/bar/restofkey", f"2,true|3|bar,restofkey,nil,false|{NO_FLAGS}")),
    (b"mg sepkey/one/two v\r\n",
     value("sepkey/one/two", f"nil,true|3|one,two,nil,false|{NO_FLAGS}")),
    (b"mg sepkey/nomap v\r\n", value("sepkey/nomap", f"nil,true|3|nomap,nil,nil,true|{NO_FLAGS}")),
    # leading separators are skipped; an empty token is nil
    (b"mg //sepkey//x v\r\n", value("//sepkey//x", f"nil,false|3|nil,x,nil,false|{NO_FLAGS}")),
    # hasflag, flagtoken, flagint, flagis on a request; a bare flag's token is ""
    (b"mg x T30 Omoo k v\r\n",
     value("x", "nil,false|nil|nil,nil,nil,false|true,true,30,true,30,true,true,true,,true,nil")),
    (b"mg x Tabc Oz v\r\n",
     value("x", "nil,false|nil|nil,nil,nil,false|"
                "true,true,abc,true,nil,true,false,false,nil,true,nil")),
    (b"get a/b/c\r\n", value("a/b/c", f"nil,false|nil|b,c,nil,false|{NO_FLAGS}")),
    # response inspectors on meta replies of the internal cache
    (b"ms res1 2 T60 F5678\r\nhi\r\nmg res1 O123 t f s v\r\n",
     value("res1", "true,false,nil,false,nil,false,nil,false,false,nil|true,false")
     + value("res1", "true,true,123,true,60,true,true,true,false,nil|true,true")),
    # hasflag on a response that is not a meta reply raises
    (b"set res3 0 0 1\r\nz\r\nget res3\r\n", value("res3", f"{NOT_META}|{NOT_META}") * 2),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "reply"), CASES)
def test_inspector(inspect: Proxy, request_: bytes, reply: bytes) -> None:
    c = inspect.connect()
    c.send(request_)
    assert c.read_available(0.3) == reply


ERRORS = [
    "inspector step 1: step incompatible with inspector type",
    "inspector step 2: must provide 'flag' argument",
    "inspector step 1: 'flag' must be a single character",
    "inspect step 1: 'flag' must be alphanumeric",
    "inspector step 1: must provide 'str' argument",
    "inspector step 1: 'str' must have nonzero length",
    "inspector step 1: separator must be one character",
    "inspector step 1: step incompatible with inspector type",
    "inspector step 1: must provide 'str' argument",
    "bad argument #2 to '?' (invalid argument to inspector object)",
]


def test_inspector_errors(inspect: Proxy) -> None:
    c = inspect.connect()
    c.send(b"mg errs v\r\n")
    assert c.read_until(b"END\r\n") == value("errs", "\n".join(ERRORS))
