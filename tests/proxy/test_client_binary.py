"""Binary-protocol client connections, socket-free (tests/proxy/harness.py): what the
backends receive for binary requests (the text requests of the same keys), replies turned
back in request order whether routed or local, quiet replies dropped, the connection closed
after ``quit``, and routes seeing the key itself when it travels as base64."""

from __future__ import annotations

from collections.abc import Callable

from mcpframe.protocol import binary as b
from mcpframe.protocol.binary import (
    BinaryRequest,
    BinaryResponse,
    BinaryResponseReader,
    encode_request,
)
from tests.proxy.harness import Proxy

CONFIG = """
function mcp_config_pools()
    return mcp.pool({ mcp.backend("a", "127.0.0.1", 11211) })
end

function mcp_config_routes(p)
    mcp.attach(mcp.CMD_MG, function(r) return p(r) end)
    mcp.attach(mcp.CMD_MS, function(r) return p(r) end)
    mcp.attach(mcp.CMD_MD, function(r)
        -- what a route sees of a key sent as base64: the key itself
        if r:key() == "a b" then return "HD\\r\\n" end
        return "NF\\r\\n"
    end)
end
"""

Make = Callable[[str], Proxy]


def packet(opcode: int, key: bytes = b"", value: bytes = b"", **kw: int) -> bytes:
    return encode_request(BinaryRequest(opcode, key, value, **kw))


def replies(data: bytes) -> list[BinaryResponse]:
    reader = BinaryResponseReader()
    out = reader.feed(data)
    assert reader.buffered() == 0
    return out


def test_routed_and_local_replies_in_request_order(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    a = proxy.backends["a"]
    c = proxy.client()
    c.send(
        packet(b.OP_GETK, b"k1", opaque=1)
        + packet(b.OP_NOOP, opaque=2)
        + packet(b.OP_GETQ, b"k2", opaque=3)
        + packet(b.OP_SETQ, b"k3", b"v", flags=4, opaque=4)
        + packet(b.OP_NOOP, opaque=5)
    )
    proxy.turn()
    assert a.received() == (b"mg k1 v f c\r\nmg k2 v f c\r\nms k3 1 F4 c\r\nv\r\n")
    assert c.received() == b""  # everything waits for the first reply
    a.reply(b"VA 2 f9 c77\r\nhi\r\n")
    proxy.turn()
    assert replies(c.received()) == [
        BinaryResponse(b.OP_GETK, 0, 1, 77, (9).to_bytes(4, "big"), b"k1", b"hi"),
        BinaryResponse(b.OP_NOOP, opaque=2),
    ]
    a.reply(b"EN\r\n", b"HD c78\r\n")  # a quiet miss, a quiet success: nothing to say
    proxy.turn()
    assert replies(c.received()) == [BinaryResponse(b.OP_NOOP, opaque=5)]


def test_a_key_text_cannot_carry_goes_as_base64_and_routes_see_it(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    a = proxy.backends["a"]
    c = proxy.client()
    c.send(packet(b.OP_GET, b"a b", opaque=1) + packet(b.OP_DELETE, b"a b", opaque=2))
    proxy.turn()
    assert a.received() == b"mg YSBi v f c b\r\n"
    a.reply(b"EN\r\n")
    proxy.turn()
    got = replies(c.received())
    assert (got[0].status, got[0].value) == (b.STATUS_KEY_ENOENT, b"Not found")
    # The Lua route saw "a b" (it answers NF to any other key).
    assert (got[1].opcode, got[1].status, got[1].opaque) == (b.OP_DELETE, 0, 2)
    c.send(packet(b.OP_DELETE, b"a_b", opaque=3))
    proxy.turn()
    assert replies(c.received())[0].status == b.STATUS_KEY_ENOENT


def test_quit_closes_after_the_replies_owed_before_it(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    a = proxy.backends["a"]
    c = proxy.client()
    c.send(packet(b.OP_GET, b"k", opaque=1) + packet(b.OP_QUIT, opaque=2) + packet(b.OP_NOOP))
    proxy.turn()
    assert a.received() == b"mg k v f c\r\n"
    assert not c.transport.closed
    a.reply(b"EN\r\n")
    proxy.turn()
    got = replies(c.received())
    assert [(r.opcode, r.status, r.opaque) for r in got] == [
        (b.OP_GET, b.STATUS_KEY_ENOENT, 1),
        (b.OP_QUIT, 0, 2),
    ]
    assert c.transport.closed


def test_text_clients_are_unaffected(proxy_factory: Make) -> None:
    proxy = proxy_factory(CONFIG)
    binary, text = proxy.client(), proxy.client()
    binary.send(packet(b.OP_VERSION, opaque=1))
    text.send(b"version\r\n")
    proxy.turn()
    version = text.received()
    assert version.startswith(b"VERSION ")
    got = replies(binary.received())
    assert (got[0].opcode, got[0].value) == (b.OP_VERSION, version[8:-2])
