"""The route VM's request parser (``parse`` in mcp_routes.lua) against the Python tokeniser.

The Lua side keeps its own parser for speed: it tokenises ``mcp.request`` lines and edited
lines, and gives routes ``r:token()`` on client requests that Python parsed. Each line below
goes through both, in process: ``mcp.request(line)`` in the route VM of a loaded config, and
the client-side ``RequestReader`` with ``mcpframe.protocol.tokens``. Where both accept a line
they must see the same key, the same tokens (as far as the proxy parser indexes them: spec
3.1) and the same noreply/quiet mode. Where their verdicts differ, the row says why, and the
spec rule it follows: ``mcp.request`` parses like memcached's proxy, the reader like
memcached itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mcpframe.config import LoadedConfig
from mcpframe.protocol import commands as c
from mcpframe.protocol.reader import RequestReader
from mcpframe.protocol.request import Request
from mcpframe.protocol.tokens import tokenize

CONFIG = """
function mcp_config_pools() return {} end
function mcp_config_routes(p)
    -- (ok, key, quiet, tokens...) of mcp.request(line), or false when it refuses the line.
    function parse_line(line)
        local ok, r = pcall(mcp.request, line)
        if not ok then return false end
        local toks = {}
        for i = 1, r:ntokens() do toks[i] = r:token(i) end
        return true, r:key(), r._nr, table.unpack(toks)
    end
end
"""

#: Tokens the proxy parser indexes per command (spec 3.1); 24 for the others.
INDEXED = {
    c.CMD_GET: 2, c.CMD_GETS: 2, c.CMD_GAT: 3, c.CMD_GATS: 3,
    c.CMD_INCR: 4, c.CMD_DECR: 4, c.CMD_TOUCH: 4, c.CMD_DELETE: 4, c.CMD_MN: 0,
}  # fmt: skip

K250 = b"k" * 250
K251 = b"k" * 251
SAME = "same"
#: The proxy parser accepts what the reader refuses / refuses what the reader accepts.
LUA_ACCEPTS = "lua accepts"
LUA_REFUSES = "lua refuses"

# (id, line, data block for storage commands, verdicts)
CASES: list[tuple[str, bytes, bytes, str]] = [
    ("plain", b"get k\r\n", b"", SAME),
    ("bare lf", b"incr k 1\n", b"", SAME),
    ("repeated spaces", b"get   k   \r\n", b"", SAME),
    ("tab in a key", b"get k\t1\r\n", b"", SAME),
    ("tab after the word", b"get\tk\r\n", b"", SAME),
    ("cr in a key", b"get k\r\r\n", b"", SAME),
    ("nul in a key", b"get k\x00junk\r\n", b"", SAME),
    ("nul before the flags", b"mg k\x00 v q\r\n", b"", SAME),
    ("nul after the word", b"stats\x00junk\r\n", b"", SAME),
    ("tab in an argument", b"watch proxyevents\tx\r\n", b"", SAME),
    ("key of 250", b"get " + K250 + b"\r\n", b"", SAME),
    ("multiget", b"gets a b\tc\r\n", b"", SAME),
    ("gat", b"gat 10 k\r\n", b"", SAME),
    ("gats multiget", b"gats 10 a  b\r\n", b"", SAME),
    ("noreply set", b"set k 0 0 1 noreply\r\n", b"x\r\n", SAME),
    ("not noreply", b"set k 0 0 1 norepl\r\n", b"x\r\n", SAME),
    ("noreply delete", b"delete k noreply\r\n", b"", SAME),
    ("noreply delete hold", b"delete k 0 noreply\r\n", b"", SAME),
    ("the key noreply", b"delete noreply\r\n", b"", SAME),
    ("noreply incr", b"incr k 1 noreply\r\n", b"", SAME),
    ("touch", b"touch k 10\r\n", b"", SAME),
    ("meta quiet", b"mg k s v q\r\n", b"", SAME),
    ("meta not quiet", b"mg k s v Oq\r\n", b"", SAME),
    ("ms quiet", b"ms k 2 T10 q\r\n", b"hi\r\n", SAME),
    ("mn", b"mn\r\n", b"", SAME),
    # spec 3.4: the proxy checks key lengths only when it splits a multiget.
    ("key of 251", b"get " + K251 + b"\r\n", b"", LUA_ACCEPTS),
    ("mg key of 251", b"mg " + K251 + b" v\r\n", b"", LUA_ACCEPTS),
    # spec 3.1 (4): the proxy reads a data length like strtol, trailing bytes ignored.
    ("byte count 1x", b"set k 0 0 1x\r\n", b"", LUA_ACCEPTS),
    # spec 3.1 (3): the proxy indexes 24 tokens of a meta line; memcached refuses 20.
    ("20 meta tokens", b"mg k" + b" v" * 18 + b"\r\n", b"", LUA_ACCEPTS),
    # spec 3.1 (1): a leading space makes an empty command name.
    ("leading space", b" get k\r\n", b"", LUA_REFUSES),
    # spec 3.1 (5): a meta flag starts with a byte from A to z.
    ("flag out of range", b"mg k 1\r\n", b"", LUA_REFUSES),
]


@pytest.fixture
def parse_line(mcpframe_load_config: Callable[[str], LoadedConfig]) -> Callable[[bytes], Any]:
    parse: Callable[[bytes], Any] = mcpframe_load_config(CONFIG).routes.lua.globals().parse_line
    return parse


@pytest.mark.parametrize(("name", "line", "data", "verdicts"), CASES, ids=[x[0] for x in CASES])
def test_the_lua_parser_agrees_with_the_python_tokeniser(
    name: str, line: bytes, data: bytes, verdicts: str, parse_line: Callable[[bytes], Any]
) -> None:
    got = RequestReader().feed(line + data)
    req = got[0] if got else None
    lua = parse_line(line)
    lua_ok = lua is not False
    py_ok = isinstance(req, Request)
    expected = {SAME: (py_ok, py_ok), LUA_ACCEPTS: (False, True), LUA_REFUSES: (True, False)}
    assert (py_ok, lua_ok) == expected[verdicts]
    if not lua_ok:
        return
    _, key, quiet, *tokens = lua
    cmd = c.COMMANDS[tokenize(line)[0]]
    assert tokens == tokenize(line)[: INDEXED.get(cmd, 24)]
    if py_ok:
        assert isinstance(req, Request)
        assert (key, bool(quiet)) == (req.key, req.noreply)
    else:
        assert key == tokenize(line)[1]
