"""The internal memcached-compatible cache behind ``mcp.internal`` and the embedded default.

Sans-I/O: ``Cache.execute(request)`` runs one parsed ``Request`` and returns the reply
bytes memcached would send. ``store`` holds the items (LRU, CAS, memory, counters) behind a
public API; ``classic`` and ``meta`` are the commands on top of it; ``engine`` dispatches.
"""

from __future__ import annotations

from mcpframe.cache.classic import VERSION
from mcpframe.cache.engine import Cache

__all__ = ["VERSION", "Cache"]
