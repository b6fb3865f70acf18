"""Spec 10.3 (memcached's t/proxyconfig.t): loading and reloading configs (SIGHUP), backend
connection reuse, table-form backends, and the two resource limits, against fake backends.

tests/configs/route_api/proxyconfig.lua reads a mode from a small Lua file the test rewrites
before each reload.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakebackend import FakeConn
from tests.helpers import ROOT, Client, free_port
from tests.route_api.conftest import Mocks, Proxy, StartProxy, Watcher, config

#: spec 5.6: the backend index of /test/0 .. /test/20 on a default pool of three.
TEST_KEY_INDEX = [1, 1, 1, 2, 1, 2, 0, 2, 1, 2, 1, 0, 1, 1, 2, 0, 1, 2, 1, 0, 1]


class Reloadable:
    def __init__(self, proxy: Proxy, mode_file: Path, events: Watcher) -> None:
        self.proxy = proxy
        self.mode_file = mode_file
        self.events = events

    def reload(self, mode: str, expect: str = "done") -> None:
        self.mode_file.write_text(f"return {mode!r}\n")
        os.kill(self.proxy.proc.proc.pid, signal.SIGHUP)
        self.events.wait_for(r"type=proxy_conf status=start")
        self.events.wait_for(rf"type=proxy_conf status={expect}")


@pytest.fixture
def mode_file(tmp_path: Path) -> Path:
    return tmp_path / "mode.lua"


def start(start_proxy: StartProxy, mocks: Mocks, mode_file: Path, mode: str) -> Reloadable:
    mode_file.write_text(f"return {mode!r}\n")
    env = {**mocks.env(), "MCP_MODE_FILE": str(mode_file)}
    proxy = start_proxy("proxyconfig.lua", env=env)
    return Reloadable(proxy, mode_file, proxy.watch("proxyevents"))


@pytest.fixture
def none(start_proxy: StartProxy, mocks: Mocks, mode_file: Path) -> Iterator[Reloadable]:
    yield start(start_proxy, mocks, mode_file, "none")


def test_start_failure_when_the_chunk_fails(tmp_path: Path, mocks: Mocks) -> None:
    mode = tmp_path / "mode.lua"
    mode.write_text("invalid syntax\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--listen", f"127.0.0.1:{free_port()}",
         "--config", config("proxyconfig.lua")],
        env={**os.environ, **mocks.env(), "MCP_MODE_FILE": str(mode)},
        capture_output=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode != 0
    assert b"mode.lua:1:" in proc.stderr


def test_stub_routes(none: Reloadable) -> None:
    none.proxy.send(b"mg foo v\r\n")
    assert none.proxy.readline() == b"SERVER_ERROR no mg route\r\n"


def readable(conns: list[FakeConn], wait: float = 2.0) -> list[tuple[int, bytes]]:
    """(index, line) of the backends that received a request line: waits up to ``wait``
    seconds for the first, then takes whatever else is already there."""
    ready, _, _ = select.select([c.sock for c in conns], [], [], wait)
    out = []
    for i, conn in enumerate(conns):
        if conn.buf or conn.sock in ready or select.select([conn.sock], [], [], 0)[0]:
            out.append((i, conn.read_line()))
    return out


def test_backends_load_by_reload_and_keys_map_like_memcached(
    none: Reloadable, mocks: Mocks
) -> None:
    p = none.proxy
    none.reload("start")
    mocks.accept_all()
    p.send(b"mg foo v\r\n")
    (i, got), *rest = readable(mocks.conns)
    assert rest == [] and got == b"mg foo v\r\n" and i == 2  # spec 5.6: foo -> 2 of 3
    mocks[i].send(b"EN\r\n")
    assert p.readline() == b"EN\r\n"
    mapping = []
    for n in range(101):
        p.send(b"mg /test/%d\r\n" % n)
        hits = readable(mocks.conns)
        assert len(hits) == 1
        idx, line = hits[0]
        assert line == b"mg /test/%d\r\n" % n
        mocks[idx].send(b"EN\r\n")
        assert p.readline() == b"EN\r\n"
        mapping.append(idx)
    assert mapping[:21] == TEST_KEY_INDEX

    # Table-form backends with the same labels but other options: new connections for all.
    w = none.events
    none.reload("betable")
    b1 = mocks.fakes[0].accept(validate=False)  # b1 is never answered
    mocks.reaccept(1)
    mocks.reaccept(2)
    assert b1.read_line() == b"version\r\n"
    port = mocks.fakes[0].port
    w.wait_for(rf"type=proxy_backend error=readvalidate name=127\.0\.0\.1 port={port} depth=0")
    w.expect(rf"type=proxy_backend error=markedbad name=127\.0\.0\.1 port={port} depth=0 rbuf=$")
    # The same config again: every connection is reused, no new socket anywhere.
    none.reload("betable")
    for fake in mocks.fakes:
        fake.listener.settimeout(0.3)
        with pytest.raises(TimeoutError):
            fake.listener.accept()
    p.send(b"mg /test/1\r\n")  # -> b2
    assert mocks[1].read_line() == b"mg /test/1\r\n"
    mocks[1].send(b"EN\r\n")
    assert p.readline() == b"EN\r\n"


def test_per_worker_pools_map_keys_the_same(
    start_proxy: StartProxy, mocks: Mocks, mode_file: Path
) -> None:
    r = start(start_proxy, mocks, mode_file, "noiothread")
    mocks.accept_all()
    for n in range(21):
        r.proxy.send(b"mg /test/%d\r\n" % n)
        ((idx, line),) = readable(mocks.conns)
        assert idx == TEST_KEY_INDEX[n] and line == b"mg /test/%d\r\n" % n
        mocks[idx].send(b"EN\r\n")
        assert r.proxy.readline() == b"EN\r\n"


# Keys that all land on backend b2 (spec 5.6 vectors).
SAME_BACKEND = [0, 1, 2, 4, 8, 10]


def test_active_request_limit(start_proxy: StartProxy, mocks: Mocks, mode_file: Path) -> None:
    r = start(start_proxy, mocks, mode_file, "reqlimit")
    mocks.accept_all()
    p = r.proxy
    assert p.stats("proxy")["active_req_limit"] == "4"
    p.send(b"".join(b"mg /test/%d v\r\n" % n for n in SAME_BACKEND))
    lines = [mocks[1].read_line() for _ in range(4)]
    assert lines == [b"mg /test/%d v\r\n" % n for n in SAME_BACKEND[:4]]
    assert mocks[1].read_available(0.2) == b""  # the 5th and 6th were refused
    p.nothing(0.05)  # replies stay in order: nothing before the first EN
    mocks[1].send(b"EN\r\n" * 4)
    assert [p.readline() for _ in range(6)] == [b"EN\r\n"] * 4 + [
        b"SERVER_ERROR active request limit reached\r\n"
    ] * 2
    # Refused requests count in cmd_mg, and released their slot.
    stats = p.stats("proxy")
    assert stats["cmd_mg"] == "6"
    assert p.stats()["proxy_req_active"] == "0"

    r.reload("noreqlimit")
    assert p.stats("proxy")["active_req_limit"] == "0"
    p.send(b"".join(b"mg /test/%d v\r\n" % n for n in SAME_BACKEND))
    for n in SAME_BACKEND:
        assert mocks[1].read_line() == b"mg /test/%d v\r\n" % n
    mocks[1].send(b"EN\r\n" * 6)
    assert [p.readline() for _ in range(6)] == [b"EN\r\n"] * 6


def test_active_limit_does_not_refuse_a_deep_pipeline(
    start_proxy: StartProxy, mocks: Mocks, mode_file: Path
) -> None:
    # memcached runs one connection's pipeline in batches of 20: with a limit above that, a
    # single client's 200 pipelined requests all go through.
    r = start(start_proxy, mocks, mode_file, "reqlimit30")
    proxy = r.proxy
    mocks.accept_all()
    proxy.send(b"".join(b"mg /test/1 v\r\n" for _ in range(200)))
    for _ in range(200):
        assert mocks[1].read_line() == b"mg /test/1 v\r\n"
        mocks[1].send(b"EN\r\n")
    assert [proxy.readline() for _ in range(200)] == [b"EN\r\n"] * 200


def test_buffer_memory_limit(start_proxy: StartProxy, mocks: Mocks, mode_file: Path) -> None:
    r = start(start_proxy, mocks, mode_file, "buflimit")
    mocks.accept_all()
    p = r.proxy
    assert p.stats("proxy")["buffer_memory_limit"] == str(20 * 1024)
    value = b"x" * 30000
    a, b = p.connect(), p.connect()
    a.send(b"ms foo 30000 T30\r\n" + value + b"\r\n")
    assert mocks[2].read_line() == b"ms foo 30000 T30\r\n"  # foo -> b3
    assert mocks[2].read_exactly(30002) == value + b"\r\n"
    assert int(p.stats("proxy")["buffer_memory_used"]) >= 30002
    b.send(b"ms foo 30000 T30\r\n" + value + b"\r\n")
    assert b.readline() == b"SERVER_ERROR out of memory\r\n"
    # A's reply cannot be buffered: its backend connection fails, and A gets the failure.
    mocks[2].send(b"HD\r\n")
    assert a.readline() == b"SERVER_ERROR backend failure\r\n"
    r.events.wait_for(r"type=proxy_backend error=outofmemory name=127\.0\.0\.1 port=\d+ depth=0")
    mocks.reaccept(2)
    assert p.stats("proxy")["buffer_memory_used"] == "0"

    r.reload("buflimit2")
    assert p.stats("proxy")["buffer_memory_limit"] == str(200 * 1024)
    for c in (a, b):
        c.send(b"ms foo 2 T30\r\nhi\r\n")
        assert mocks[2].read_line() == b"ms foo 2 T30\r\n"
        assert mocks[2].read_exactly(4) == b"hi\r\n"
        mocks[2].send(b"HD\r\n")
        assert c.readline() == b"HD\r\n"


def test_reload_failure_keeps_the_old_config(none: Reloadable, mocks: Mocks) -> None:
    none.mode_file.write_text("this is not lua\n")
    os.kill(none.proxy.proc.proc.pid, signal.SIGHUP)
    none.events.wait_for(r"type=proxy_conf status=failed")
    none.proxy.send(b"mg foo v\r\n")
    assert none.proxy.readline() == b"SERVER_ERROR no mg route\r\n"
    stats = none.proxy.stats()
    assert stats["proxy_config_reloads"] == "2"
    assert stats["proxy_config_reload_fails"] == "1"


def test_a_new_client_sees_the_new_routes(none: Reloadable, mocks: Mocks) -> None:
    none.reload("start")
    mocks.accept_all()
    c = Client(none.proxy.addr)
    c.send(b"mg /test/6\r\n")  # -> b1
    assert mocks[0].read_line() == b"mg /test/6\r\n"
    mocks[0].send(b"HD\r\n")
    assert c.readline() == b"HD\r\n"
    c.close()


def test_per_worker_connections_with_workers(
    start_proxy: StartProxy, mocks: Mocks, mode_file: Path
) -> None:
    # iothread = false: every worker has its own connection to each backend (two workers,
    # two connections per backend), and every worker maps keys the same way.
    mode_file.write_text("return 'noiothread'\n")
    env = {**mocks.env(), "MCP_MODE_FILE": str(mode_file)}
    proxy = start_proxy("proxyconfig.lua", "--workers", "2", env=env)
    conns = [f.accept() for f in mocks.fakes for _ in range(2)]
    clients = [proxy.connect() for _ in range(4)]
    for c in clients:
        for n in range(21):
            c.send(b"mg /test/%d\r\n" % n)
            ((idx, line),) = readable(conns)
            assert idx // 2 == TEST_KEY_INDEX[n] and line == b"mg /test/%d\r\n" % n
            conns[idx].send(b"EN\r\n")
            assert c.readline() == b"EN\r\n"
