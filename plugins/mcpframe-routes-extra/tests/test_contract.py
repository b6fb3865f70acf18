"""The handlers as mcpframe sees them: registered, and passing mcpframe.testing's checks."""

from __future__ import annotations

import pytest
from mcpframe.registry import Registry
from mcpframe.testing import check_route_handler


def test_both_handlers_are_registered_from_this_package(mcpframe_registry: Registry) -> None:
    for name in ("shadow", "warmup"):
        handler = mcpframe_registry.route_handlers[name]
        assert mcpframe_registry.route_handlers.source(name).package == "mcpframe-routes-extra"
        assert handler.chunkname.endswith(f"route_{name}.lua")
        assert handler.description


def test_shadow_contract(mcpframe_registry: Registry) -> None:
    shadow = mcpframe_registry.route_handlers["shadow"]
    conf = check_route_handler(
        shadow,
        {"child": "main", "child_shadow": "canary"},
        refused=[
            {"child": "main"},
            {"child_shadow": "canary"},
            {"child": "main", "child_shadow": "c", "sample": 1.5},
            {"child": "main", "child_shadow": "c", "sample": "10%"},
            {"child": "main", "child_shadow": "c", "sample_by": "host"},
            {"child": "main", "child_shadow": "c", "commands": ["get", "frob"]},
            {"child": "main", "child_shadow": "c", "commands": "get"},
        ],
    )
    assert conf == {"child": "main", "child_shadow": "canary", "sample": 1, "sample_by": "key"}
    conf = check_route_handler(
        shadow,
        {"child": "a", "child_shadow": "b", "sample": 0.25, "commands": ["get", "MS"]},
    )
    assert conf["sample"] == 0.25 and conf["commands"] == {1: "get", 2: "MS"}


def test_warmup_contract(mcpframe_registry: Registry) -> None:
    warmup = mcpframe_registry.route_handlers["warmup"]
    conf = check_route_handler(
        warmup,
        {"child_cold": "new", "child_warm": "old", "ttl": 60, "write_warm": True},
        refused=[
            {"child_cold": "new"},
            {"child_warm": "old"},
            {"child_cold": "new", "child_warm": "old", "ttl": -1},
            {"child_cold": "new", "child_warm": "old", "ttl": 1.5},
            {"child_cold": "new", "child_warm": "old", "write_warm": "yes"},
        ],
    )
    assert conf == {"child_cold": "new", "child_warm": "old", "ttl": 60, "write_warm": True}


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("shadow", {"child": "main"}, "route_shadow (test): needs child_shadow"),
        ("shadow", {"child": "m", "child_shadow": "c", "sample": 2}, "sample must be a number"),
        ("warmup", {"child_warm": "old"}, "route_warmup (test): needs child_cold"),
    ],
)
def test_bad_arguments_name_the_handler_file_and_line(
    mcpframe_registry: Registry, name: str, args: dict[str, object], message: str
) -> None:
    with pytest.raises(AssertionError) as info:
        check_route_handler(mcpframe_registry.route_handlers[name], args)
    text = str(info.value)
    assert f"route_{name}.lua:" in text and message in text, text
