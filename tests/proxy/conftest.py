from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.proxy.harness import Proxy


@pytest.fixture
def proxy_factory(tmp_path: Path) -> Iterator[Callable[[str], Proxy]]:
    """Build an in-process proxy (tests/proxy/harness.py) from a Lua config's text."""
    made: list[Proxy] = []

    def make(config: str) -> Proxy:
        path = tmp_path / f"routes{len(made)}.lua"
        path.write_text(textwrap.dedent(config))
        proxy = Proxy(path)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()
