"""`plugins list`, through typer's CliRunner on the sub-app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mcpframe import plugins
from mcpframe.plugins_cli import COLUMNS, app
from tests.plugins.support import fake

runner = CliRunner()


def use_sources(monkeypatch: pytest.MonkeyPatch, *extra: plugins.PluginSource) -> None:
    """Make the CLI's (cached) manager see the built-ins plus ``extra``."""
    builtins = [s for s in plugins.discover_entry_points() if s.builtin]
    monkeypatch.setattr(plugins, "discover_entry_points", lambda: [*builtins, *extra])
    plugins.get_plugin_manager.cache_clear()


def list_json(*args: str) -> list[dict[str, str | None]]:
    result = runner.invoke(app, ["list", "--json", *args])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, str | None]] = json.loads(result.stdout)
    return rows


ROUTE_HANDLERS = (
    "allfastest",
    "allsync",
    "direct",
    "failover",
    "null",
    "random",
    "ratelim",
    "split",
    "ttl",
    "zfailover",
)


def test_list_json_shows_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    use_sources(monkeypatch)
    rows = {(r["kind"], r["name"]): r for r in list_json()}
    assert set(rows) == {
        ("distribution", "jump_hash"),
        ("distribution", "ring_hash"),
        ("hasher", "xxhash"),
        ("hasher", "md5"),
        ("hasher", "murmur3"),
        ("key_filter", "stop"),
        ("key_filter", "tags"),
        ("logger", "stderr"),
        ("logger", "jsonfile"),
        *(("route", name) for name in ROUTE_HANDLERS),
    }
    ring = rows[("distribution", "ring_hash")]
    assert ring["lua_name"] == "mcp.dist_ring_hash"
    assert ring["package"] == "mcpframe" and ring["version"] and ring["status"] == "ok"
    assert ring["entry_point"] == "dist_ring_hash" and ring["error"] is None
    assert rows[("hasher", "md5")]["lua_name"] == "mcp.hash_md5, mcp.dist_ring_hash.hash"
    assert rows[("hasher", "xxhash")]["lua_name"] == "mcp.hash_xxhash"
    assert rows[("key_filter", "stop")]["lua_name"] == 'filter "stop"'
    assert rows[("logger", "jsonfile")]["lua_name"] == "logger jsonfile"
    for row in rows.values():
        assert set(COLUMNS) <= set(row)


def test_list_json_shows_failed_and_disabled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    use_sources(
        monkeypatch,
        fake("broken", "broken_import", package="mcpframe-broken", version="0.9"),
        fake("good", "good", package="mcpframe-good", version="2.5"),
    )
    monkeypatch.setenv("MCPFRAME_DISABLE_PLUGINS", "hash_murmur3")
    rows = list_json()
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed == [
        {
            "name": "broken",
            "kind": "-",
            "lua_name": "-",
            "package": "mcpframe-broken",
            "version": "0.9",
            "status": "failed",
            "entry_point": "broken",
            "error": "ImportError: No module named 'fancy_dependency'",
            "description": "",
        }
    ]
    disabled = [r for r in rows if r["status"] == "disabled"]
    assert [(r["name"], r["error"]) for r in disabled] == [
        ("hash_murmur3", "disabled by MCPFRAME_DISABLE_PLUGINS")
    ]
    crc32 = next(r for r in rows if r["name"] == "crc32")
    assert (crc32["package"], crc32["version"], crc32["status"]) == ("mcpframe-good", "2.5", "ok")


def test_list_table(monkeypatch: pytest.MonkeyPatch) -> None:
    use_sources(monkeypatch, fake("broken", "broken_import", package="mcpframe-broken"))
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "LUA", "NAME", "PACKAGE", "VERSION", "STATUS"]
    assert any(
        line.split()[:3] == ["jump_hash", "distribution", "mcp.dist_jump_hash"] for line in lines
    )
    broken = next(line for line in lines if line.startswith("broken "))
    assert "mcpframe-broken" in broken
    assert broken.endswith("failed: ImportError: No module named 'fancy_dependency'")


def test_list_shows_route_handlers_with_kind_route(monkeypatch: pytest.MonkeyPatch) -> None:
    use_sources(monkeypatch, fake("routes", "routes", package="mcpframe-routes", version="1.2"))
    rows = {(r["kind"], r["name"]): r for r in list_json()}
    assert rows[("route", "first")] == {
        "name": "first",
        "kind": "route",
        "lua_name": "route_first",
        "package": "mcpframe-routes",
        "version": "1.2",
        "status": "ok",
        "entry_point": "routes",
        "error": None,
        "description": "ask the first child only",
    }
    assert rows[("route", "noop")]["lua_name"] == "route_noop"
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    first = next(line for line in lines if line.startswith("first "))
    assert first.split() == ["first", "route", "route_first", "mcpframe-routes", "1.2", "ok"]


def test_list_route_handler_conflict_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    use_sources(
        monkeypatch,
        fake("routes", "routes", package="mcpframe-routes"),
        fake("first", "dup_route", package="mcpframe-first"),
    )
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 1
    assert "error: route handler 'first' is provided by" in result.stderr
    assert "'mcpframe-routes'" in result.stderr and "'mcpframe-first'" in result.stderr


def test_list_conflict_exits_1_with_message(monkeypatch: pytest.MonkeyPatch) -> None:
    use_sources(monkeypatch, fake("fastxx", "dup_xxhash", package="mcpframe-fastxx"))
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error: key hasher 'xxhash' is provided by" in result.stderr
    assert "'mcpframe-fastxx'" in result.stderr and "'mcpframe'" in result.stderr


def test_list_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "discover_entry_points", lambda: [])
    plugins.get_plugin_manager.cache_clear()
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 1
    assert "mcpframe is not installed" in result.stderr


def test_help_is_one_line_per_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "List every plugin" in result.stdout


def test_the_main_app_has_plugins_as_it_has_check() -> None:
    # Both sub-commands are mounted when mcpframe.cli is imported, not only by main().
    from mcpframe import cli

    result = runner.invoke(cli.app, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert {r["name"] for r in json.loads(result.stdout)} >= {"jump_hash", "xxhash"}
    assert runner.invoke(cli.app, ["check", "--help"]).exit_code == 0
