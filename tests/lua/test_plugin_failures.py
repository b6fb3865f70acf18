"""A plugin that raises while placing a key is named in the error; other keys are unaffected."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpframe.errors import PluginRuntimeError
from mcpframe.lua.config import ConfigLoader
from tests.plugins.support import fake, registry


def test_raising_hasher_is_named_and_other_keys_still_place(tmp_path: Path) -> None:
    reg = registry(fake("hash_fragile", "raising", package="mcpframe-fragile", version="0.3"))
    cfg = tmp_path / "routes.lua"
    cfg.write_text(
        "function mcp_config_pools()\n"
        "  return { p = mcp.pool({ mcp.backend('a', 'h', 1), mcp.backend('b', 'h', 2) },\n"
        "                        { hash = mcp.hash_fragile }) }\n"
        "end\n"
        "function mcp_config_routes(c) end\n"
    )
    pool = ConfigLoader(reg).load(str(cfg)).named_pools()["p"]
    assert pool.select(b"fine") in (0, 1)
    with pytest.raises(PluginRuntimeError) as err:
        pool.select(b"boom-key")
    text = str(err.value)
    assert "hasher plugin 'fragile'" in text
    assert "mcpframe-fragile 0.3" in text
    assert "cannot hash this key" in text
    assert "routes.lua:2" in text
    assert pool.select(b"fine") in (0, 1)
