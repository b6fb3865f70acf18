"""Loading: entry points, isolated failures, environment switches, tracing, the cached factory."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from mcpframe import plugins
from mcpframe.errors import NotInstalledError, PluginLoadError, UnknownPluginError
from mcpframe.plugins import (
    PluginManager,
    PluginSource,
    create_plugin_manager,
    discover_entry_points,
    get_plugin_manager,
)
from mcpframe.registry import build_registry
from tests.plugins.support import fake, manager, registry

BUILTINS = {
    "dist_jump_hash",
    "dist_ring_hash",
    "hash_xxhash",
    "hash_murmur3",
    "hash_md5",
    "filter_stop",
    "filter_tags",
    "logger_stderr",
    "logger_jsonfile",
    # the route library's handlers (docs/routelib.md)
    "route_allfastest",
    "route_allsync",
    "route_direct",
    "route_failover",
    "route_null",
    "route_random",
    "route_ratelim",
    "route_split",
    "route_ttl",
    "route_zfailover",
}


def names(pm: PluginManager) -> set[str]:
    return {name for name, plugin in pm.list_name_plugin() if plugin is not None}


def test_discovers_the_installed_builtins() -> None:
    found = {s.entry_point: s for s in discover_entry_points()}
    assert set(found) >= BUILTINS
    for name in BUILTINS:
        assert found[name].package == "mcpframe"
        assert found[name].builtin
        assert found[name].value == f"mcpframe.default_plugins.{name}"


def test_fresh_manager_loads_every_builtin() -> None:
    pm = create_plugin_manager(environ={})
    assert names(pm) >= BUILTINS
    assert pm.failed == []


def test_get_plugin_manager_is_cached_and_resettable() -> None:
    first = get_plugin_manager()
    assert get_plugin_manager() is first
    get_plugin_manager.cache_clear()
    assert get_plugin_manager() is not first


def test_importing_mcpframe_loads_no_plugin() -> None:
    # No loading at import time: a fresh interpreter importing every plugin-side module must
    # not have imported any default plugin.
    code = (
        "import sys, mcpframe.plugins, mcpframe.registry, mcpframe.testing, mcpframe.plugins_cli;"
        "print(sorted(m for m in sys.modules if m.startswith('mcpframe.default_plugins.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_not_installed_error() -> None:
    with pytest.raises(NotInstalledError) as info:
        create_plugin_manager([], environ={})
    assert str(info.value) == (
        "mcpframe is not installed (no built-in plugins found in entry-point group "
        "'mcpframe'); run pip install -e ."
    )
    # Third-party plugins alone do not count as an installed mcpframe.
    with pytest.raises(NotInstalledError):
        create_plugin_manager([fake("good", "good")], environ={})


def test_not_installed_error_from_cached_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "discover_entry_points", lambda: [])
    with pytest.raises(NotInstalledError, match="pip install -e"):
        get_plugin_manager()


def test_third_party_plugin_loads_with_provenance() -> None:
    pm = manager(fake("good", "good", package="mcpframe-good", version="2.5"))
    assert "good" in names(pm)
    assert pm.source_of("good") == PluginSource(
        "good", "tests.plugins.fakes.good", "mcpframe-good", "2.5"
    )
    assert not pm.source_of("good").builtin


def test_failing_import_is_isolated_and_attributed() -> None:
    pm = manager(
        fake("broken", "broken_import", package="mcpframe-broken"),
        fake("good", "good", package="mcpframe-good"),
    )
    assert names(pm) >= BUILTINS | {"good"}
    assert "broken" not in names(pm)
    [error] = pm.failed
    assert isinstance(error, PluginLoadError)
    assert (error.plugin, error.package) == ("broken", "mcpframe-broken")
    assert error.cause == "ImportError: No module named 'fancy_dependency'"
    assert str(error) == (
        "plugin 'broken' from package 'mcpframe-broken' failed to load: "
        "ImportError: No module named 'fancy_dependency'"
    )
    # and the rest of the system works
    reg = build_registry(pm)
    assert "crc32" in reg.hashers
    assert reg.failed == [error]


def test_missing_module_and_attribute() -> None:
    pm = manager(
        PluginSource("ghost", "tests.plugins.fakes.does_not_exist", "mcpframe-ghost", "1"),
        PluginSource("noattr", "tests.plugins.fakes.good:nothing_here", "mcpframe-noattr", "1"),
    )
    causes = {e.plugin: e.cause for e in pm.failed}
    assert causes["ghost"].startswith("ModuleNotFoundError: No module named")
    assert causes["noattr"].startswith("AttributeError:")


def test_entry_point_with_attribute() -> None:
    pm = manager(PluginSource("twice", "tests.plugins.fakes.bad_records:twice", "pkg", "1"))
    assert "twice" in names(pm)


def test_misspelt_hook_is_caught_by_check_pending() -> None:
    pm = manager(fake("misspelt", "bad_records:misspelt_hook", package="mcpframe-typo"))
    [error] = pm.failed
    assert (error.plugin, error.package) == ("misspelt", "mcpframe-typo")
    assert "mcpframe_hasher" in error.cause
    assert "misspelt" not in names(pm)
    pm.check_pending()  # nothing left pending


def test_bad_hook_signature_fails_at_register() -> None:
    pm = manager(fake("badsig", "bad_records:bad_signature"))
    [error] = pm.failed
    assert error.plugin == "badsig"
    assert "PluginValidationError" in error.cause
    assert "config" in error.cause


def test_duplicate_entry_point_name() -> None:
    pm = manager(
        fake("good", "good", package="mcpframe-good"),
        fake("good", "dup_crc32", package="mcpframe-other"),
    )
    [error] = pm.failed
    assert error.package == "mcpframe-other"
    assert "already used by package 'mcpframe-good'" in error.cause


# --- environment switches --------------------------------------------------------------------


def test_plugins_switch_loads_only_listed_third_party_and_all_builtins() -> None:
    pm = manager(
        fake("good", "good", package="mcpframe-good"),
        fake("dup", "dup_crc32", package="mcpframe-dup"),
        environ={"MCPFRAME_PLUGINS": "good"},
    )
    assert names(pm) == BUILTINS | {"good"}
    assert [(d.source.entry_point, d.reason) for d in pm.disabled] == [
        ("dup", "not listed in MCPFRAME_PLUGINS")
    ]


def test_plugins_switch_empty_means_builtins_only() -> None:
    pm = manager(fake("good", "good"), environ={"MCPFRAME_PLUGINS": ""})
    assert names(pm) == BUILTINS


def test_plugins_switch_accepts_package_names_and_spaces() -> None:
    pm = manager(
        fake("good", "good", package="mcpframe-good"),
        environ={"MCPFRAME_PLUGINS": " MCPFrame_Good , "},
    )
    assert "good" in names(pm)


def test_plugins_switch_reports_unknown_names() -> None:
    pm = manager(environ={"MCPFRAME_PLUGINS": "nosuchplugin"})
    [error] = pm.failed
    assert error.plugin == "nosuchplugin"
    assert "listed in MCPFRAME_PLUGINS but no such plugin is installed" in error.cause


def test_disable_switch_blocks_third_party_and_builtins() -> None:
    pm = manager(
        fake("good", "good", package="mcpframe-good"),
        environ={"MCPFRAME_DISABLE_PLUGINS": "mcpframe-good,hash_murmur3"},
    )
    assert names(pm) == BUILTINS - {"hash_murmur3"}
    assert pm.is_blocked("good") and pm.is_blocked("hash_murmur3")
    reasons = {d.source.entry_point: d.reason for d in pm.disabled}
    assert reasons == {
        "good": "disabled by MCPFRAME_DISABLE_PLUGINS",
        "hash_murmur3": "disabled by MCPFRAME_DISABLE_PLUGINS",
    }
    reg = build_registry(pm)
    assert "murmur3" not in reg.hashers
    with pytest.raises(
        UnknownPluginError, match=r"murmur3.*is disabled by MCPFRAME_DISABLE_PLUGINS"
    ):
        reg.hashers["murmur3"]


def test_disable_wins_over_plugins() -> None:
    pm = manager(
        fake("good", "good"),
        environ={"MCPFRAME_PLUGINS": "good", "MCPFRAME_DISABLE_PLUGINS": "good"},
    )
    assert "good" not in names(pm)


def test_switches_read_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPFRAME_DISABLE_PLUGINS", "filter_tags")
    assert "filter_tags" not in names(get_plugin_manager())
    assert "tags" not in build_registry().key_filters


def test_trace_switch_writes_hook_calls_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    registry(fake("broken", "broken_import"), environ={"MCPFRAME_TRACE_PLUGINS": "1"})
    err = capsys.readouterr().err
    assert "mcpframe_distributions" in err and "[hook]" in err
    assert "loaded dist_jump_hash from mcpframe" in err
    assert "failed broken from mcpframe-fake" in err


@pytest.mark.parametrize("value", ["", "0"])
def test_trace_switch_off(capsys: pytest.CaptureFixture[str], value: str) -> None:
    registry(environ={"MCPFRAME_TRACE_PLUGINS": value})
    assert capsys.readouterr().err == ""


def test_default_plugin_modules_are_plain_plugins() -> None:
    # Same shape as a third-party plugin: a module whose hook functions carry the marker.
    for name in BUILTINS:
        module = importlib.import_module(f"mcpframe.default_plugins.{name}")
        hooks = [a for a in dir(module) if a.startswith("mcpframe_")]
        assert hooks, name
        for hook in hooks:
            assert hasattr(getattr(module, hook), "mcpframe_impl"), (name, hook)
