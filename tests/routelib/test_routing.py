"""The route library's language through the wire, in front of three real memcached servers:
prefix maps, command maps, ``cmap``, ``default``, a tagged tree, pool sets and the handlers
that need no faults (direct, null, ttl, split, allsync, random, failover over a zone set,
nested handlers). tests/configs/routelib/routing.lua.

Every expected reply, and the backend each key landed on, was recorded from memcached
1.6.45's proxy on the same file and requests (see conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import Client, Memcached, free_port
from tests.route_api.conftest import Proxy
from tests.routelib.conftest import REFERENCE, StartRoutelib, backends_env


@pytest.fixture
def alt_port() -> int:
    return free_port()


@pytest.fixture
def routing(
    start_routelib: StartRoutelib, three_memcached: list[Memcached], alt_port: int
) -> Iterator[Proxy]:
    for m in three_memcached:
        c = Client(m.addr)
        c.send(b"flush_all\r\n")
        assert c.readline() == b"OK\r\n"
        c.close()
    yield start_routelib("routing.lua", backends_env(three_memcached), {"alt": alt_port})


def holders(servers: list[Memcached], key: bytes) -> list[int]:
    """The servers (1-based) that hold ``key``."""
    out = []
    for i, m in enumerate(servers, 1):
        c = Client(m.addr)
        c.send(b"mg " + key + b" v\r\n")
        line = c.readline()
        if line.startswith(b"VA"):
            c.readline()
            out.append(i)
        c.close()
    return out


def exchange(proxy: Proxy, request: bytes) -> bytes:
    c = proxy.connect()
    c.send(request)
    return c.read_available(0.4)


CASES = [
    # route_null answers each command's "nothing there" without a backend
    (b"mg null/a v\r\nms null/a 1\r\nx\r\nmd null/a\r\nma null/a\r\nget null/a\r\n"
     b"set null/a 0 0 1\r\nx\r\ntouch null/a 1\r\nincr null/a 1\r\ndelete null/a\r\n",
     b"EN\r\nNS\r\nNF\r\nNF\r\nEND\r\nNOT_STORED\r\nNOT_FOUND\r\nNOT_FOUND\r\nNOT_FOUND\r\n"),
    # ... also for quiet and noreply requests and multigets
    (b"mg null/a q\r\nget null/a null/b\r\nadd null/x 0 0 1\r\nx\r\nappend null/x 0 0 1\r\nx\r\n"
     b"decr null/a 1\r\ngat 1 null/a\r\nset null/a 0 0 1 noreply\r\nx\r\nmn\r\n",
     b"END\r\nNOT_STORED\r\nNOT_STORED\r\nNOT_FOUND\r\nEND\r\nMN\r\n"),
    # route_ttl: set/ms get the handler's TTL; other commands are refused
    (b"set ttl/a 0 0 2\r\nhi\r\nmg ttl/a t v\r\nms ttl/b 2 T5\r\nhi\r\nmg ttl/b t\r\n"
     b"mg ttl/c v\r\n",
     b"STORED\r\nSERVER_ERROR invalid command for route_ttl\r\nHD\r\n"
     b"SERVER_ERROR invalid command for route_ttl\r\n"
     b"SERVER_ERROR invalid command for route_ttl\r\n"),
    # a command map in the map: get/set to pool two, every other command to route_null
    (b"set cmd/a 0 0 1\r\nz\r\nget cmd/a\r\nmg cmd/a v\r\ndelete cmd/a\r\n",
     b"STORED\r\nVALUE cmd/a 0 1\r\nz\r\nEND\r\nEN\r\nNOT_FOUND\r\n"),
    # cmap: incr of an unmapped prefix; the default for anything else
    (b"incr zz/a 1\r\nset zz/a 0 0 1\r\n5\r\nincr zz/a 1\r\nincr cmd/x 1\r\n",
     b"NOT_FOUND\r\nSTORED\r\nNOT_FOUND\r\nNOT_FOUND\r\n"),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "reply"), CASES)
def test_replies(routing: Proxy, request_: bytes, reply: bytes) -> None:
    assert exchange(routing, request_) == reply


@pytest.mark.fixed
def test_route_null_answers_me(routing: Proxy) -> None:
    # 1.6.45 sends nothing at all (its resnull step knows no reply for me)
    assert exchange(routing, b"me null/a\r\nmn\r\n") == b"EN\r\nMN\r\n"


@pytest.mark.fixed
def test_a_nested_route_null_is_a_miss_to_fail_over_from(
    routing: Proxy, three_memcached: list[Memcached]
) -> None:
    # 1.6.45 exits (the process dies) when route_null answers as a child of another handler
    three = Client(three_memcached[2].addr)
    three.send(b"set nest/n 0 0 1\r\nq\r\n")
    assert three.readline() == b"STORED\r\n"
    assert exchange(routing, b"mg nest/n v\r\nmg nest/m v\r\n") == b"VA 1\r\nq\r\nEN\r\n"


def test_ttl_reaches_the_backend(routing: Proxy, three_memcached: list[Memcached]) -> None:
    assert exchange(
        routing, b"set ttl/a 0 0 2\r\nhi\r\nms ttlms/b 2 T5\r\nhi\r\nms ttlms/c 2\r\nhi\r\n"
    ) == (b"STORED\r\nHD\r\nHD\r\n")
    one = Client(three_memcached[0].addr)
    one.send(b"mg ttl/a t\r\nmg ttlms/b t\r\nmg ttlms/c t\r\n")
    assert one.readline() in (b"HD t99\r\n", b"HD t98\r\n")
    assert one.readline() in (b"HD t77\r\n", b"HD t76\r\n")
    assert one.readline() in (b"HD t77\r\n", b"HD t76\r\n")  # (T appended: r:flag_set)
    one.close()


# key -> the backend (1-based) of pool main it lands on, as 1.6.45 placed it
PLACED = {b"main/a": 2, b"main/b": 1, b"main/foo": 1, b"main/bar": 2, b"main/1": 2, b"main/2": 3}


def test_keys_land_where_1_6_45_puts_them(routing: Proxy, three_memcached: list[Memcached]) -> None:
    for key in PLACED:
        assert exchange(routing, b"set " + key + b" 0 0 1\r\nv\r\n") == b"STORED\r\n"
    got = {key: holders(three_memcached, key) for key in PLACED}
    assert got == {key: [i] for key, i in PLACED.items()}


def test_children_get_their_pools(routing: Proxy, three_memcached: list[Memcached]) -> None:
    reqs = [b"split/s", b"sync/y", b"rand/r", b"east/e", b"west/w", b"zz/d", b"fast/f"]
    for key in reqs:
        assert exchange(routing, b"set " + key + b" 0 0 1\r\nv\r\n") == b"STORED\r\n"
    got = {key: holders(three_memcached, key) for key in reqs}
    assert got == {
        b"split/s": [1, 2],  # child_b gets a copy
        b"sync/y": [1, 2, 3],
        b"rand/r": [2],
        b"east/e": [1],  # set_zones_east
        b"west/w": [2],  # local_zone first
        b"zz/d": [3],  # the default
        b"fast/f": [1, 2],
    }


def test_allsync_answers_the_last_childs_result(routing: Proxy) -> None:
    assert exchange(routing, b"mg sync/none v\r\n") == b"EN\r\n"


def test_a_tagged_listener_gets_its_tree(routing: Proxy, alt_port: int) -> None:
    assert exchange(routing, b"set two/t 0 0 1\r\nv\r\n") == b"STORED\r\n"  # the default: three
    alt = Client(("127.0.0.1", alt_port))
    alt.send(b"get two/t\r\nset alt/t 0 0 1\r\nw\r\nget alt/t\r\n")
    assert alt.read_available(0.4) == b"END\r\nSTORED\r\nVALUE alt/t 0 1\r\nw\r\nEND\r\n"
    alt.close()
    assert exchange(routing, b"get alt/t\r\n") == b"END\r\n"


def test_non_storage_commands_stay_local(routing: Proxy) -> None:
    assert exchange(routing, b"mn\r\nversion\r\n").startswith(b"MN\r\nVERSION ")


def test_random_spreads_requests_over_its_children(
    routing: Proxy, three_memcached: list[Memcached]
) -> None:
    keys = [b"rand3/%d" % i for i in range(30)]
    c = routing.connect()
    for key in keys:
        c.send(b"set " + key + b" 0 0 1\r\nv\r\n")
        assert c.readline() == b"STORED\r\n"
    used = {tuple(holders(three_memcached, key)) for key in keys}
    assert used <= {(1,), (2,), (3,)}  # each request goes to exactly one child
    assert len(used) >= 2


def test_each_handler_is_a_funcgen_named_after_its_place(routing: Proxy) -> None:
    funcs = {
        line.split()[1]: int(line.split()[2])
        for line in routing.stat_lines("proxyfuncs")
        if line.startswith("STAT funcs_")
    }
    # 1.6.45 also wraps the alt tree, which has only a default, in a router; mcpframe attaches
    # that default itself
    assert funcs.pop("funcs_mcp_router") == (2 if REFERENCE else 1)
    assert funcs == {
        "funcs_cmd": 3, "funcs_cmdmap": 1, "funcs_default": 2, "funcs_east": 1,
        "funcs_fast": 1, "funcs_main": 1, "funcs_nest": 2, "funcs_null": 1, "funcs_rand": 1,
        "funcs_rand3": 1, "funcs_split": 1, "funcs_sync": 1, "funcs_ttl": 1, "funcs_ttlms": 1,
        "funcs_west": 1,
    }  # fmt: skip


def test_multiget_across_prefixes(routing: Proxy) -> None:
    assert exchange(routing, b"set main/a 0 0 1\r\n1\r\nset east/b 0 5 1\r\n2\r\n") == (
        b"STORED\r\nSTORED\r\n"
    )
    assert exchange(routing, b"get main/a east/b zz/none null/x main/a\r\n") == (
        b"VALUE main/a 0 1\r\n1\r\nVALUE east/b 0 1\r\n2\r\nVALUE main/a 0 1\r\n1\r\nEND\r\n"
    )
    assert exchange(routing, b"set main/q 0 0 1 noreply\r\nx\r\nmg main/q v q\r\nmn\r\n") == (
        b"VA 1\r\nx\r\nMN\r\n"
    )
