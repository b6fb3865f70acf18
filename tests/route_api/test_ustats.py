"""Spec 10.5 (memcached's t/proxyustats.t) and 2.7 / 9.2: user statistics declared with
``mcp.add_stat`` and counted with ``mcp.stat``, shown by ``stats proxy``, kept across
reloads (tests/configs/route_api/ustats.lua)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, free_port
from tests.route_api.conftest import Proxy, StartProxy, Watcher, config


def start(start_proxy: StartProxy, spec_file: Path, spec: str) -> Proxy:
    spec_file.write_text(spec + "\n")
    return start_proxy("ustats.lua", env={"MCP_USTATS_FILE": str(spec_file)})


def reload(proxy: Proxy, spec_file: Path, spec: str, events: Watcher) -> str:
    spec_file.write_text(spec + "\n")
    os.kill(proxy.proc.proc.pid, signal.SIGHUP)
    events.wait_for(r"type=proxy_conf status=start")
    return events.wait_for(r"type=proxy_conf status=(done|failed)").group(1)


def user_stats(proxy: Proxy) -> list[str]:
    return [line for line in proxy.stat_lines("proxy") if line.startswith("STAT user_")]


def test_start_failure(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.write_text("a 1 1025\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--listen", f"127.0.0.1:{free_port()}",
         "--config", config("ustats.lua")],
        env={**os.environ, "MCP_USTATS_FILE": str(spec)}, capture_output=True, timeout=30,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode != 0
    assert b"stat index must be 1024 or less" in proc.stderr


def test_1024_stats(start_proxy: StartProxy, tmp_path: Path) -> None:
    p = start(start_proxy, tmp_path / "spec", "a 1 1024")
    assert user_stats(p) == [f"STAT user_a{i} 0" for i in range(1, 1025)]
    # and they come first in stats proxy, before the limits (spec 9.2)
    assert p.stat_lines("proxy")[1024].startswith("STAT active_req_limit ")


def test_bad_indexes_and_names_fail_the_reload(start_proxy: StartProxy, tmp_path: Path) -> None:
    spec_file = tmp_path / "spec"
    p = start(start_proxy, spec_file, "a 1024 1024")
    assert user_stats(p) == ["STAT user_a1024 0"]
    events = p.watch("proxyevents")
    for bad in ("a 1025 1025", "a 0 0", "a" * 125 + " 1 1"):  # names of 126+ bytes
        assert reload(p, spec_file, bad, events) == "failed"
    assert user_stats(p) == ["STAT user_a1024 0"]  # [R] the old config stays in force


def test_counting_and_persistence_across_reloads(start_proxy: StartProxy, tmp_path: Path) -> None:
    spec_file = tmp_path / "spec"
    p = start(start_proxy, spec_file, "a 1 3")
    p.send(b"mg 1\r\nmg 2\r\nmg 2\r\n")
    assert [p.readline() for _ in range(3)] == [b"HD\r\n"] * 3
    assert user_stats(p) == ["STAT user_a1 1", "STAT user_a2 4", "STAT user_a3 0"]
    events = p.watch("proxyevents")
    assert reload(p, spec_file, "b 2 4", events) == "done"
    p.send(b"mg -2\r\n")
    assert p.readline() == b"HD\r\n"
    assert user_stats(p) == [
        "STAT user_a1 1", "STAT user_b2 2", "STAT user_b3 0", "STAT user_b4 0",
    ]  # fmt: skip


def test_counters_are_unsigned(start_proxy: StartProxy, tmp_path: Path) -> None:
    p = start(start_proxy, tmp_path / "spec", "a 1 2")
    p.send(b"mg -1\r\n")
    assert p.readline() == b"HD\r\n"
    assert user_stats(p)[0] == f"STAT user_a1 {2**64 - 1}"


def test_stat_errors_fail_the_route(start_proxy: StartProxy, tmp_path: Path) -> None:
    p = start(start_proxy, tmp_path / "spec", "a 1 2")
    events = p.watch("proxyevents")
    p.send(b"mg 3\r\n")
    assert p.readline() == b"SERVER_ERROR lua failure\r\n"
    events.wait_for(r"type=proxy_error msg=.*ustats\.lua:\d+: stat index out of range$")
    p.send(b"mg 0\r\n")
    assert p.readline() == b"SERVER_ERROR lua failure\r\n"
