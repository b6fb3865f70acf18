"""mcpframe: a memcached proxy driven by Lua routes, with pluggable key distribution."""

from __future__ import annotations

__version__ = "0.1.0"

#: The newest memcached version whose proxy API mcpframe implements (1.6.45: API v2 and the
#: route library; 1.6.20's API v1 runs too). ``version``, ``stats`` (``STAT version``), the
#: binary protocol's version reply and the ``memcached`` label of ``mcpframe_build_info``
#: report it, whatever the config: clients and dashboards see one version per mcpframe.
MEMCACHED_VERSION = "1.6.45"

from pathlib import Path  # noqa: E402

from mcpframe.native import check_in_place  # noqa: E402

check_in_place(Path(__file__).parent)  # before any compiled module is imported

from mcpframe.hookspecs import hookimpl  # noqa: E402  (the marker plugin authors import)

__all__ = ["MEMCACHED_VERSION", "__version__", "hookimpl"]
