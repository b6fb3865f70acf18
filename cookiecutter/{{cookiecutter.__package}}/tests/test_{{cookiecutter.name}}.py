"""Tests for {{ cookiecutter.__package }}. Install the package first: ``pip install -e '.[test]'``.

The fixtures (``mcpframe_registry``{% if cookiecutter.kind not in ("logger", "route") %}, ``mcpframe_load_config``{% endif %}) and the contract checks come
with mcpframe, from its pytest plugin ``mcpframe.testing``.
"""

from __future__ import annotations

import json
import subprocess
import sys
{%- if cookiecutter.kind == "logger" %}
from pathlib import Path

import pytest
{%- elif cookiecutter.kind == "route" %}
{% else %}
from collections.abc import Callable
{% endif %}
{%- if cookiecutter.kind == "dist" %}
from mcpframe.config import LoadedConfig
from mcpframe.registry import Registry
from mcpframe.testing import check_distribution
{%- elif cookiecutter.kind == "hasher" %}
from mcpframe.config import LoadedConfig
from mcpframe.registry import Registry
from mcpframe.testing import check_hasher
{%- elif cookiecutter.kind == "key_filter" %}
from mcpframe.config import LoadedConfig
from mcpframe.registry import Registry
from mcpframe.testing import check_key_filter
{%- elif cookiecutter.kind == "route" %}
from mcpframe.registry import Registry
from mcpframe.testing import check_route_handler
{%- else %}
from mcpframe.registry import Registry
{%- endif %}

NAME = "{{ cookiecutter.name }}"
PACKAGE = "{{ cookiecutter.__package }}"
{%- if cookiecutter.kind not in ("logger", "route") %}
CONFIG = """
function mcp_config_pools()
    local backends = {
        mcp.backend("b1", "127.0.0.1", 11211),
        mcp.backend("b2", "127.0.0.1", 11212),
        mcp.backend("b3", "127.0.0.1", 11213),
    }
{%- if cookiecutter.kind == "dist" %}
    return { main = mcp.pool(backends, { dist = mcp.dist_{{ cookiecutter.name }} }) }
{%- elif cookiecutter.kind == "hasher" %}
    return { main = mcp.pool(backends, { hash = mcp.hash_{{ cookiecutter.name }} }) }
{%- else %}
    return { main = mcp.pool(backends, { filter = "{{ cookiecutter.name }}", filter_conf = ":/" }) }
{%- endif %}
end

function mcp_config_routes(pools)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        return pools.main(r)
    end)
end
"""
{%- endif %}


def test_listed_by_mcpframe_plugins_list() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "mcpframe", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {row["name"]: row for row in json.loads(listed.stdout) if row["package"] == PACKAGE}
    assert rows[NAME]["status"] == "ok", rows[NAME]["error"]
{%- if cookiecutter.kind == "dist" %}
    assert rows[NAME]["lua_name"] == f"mcp.dist_{NAME}"
{%- elif cookiecutter.kind == "hasher" %}
    assert rows[NAME]["lua_name"] == f"mcp.hash_{NAME}"
{%- elif cookiecutter.kind == "key_filter" %}
    assert rows[NAME]["lua_name"] == f'filter "{NAME}"'
{%- elif cookiecutter.kind == "route" %}
    assert (rows[NAME]["kind"], rows[NAME]["lua_name"]) == ("route", f"route_{NAME}")
{%- else %}
    assert rows[NAME]["lua_name"] == f"logger {NAME}"
{%- endif %}
{% if cookiecutter.kind == "dist" %}

def test_meets_the_distribution_contract(mcpframe_registry: Registry) -> None:
    # Hash modulo n moves most keys when a backend is added, hence consistent=False.
    check_distribution(mcpframe_registry.distributions[NAME], consistent=False)


def test_a_config_using_it_loads(mcpframe_load_config: Callable[[str], LoadedConfig]) -> None:
    pool = mcpframe_load_config(CONFIG).named_pools()["main"]
    assert pool.dist == NAME
    assert {pool.select(b"key%d" % i) for i in range(100)} == {0, 1, 2}
{%- elif cookiecutter.kind == "hasher" %}

def test_meets_the_hasher_contract(mcpframe_registry: Registry) -> None:
    check_hasher(mcpframe_registry.hashers[NAME])


def test_a_config_using_it_loads(mcpframe_load_config: Callable[[str], LoadedConfig]) -> None:
    pool = mcpframe_load_config(CONFIG).named_pools()["main"]
    assert pool.hash == NAME
    assert {pool.select(b"key%d" % i) for i in range(100)} == {0, 1, 2}
{%- elif cookiecutter.kind == "key_filter" %}

def test_meets_the_key_filter_contract(mcpframe_registry: Registry) -> None:
    check_key_filter(mcpframe_registry.key_filters[NAME], b":/")
    check_key_filter(mcpframe_registry.key_filters[NAME], b"{}")


def test_a_config_using_it_loads(mcpframe_load_config: Callable[[str], LoadedConfig]) -> None:
    pool = mcpframe_load_config(CONFIG).named_pools()["main"]
    assert pool.filter == NAME
    # Keys sharing what the filter keeps land together.
    for i in range(50):
        assert pool.select(b"user%d:a" % i) == pool.select(b"user%d/b" % i)
    assert {pool.select(b"user%d:a" % i) for i in range(100)} == {0, 1, 2}
{%- elif cookiecutter.kind == "route" %}

def test_meets_the_route_handler_contract(mcpframe_registry: Registry) -> None:
    # The Lua compiles, defines exactly route_<name>_conf and _start, the conf function
    # accepts these arguments and refuses the others, and start readies the funcgen.
    conf = check_route_handler(
        mcpframe_registry.route_handlers[NAME],
        {"children": ["main", "backup"]},
        refused=[{}, {"children": {}}, {"children": "main"}],
    )
    assert conf == {"children": {1: "main", 2: "backup"}}
{%- else %}

def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writes_one_json_object_per_line(mcpframe_registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = mcpframe_registry.loggers[NAME].build(str(path))
    sink.emit({"ts": 1.5, "type": "proxy_error", "msg": "backend failure: conntimeout"})
    sink.emit({"ts": 2.5, "type": "proxy_user", "msg": "hello", "raw": b"\xffx"})
    sink.close()
    assert read_lines(path) == [
        {"ts": 1.5, "type": "proxy_error", "msg": "backend failure: conntimeout"},
        {"ts": 2.5, "type": "proxy_user", "msg": "hello", "raw": "\\xffx"},
    ]


def test_samples_all_but_errors(mcpframe_registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = mcpframe_registry.loggers[NAME].build(f"path={path},sample=0.25,seed=7")
    for i in range(2000):
        sink.emit({"ts": float(i), "type": "proxy_user", "msg": "x"})
    for i in range(10):
        sink.emit({"ts": float(i), "type": "proxy_error", "msg": "y"})
    sink.close()
    lines = read_lines(path)
    users = [line for line in lines if line["type"] == "proxy_user"]
    assert 400 < len(users) < 600
    assert all(line["sample_rate"] == 0.25 for line in users)
    assert [line["msg"] for line in lines if line["type"] == "proxy_error"] == ["y"] * 10


def test_writes_to_stderr_without_a_path(
    mcpframe_registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = mcpframe_registry.loggers[NAME].build("")
    sink.emit({"ts": 1.0, "type": "proxy_conf", "msg": "loaded"})
    sink.close()
    assert json.loads(capsys.readouterr().err) == {"ts": 1.0, "type": "proxy_conf", "msg": "loaded"}


@pytest.mark.parametrize("arg", ["sample=0", "sample=1.5", "sample=often", "seed=x", "color=red"])
def test_refuses_bad_arguments(mcpframe_registry: Registry, arg: str) -> None:
    with pytest.raises(ValueError, match="bad argument"):
        mcpframe_registry.loggers[NAME].build(arg)
{%- endif %}
