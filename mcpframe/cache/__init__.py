"""The internal memcached-compatible store behind ``mcp.internal`` and the embedded default.

Sans-I/O: ``Cache.execute(request)`` runs one parsed ``Request`` and returns the reply
bytes memcached would send. See ``store`` for the item and command rules, ``meta`` for the
meta commands.
"""

from __future__ import annotations

from mcpframe.cache.store import VERSION, Cache

__all__ = ["VERSION", "Cache"]
