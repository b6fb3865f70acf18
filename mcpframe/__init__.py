"""mcpframe: a memcached proxy driven by Lua routes, with pluggable key distribution."""

from __future__ import annotations

__version__ = "0.1.0"

#: The memcached version whose proxy API mcpframe implements; `version` answers with it.
MEMCACHED_VERSION = "1.6.20"

from pathlib import Path  # noqa: E402

from mcpframe.native import check_in_place  # noqa: E402

check_in_place(Path(__file__).parent)  # before any compiled module is imported

from mcpframe.hookspecs import hookimpl  # noqa: E402  (the marker plugin authors import)

__all__ = ["MEMCACHED_VERSION", "__version__", "hookimpl"]
