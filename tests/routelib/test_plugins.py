"""The route library consumes route handler plugins (``registry.route_handlers``): a handler
from a package works like a built-in one, its errors name its own file and line, and a handler
whose source fails to load breaks only the configs that use it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from mcpframe.config import ConfigSource
from mcpframe.errors import ConfigError
from mcpframe.hookspecs import hookimpl
from mcpframe.lua.config import ConfigLoader
from mcpframe.plugins import create_plugin_manager
from mcpframe.registry import Registry, build_registry
from mcpframe.types import RouteHandler

FIRST = """\
function route_first_conf(t, ctx)
    if t.children == nil then error("route_first needs children", 0) end
    return t
end

function route_first_start(a, ctx, fgen)
    local h = fgen:new_handle(a.children[1])
    fgen:ready({ n = ctx:label(), a = h, f = function(rctx, h)
        return function(r) return rctx:enqueue_and_wait(r, h) end
    end })
end
"""


class _Handlers:
    @hookimpl
    def mcpframe_route_handlers(self) -> Iterable[RouteHandler]:
        return [
            RouteHandler("first", FIRST, "plugins/first/route_first.lua", "the first child"),
            RouteHandler("broken", "function route_broken_conf(", "route_broken.lua"),
            RouteHandler("raises", "error('no luck')", "route_raises.lua"),
        ]


@pytest.fixture(scope="module")
def registry() -> Registry:
    pm = create_plugin_manager(environ={})
    pm.register(_Handlers(), name="handlers")
    return build_registry(pm)


def load(registry: Registry, tmp_path: Path, text: str) -> object:
    path = tmp_path / "rl.lua"
    path.write_text('pools{ main = { backends = { "127.0.0.1:11211" } } }\n' + text)
    return ConfigLoader(registry).load(ConfigSource(("routelib",), str(path)))


def test_a_plugin_handler_is_used_like_a_built_in(registry: Registry, tmp_path: Path) -> None:
    loaded = load(registry, tmp_path, 'routes{ default = route_first{ children = { "main" } } }')
    assert loaded.routes.hooks[""]  # type: ignore[attr-defined]


def test_a_plugin_handlers_errors_name_the_config_line(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(registry, tmp_path, "routes{\n default = route_first{} }")
    assert f"{tmp_path}/rl.lua:3: route_first: route_first needs children" in str(info.value)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("broken", "route_broken.lua:1: <name> or '...' expected near <eof>"),
        ("raises", "route_raises.lua:1: no luck"),
    ],
)
def test_a_handler_that_fails_to_load_breaks_only_its_users(
    registry: Registry, tmp_path: Path, name: str, why: str
) -> None:
    load(registry, tmp_path, "routes{ default = route_null{} }")  # still fine
    with pytest.raises(ConfigError) as info:
        load(registry, tmp_path, f"routes{{ default = route_{name}{{}} }}")
    assert f"rl.lua:2: route_{name}: its plugin failed to load: {why}" in str(info.value)
