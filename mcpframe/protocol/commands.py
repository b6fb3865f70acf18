"""Command codes, exactly the values memcached 1.6.20's proxy exports as ``mcp.CMD_*``.

Codes 1..20 are the commands that carry a key (meta and classic storage commands); the
rest are answered locally unless a route is attached to them through ``CMD_ANY``.
"""

from __future__ import annotations

from typing import Final

CMD_MG: Final = 1
CMD_MS: Final = 2
CMD_MD: Final = 3
CMD_MN: Final = 4
CMD_MA: Final = 5
CMD_ME: Final = 6
CMD_GET: Final = 7
CMD_GAT: Final = 8
CMD_SET: Final = 9
CMD_ADD: Final = 10
CMD_CAS: Final = 11
CMD_GETS: Final = 12
CMD_GATS: Final = 13
CMD_INCR: Final = 14
CMD_DECR: Final = 15
CMD_TOUCH: Final = 16
CMD_APPEND: Final = 17
CMD_DELETE: Final = 18
CMD_REPLACE: Final = 19
CMD_PREPEND: Final = 20
CMD_END_STORAGE: Final = 21
CMD_QUIT: Final = 22
CMD_STATS: Final = 23
CMD_SLABS: Final = 24
CMD_WATCH: Final = 25
CMD_LRU: Final = 26
CMD_VERSION: Final = 27
CMD_SHUTDOWN: Final = 28
CMD_EXTSTORE: Final = 29
CMD_FLUSH_ALL: Final = 30
CMD_VERBOSITY: Final = 31
CMD_LRU_CRAWLER: Final = 32
CMD_REFRESH_CERTS: Final = 33
CMD_CACHE_MEMLIMIT: Final = 34
CMD_ANY: Final = 36
CMD_ANY_STORAGE: Final = 37

#: Command word -> code, for every command a client may send.
COMMANDS: Final[dict[bytes, int]] = {
    b"mg": CMD_MG,
    b"ms": CMD_MS,
    b"md": CMD_MD,
    b"mn": CMD_MN,
    b"ma": CMD_MA,
    b"me": CMD_ME,
    b"get": CMD_GET,
    b"gat": CMD_GAT,
    b"set": CMD_SET,
    b"add": CMD_ADD,
    b"cas": CMD_CAS,
    b"gets": CMD_GETS,
    b"gats": CMD_GATS,
    b"incr": CMD_INCR,
    b"decr": CMD_DECR,
    b"touch": CMD_TOUCH,
    b"append": CMD_APPEND,
    b"delete": CMD_DELETE,
    b"replace": CMD_REPLACE,
    b"prepend": CMD_PREPEND,
    b"quit": CMD_QUIT,
    b"stats": CMD_STATS,
    b"slabs": CMD_SLABS,
    b"watch": CMD_WATCH,
    b"lru": CMD_LRU,
    b"version": CMD_VERSION,
    b"shutdown": CMD_SHUTDOWN,
    b"extstore": CMD_EXTSTORE,
    b"flush_all": CMD_FLUSH_ALL,
    b"verbosity": CMD_VERBOSITY,
    b"lru_crawler": CMD_LRU_CRAWLER,
    b"refresh_certs": CMD_REFRESH_CERTS,
    b"cache_memlimit": CMD_CACHE_MEMLIMIT,
}

#: Code -> command name, as used in ``stats proxy`` (``cmd_<name>``).
NAMES: Final[dict[int, str]] = {code: word.decode() for word, code in COMMANDS.items()}

#: Commands that carry a data block after the request line.
STORAGE_WITH_VALUE: Final = frozenset(
    {CMD_SET, CMD_ADD, CMD_REPLACE, CMD_APPEND, CMD_PREPEND, CMD_CAS, CMD_MS}
)

#: Classic retrieval commands that accept several keys.
MULTIGET: Final = frozenset({CMD_GET, CMD_GETS, CMD_GAT, CMD_GATS})

#: Commands a route can be attached to with CMD_ANY_STORAGE (1..20 but mn).
KEYED: Final = frozenset(range(CMD_MG, CMD_END_STORAGE)) - {CMD_MN}

#: Commands a route can be attached to with CMD_ANY (1..34 but mn).
ANY: Final = frozenset(range(CMD_MG, CMD_CACHE_MEMLIMIT + 1)) - {CMD_MN}

#: Response type numbers (not exported to Lua; they appear in proxyreqs log lines).
RES_GET: Final = 100
RES_META: Final = 101
RES_STAT: Final = 102
RES_GENERIC: Final = 104
RES_END: Final = 105
RES_VERSION: Final = 106
RES_NUMERIC: Final = 107
RES_ERRMSG: Final = 108
RES_FAIL: Final = 109
#: mcpframe's own: several ``VALUE`` blocks then ``END``, the reply to a multi-key get that
#: the proxy sent a backend itself (never handed to Lua: see ``proxy/multiget.py``).
RES_MULTI_GET: Final = 110

#: Response codes (``mcp.MCMC_CODE_*``).
MCMC_CODE_STORED: Final = 8
MCMC_CODE_EXISTS: Final = 9
MCMC_CODE_DELETED: Final = 10
MCMC_CODE_TOUCHED: Final = 11
MCMC_CODE_VERSION: Final = 12
MCMC_CODE_NOT_FOUND: Final = 13
MCMC_CODE_NOT_STORED: Final = 14
MCMC_CODE_OK: Final = 15
MCMC_CODE_NOP: Final = 16
MCMC_CODE_END: Final = 17
MCMC_CODE_ERROR: Final = 21
MCMC_CODE_CLIENT_ERROR: Final = 22
MCMC_CODE_SERVER_ERROR: Final = 23
MCMC_ERR: Final = -1

#: Response status values.
STATUS_OK: Final = 0
STATUS_FAILED: Final = -1
