"""The registry: validation, conflicts naming both packages, lookups and provenance."""

from __future__ import annotations

import pytest

from mcpframe.errors import PluginConflictError, UnknownPluginError
from mcpframe.plugins import PluginSource
from mcpframe.registry import Registry, build_registry
from mcpframe.types import Distribution, Hasher, KeyFilter, Logger, PluginKind
from tests.plugins.support import fake, manager, registry


def test_lookups_by_kind(mcpframe_registry: Registry) -> None:
    assert isinstance(mcpframe_registry.distributions["jump_hash"], Distribution)
    assert isinstance(mcpframe_registry.hashers["xxhash"], Hasher)
    assert isinstance(mcpframe_registry.key_filters["stop"], KeyFilter)
    assert isinstance(mcpframe_registry.loggers["jsonfile"], Logger)
    assert mcpframe_registry.table(PluginKind.HASHER) is mcpframe_registry.hashers
    assert registry().failed == []


def test_tables_are_mappings(mcpframe_registry: Registry) -> None:
    hashers = mcpframe_registry.hashers
    assert list(hashers) == sorted(hashers)
    assert "xxhash" in hashers and "nope" not in hashers
    assert 3 not in hashers  # type: ignore[comparison-overlap]
    assert hashers.get("nope") is None
    assert hashers.get("nope", "dflt") == "dflt"
    assert dict(hashers.items())["md5"] is hashers["md5"]


def test_unknown_name_lists_available() -> None:
    with pytest.raises(UnknownPluginError) as info:
        registry().distributions["modulo"]
    assert str(info.value) == "unknown key distribution 'modulo'; available: jump_hash, ring_hash"
    assert not isinstance(info.value, KeyError)


def test_unknown_name_of_failed_plugin_says_why() -> None:
    reg = registry(fake("crc32", "broken_import", package="mcpframe-crc32"))
    with pytest.raises(UnknownPluginError) as info:
        reg.hashers["crc32"]
    assert str(info.value) == (
        "key hasher 'crc32' is not available: plugin 'crc32' from package 'mcpframe-crc32' "
        "failed to load: ImportError: No module named 'fancy_dependency'"
    )


def test_failed_plugin_found_by_package_name_convention() -> None:
    reg = registry(fake("whatever", "broken_import", package="mcpframe-modulo"))
    with pytest.raises(UnknownPluginError, match="'modulo' is not available: plugin 'whatever'"):
        reg.distributions["modulo"]


def test_provenance(mcpframe_registry: Registry) -> None:
    source = mcpframe_registry.distributions.source("ring_hash")
    assert (source.entry_point, source.package, source.builtin) == (
        "dist_ring_hash",
        "mcpframe",
        True,
    )
    assert source.version
    with pytest.raises(UnknownPluginError):
        mcpframe_registry.hashers.source("nope")


def test_third_party_records_and_provenance() -> None:
    reg = registry(fake("good", "good", package="mcpframe-good", version="2.5"))
    assert reg.hashers["crc32"].description == "CRC-32 twice"
    assert reg.key_hasher(reg.distributions["modulo"]) is reg.hashers["crc32"]
    assert reg.key_hasher(reg.distributions["jump_hash"]) is None
    assert "prefix" in reg.key_filters and "memory" in reg.loggers
    assert reg.loggers.source("memory") == PluginSource(
        "good", "tests.plugins.fakes.good", "mcpframe-good", "2.5"
    )


def test_conflict_with_builtin_names_both_packages() -> None:
    with pytest.raises(PluginConflictError) as info:
        registry(fake("fastxx", "dup_xxhash", package="mcpframe-fastxx", version="0.3"))
    message = str(info.value)
    assert "key hasher 'xxhash' is provided by" in message
    assert "plugin 'hash_xxhash' from package 'mcpframe'" in message
    assert "plugin 'fastxx' from package 'mcpframe-fastxx' 0.3" in message
    assert "MCPFRAME_DISABLE_PLUGINS" in message


def test_conflict_between_two_third_parties() -> None:
    with pytest.raises(PluginConflictError) as info:
        registry(
            fake("good", "good", package="mcpframe-good"),
            fake("crc", "dup_crc32", package="mcpframe-crc"),
        )
    assert "'mcpframe-good'" in str(info.value) and "'mcpframe-crc'" in str(info.value)


def test_conflict_resolved_by_disabling_one() -> None:
    reg = registry(
        fake("fastxx", "dup_xxhash", package="mcpframe-fastxx"),
        environ={"MCPFRAME_DISABLE_PLUGINS": "fastxx"},
    )
    assert reg.hashers.source("xxhash").package == "mcpframe"


@pytest.mark.parametrize(
    ("target", "cause"),
    [
        (
            "bad_name",
            "mcpframe_hashers() returned key hasher name 'Bad-Name', which is not a valid",
        ),
        ("wrong_type", "mcpframe_hashers() returned KeyFilter(name='oops'"),
        ("raises", "mcpframe_key_filters() raised RuntimeError: cannot read my config"),
        ("twice", "mcpframe_hashers() returned key hasher 'twice' twice"),
        ("missing_key_hasher", "distribution 'orphan' names key_hasher 'nope', which no loaded"),
    ],
)
def test_invalid_records_fail_that_plugin_only(target: str, cause: str) -> None:
    reg = registry(
        fake("bad", f"bad_records:{target}", package="mcpframe-bad"),
        fake("good", "good", package="mcpframe-good"),
    )
    [error] = reg.failed
    assert (error.plugin, error.package) == ("bad", "mcpframe-bad")
    assert error.cause.startswith(cause)
    assert "crc32" in reg.hashers and "xxhash" in reg.hashers


def test_none_result_provides_nothing() -> None:
    reg = registry(fake("none", "bad_records:returns_none"))
    assert reg.failed == []


def test_key_hasher_dependency_cascades() -> None:
    # If the plugin providing a hasher fails, a distribution naming it fails too, with a reason.
    pm = manager(fake("good", "good", package="mcpframe-good"))
    pm.unregister(name="good")
    pm.register(_DistOnly(), name="distonly")
    reg = build_registry(pm)
    [error] = reg.failed
    assert error.plugin == "distonly" and "key_hasher 'crc32'" in error.cause
    assert error.package == "unknown"  # registered directly, not through an entry point
    with pytest.raises(UnknownPluginError) as info:
        reg.distributions["needs_crc"]
    assert str(info.value) == (
        "key distribution 'needs_crc' is not available: plugin 'distonly' from package "
        "'unknown' failed to load: distribution 'needs_crc' names key_hasher 'crc32', which no "
        "loaded plugin provides"
    )


class _DistOnly:
    from mcpframe.hookspecs import hookimpl

    @hookimpl
    def mcpframe_distributions(self) -> list[Distribution]:
        return [Distribution("needs_crc", lambda s, o: lambda h: 0, key_hasher="crc32")]


def test_registry_is_rebuilt_without_reimporting() -> None:
    # Reload builds a new registry from the same manager: the hooks are simply called again.
    pm = manager()
    first, second = build_registry(pm), build_registry(pm)
    assert first is not second
    assert first.hashers["xxhash"] == second.hashers["xxhash"]


def test_registry_repr() -> None:
    assert repr(registry()) == (
        "<Registry distributions=2, hashers=3, key_filters=2, loggers=2, routes=10, failed=0>"
    )
