"""twemproxy's ``ketama`` and ``modula`` distributions, with its weights and server names.

A nutcracker server line is ``host:port:weight [name]``. An mcpframe backend carries the same
facts like this (see the README):

* weight: a label ending in ``@<weight>`` (``mcp.backend("b1@2", "10.0.0.1", 11211)``);
  without ``@`` the weight is 1, as most nutcracker configs have it;
* name: only with the pool option ``tw_names = true``, the label's part before ``@``
  (``"alpha@1"`` -> ``alpha``). Without it a server is named as twemproxy names an unnamed
  one: ``host`` when the port is 11211, ``host:port`` otherwise (host and port as given to
  ``mcp.backend``, not resolved).

The order of backends in the pool does not matter: twemproxy sorts a pool's servers by name
(see :func:`twemproxy_order`), and so do these distributions.

Where twemproxy's ketama differs from memcached's ``ring_hash`` with ``omode = "twemproxy"``:
the number of points per server follows its weight, computed in C ``float`` arithmetic
exactly as ``nc_ketama.c`` does (``floorf(pct * 160 / 4 * nlive + 1e-10) * 4`` with
``pct = weight / total_weight``; rounding can take a server 4 points below its share), and
named servers hash their name. Both use the low 32 bits of the key hash.
twemproxy's ``random`` distribution is not offered: it does not place keys.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import struct
from collections.abc import Sequence

from mcpframe.types import BackendInfo, PoolOptions, Selector

__all__ = [
    "build_ketama",
    "build_modula",
    "continuum",
    "ketama_points_per_server",
    "server_names",
    "server_weight",
    "twemproxy_order",
]

_M32 = 0xFFFFFFFF
_POINTS_PER_SERVER = 160  # KETAMA_POINTS_PER_SERVER
_DEFAULT_PORT = 11211  # CONF_DEFAULT_KETAMA_PORT: this port is left out of the server name


def _f32(x: float) -> float:
    """``x`` rounded to the nearest IEEE single, as a C ``float`` holds it."""
    return float(struct.unpack("f", struct.pack("f", x))[0])


def ketama_points_per_server(weight: int, total_weight: int, nlive: int) -> int:
    """How many continuum points nc_ketama.c gives a server, float rounding included.

    Each step is one C float operation. The exact result of a float op on two floats,
    rounded once to double and then to float, is the correctly rounded float result (a
    double has more than twice a float's precision), so this reproduces the C value.
    """
    pct = _f32(_f32(weight) / _f32(total_weight))
    x = _f32(pct * _POINTS_PER_SERVER)
    x = _f32(x / 4)
    x = _f32(x * _f32(nlive))
    x = _f32(x + 0.0000000001)  # added in double, then cast back to float for floorf
    return math.floor(x) * 4


def _split_label(label: str, dist: str) -> tuple[str, int]:
    name, at, weight = label.rpartition("@")
    if not at:
        return label, 1
    if not weight.isdigit() or int(weight) < 1:
        raise ValueError(
            f"{dist}: backend label {label!r}: the weight after '@' must be a positive integer"
        )
    return name, int(weight)


def server_weight(server: BackendInfo, dist: str = "tw_ketama") -> int:
    """The twemproxy weight of a backend: the integer after the last ``@`` of its label, or 1."""
    return _split_label(server.label, dist)[1]


def _server_name(server: BackendInfo, use_labels: bool, dist: str) -> str:
    if use_labels:
        name = _split_label(server.label, dist)[0]
        if not name:
            raise ValueError(
                f"{dist}: tw_names is set but backend label {server.label!r} has no name before '@'"
            )
        return name
    port = server.port
    if port.isdigit() and int(port) == _DEFAULT_PORT:
        return server.host
    return f"{server.host}:{port}"


def server_names(servers: Sequence[BackendInfo], options: PoolOptions, dist: str) -> list[str]:
    """twemproxy's name for each backend; twemproxy refuses a pool naming two servers alike."""
    value = options.get("tw_names", False)
    if not isinstance(value, bool):
        raise TypeError(f"{dist}: tw_names must be a boolean")
    names = [_server_name(s, value, dist) for s in servers]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"{dist}: two backends are named {name!r}")
    return names


def twemproxy_order(names: Sequence[str]) -> list[int]:
    """The server order nutcracker works with: its config check sorts servers by name.

    nc_conf.c sorts each pool's servers with ``string_compare`` (shorter names first, then
    byte order) to find duplicates, and keeps that order. Ketama does not care (a server's
    points depend only on its name), but modula's table is built in this order.
    """
    return sorted(range(len(names)), key=lambda i: (len(names[i].encode()), names[i].encode()))


def continuum(servers: Sequence[BackendInfo], options: PoolOptions) -> list[tuple[int, int]]:
    """The sorted ``(point, 0-based server index)`` list nc_ketama.c builds for ``servers``."""
    names = server_names(servers, options, "tw_ketama")
    weights = [server_weight(s, "tw_ketama") for s in servers]
    total = sum(weights)
    points = []
    for index in twemproxy_order(names):
        for k in range(ketama_points_per_server(weights[index], total, len(servers)) // 4):
            digest = hashlib.md5(f"{names[index]}-{k}".encode()).digest()
            for j in range(0, 16, 4):
                points.append((int.from_bytes(digest[j : j + 4], "little"), index))
    # Python's sort is stable, C's qsort is not: servers sharing a 32-bit point (about one
    # pair in 10**5 pools of 3 servers) may be ordered differently. Nothing else differs.
    points.sort(key=lambda p: p[0])
    return points


def build_ketama(servers: Sequence[BackendInfo], options: PoolOptions) -> Selector:
    """twemproxy's ``distribution: ketama``: the first point >= the hash, wrapping around."""
    ring = continuum(servers, options)
    if not ring:
        return lambda h: -1
    points = [p for p, _ in ring]
    owners = [i for _, i in ring]
    owners.append(owners[0])  # a hash above the last point wraps to the first
    bisect_left = bisect.bisect_left

    def select_tw_ketama(h: int) -> int:
        return owners[bisect_left(points, h & _M32)]

    return select_tw_ketama


def build_modula(servers: Sequence[BackendInfo], options: PoolOptions) -> Selector:
    """twemproxy's ``modula``: a table holding each server weight times, indexed by hash mod size.

    The table follows twemproxy's server order (sorted by name, see :func:`twemproxy_order`),
    not the order of the pool's list.
    """
    names = server_names(servers, options, "tw_modula")
    table = [
        index
        for index in twemproxy_order(names)
        for _ in range(server_weight(servers[index], "tw_modula"))
    ]
    if not table:
        return lambda h: -1
    size = len(table)

    def select_tw_modula(h: int) -> int:
        return table[(h & _M32) % size]

    return select_tw_modula
