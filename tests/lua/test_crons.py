"""The cron table of a config VM across loads (spec v2 7.2), without a server: a clock the
test moves, and the loader run as a reload runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpframe.errors import ConfigError
from mcpframe.lua.config import ConfigLoader
from mcpframe.registry import build_registry

CONFIG = """
loads = (loads or 0) + 1
function mcp_config_pools()
    ran = ran or {}
    mcp.register_cron("a", { every = EVERY_A, func = function() ran[#ran + 1] = "a" .. loads end })
    if loads == 1 then
        mcp.register_cron("old", { every = 1, func = function() ran[#ran + 1] = "old" end })
    end
    mcp.register_cron("once", { every = 2, rerun = false,
        func = function() ran[#ran + 1] = "once" .. loads end })
    FAIL_HERE
end
function mcp_config_routes() end
"""


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def loader() -> ConfigLoader:
    loader = ConfigLoader(build_registry())
    loader.crons.clock = Clock()
    return loader


def write(path: Path, every_a: int = 3, fail: bool = False) -> str:
    body = CONFIG.replace("EVERY_A", str(every_a))
    body = body.replace("FAIL_HERE", 'error("no")' if fail else "")
    path.write_text(body)
    return str(path)


def ran(loader: ConfigLoader) -> list[str]:
    vm = loader._config_vm
    assert vm is not None
    return [v.decode() for v in vm.globals().ran.values()]


def advance(loader: ConfigLoader, seconds: float) -> int:
    clock = loader.crons.clock
    assert isinstance(clock, Clock)
    clock.t += seconds
    return loader.crons.run_due().runs


def test_due_crons_run_once_ones_are_dropped(loader: ConfigLoader, tmp_path: Path) -> None:
    loader.load(write(tmp_path / "c.lua"))
    assert loader.crons.next_due() == 1001  # "old", every second
    assert advance(loader, 1) == 1
    assert advance(loader, 1) == 2  # old and once
    assert advance(loader, 1) == 2  # a and old
    assert ran(loader) == ["old", "old", "once1", "a1", "old"]
    assert set(loader.crons.entries) == {"a", "old"}


def test_a_reload_drops_crons_it_does_not_register(loader: ConfigLoader, tmp_path: Path) -> None:
    path = write(tmp_path / "c.lua")
    loader.load(path)
    advance(loader, 1)
    loader.load(path)  # globals survive: loads == 2, "old" not registered again
    advance(loader, 2)
    assert ran(loader) == ["old", "a2", "once2"]
    assert set(loader.crons.entries) == {"a"}


def test_same_every_keeps_the_next_run_time(loader: ConfigLoader, tmp_path: Path) -> None:
    loader.load(write(tmp_path / "c.lua"))
    advance(loader, 2)
    loader.load(write(tmp_path / "c.lua"))
    assert loader.crons.entries["a"].next == 1003  # not 1005: not pushed back
    loader.load(write(tmp_path / "c.lua", every_a=4))
    assert loader.crons.entries["a"].next == 1006  # another period: from now


def test_a_failed_reload_keeps_the_running_crons(loader: ConfigLoader, tmp_path: Path) -> None:
    loader.load(write(tmp_path / "c.lua"))
    before = dict(loader.crons.entries)
    with pytest.raises(ConfigError, match="no"):
        loader.load(write(tmp_path / "c.lua", fail=True))
    assert loader.crons.entries == before
    advance(loader, 1)
    assert ran(loader) == ["old"]


def test_schedule_config_reload_only_from_a_cron(loader: ConfigLoader, tmp_path: Path) -> None:
    path = tmp_path / "r.lua"
    path.write_text(
        """
        function mcp_config_pools()
            mcp.schedule_config_reload()
            mcp.register_cron("r", { every = 1, func = function()
                mcp.schedule_config_reload()
            end })
        end
        function mcp_config_routes() end
        """
    )
    loader.load(str(path))
    assert not loader.reload_requested  # asked during the load: no effect
    advance(loader, 1)
    assert loader.reload_requested


def test_register_cron_errors_with_a_config_that_replaces_debug(
    loader: ConfigLoader, tmp_path: Path
) -> None:
    path = tmp_path / "d.lua"
    path.write_text(
        """
        debug = { traceback = function(m) return m end }  -- as memcached's route library does
        function mcp_config_pools()
            local ok, e = pcall(mcp.register_cron, "x", 5)
            assert(e == "bad argument #2 to '?' (table expected, got number)", e)
        end
        function mcp_config_routes() end
        """
    )
    loader.load(str(path))
