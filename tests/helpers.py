"""Shared test helpers: free loopback ports, real memcached processes, mcpframe processes,
and a raw-socket client that reads exactly what the server sent."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

MEMCACHED = shutil.which("memcached") or "/usr/bin/memcached"
ROOT = Path(__file__).resolve().parent.parent
# memcached refuses to run as root unless told which user to be.
ROOT_ARGS = ("-u", "root") if os.geteuid() == 0 else ()


def _port_window() -> range:
    """Ports to hand out: below (or above) the kernel's ephemeral range, so that neither the
    outgoing connections of the servers under test nor another ``bind(port 0)`` can take a
    port between the moment it is chosen and the moment a server binds it."""
    low, high = 32768, 60999
    with (
        contextlib.suppress(OSError, ValueError),
        open("/proc/sys/net/ipv4/ip_local_port_range") as f,
    ):
        low, high = (int(x) for x in f.read().split())
    if low - 1 >= 12000:
        return range(10000, low)
    return range(high + 1, 65536)


_WINDOW = _port_window()
# Start at a place that depends on the process, then go round: a port is never handed out
# twice by one test process (unless it runs through the whole window).
_next_port = [_WINDOW.start + (os.getpid() * 7919) % len(_WINDOW)]


def free_port() -> int:
    for _ in range(len(_WINDOW)):
        port = _next_port[0]
        _next_port[0] = port + 1 if port + 1 < _WINDOW.stop else _WINDOW.start
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port")


def _wait_listening(
    connect: Callable[[], None],
    where: str,
    proc: subprocess.Popen[bytes] | None,
    timeout: float,
) -> None:
    """Call ``connect`` until it stops raising OSError; fail at once if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = b""
            if proc.stderr is not None:
                with contextlib.suppress(OSError, ValueError):
                    err = proc.stderr.read()[-600:]
            raise RuntimeError(
                f"process exited with {proc.returncode} before listening on {where}"
                + (f": {err.decode('utf-8', 'replace').strip()}" if err else "")
            )
        with contextlib.suppress(OSError):
            connect()
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {where}")


def wait_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 10.0
) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""

    def connect() -> None:
        socket.create_connection(("127.0.0.1", port), 0.2).close()

    _wait_listening(connect, f"127.0.0.1:{port}", proc, timeout)


def wait_unix(
    path: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 10.0
) -> None:
    """Wait until something accepts connections on the unix socket ``path``."""

    def connect() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            s.connect(path)

    _wait_listening(connect, f"unix:{path}", proc, timeout)


class UnixMemcached:
    """A real memcached listening on a unix socket only (``-s PATH -a MODE``)."""

    def __init__(self, path: str, mode: str = "0700", *args: str) -> None:
        self.path = path
        self.proc = subprocess.Popen(
            [MEMCACHED, "-s", path, "-a", mode, "-t", "1", *ROOT_ARGS, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_unix(path, self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


class Memcached:
    """A real memcached on a free loopback port."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                MEMCACHED,
                "-U",
                "0",
                "-l",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-t",
                "1",
                *ROOT_ARGS,
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, self.proc)

    @property
    def addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Mcpframe:
    """mcpframe started the way users start it: the CLI in a subprocess."""

    def __init__(
        self,
        *args: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.cmd = [
            sys.executable,
            "-m",
            "mcpframe",
            "serve",
            "--listen",
            f"127.0.0.1:{self.port}",
            *args,
        ]
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
        if wait:
            wait_port(self.port, self.proc)
            # Other TCP listeners of the args open a moment after the first: wait for them too.
            for flag, value in itertools.pairwise(args):
                host, _, rest = value.partition(":")
                if flag == "--listen" and host == "127.0.0.1" and rest.split(":")[0].isdigit():
                    wait_port(int(rest.split(":")[0]), self.proc)

    @property
    def addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def stop(self) -> tuple[bytes, bytes]:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.communicate()


class Client:
    """A raw-socket memcached client that reads exact replies."""

    def __init__(
        self,
        addr: tuple[str, int] | str,
        timeout: float = 5.0,
        tls: ssl.SSLContext | None = None,
        server_hostname: str = "localhost",
    ) -> None:
        if isinstance(addr, str):  # a unix socket path
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(addr)
            except OSError:
                self.sock.close()
                raise
        else:
            self.sock = socket.create_connection(addr, timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:  # the handshake happens here (it raises ssl.SSLError on failure)
            try:
                self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname)
            except OSError:
                self.sock.close()
                raise
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by server")
        self.buf += chunk

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def readexactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until(self, end: bytes) -> bytes:
        while end not in self.buf:
            self._fill()
        i = self.buf.index(end) + len(end)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_available(self, wait: float = 0.2) -> bytes:
        """Everything that arrives within ``wait`` seconds of silence."""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(5.0)
        out, self.buf = self.buf, b""
        return out

    def is_closed(self, wait: float = 2.0) -> bool:
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        finally:
            self.sock.settimeout(5.0)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@contextlib.contextmanager
def memcached(*args: str) -> Iterator[Memcached]:
    m = Memcached(*args)
    try:
        yield m
    finally:
        m.stop()
