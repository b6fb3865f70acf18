"""Contract suites over EVERY registered distribution, hasher, key filter and route handler.

The parameters come from the installed plugins, so an installed third-party plugin is checked
by these tests with no test written for it. The checks are the ones plugin authors get from
``mcpframe.testing``.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from mcpframe.registry import Registry
from mcpframe.testing import (
    check_distribution,
    check_hasher,
    check_key_filter,
    check_route_handler,
)
from mcpframe.types import RouteHandler
from tests.plugins.fakes import routes
from tests.plugins.support import registry

INSTALLED = registry()  # read once at collection, only to name the parameters

# Option sets worth checking for distributions that have options; others run with {}.
DIST_OPTIONS: Mapping[str, list[dict[str, object]]] = {
    "ring_hash": [
        {},
        {"omode": "ketama"},
        {"omode": "twemproxy"},
        {"omode": "evcache"},
        {"omode": "ketama", "obuckets": 41},
        {"omode": "default", "obuckets": 40},
    ],
}
FILTER_CONFS = [b"{}", b"|#|", b"$$", b"::", b"abcde"]


def _dist_params() -> list[object]:
    return [
        pytest.param(name, options, id=f"{name}-{options}" if options else name)
        for name in INSTALLED.distributions
        for options in DIST_OPTIONS.get(name, [{}])
    ]


@pytest.mark.parametrize(("name", "options"), _dist_params())
def test_distribution_contract(
    mcpframe_registry: Registry, name: str, options: dict[str, object]
) -> None:
    check_distribution(mcpframe_registry.distributions[name], options=options)


@pytest.mark.parametrize("name", list(INSTALLED.distributions))
def test_distribution_key_hasher_is_registered(mcpframe_registry: Registry, name: str) -> None:
    dist = mcpframe_registry.distributions[name]
    if dist.key_hasher is not None:
        check_hasher(mcpframe_registry.hashers[dist.key_hasher])


@pytest.mark.parametrize("name", list(INSTALLED.hashers))
def test_hasher_contract(mcpframe_registry: Registry, name: str) -> None:
    check_hasher(mcpframe_registry.hashers[name])


@pytest.mark.parametrize("conf", FILTER_CONFS, ids=[c.decode() for c in FILTER_CONFS])
@pytest.mark.parametrize("name", list(INSTALLED.key_filters))
def test_key_filter_contract(mcpframe_registry: Registry, name: str, conf: bytes) -> None:
    check_key_filter(mcpframe_registry.key_filters[name], conf)


@pytest.mark.parametrize("name", list(INSTALLED.loggers))
def test_logger_records_are_complete(mcpframe_registry: Registry, name: str) -> None:
    logger = mcpframe_registry.loggers[name]
    assert callable(logger.build)
    assert logger.description


def _route_params() -> list[object]:
    if not INSTALLED.route_handlers:  # the built-in handlers come with the route library
        return [
            pytest.param("", marks=pytest.mark.skip("needs the route library (branch routelib)"))
        ]
    return list(INSTALLED.route_handlers)


@pytest.mark.parametrize("name", _route_params())
def test_route_handler_contract(mcpframe_registry: Registry, name: str) -> None:
    # Arguments differ per handler, so the suite checks the source's shape; a handler's own
    # tests pass it arguments (check_route_handler(handler, {...})).
    handler = mcpframe_registry.route_handlers[name]
    check_route_handler(handler)
    assert handler.description


def test_every_kind_has_builtins() -> None:
    assert {"jump_hash", "ring_hash"} <= set(INSTALLED.distributions)
    assert {"xxhash", "md5", "murmur3"} <= set(INSTALLED.hashers)
    assert {"stop", "tags"} <= set(INSTALLED.key_filters)
    assert {"stderr", "jsonfile"} <= set(INSTALLED.loggers)


# --- the checks themselves catch broken plugins -----------------------------------------------


def test_check_distribution_rejects_out_of_range() -> None:
    from mcpframe.types import Distribution

    bad = Distribution("bad", lambda servers, options: lambda h: len(servers))
    with pytest.raises(AssertionError, match="out-of-range"):
        check_distribution(bad)


def test_check_distribution_rejects_inconsistent_modulo() -> None:
    from mcpframe.types import Distribution
    from tests.plugins.fakes.good import build_modulo

    modulo = Distribution("modulo", build_modulo)
    with pytest.raises(AssertionError, match="moved keys between old servers"):
        check_distribution(modulo)
    check_distribution(modulo, consistent=False)  # fine when it does not claim consistency


def test_check_distribution_rejects_unbalanced() -> None:
    from mcpframe.types import Distribution

    lopsided = Distribution("lopsided", lambda servers, options: lambda h: 0 if servers else -1)
    with pytest.raises(AssertionError, match="unbalanced"):
        check_distribution(lopsided, consistent=False)


def test_check_hasher_rejects_bad_values() -> None:
    from mcpframe.types import Hasher

    with pytest.raises(AssertionError, match=r"\[0, 2\*\*64\)"):
        check_hasher(Hasher("negative", lambda key, seed: -1))
    with pytest.raises(AssertionError, match="distinct low 32-bit"):
        check_hasher(Hasher("high_only", lambda key, seed: hash(key) % 2**32 << 32))


def test_check_key_filter_rejects_changes_without_pattern() -> None:
    from mcpframe.types import KeyFilter

    with pytest.raises(AssertionError, match="holds none of the conf bytes"):
        check_key_filter(KeyFilter("upper", lambda conf: bytes.upper))
    with pytest.raises(AssertionError, match="expected bytes"):
        check_key_filter(KeyFilter("text", lambda conf: lambda key: key.decode()))  # type: ignore[arg-type,return-value]


GOOD_START = """
function route_x_start(a, ctx, fgen)
    local h = fgen:new_handle(a.child)
    fgen:ready({ n = ctx:label(), f = function(rctx) return function(r) return "x" end end })
end
"""


def route(conf: str, start: str = GOOD_START) -> RouteHandler:
    return RouteHandler("x", conf + "\n" + start, "route_x.lua")


def test_check_route_handler_passes_a_good_handler_and_returns_the_conf() -> None:
    first = RouteHandler("first", routes.FIRST, "route_first.lua")
    assert check_route_handler(first) == {}
    got = check_route_handler(first, {"child": "main", "wait": 0.5, "tags": ["a"]}, refused=[{}])
    assert got == {"child": "main", "wait": 0.5, "tags": {1: "a"}}


def test_check_route_handler_ctx_stand_in() -> None:
    conf = """
    function route_x_conf(t, ctx)
        if ctx:pool(t.child) == nil then error("no pool " .. t.child) end
        t.id = ctx:get_stats_id(ctx:label() .. "_x")
        t.again = ctx:get_stats_id(ctx:label() .. "_x")
        t.cmd = ctx:cmd() == mcp.CMD_ANY_STORAGE
        return t
    end
    """
    got = check_route_handler(route(conf), {"child": "main"}, label="users", pools=["main"])
    assert got == {"child": "main", "id": 1, "again": 1, "cmd": True}
    with pytest.raises(AssertionError, match=r"route_x\.lua:3: no pool other"):
        check_route_handler(route(conf), {"child": "other"}, pools=["main"])


@pytest.mark.parametrize(
    ("handler", "args", "message"),
    [
        (
            route("function route_x_conf(t, ctx) return t"),
            None,
            "route handler 'x' (route_x.lua) does not load: route_x.lua:3: 'end' expected",
        ),
        (
            route("function route_x_conf(t) return t end\nfunction helper() end\nX = 1"),
            None,
            "route handler 'x' (route_x.lua) defines other globals: X, helper (make them local)",
        ),
        (
            route("function route_x_conf(t) return t end", ""),
            None,
            "route handler 'x' (route_x.lua) does not define the function route_x_start "
            "(it defines: route_x_conf)",
        ),
        (
            route("route_x_conf = 3"),
            None,
            "route handler 'x' (route_x.lua) does not define the function route_x_conf",
        ),
        (
            route("function route_x_conf(t) error('route_x needs child') end"),
            {},
            "route handler 'x' (route_x.lua): route_x_conf({}) raised route_x.lua:1: route_x "
            "needs child",
        ),
        (
            route("function route_x_conf(t) end"),
            {},
            "route handler 'x' (route_x.lua): route_x_conf returned None, expected a table",
        ),
        (
            route("function route_x_conf(t) return t end", "function route_x_start() end"),
            {"child": "main"},
            "route handler 'x' (route_x.lua): route_x_start called fgen:ready 0 times",
        ),
        (
            route("function route_x_conf(t) return t end"),
            {},
            "route handler 'x' (route_x.lua): route_x_start raised route_x.lua:4: new_handle: nil",
        ),
    ],
)
def test_check_route_handler_names_handler_and_chunk(
    handler: RouteHandler, args: dict[str, object] | None, message: str
) -> None:
    with pytest.raises(AssertionError) as info:
        check_route_handler(handler, args)
    assert str(info.value).startswith(message), str(info.value)


def test_check_route_handler_refused_must_raise() -> None:
    handler = route("function route_x_conf(t) return t end")
    with pytest.raises(AssertionError, match=r"route_x_conf accepted \{'child': 3\}"):
        check_route_handler(handler, refused=[{"child": 3}])


def test_check_route_handler_chunk_defaults_to_route_name() -> None:
    with pytest.raises(AssertionError, match=r"'x' \(route_x\) does not load: route_x:1:"):
        check_route_handler(RouteHandler("x", "function ("))
