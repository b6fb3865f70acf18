"""Sans-I/O memcached text protocol: client bytes -> requests, backend bytes -> responses.

Nothing here does I/O or imports asyncio, sockets or Lua; see ``reader`` (client side) and
``backend`` (backend side) for the rules, each verified against a real memcached.
"""

from __future__ import annotations

from mcpframe.protocol.backend import ResponseReader
from mcpframe.protocol.reader import RequestReader, parse_request_line, split_multiget
from mcpframe.protocol.request import ErrorReply, Request
from mcpframe.protocol.response import Response

__all__ = [
    "ErrorReply",
    "Request",
    "RequestReader",
    "Response",
    "ResponseReader",
    "parse_request_line",
    "split_multiget",
]
