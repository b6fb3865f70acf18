from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mcpframe.testing import Servers
from servers import mcpframe_routelib


@pytest.fixture
def backends(mcpframe_servers: Servers) -> Callable[[int], list[int]]:
    """``backends(n)`` starts n memcached servers and returns their ports."""
    return lambda count: [mcpframe_servers.memcached() for _ in range(count)]


@pytest.fixture
def proxy(mcpframe_servers: Servers, tmp_path: Path) -> Callable[[str], int]:
    """``proxy(config_text)`` serves a route-library config; returns the port."""
    return lambda config_text: mcpframe_routelib(mcpframe_servers, config_text, tmp_path)
