"""Command codes, exactly the values memcached 1.6.20's proxy exports as ``mcp.CMD_*``.

Codes 1..20 are the commands that carry a key (meta and classic storage commands); the
rest are answered locally unless a route is attached to them through ``CMD_ANY``.
"""

from __future__ import annotations

CMD_MG = 1
CMD_MS = 2
CMD_MD = 3
CMD_MN = 4
CMD_MA = 5
CMD_ME = 6
CMD_GET = 7
CMD_GAT = 8
CMD_SET = 9
CMD_ADD = 10
CMD_CAS = 11
CMD_GETS = 12
CMD_GATS = 13
CMD_INCR = 14
CMD_DECR = 15
CMD_TOUCH = 16
CMD_APPEND = 17
CMD_DELETE = 18
CMD_REPLACE = 19
CMD_PREPEND = 20
CMD_END_STORAGE = 21
CMD_QUIT = 22
CMD_STATS = 23
CMD_SLABS = 24
CMD_WATCH = 25
CMD_LRU = 26
CMD_VERSION = 27
CMD_SHUTDOWN = 28
CMD_EXTSTORE = 29
CMD_FLUSH_ALL = 30
CMD_VERBOSITY = 31
CMD_LRU_CRAWLER = 32
CMD_REFRESH_CERTS = 33
CMD_CACHE_MEMLIMIT = 34
CMD_ANY = 36
CMD_ANY_STORAGE = 37

#: Command word -> code, for every command a client may send.
COMMANDS: dict[bytes, int] = {
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
NAMES: dict[int, str] = {code: word.decode() for word, code in COMMANDS.items()}

#: Commands that carry a data block after the request line.
STORAGE_WITH_VALUE = frozenset(
    {CMD_SET, CMD_ADD, CMD_REPLACE, CMD_APPEND, CMD_PREPEND, CMD_CAS, CMD_MS}
)

#: Classic retrieval commands that accept several keys.
MULTIGET = frozenset({CMD_GET, CMD_GETS, CMD_GAT, CMD_GATS})

#: Commands a route can be attached to with CMD_ANY_STORAGE (1..20 but mn).
KEYED = frozenset(range(CMD_MG, CMD_END_STORAGE)) - {CMD_MN}

#: Commands a route can be attached to with CMD_ANY (1..34 but mn).
ANY = frozenset(range(CMD_MG, CMD_CACHE_MEMLIMIT + 1)) - {CMD_MN}

#: Response type numbers (not exported to Lua; they appear in proxyreqs log lines).
RES_GET = 100
RES_META = 101
RES_STAT = 102
RES_GENERIC = 104
RES_END = 105
RES_VERSION = 106
RES_NUMERIC = 107
RES_ERRMSG = 108
RES_FAIL = 109
#: mcpframe's own: several ``VALUE`` blocks then ``END``, the reply to a multi-key get that
#: the proxy sent a backend itself (never handed to Lua: see ``Router.multiget``).
RES_MULTI_GET = 110

#: Response codes (``mcp.MCMC_CODE_*``).
MCMC_CODE_STORED = 8
MCMC_CODE_EXISTS = 9
MCMC_CODE_DELETED = 10
MCMC_CODE_TOUCHED = 11
MCMC_CODE_VERSION = 12
MCMC_CODE_NOT_FOUND = 13
MCMC_CODE_NOT_STORED = 14
MCMC_CODE_OK = 15
MCMC_CODE_NOP = 16
MCMC_CODE_END = 17
MCMC_CODE_ERROR = 21
MCMC_CODE_CLIENT_ERROR = 22
MCMC_CODE_SERVER_ERROR = 23
MCMC_ERR = -1

#: Response status values.
STATUS_OK = 0
STATUS_FAILED = -1
