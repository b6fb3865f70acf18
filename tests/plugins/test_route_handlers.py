"""Route handlers as a plugin kind: what the registry accepts, refuses, and says about them."""

from __future__ import annotations

import pytest

from mcpframe.errors import PluginConflictError, UnknownPluginError
from mcpframe.plugins import PluginSource
from mcpframe.types import PluginKind, RouteHandler
from tests.plugins.fakes import routes
from tests.plugins.support import fake, registry


def test_mcpframe_route_handlers_collected_with_provenance() -> None:
    reg = registry(fake("routes", "routes", package="mcpframe-routes", version="1.2"))
    assert reg.failed == []
    first = reg.route_handlers["first"]
    assert first == RouteHandler(
        "first", routes.FIRST, "route_first.lua", "ask the first child only"
    )
    assert reg.route_handlers["noop"].chunkname == ""
    assert reg.table(PluginKind.ROUTE_HANDLER) is reg.route_handlers
    assert reg.route_handlers.source("first") == PluginSource(
        "routes", "tests.plugins.fakes.routes", "mcpframe-routes", "1.2"
    )
    assert PluginKind.ROUTE_HANDLER.lua_name("first") == "route_first"


def test_mcpframe_route_handlers_unknown_name_lists_available() -> None:
    reg = registry(fake("routes", "routes", package="mcpframe-routes"))
    with pytest.raises(UnknownPluginError) as info:
        reg.route_handlers["shadow"]
    message = str(info.value)
    assert message.startswith("unknown route handler 'shadow'; available: ")
    assert {"first", "noop"} <= set(message.split("available: ")[1].split(", "))


def test_mcpframe_route_handlers_of_a_failed_package_says_why() -> None:
    reg = registry(fake("shadow", "broken_import", package="mcpframe-shadow"))
    with pytest.raises(UnknownPluginError) as info:
        reg.route_handlers["shadow"]
    assert str(info.value) == (
        "route handler 'shadow' is not available: plugin 'shadow' from package "
        "'mcpframe-shadow' failed to load: ImportError: No module named 'fancy_dependency'"
    )


def test_mcpframe_route_handlers_conflict_names_both_packages() -> None:
    with pytest.raises(PluginConflictError) as info:
        registry(
            fake("routes", "routes", package="mcpframe-routes", version="1.2"),
            fake("first", "dup_route", package="mcpframe-first", version="0.1"),
        )
    message = str(info.value)
    assert "route handler 'first' is provided by" in message
    assert "plugin 'routes' from package 'mcpframe-routes' 1.2" in message
    assert "plugin 'first' from package 'mcpframe-first' 0.1" in message
    assert "MCPFRAME_DISABLE_PLUGINS" in message


def test_mcpframe_route_handlers_conflict_resolved_by_disabling_one() -> None:
    reg = registry(
        fake("routes", "routes", package="mcpframe-routes"),
        fake("first", "dup_route", package="mcpframe-first"),
        environ={"MCPFRAME_DISABLE_PLUGINS": "mcpframe-first"},
    )
    assert reg.route_handlers.source("first").package == "mcpframe-routes"


@pytest.mark.parametrize(
    ("target", "cause"),
    [
        (
            "route_bad_name",
            "mcpframe_route_handlers() returned route handler name 'Shadow-1', which is not a "
            "valid name",
        ),
        (
            "route_bytes",
            "mcpframe_route_handlers() returned route handler 'bytes' whose lua is bytes, "
            "expected str",
        ),
        (
            "route_empty",
            "mcpframe_route_handlers() returned route handler 'empty' with empty lua source",
        ),
        ("route_wrong_type", "mcpframe_route_handlers() returned Hasher(name='first'"),
        (
            "route_missing_file",
            "mcpframe_route_handlers() raised FileNotFoundError: [Errno 2] No such file",
        ),
    ],
)
def test_mcpframe_route_handlers_invalid_records_fail_that_plugin_only(
    target: str, cause: str
) -> None:
    reg = registry(
        fake("bad", f"bad_records:{target}", package="mcpframe-bad"),
        fake("routes", "routes", package="mcpframe-routes"),
    )
    [error] = reg.failed
    assert (error.plugin, error.package) == ("bad", "mcpframe-bad")
    assert error.cause.startswith(cause), error.cause
    assert {"first", "noop"} <= set(reg.route_handlers)
