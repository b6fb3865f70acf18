from __future__ import annotations

from collections.abc import Iterator

import pytest

from mcpframe.plugins import ENV_DISABLE_PLUGINS, ENV_PLUGINS, ENV_TRACE_PLUGINS, get_plugin_manager


@pytest.fixture(autouse=True)
def _clean_plugin_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MCPFRAME_* switch leaks in from the shell, and no test sees another's cached manager."""
    for var in (ENV_PLUGINS, ENV_DISABLE_PLUGINS, ENV_TRACE_PLUGINS):
        monkeypatch.delenv(var, raising=False)
    get_plugin_manager.cache_clear()
    yield
    get_plugin_manager.cache_clear()
