"""Reload, shutdown and worker processes, through the CLI and signals, as operators use them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pymemcache.client.base import Client as PyMemcache

from tests.fakebackend import FakeBackend, FakeConn
from tests.helpers import ROOT, Client, Mcpframe, Memcached, free_port, wait_port
from tests.lifecycle.support import version, wait_for

CONFIG = """
function mcp_config_pools()
    local a = mcp.backend("a", "127.0.0.1", {port_a})
    local b = mcp.backend("b", "127.0.0.1", {port_b})
    return {{ main = mcp.pool({{ a, b }}) }}
end
function mcp_config_routes(p)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        if r:key() == "/version" then return "VALUE /version 0 2\\r\\n{version}\\r\\nEND\\r\\n" end
        return p.main(r)
    end)
end
"""


def write_config(path: Path, a: int, b: int, version: str) -> None:
    path.write_text(CONFIG.format(port_a=a, port_b=b, version=version))


def backend_connections(m: Memcached) -> int:
    c = PyMemcache(m.addr)
    try:
        return int(c.stats()[b"curr_connections"])
    finally:
        c.close()


def test_reload_swaps_routes_keeps_connections_and_survives_a_bad_file(
    tmp_path: Path,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    a, b = memcached_factory(), memcached_factory()
    cfg, pid = tmp_path / "routes.lua", tmp_path / "mcpframe.pid"
    write_config(cfg, a.port, b.port, "v1")
    proxy = mcpframe_factory("--config", str(cfg), "--pid-file", str(pid))
    assert version(proxy.addr) == b"v1"
    wait_for(lambda: backend_connections(a) >= 2)  # ours + the stats probe
    before = backend_connections(a)

    write_config(cfg, a.port, b.port, "v2")
    out = subprocess.run(
        [sys.executable, "-m", "mcpframe", "reload", "--pid-file", str(pid)],
        capture_output=True, timeout=30, cwd=ROOT, check=True,
    )  # fmt: skip
    assert b"sent SIGHUP" in out.stdout
    wait_for(lambda: version(proxy.addr) == b"v2")
    assert backend_connections(a) == before  # unchanged backends: no new socket

    cfg.write_text(cfg.read_text() + "\nthis is not lua\n")
    os.kill(proxy.proc.pid, signal.SIGHUP)
    time.sleep(0.5)
    assert version(proxy.addr) == b"v2"  # the old config keeps serving
    c = Client(proxy.addr)
    c.send(b"stats\r\n")
    stats = c.read_until(b"\r\nEND\r\n")
    assert b"STAT proxy_config_reloads 3\r\n" in stats
    assert b"STAT proxy_config_reload_fails 1\r\n" in stats
    _, err = proxy.stop()
    assert b"reload failed, old config kept" in err
    assert b"routes.lua:14:" in err
    assert b"status=failed" in err
    assert not pid.exists()


def test_reload_under_load_loses_and_misorders_nothing(
    tmp_path: Path,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    a, b = memcached_factory(), memcached_factory()
    cfg = tmp_path / "routes.lua"
    write_config(cfg, a.port, b.port, "v1")
    proxy = mcpframe_factory("--config", str(cfg))
    errors: list[str] = []
    counts = [0] * 4
    stop = threading.Event()

    def client(n: int) -> None:
        c = Client(proxy.addr)
        i = 0
        while not stop.is_set() and i < 20_000:
            batch = b"".join(
                b"ms c%d-%d 5\r\n%05d\r\nmg c%d-%d v\r\n" % (n, i + j, i + j, n, i + j)
                for j in range(10)
            )
            c.send(batch)
            for j in range(10):
                if c.readline() != b"HD\r\n":
                    errors.append("set")
                if c.readline() != b"VA 5\r\n" or c.readline() != b"%05d\r\n" % (i + j):
                    errors.append("get")
            i += 10
            counts[n] = i
        c.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        for number in range(2, 8):
            time.sleep(0.25)
            write_config(cfg, a.port, b.port, f"v{number}")
            os.kill(proxy.proc.pid, signal.SIGHUP)
        wait_for(lambda: version(proxy.addr) == b"v7")
        time.sleep(0.25)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == []
    assert min(counts) > 100  # every client kept making progress through six reloads


def held_request(
    fake: FakeBackend, proxy: Mcpframe, request: bytes, client: Client | None = None
) -> FakeConn:
    """Send ``request`` through the proxy; return the fake backend connection holding it.

    The config lists the fake twice (labels a and b), so it gets two connections.
    """
    conns = [fake.accept(), fake.accept()]
    c = client or Client(proxy.addr)
    c.send(request)
    for conn in conns:
        got = conn.read_available(0.3)
        if got:
            assert got == request
            if client is None:
                conn.client = c  # type: ignore[attr-defined]
            return conn
    raise AssertionError("the request reached neither backend connection")


def test_in_flight_request_finishes_on_old_routes_after_reload(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    old, new = FakeBackend(), FakeBackend()
    try:
        cfg = tmp_path / "routes.lua"
        write_config(cfg, old.port, old.port, "v1")
        proxy = mcpframe_factory("--config", str(cfg))
        conn = held_request(old, proxy, b"mg /held v\r\n")
        write_config(cfg, new.port, new.port, "v2")
        os.kill(proxy.proc.pid, signal.SIGHUP)
        new.accept()
        new.accept()
        wait_for(lambda: version(proxy.addr) == b"v2")
        c = conn.client  # type: ignore[attr-defined]
        conn.send(b"VA 3\r\nold\r\n")  # the old backend answers after the swap
        assert c.readline() == b"VA 3\r\n"
        assert c.readline() == b"old\r\n"
        assert conn.is_closed(3.0)  # retired once nothing was left on it
    finally:
        old.close()
        new.close()


def test_sigterm_drains_in_flight_then_exits_zero(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    fake = FakeBackend()
    try:
        cfg = tmp_path / "routes.lua"
        write_config(cfg, fake.port, fake.port, "v1")
        proxy = mcpframe_factory("--config", str(cfg), "--drain-timeout", "5")
        c = Client(proxy.addr)
        conn = held_request(fake, proxy, b"mg /slow v\r\n", c)
        proxy.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(OSError):  # no longer accepting
            Client(proxy.addr, timeout=1).send(b"version\r\n")
        conn.send(b"VA 2\r\nok\r\n")
        assert c.read_until(b"ok\r\n") == b"VA 2\r\nok\r\n"
        assert proxy.proc.wait(10) == 0
    finally:
        fake.close()


def test_workers_share_the_port_sum_stats_restart_and_reload(
    tmp_path: Path, memcached_factory: Callable[..., Memcached]
) -> None:
    a, b = memcached_factory(), memcached_factory()
    cfg = tmp_path / "routes.lua"
    write_config(cfg, a.port, b.port, "v1")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpframe", "serve", "--config", str(cfg), "--workers", "2",
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        wait_port(port, proc)
        addr = ("127.0.0.1", port)
        pids = set()
        deadline = time.monotonic() + 10  # the second worker may still be starting
        i = 0
        while time.monotonic() < deadline:
            i += 1
            c = Client(addr)
            c.send(b"set w%d 0 0 1\r\nx\r\nstats\r\n" % i)
            assert c.readline() == b"STORED\r\n"
            out = c.read_until(b"\r\nEND\r\n")
            pids.add(out.split(b"STAT pid ")[1].split(b"\r\n")[0])
            c.close()
            if len(pids) == 2:
                break
            time.sleep(0.02)
        assert len(pids) == 2  # the kernel spread connections over both workers
        time.sleep(1.2)  # both have published their counters
        c = Client(addr)
        c.send(b"stats\r\n")
        out = c.read_until(b"\r\nEND\r\n")
        total = int(out.split(b"STAT total_connections ")[1].split(b"\r\n")[0])
        assert total >= i + 2  # every connection made, whichever worker took it

        victim = int(next(iter(pids)))
        os.kill(victim, signal.SIGKILL)
        time.sleep(1.5)
        for _ in range(10):  # all connections succeed again
            assert version(addr) == b"v1"

        write_config(cfg, a.port, b.port, "v2")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: all(version(addr) == b"v2" for _ in range(10)))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert f"worker 0 (pid {victim})".encode() in err or f"worker 1 (pid {victim})".encode() in err
    assert b"restarting it" in err


def test_workers_refuse_the_embedded_cache() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--workers", "2",
         "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode != 0
    assert b"--workers needs --config" in out.stderr
