"""memcached 1.6.45's ``mcp.backend{}`` keys and backend tunables (spec v2 7.1, 8.1): checked
with 1.6.45's error texts and carried in the backend records the proxy builds from."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mcpframe.config import BackendLog, BackendSpec, LoadedConfig
from mcpframe.errors import ConfigError

Load = Callable[[str], LoadedConfig]


def backends(load: Load, body: str) -> list[BackendSpec]:
    loaded = load(
        "function mcp_config_pools()\n" + body + "\nend\nfunction mcp_config_routes(p) end\n"
    )
    return loaded.named_pools()["p"].backends


def one(load: Load, options: str, before: str = "") -> BackendSpec:
    (spec,) = backends(
        load,
        f"{before}\nreturn {{ p = mcp.pool({{ mcp.backend({{ label = 'b', host = '127.0.0.1',"
        f" port = 1, {options} }}) }}) }}",
    )
    return spec


def test_defaults_are_1_6_45s(mcpframe_load_config: Load) -> None:
    spec = one(mcpframe_load_config, "")
    assert (spec.depthlimit, spec.down, spec.connections, spec.log) == (0, False, 1, None)
    assert (spec.flaptime, spec.flapbackofframp, spec.flapbackoffmax) == (0.0, 1.5, 3600)


def test_keys_are_carried(mcpframe_load_config: Load) -> None:
    spec = one(
        mcpframe_load_config,
        "down = 1, depthlimit = 7, connections = 3, flaptime = 0.25, flapbackofframp = 2,"
        " flapbackoffmax = 10.7, retrywaittime = 2.5, bogus = 'ignored'",
    )
    assert spec.down is True  # any true value
    assert (spec.depthlimit, spec.connections) == (7, 3)
    assert (spec.flaptime, spec.flapbackofframp, spec.flapbackoffmax) == (0.25, 2.0, 10)
    assert spec.retrytimeout == 3  # whole seconds, .5 rounds up


@pytest.mark.parametrize(
    ("given", "seconds"), [(0.2, 1), (0.5, 1), (1.49, 1), (1.5, 2), (3, 3), (7.6, 8)]
)
def test_retry_wait_rounding(mcpframe_load_config: Load, given: float, seconds: int) -> None:
    assert one(mcpframe_load_config, f"retrywaittime = {given}").retrytimeout == seconds
    spec = one(mcpframe_load_config, "", before=f"mcp.backend_retry_waittime({given})")
    assert spec.retrytimeout == seconds


def test_retrytimeout_keeps_1_6_20s_fractions_and_wins(mcpframe_load_config: Load) -> None:
    spec = one(mcpframe_load_config, "retrywaittime = 5, retrytimeout = 0.5")
    assert spec.retrytimeout == 0.5


def test_global_tunables_are_the_defaults_of_later_backends(mcpframe_load_config: Load) -> None:
    a, b = backends(
        mcpframe_load_config,
        """
        local a = mcp.backend("a", "127.0.0.1", 1)
        mcp.backend_depth_limit(4)
        mcp.backend_flap_time(2.5)
        mcp.backend_flap_backoff_ramp(1.0)
        mcp.backend_flap_backoff_max(60.9)
        local b = mcp.backend("b", "127.0.0.1", 2)
        return { p = mcp.pool({ a, b }) }
        """,
    )
    assert (a.depthlimit, a.flaptime, a.flapbackofframp, a.flapbackoffmax) == (0, 0.0, 1.5, 3600)
    assert (b.depthlimit, b.flaptime, b.flapbackofframp, b.flapbackoffmax) == (4, 2.5, 1.1, 60)


def test_log_option(mcpframe_load_config: Load) -> None:
    spec = one(mcpframe_load_config, "log = { deadline = 250, errors = true, tag = 'slow' }")
    assert spec.log == BackendLog(deadline=250, rate=0, errors=True, tag="slow")
    # Nothing asked for: every result is logged.
    assert one(mcpframe_load_config, "log = {}").log == BackendLog(rate=1)
    # The tag's text counts, so equal options share a connection (spec v2 8.2 [R]).
    assert one(mcpframe_load_config, "log = { tag = 'x' }") == one(
        mcpframe_load_config, "log = { tag = 'x' }"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("depthlimit = -1", "depthlimit must be >= 0"),
        ("connections = 0", "backend connections argument must be >= 0"),
        ("connections = 9", "backend connections argument must be <= 8"),
        ("log = true", "backend log option must be a table"),
        ("log = { deadline = -1 }", "backend log deadline must be >= 0"),
        ("log = { rate = -1 }", "backend log sample rate must be >= 0"),
        ("log = { errors = 1 }", "(boolean expected, got number)"),
        ("flaptime = 'x'", "(number expected, got string)"),
        ("connections = 1.5", "(number has no integer representation)"),
    ],
)
def test_key_errors(mcpframe_load_config: Load, options: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        one(mcpframe_load_config, options)
    assert message in str(err.value)
    assert ".lua:3:" in str(err.value)  # the line of the mcp.backend call


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("mcp.backend_depth_limit(-1)", "backend_depth_limit must be >= 0"),
        ("mcp.backend_depth_limit(1.5)", "number has no integer representation"),
        ("mcp.backend_flap_time()", "bad argument #1 to 'backend_flap_time' (number expected"),
        ("mcp.backend_retry_waittime('x')", "'backend_retry_waittime' (number expected"),
        ("mcp.backend_flap_backoff_ramp(nil)", "'backend_flap_backoff_ramp' (number expected"),
        ("mcp.backend_flap_backoff_max({})", "'backend_flap_backoff_max' (number expected"),
    ],
)
def test_tunable_errors(mcpframe_load_config: Load, call: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        backends(mcpframe_load_config, f"{call}\nreturn {{ p = mcp.pool({{}}) }}")
    assert message in str(err.value)
    assert ".lua:2:" in str(err.value)
