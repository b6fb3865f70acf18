"""The example systemd unit in docs/operations.md: its ExecStart runs and serves over the
wire, its ExecReload reloads, its KillSignal stops it cleanly within TimeoutStopSec."""

from __future__ import annotations

import configparser
import os
import shlex
import signal
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, Client, Memcached, free_port, wait_port, wait_unix
from tests.lifecycle.support import short_dir, version, wait_for

DOCS = ROOT / "docs" / "operations.md"

CONFIG = """
function mcp_config_pools()
    return {{ main = mcp.pool({{ mcp.backend("a", "127.0.0.1", {port}) }}) }}
end
function mcp_config_routes(p)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        if r:key() == "/version" then return "VALUE /version 0 2\\r\\n{version}\\r\\nEND\\r\\n" end
        return p.main(r)
    end)
end
"""


def unit_section() -> configparser.SectionProxy:
    text = DOCS.read_text().split("### Running under systemd", 1)[1]
    ini = text.split("```ini\n", 1)[1].split("```", 1)[0]
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(ini)
    assert parser["Install"]["WantedBy"] == "multi-user.target"
    return parser["Service"]


@pytest.fixture
def scratch() -> Iterator[Path]:
    with short_dir("mcs") as d:
        yield d


def test_the_documented_unit_starts_serves_reloads_and_stops(
    scratch: Path, memcached_factory: Callable[..., Memcached]
) -> None:
    service = unit_section()
    assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed"
    runtime = scratch / "run"  # what RuntimeDirectory= makes
    runtime.mkdir()
    etc = scratch / "etc"
    etc.mkdir()
    mc = memcached_factory()
    cfg = etc / "routes.lua"
    cfg.write_text(CONFIG.format(port=mc.port, version="v1"))
    port, mport = free_port(), free_port()
    moves = {
        "/usr/local/bin/mcpframe": f"{sys.executable} -m mcpframe",
        "/etc/mcpframe/": f"{etc}/",
        "/run/mcpframe/": f"{runtime}/",
        "127.0.0.1:11211": f"127.0.0.1:{port}",
        "127.0.0.1:9150": f"127.0.0.1:{mport}",
    }
    command = service["ExecStart"]
    for old, new in moves.items():
        assert old in command, old  # the test follows the documented unit
        command = command.replace(old, new)
    proc = subprocess.Popen(
        shlex.split(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    sock = str(runtime / "mc.sock")
    try:
        wait_unix(sock, proc)
        wait_port(port, proc)
        wait_port(mport, proc)
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
        c = Client(sock)
        c.send(b"set unit 0 0 2\r\nok\r\n")
        assert c.readline() == b"STORED\r\n"
        c.close()
        t = Client(("127.0.0.1", port))
        t.send(b"get unit\r\n")
        assert t.read_until(b"END\r\n") == b"VALUE unit 0 2\r\nok\r\nEND\r\n"
        t.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as resp:
            assert b"mcpframe_worker_up{" in resp.read()
        assert version(sock) == b"v1"

        cfg.write_text(CONFIG.format(port=mc.port, version="v2"))
        reload = shlex.split(service["ExecReload"].replace("$MAINPID", str(proc.pid)))
        assert reload[0] == "/bin/kill"
        subprocess.run(reload, check=True, timeout=10)
        wait_for(lambda: all(version(sock) == b"v2" for _ in range(6)))

        proc.send_signal(getattr(signal, service["KillSignal"]))
        proc.wait(float(service["TimeoutStopSec"]))
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert not os.path.exists(sock)
