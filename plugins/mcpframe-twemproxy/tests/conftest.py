"""Real servers for the placement tests: memcached, nutcracker and mcpframe, on 127.0.0.1.

The servers are found on PATH (or in Debian's locations). Without them the tests that need
them are skipped, unless ``MCPFRAME_REQUIRE_SERVERS=1`` is set (mcpframe's own suite sets it),
in which case they fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from real_servers import Server, Starter, free_port, require_binary


@pytest.fixture
def servers() -> Iterator[dict[str, Starter]]:
    """Functions starting memcached, nutcracker and mcpframe; all are stopped after the test.

    Each returns the port it listens on (nutcracker and mcpframe: the one given or the last).
    """
    started: list[Server] = []

    def run(cmd: list[str], port: int) -> int:
        server = Server(cmd)
        started.append(server)
        server.wait_port(port)
        return port

    def memcached() -> int:
        binary = require_binary("memcached", "/usr/bin/memcached")
        port = free_port()
        user = ["-u", "root"] if os.geteuid() == 0 else []
        return run([binary, "-U", "0", "-l", "127.0.0.1", "-p", str(port), "-t", "1", *user], port)

    def nutcracker(config: Path, port: int, stats_port: int) -> int:
        binary = require_binary("nutcracker", "/usr/sbin/nutcracker")
        stats = ["-s", str(stats_port), "-a", "127.0.0.1"]
        files = ["-o", str(config.with_suffix(".log")), "-p", str(config.with_suffix(".pid"))]
        return run([binary, "-c", str(config), *stats, *files], port)

    def mcpframe(config: Path, listens: list[str]) -> int:
        args = [arg for listen in listens for arg in ("--listen", listen)]
        cmd = [sys.executable, "-m", "mcpframe", "serve", "--config", str(config), *args]
        return run(cmd, int(listens[-1].split(":")[1]))  # the last one is bound last

    yield {"memcached": memcached, "nutcracker": nutcracker, "mcpframe": mcpframe}
    # Signal every server first, then wait: they shut down in parallel.
    for server in started:
        server.terminate()
    for server in started:
        server.stop()
