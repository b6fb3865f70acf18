"""``mcpframe check --routelib FILE``: the route tree (listener tags, router mode, prefixes with
their command maps and handlers, children down to pools) and where sample keys go."""

from __future__ import annotations

import os

from tests.check.test_check_cli import check_json, run_check
from tests.helpers import ROOT
from tests.routelib.conftest import config
from tests.routelib.test_routing import PLACED

ENV = {**os.environ, "MCP_B1": "21001", "MCP_B2": "21002", "MCP_B3": "21003"}


def test_the_tree_as_json() -> None:
    report = check_json("--routelib", config("routing.lua"), "--key", "main/a", env=ENV)
    wheres = {p["name"]: p["where"].rsplit("/", 1)[1] for p in report["pools"]}
    assert (wheres["p.main"], wheres["p.set_zones.east"]) == ("routing.lua:7", "routing.lua:12")
    untagged, alt = report["routelib"]
    assert (untagged["tag"], alt["tag"]) == (None, "alt")
    assert untagged["router"] == {"mode": "prefix", "start": None, "stop": "/"}
    by_prefix = {m["prefix"]: m for m in untagged["map"]}
    assert by_prefix["main"]["handler"] == "route_direct"
    assert by_prefix["main"]["where"].endswith("routing.lua:23")
    assert by_prefix["main"]["children"] == [
        {"option": "child", "child": "pool main", "name": "main", "pools": ["main"]}
    ]
    assert [(c["command"], c["handler"]) for c in by_prefix["cmd"]["commands"]] == [
        ("get", "route_direct"), ("set", "route_direct"), ("all", "route_null"),
    ]  # fmt: skip
    assert by_prefix["west"]["options"] == {"local_zone": "west"}
    assert by_prefix["west"]["children"][0]["pools"] == ["set_zones.east", "set_zones.west"]
    nest = by_prefix["nest"]["children"]
    assert [c.get("handler") or c["child"] for c in nest] == ["route_null", "pool three"]
    assert untagged["cmap"][0]["command"] == "incr"
    assert untagged["default"]["children"][0]["child"] == "pool three"
    assert alt["default"]["children"][0]["child"] == "pool two"
    # the backend 1.6.45 put main/a on (tests/routelib/test_routing.py)
    (placed,) = untagged["keys"]
    assert placed["via"] == "prefix main"
    labels = {1: "127.0.0.1:21001", 2: "bee 127.0.0.1:21002", 3: "127.0.0.1:21003"}
    assert placed["pools"] == {"main": labels[PLACED[b"main/a"]]}


def test_the_tree_as_text() -> None:
    done = run_check("--routelib", config("routing.lua"), "--key", "zz/1", env=ENV)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "route tree\n  untagged: storage commands -> router prefix stop '/'\n" in text
    assert "    prefix cmd -> cmdmap\n      get -> route_direct  (" in text
    assert "    prefix split -> route_split  (" in text
    assert "      child_b: pool two\n" in text
    assert "  tag alt: storage commands -> no router\n    default -> route_direct  (" in text
    assert "    key zz/1: cmap (by command), else default\n      three: 127.0.0.1:21003\n" in text


def test_spec_example_with_a_handler_in_lua() -> None:
    spec = ROOT / "tests" / "configs" / "spec_v2"
    env = {**ENV, "SPEC_PORT_A": "21001", "SPEC_PORT_B": "21002", "SPEC_PORT_C": "21003"}
    done = run_check("--routelib", str(spec / "routelib.lua"), str(spec / "hello.lua"), env=env)
    assert done.returncode == 0, done.stderr
    # an option value keeps to its line: control characters escaped
    assert (
        f"    prefix hello -> route_hello  ({spec}/routelib.lua:30)  "
        "msg=SERVER_ERROR hello from hello\\r\\n\n    prefix users -> "
    ) in done.stdout
