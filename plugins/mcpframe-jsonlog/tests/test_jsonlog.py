"""Tests for mcpframe-jsonlog. Install the package first: ``pip install -e '.[test]'``.

The fixtures (``mcpframe_registry``) and the contract checks come
with mcpframe, from its pytest plugin ``mcpframe.testing``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcpframe.registry import Registry

NAME = "jsonlog"
PACKAGE = "mcpframe-jsonlog"


def test_listed_by_mcpframe_plugins_list() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "mcpframe", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {row["name"]: row for row in json.loads(listed.stdout) if row["package"] == PACKAGE}
    assert rows[NAME]["status"] == "ok", rows[NAME]["error"]
    assert rows[NAME]["lua_name"] == f"logger {NAME}"


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
