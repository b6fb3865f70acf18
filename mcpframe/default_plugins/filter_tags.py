"""The ``"tags"`` key filter: hash only the bytes between an opening and a closing tag.

With ``filter_conf = "{}"`` the key ``user{1234}:profile`` hashes as ``1234``. Only the first
two conf bytes count: X opens, Y closes. Find the first X; find the first Y *after* it; hash
what lies strictly between (possibly nothing). Without both, the whole key is hashed.

memcached 1.6.20 starts the Y search at X itself, which breaks when X == Y (``"$$"``: a negative
length, undefined behaviour); searching after X is the spec's [R] fix and what 1.6.45 does. For
X != Y the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import FilterFunction, KeyFilter

CONF_LENGTH_ERROR = "hash filter conf must be between 2 and 5 characters"


def build_tags(conf: bytes) -> FilterFunction:
    """A filter keeping what lies between the tag bytes ``conf[0]`` and ``conf[1]``."""
    if not 2 <= len(conf) <= 5:
        raise ValueError(CONF_LENGTH_ERROR)
    opening, closing = conf[:1], conf[1:2]

    def tags_filter(key: bytes) -> bytes:
        start = key.find(opening) + 1
        if start == 0:
            return key
        end = key.find(closing, start)
        return key if end < 0 else key[start:end]

    return tags_filter


@hookimpl
def mcpframe_key_filters() -> Iterable[KeyFilter]:
    return [KeyFilter("tags", build_tags, "hash the part between the two filter_conf bytes")]
