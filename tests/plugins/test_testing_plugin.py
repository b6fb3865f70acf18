"""The pytest plugin for plugin authors: registered through pytest11, fixtures and checks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mcpframe.plugins import PluginManager
from mcpframe.registry import Registry


def test_registered_through_pytest11(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("mcpframe")
    assert plugin is not None and plugin.__name__ == "mcpframe.testing"


def test_fixtures_are_fresh(
    mcpframe_plugin_manager: PluginManager, mcpframe_registry: Registry
) -> None:
    from mcpframe.plugins import get_plugin_manager

    assert mcpframe_plugin_manager is not get_plugin_manager()
    assert "jump_hash" in mcpframe_registry.distributions


def test_third_party_suite_uses_fixtures_and_checks(tmp_path: Path) -> None:
    # What a plugin author's own test file looks like; run by a separate pytest, from a
    # directory with no conftest, so only the pytest11 entry point can provide the fixtures.
    (tmp_path / "test_author.py").write_text(
        textwrap.dedent(
            """
            from mcpframe.testing import check_distribution, check_hasher, check_key_filter


            def test_builtins(mcpframe_registry):
                check_distribution(mcpframe_registry.distributions["jump_hash"])
                check_hasher(mcpframe_registry.hashers["xxhash"])
                check_key_filter(mcpframe_registry.key_filters["stop"], b"|#|")


            def test_manager(mcpframe_plugin_manager):
                assert mcpframe_plugin_manager.failed == []
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
