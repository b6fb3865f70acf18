"""The ``"stop"`` key filter: hash only the part of the key before a separator.

``mcp.pool(list, {filter = "stop", filter_conf = "|#|"})`` hashes ``foo:bar`` for the key
``foo:bar|#|restofkey``. A key without the separator is hashed whole; a key starting with it
hashes as the empty string. Same as memcached 1.6.20.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import FilterFunction, KeyFilter

CONF_LENGTH_ERROR = "hash filter conf must be between 2 and 5 characters"


def build_stop(conf: bytes) -> FilterFunction:
    """A filter cutting each key at the first occurrence of ``conf`` (2 to 5 bytes)."""
    if not 2 <= len(conf) <= 5:
        raise ValueError(CONF_LENGTH_ERROR)

    def stop_filter(key: bytes) -> bytes:
        end = key.find(conf)
        return key if end < 0 else key[:end]

    return stop_filter


@hookimpl
def mcpframe_key_filters() -> Iterable[KeyFilter]:
    return [KeyFilter("stop", build_stop, "hash the key up to the first filter_conf")]
