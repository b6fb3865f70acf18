"""The config VM's half of the API (spec 2.3-2.8, 1.4): argument checks with memcached's
error texts (tests/configs/route_api/config_errors.lua), and what the backend options and
global tunables do (tests/configs/route_api/backends.lua, against a fake backend)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakebackend import FakeBackend
from tests.helpers import ROOT, free_port
from tests.route_api.conftest import StartProxy, config

CASES = [
    ("no_label", "pools", "backend must have a label argument"),
    ("no_host", "pools", "backend must have a host argument"),
    ("no_port", "pools", "backend must have a port argument"),
    ("label_long", "pools", "backend label too long"),
    ("host_long", "pools", "backend name too long"),
    ("port_long", "pools", "backend port too long"),
    ("host_type", "pools", "bad argument #2 to 'backend' (string expected, got table)"),
    ("failurelimit", "pools", "failure_limit must be >= 0"),
    ("failure_limit", "pools", "backend_failure_limit must be >= 0"),
    ("keepalive", "pools", "bad argument #1 to 'tcp_keepalive' (boolean expected, got number)"),
    ("read_timeout", "pools",
     "bad argument #1 to 'backend_read_timeout' (number expected, got string)"),
    ("negative_timeout", "pools", "backend_connect_timeout: timeout must be >= 0"),
    ("pool_type", "pools", "bad argument #1 to 'pool' (table expected, got string)"),
    ("pool_member", "pools", "bad argument #1 to 'pool' (mcp.backend expected at index 2"),
    ("pool_options", "pools", "bad argument #2 to 'pool' (table expected, got number)"),
    ("dist_new", "pools", "key distribution object missing 'new' function"),
    ("filter_name", "pools", "unknown hash filter specified: nope"),
    ("filter_conf", "pools", "hash filter requires 'filter_conf' string"),
    ("filter_len", "pools", "hash filter conf must be between 2 and 5 characters"),
    ("iothread", "pools", "iothread must be a boolean"),
    ("omode", "pools", "ring_hash: bad omode argument"),
    ("obuckets", "pools", "ring_hash: option argument must be a positive integer"),
    ("stat_low", "pools", "stat index must be 1 or higher"),
    ("stat_high", "pools", "stat index must be 1024 or less"),
    ("stat_space", "pools", "stat cannot contain spaces or newlines"),
    ("stat_long", "pools", "stat name too long: "),
    ("attach_fn", "routes", "Must pass a function to mcp.attach"),
    ("attach_tag", "routes", "mcp.attach: tag must be 1 to 8 characters"),
    ("attach_cmd", "routes", "mcp.attach: invalid command type"),
    ("attach_tagtype", "routes", "bad argument #3 to 'attach' (string expected, got table)"),
    ("yield", "routes", "mcp.await arguments must have at least one pool"),
    ("copy_function", "copy", "unhandled data type in configuration table"),
    ("copy_backend", "copy", "unhandled userdata type in configuration table"),
    ("copy_key", "copy", "configuration table keys must be strings or numbers"),
    ("top_level_backend", "worker", "attempt to call a nil value (field 'backend')"),
]  # fmt: skip
PHASE = {
    "pools": "Failed to execute mcp_config_pools: ",
    "routes": "Failed to execute mcp_config_routes: ",
    "worker": "Failed to load data into worker thread: ",
    "copy": "",
}


@pytest.mark.parametrize(("case", "phase", "message"), CASES, ids=[c for c, _, _ in CASES])
def test_config_errors(case: str, phase: str, message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--listen", f"127.0.0.1:{free_port()}",
         "--config", config("config_errors.lua")],
        env={**os.environ, "MCP_CASE": case}, capture_output=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert f"mcpframe: {PHASE[phase]}" in err
    assert message in err
    if phase in ("pools", "routes", "worker"):
        assert "config_errors.lua:" in err  # the operator's file and line


def keepalive_timer(proxy_port: int, backend_port: int) -> str:
    """The timer field of the proxy's socket to the backend, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        local, remote = parts[1], parts[2]
        if int(local.split(":")[1], 16) == proxy_port and int(remote.split(":")[1], 16) == (
            backend_port
        ):
            return parts[5].split(":")[0]
    raise AssertionError("socket not found")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
@pytest.mark.parametrize(
    ("mode", "timer"), [("none", "00"), ("keepalive_global", "02"), ("keepalive_backend", "02")]
)
def test_tcp_keepalive(start_proxy: StartProxy, mode: str, timer: str) -> None:
    fake = FakeBackend()
    try:
        start_proxy("backends.lua", env={"MCP_B1": str(fake.port), "MCP_MODE": mode})
        conn = fake.accept()
        # timer 02 is the keepalive timer: SO_KEEPALIVE is set on the proxy's socket
        assert keepalive_timer(conn.sock.getpeername()[1], fake.port) == timer
    finally:
        fake.close()


@pytest.mark.parametrize("mode", ["retry", "global_retry"])
def test_failure_limit_retry_and_read_timeouts(start_proxy: StartProxy, mode: str) -> None:
    fake = FakeBackend()
    try:
        p = start_proxy("backends.lua", env={"MCP_B1": str(fake.port), "MCP_MODE": mode})
        w = p.watch("proxyevents")
        silent = fake.accept(validate=False)
        assert silent.read_line() == b"version\r\n"  # never answered
        started = time.monotonic()
        w.wait_for(rf"error=readvalidate name=127\.0\.0\.1 port={fake.port} depth=0")
        w.expect(rf"error=markedbad name=127\.0\.0\.1 port={fake.port} depth=0 rbuf=$")
        assert 0.25 < time.monotonic() - started < 1.0  # the 0.3 s read timeout
        # Bad: requests fail at once, without touching the network.
        t0 = time.monotonic()
        p.send(b"mg /a v\r\n")
        assert p.readline() == b"SERVER_ERROR backend failure\r\n"
        assert time.monotonic() - t0 < 0.2
        # 0.3 s later the proxy tries again; once validated, requests go through (the
        # backend stays bad until the proxy has read our VERSION: retry briefly).
        conn = fake.accept(timeout=2.0)
        deadline = time.monotonic() + 2.0
        while True:
            p.send(b"mg /a v\r\n")
            if conn.read_available(0.05) == b"mg /a v\r\n":
                break
            assert p.readline() == b"SERVER_ERROR backend failure\r\n"
            assert time.monotonic() < deadline
        conn.send(b"EN\r\n")
        assert p.readline() == b"EN\r\n"
    finally:
        fake.close()
