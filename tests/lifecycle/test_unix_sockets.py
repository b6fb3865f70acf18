"""Unix domain sockets, as a sidecar uses them: ``--listen unix:PATH[:MODE][:TAG]`` and
backends reached over a unix socket, through real sockets, real memcached and the CLI."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, Client, UnixMemcached, free_port, wait_port, wait_unix
from tests.lifecycle.support import serve, short_dir, stop, version, wait_for


@pytest.fixture
def sockdir() -> Iterator[Path]:
    with short_dir("mcu") as d:
        yield d


def roundtrip(addr: tuple[str, int] | str, key: bytes, value: bytes) -> bytes:
    c = Client(addr)
    try:
        c.send(b"set %s 0 0 %d\r\n%s\r\nget %s\r\n" % (key, len(value), value, key))
        assert c.readline() == b"STORED\r\n"
        return c.read_until(b"END\r\n")
    finally:
        c.close()


def test_listen_on_a_unix_socket_with_mode_and_tag_then_remove_it(sockdir: Path) -> None:
    path = str(sockdir / "mc.sock")
    port = free_port()
    proc = serve("--listen", f"unix:{path}:0660:app", "--listen", f"127.0.0.1:{port}")
    try:
        wait_unix(path, proc)
        wait_port(port, proc)
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert roundtrip(path, b"k", b"hello") == b"VALUE k 0 5\r\nhello\r\nEND\r\n"
        # one cache behind both listeners
        c = Client(("127.0.0.1", port))
        c.send(b"get k\r\n")
        assert c.read_until(b"END\r\n") == b"VALUE k 0 5\r\nhello\r\nEND\r\n"
        c.close()
        u = Client(path)
        u.send(b"stats conns\r\n")
        conns = u.read_until(b"END\r\n")
        u.close()
        assert f"addr unix:{path}\r\n".encode() in conns  # the listener, as memcached shows it
        assert f"listen_addr unix:{path}\r\n".encode() in conns
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert f"unix:{path}:0660:app".encode() in err  # the start-up line names it
    assert not os.path.exists(path)  # removed on exit


def test_default_mode_is_memcacheds_0700(sockdir: Path) -> None:
    path = str(sockdir / "mc.sock")
    proc = serve("--listen", f"unix:{path}")
    try:
        wait_unix(path, proc)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    finally:
        stop(proc)
    assert proc.returncode == 0


def test_a_stale_socket_file_is_replaced(sockdir: Path) -> None:
    path = str(sockdir / "mc.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)  # bound, never listened on, closed: what a crash leaves behind
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    proc = serve("--listen", f"unix:{path}")
    try:
        wait_unix(path, proc)
        assert roundtrip(path, b"s", b"1") == b"VALUE s 0 1\r\n1\r\nEND\r\n"
    finally:
        stop(proc)
    assert proc.returncode == 0


def test_a_live_server_on_the_path_is_left_alone(sockdir: Path) -> None:
    path = str(sockdir / "mc.sock")
    live = UnixMemcached(path)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "mcpframe", "serve", "--listen", f"unix:{path}"],
            capture_output=True,
            timeout=30,
            cwd=ROOT,
        )
        assert out.returncode != 0
        assert f"cannot listen on unix:{path}: a server is listening on it".encode() in out.stderr
        # memcached still owns the socket and answers on it
        assert roundtrip(path, b"m", b"2") == b"VALUE m 0 1\r\n2\r\nEND\r\n"
    finally:
        live.stop()


def test_a_file_that_is_not_a_socket_is_refused_and_kept(sockdir: Path) -> None:
    path = sockdir / "mc.sock"
    path.write_text("precious")
    out = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--listen", f"unix:{path}"],
        capture_output=True,
        timeout=30,
        cwd=ROOT,
    )
    assert out.returncode != 0
    assert b"the file exists and is not a socket" in out.stderr
    assert path.read_text() == "precious"


@pytest.mark.parametrize(
    ("spelling", "message"),
    [
        ("unix:", "the socket path is empty"),
        ("unix:/tmp/" + "x" * 110, "a unix socket path is at most 107 bytes"),
        ("unix:/tmp/a.sock:0660:toolongtag", "a tag must be 1 to 8 characters"),
        ("unix:/tmp/a:b:c:d", "a socket path cannot hold ':'"),
    ],
)
def test_bad_unix_listen_spellings_are_named(spelling: str, message: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--listen", spelling],
        capture_output=True,
        timeout=30,
        cwd=ROOT,
    )
    assert out.returncode != 0
    assert message.encode() in out.stderr


CONFIG = """
function mcp_config_pools()
    local a = mcp.backend("a", "{path_a}")
    local b = mcp.backend{{ label = "b", host = "{path_b}" }}
    return {{ main = mcp.pool({{ a, b }}) }}
end
function mcp_config_routes(p)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        if r:key() == "/version" then return "VALUE /version 0 2\\r\\n{version}\\r\\nEND\\r\\n" end
        return p.main(r)
    end)
end
"""


def write_config(path: Path, a: str, b: str, version: str) -> None:
    path.write_text(CONFIG.format(path_a=a, path_b=b, version=version))


def test_unix_backends_both_spellings_route_keys_to_real_memcached(sockdir: Path) -> None:
    a = UnixMemcached(str(sockdir / "a.sock"))
    b = UnixMemcached(str(sockdir / "b.sock"))
    cfg = sockdir / "routes.lua"
    write_config(cfg, a.path, b.path, "v1")
    path = str(sockdir / "proxy.sock")
    proc = serve("--config", str(cfg), "--listen", f"unix:{path}")
    try:
        wait_unix(path, proc)
        keys = [b"key%d" % i for i in range(40)]
        for k in keys:
            assert roundtrip(path, k, k + b"v") == b"VALUE %s 0 %d\r\n%sv\r\nEND\r\n" % (
                k,
                len(k) + 1,
                k,
            )
        # each key is on exactly one of the two memcached, and both got some
        on_a = on_b = 0
        for k in keys:
            got = []
            for m in (a, b):
                c = Client(m.path)
                c.send(b"get %s\r\n" % k)
                got.append(c.read_until(b"END\r\n") != b"END\r\n")
                c.close()
            assert sum(got) == 1
            on_a += got[0]
            on_b += got[1]
        assert on_a and on_b
    finally:
        err = stop(proc)
        a.stop()
        b.stop()
    assert proc.returncode == 0, err


def test_unix_backend_that_is_down_fails_the_request_and_is_logged(sockdir: Path) -> None:
    cfg = sockdir / "routes.lua"
    missing = str(sockdir / "nobody.sock")
    write_config(cfg, missing, missing, "v1")
    port = free_port()
    proc = serve("--config", str(cfg), "--listen", f"127.0.0.1:{port}")
    try:
        wait_port(port, proc)
        c = Client(("127.0.0.1", port))
        c.send(b"get x\r\n")
        assert c.readline() == b"SERVER_ERROR backend failure\r\n"
        c.close()
    finally:
        err = stop(proc)
    assert f"name={missing}".encode() in err


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ('mcp.backend("a", "/tmp/a.sock", 11211)', "must not be given with a unix socket path"),
        ('mcp.backend{ label = "a", host = "/tmp/a.sock", port = 1 }', "must not be given"),
        ('mcp.backend("a", "/" .. string.rep("x", 110))', "backend unix socket path too long"),
        ('mcp.backend{ label = "a", host = "h" }', "backend must have a port argument"),
    ],
)
def test_unix_backend_spelling_errors(tmp_path: Path, backend: str, message: str) -> None:
    cfg = tmp_path / "bad.lua"
    cfg.write_text(
        "function mcp_config_pools()\n"
        f"    return {{ p = mcp.pool({{ {backend} }}) }}\n"
        "end\n"
        "function mcp_config_routes(p) end\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "mcpframe", "check", str(cfg)],
        capture_output=True,
        timeout=30,
        cwd=ROOT,
    )
    assert out.returncode != 0
    assert message.encode() in out.stdout + out.stderr


def test_workers_share_one_unix_socket_survive_a_crash_reload_and_remove_it(
    sockdir: Path,
) -> None:
    a = UnixMemcached(str(sockdir / "a.sock"))
    cfg = sockdir / "routes.lua"
    write_config(cfg, a.path, a.path, "v1")
    path = str(sockdir / "proxy.sock")
    proc = serve("--config", str(cfg), "--workers", "2", "--listen", f"unix:{path}:0666")
    try:
        wait_unix(path, proc)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        pids: set[bytes] = set()
        deadline = time.monotonic() + 15
        i = 0
        while len(pids) < 2 and time.monotonic() < deadline:
            i += 1
            c = Client(path)
            c.send(b"set w%d 0 0 1\r\nx\r\nstats\r\n" % i)
            assert c.readline() == b"STORED\r\n"
            out = c.read_until(b"\r\nEND\r\n")
            pids.add(out.split(b"STAT pid ")[1].split(b"\r\n")[0])
            c.close()
            time.sleep(0.01)
        assert len(pids) == 2  # both workers accept on the one socket

        victim = int(next(iter(pids)))
        os.kill(victim, signal.SIGKILL)
        time.sleep(1.0)
        assert os.path.exists(path)  # a worker's death does not take the socket away
        for _ in range(10):
            assert version(path) == b"v1"

        write_config(cfg, a.path, a.path, "v2")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: all(version(path) == b"v2" for _ in range(10)))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666  # reload keeps the listener
    finally:
        err = stop(proc)
        a.stop()
    assert proc.returncode == 0, err
    assert b"restarting it" in err
    assert not os.path.exists(path)
