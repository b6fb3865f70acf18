"""twemproxy (nutcracker) key placement for mcpframe: its hashes, ketama, modula and hash_tag.

Every name is prefixed with ``tw_`` so it never clashes with mcpframe's own (``mcp.hash_md5``
is memcached's MD5 hasher; ``mcp.hash_tw_md5`` is twemproxy's, which happens to compute the
same value). A nutcracker pool::

    alpha:
      hash: fnv1a_64
      distribution: ketama
      hash_tag: "{}"
      servers:
       - 10.0.0.1:11211:1
       - 10.0.0.2:11211:1

places keys like this mcpframe pool::

    mcp.pool({ mcp.backend("a", "10.0.0.1", 11211), mcp.backend("b", "10.0.0.2", 11211) },
             { dist = mcp.dist_tw_ketama, hash = mcp.hash_tw_fnv1a_64,
               filter = "tw_hash_tag", filter_conf = "{}" })
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Distribution, FilterFunction, Hasher, KeyFilter

from mcpframe_twemproxy.distributions import build_ketama, build_modula
from mcpframe_twemproxy.hashes import HASHES

__all__ = ["build_hash_tag", "mcpframe_distributions", "mcpframe_hashers", "mcpframe_key_filters"]


def _hasher(name: str, fn: Callable[[bytes], int]) -> Hasher:
    # The pool seed has no twemproxy equivalent and is ignored.
    return Hasher(
        f"tw_{name}",
        lambda key, seed: fn(key),
        f"twemproxy's {name} hash (32 bits; the pool seed is ignored)",
    )


def build_hash_tag(conf: bytes) -> FilterFunction:
    """twemproxy's ``hash_tag``: hash what lies between the first two conf bytes.

    As in nc_server.c: find the first ``conf[0]``, then the first ``conf[1]`` after it; hash
    the bytes between them when there is at least one, else the whole key. (mcpframe's
    ``tags`` filter hashes an empty tag as the empty string: ``a{}b`` differs.)
    """
    opening, closing = conf[:1], conf[1:2]

    def tw_hash_tag(key: bytes) -> bytes:
        start = key.find(opening)
        if start < 0:
            return key
        end = key.find(closing, start + 1)
        if end - start > 1:
            return key[start + 1 : end]
        return key

    return tw_hash_tag


@hookimpl
def mcpframe_hashers() -> Iterable[Hasher]:
    return [_hasher(name, fn) for name, fn in HASHES.items()]


@hookimpl
def mcpframe_distributions() -> Iterable[Distribution]:
    return [
        Distribution(
            "tw_ketama",
            build_ketama,
            key_hasher="tw_fnv1a_64",
            description="twemproxy's ketama: weights from labels 'name@weight'; tw_names",
        ),
        Distribution(
            "tw_modula",
            build_modula,
            key_hasher="tw_fnv1a_64",
            description="twemproxy's modula: hash mod total weight (labels 'name@weight')",
        ),
    ]


@hookimpl
def mcpframe_key_filters() -> Iterable[KeyFilter]:
    return [KeyFilter("tw_hash_tag", build_hash_tag, "twemproxy's hash_tag (filter_conf '{}')")]
