"""Every limit of the text protocol and every fixed reply line, defined once.

The reader, the internal cache and the proxy import them from here, so a limit or an error
text changes in one place. The texts are memcached 1.6's (spacing and spelling included:
clients match on them); the limits are memcached's defaults unless said otherwise.
"""

from __future__ import annotations

from typing import Final

# -- limits -----------------------------------------------------------------------------------

#: Longest key memcached accepts (``KEY_MAX_LENGTH``).
KEY_MAX_LENGTH: Final = 250
#: Largest byte count memcached accepts on a storage line (``INT_MAX - 2``).
VALUE_LENGTH_MAX: Final = (1 << 31) - 3
#: Meta commands with this many tokens (command word included) or more are refused
#: (memcached counts its terminal token too: at most 17 flags after a key, 16 for ms).
META_TOKENS_MAX: Final = 20
#: Longest meta opaque (``O`` flag) memcached echoes.
OPAQUE_MAX_LENGTH: Final = 32
#: Longest request line content memcached buffers without its ``\n`` (get/gets excepted).
LINE_MAX: Final = 2048
#: memcached's proxy limit: routed request lines (and edits of them) stay shorter than this
#: (spec 3.4).
ROUTED_LINE_MAX: Final = 500

# -- reply lines ------------------------------------------------------------------------------

ERROR: Final = b"ERROR\r\n"
END: Final = b"END\r\n"
RESET: Final = b"RESET\r\n"
DETAIL_USAGE: Final = b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"
BAD_FORMAT: Final = b"CLIENT_ERROR bad command line format\r\n"
BAD_DATA_CHUNK: Final = b"CLIENT_ERROR bad data chunk\r\n"
BAD_EXPTIME: Final = b"CLIENT_ERROR invalid exptime argument\r\n"
BAD_DELTA: Final = b"CLIENT_ERROR invalid numeric delta argument\r\n"
NON_NUMERIC: Final = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
DELETE_USAGE: Final = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
KEY_TOO_LONG: Final = b"CLIENT_ERROR key too long\r\n"
#: The proxy's answer to a routed line over ROUTED_LINE_MAX (spec 3.4).
REQUEST_TOO_LONG: Final = b"CLIENT_ERROR request too long\r\n"
#: A value over the item size limit (also the reply to a request the reader emitted with
#: ``value=None``: its value was over ``max_value`` and was swallowed).
TOO_LARGE: Final = b"SERVER_ERROR object too large for cache\r\n"
NO_MEMORY: Final = b"SERVER_ERROR out of memory storing object\r\n"

# Meta commands.
MG_TOO_LONG: Final = b"CLIENT_ERROR options flags are too long\r\n"
META_TOO_LONG: Final = b"CLIENT_ERROR options flags too long\r\n"
OPAQUE_TOO_LONG: Final = b"CLIENT_ERROR opaque token too long\r\n"
DUPLICATE_FLAG: Final = b"CLIENT_ERROR duplicate flag\r\n"
INVALID_FLAG: Final = b"CLIENT_ERROR invalid flag\r\n"
BAD_TOKEN: Final = b"CLIENT_ERROR bad token in command line format\r\n"
DECODE_ERROR: Final = b"CLIENT_ERROR error decoding key\r\n"
INVALID_OR_DUPLICATE: Final = b"CLIENT_ERROR invalid or duplicate flag\r\n"
BAD_M_TOKEN: Final = b"CLIENT_ERROR incorrect length for M token\r\n"
BAD_DELTA_VALUE: Final = b"CLIENT_ERROR invalid numeric delta value\r\n"
BAD_INITIAL_VALUE: Final = b"CLIENT_ERROR invalid numeric initial value\r\n"
MS_BAD_MODE: Final = b"CLIENT_ERROR invalid mode for ms M token\r\n"
MA_BAD_MODE: Final = b"CLIENT_ERROR invalid mode for ma M token\r\n"

# -- the proxy's own error lines (memcached's proxy sends the same texts) ------------------

#: A route raised, or returned something that is not a response (spec 6.7).
LUA_FAILURE: Final = b"SERVER_ERROR lua failure\r\n"
#: An API v2 route whose slot could not be made (its generator raised, spec v2 2.5).
START_FAILURE: Final = b"SERVER_ERROR lua start failure\r\n"
BAD_RESPONSE: Final = b"SERVER_ERROR bad response\r\n"
#: ``mcp.internal`` on a command the internal cache does not run.
BAD_REQUEST: Final = b"SERVER_ERROR bad request\r\n"
#: ``active_req_limit`` and ``buffer_memory_limit`` (spec 6.5, 6.6).
ACTIVE_LIMIT: Final = b"SERVER_ERROR active request limit reached\r\n"
OUT_OF_MEMORY: Final = b"SERVER_ERROR out of memory\r\n"
#: mcpframe's own: a failure of the route executor itself, and requests cut by shutdown.
INTERNAL_ERROR: Final = b"SERVER_ERROR internal error\r\n"
SHUTTING_DOWN: Final = b"SERVER_ERROR shutting down\r\n"
