"""Values shared by the classic (``store``) and meta (``meta``) command code."""

from __future__ import annotations

KEY_MAX_LENGTH = 250
#: Largest relative exptime (30 days); larger values are absolute Unix times.
REALTIME_MAXDELTA = 60 * 60 * 24 * 30
#: exptime of an item that arrived already expired (any value <= every clock reading).
EXPIRED = -1

# Store modes (memcached's NREAD_* values, plus the meta append/prepend that vivify).
SET = 1
ADD = 2
REPLACE = 3
APPEND = 4
PREPEND = 5
CAS = 6
APPEND_VIVIFY = 7
PREPEND_VIVIFY = 8

# Store outcomes.
STORED = 0
EXISTS = 1
NOT_FOUND = 2
NOT_STORED = 3

# incr/decr outcomes.
DELTA_OK = 0
DELTA_NON_NUMERIC = 1
DELTA_NOT_FOUND = 2
DELTA_CAS_MISMATCH = 3

ERROR = b"ERROR\r\n"
BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
BAD_EXPTIME = b"CLIENT_ERROR invalid exptime argument\r\n"
BAD_DELTA = b"CLIENT_ERROR invalid numeric delta argument\r\n"
NON_NUMERIC = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
BAD_CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
NO_MEMORY = b"SERVER_ERROR out of memory storing object\r\n"
DELETE_USAGE = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
OPAQUE_TOO_LONG = b"CLIENT_ERROR opaque token too long\r\n"
