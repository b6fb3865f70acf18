"""Helpers for the operations tests: log tails, watch streams, stats, restartable memcached."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import MEMCACHED, ROOT_ARGS, Client, Mcpframe, wait_port

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
FAULTS = CONFIGS / "ops_faults.lua"

BACKEND_FAILURE = b"SERVER_ERROR backend failure\r\n"


class LogTail:
    """Reads a process's stderr in a thread (so a chatty proxy never blocks on a full pipe)
    and keeps every line with the time it arrived."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        self.stream = proc.stderr
        self.lines: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            for raw in iter(self.stream.readline, b""):
                with self.lock:
                    self.lines.append((time.monotonic(), raw.decode("utf-8", "replace")))

    def matching(self, pattern: str) -> list[tuple[float, str]]:
        rx = re.compile(pattern)
        with self.lock:
            return [(t, line) for t, line in self.lines if rx.search(line)]

    def count(self, pattern: str) -> int:
        return len(self.matching(pattern))

    def wait_for(self, pattern: str, n: int = 1, timeout: float = 5.0) -> list[tuple[float, str]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(pattern)
            if len(found) >= n or time.monotonic() > deadline:
                return found
            time.sleep(0.01)

    def settled(self, pattern: str, n: int, timeout: float = 5.0, quiet: float = 0.05) -> int:
        """How many lines match once ``n`` have arrived (or ``timeout`` passed) and ``quiet``
        more seconds brought no new one: the log comes through a pipe and a thread, so a line
        written before the reply the test just read may still be on its way."""
        self.wait_for(pattern, n, timeout)
        time.sleep(quiet)
        return self.count(pattern)

    def text(self) -> str:
        with self.lock:
            return "".join(line for _, line in self.lines)


class Watch:
    """A ``watch proxyevents`` connection whose lines are collected in a thread."""

    def __init__(self, addr: tuple[str, int], streams: str = "proxyevents") -> None:
        self.sock = socket.create_connection(addr, 5)
        self.sock.sendall(f"watch {streams}\r\n".encode())
        self.lines: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        buf = b""
        while b"\n" not in buf:
            buf += self.sock.recv(4096)
        first, _, rest = buf.partition(b"\n")
        assert first == b"OK\r", first
        self.buf = rest
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(None)
        buf = self.buf
        with contextlib.suppress(OSError):
            while True:
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    with self.lock:
                        self.lines.append((time.monotonic(), line.decode("utf-8", "replace")))
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                buf += chunk

    def matching(self, pattern: str) -> list[tuple[float, str]]:
        rx = re.compile(pattern)
        with self.lock:
            return [(t, line) for t, line in self.lines if rx.search(line)]

    def wait_for(self, pattern: str, n: int = 1, timeout: float = 5.0) -> list[tuple[float, str]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(pattern)
            if len(found) >= n or time.monotonic() > deadline:
                return found
            time.sleep(0.01)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def stats(addr: tuple[str, int], sub: str = "") -> dict[str, str]:
    c = Client(addr)
    try:
        c.send(f"stats {sub}\r\n".encode() if sub else b"stats\r\n")
        raw = c.read_until(b"END\r\n")
    finally:
        c.close()
    out: dict[str, str] = {}
    for line in raw.decode().splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2]
    return out


def backend_stats(addr: tuple[str, int]) -> tuple[int, int, int]:
    """(proxy_backend_total, proxy_backend_failed, proxy_backend_marked_bad)."""
    s = stats(addr)
    return (
        int(s["proxy_backend_total"]),
        int(s["proxy_backend_failed"]),
        int(s["proxy_backend_marked_bad"]),
    )


def ask(client: Client, request: bytes, end: bytes = b"\r\n") -> tuple[bytes, float]:
    """Send one request; return its complete reply and the seconds it took."""
    t0 = time.monotonic()
    client.send(request)
    reply = client.readline()
    if reply.startswith((b"VA ", b"VALUE ")):
        reply += client.read_until(end if end != b"\r\n" else b"\r\n")
    return reply, time.monotonic() - t0


def mg(client: Client, key: str) -> tuple[bytes, float]:
    """``mg <key> v`` answered with one line (``EN``, ``HD``, an error) or ``VA`` + value."""
    t0 = time.monotonic()
    client.send(f"mg {key} v\r\n".encode())
    line = client.readline()
    if line.startswith(b"VA "):
        line += client.readexactly(int(line.split()[1]) + 2)
    return line, time.monotonic() - t0


def start_faults_proxy(
    factory: Callable[..., Mcpframe], port_a: int, port_b: int, **env: object
) -> tuple[Mcpframe, LogTail]:
    """mcpframe with ``ops_faults.lua``: /a/ keys to port_a, the rest to port_b."""
    full = {"MCP_TEST_PORT_A": str(port_a), "MCP_TEST_PORT_B": str(port_b)}
    full.update({f"MCP_{k.upper()}": str(v) for k, v in env.items()})
    proxy = factory("--config", str(FAULTS), env=full)
    return proxy, LogTail(proxy.proc)


def poll_until(
    check: Callable[[], bool], timeout: float, interval: float = 0.02
) -> tuple[bool, float]:
    """Call ``check`` until it is true or ``timeout`` passes; (result, seconds waited)."""
    t0 = time.monotonic()
    while True:
        if check():
            return True, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return False, time.monotonic() - t0
        time.sleep(interval)


class MemcachedAt:
    """A real memcached on a given port that can be killed and started again there."""

    def __init__(self, port: int, *args: str) -> None:
        self.port = port
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self) -> None:
        cmd = [MEMCACHED, "-U", "0", "-l", "127.0.0.1", "-p", str(self.port), "-t", "1"]
        self.proc = subprocess.Popen(
            [*cmd, *ROOT_ARGS, *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        self.kill()


def rss_kb(pid: int) -> int:
    """Resident set size of a process, in kB (from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Prober:
    """A client in a thread that keeps asking for keys of the healthy backend, one request at
    a time, and records each reply's latency: proof that other clients are never delayed."""

    def __init__(self, addr: tuple[str, int], key: str = "/b/probe") -> None:
        self.addr = addr
        self.key = key
        self.results: list[tuple[float, bool]] = []  # (seconds, reply was the expected one)
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        client = Client(self.addr)
        try:
            for _ in range(100_000):  # bounded: ~10 minutes at the pace below
                if self.stop_flag.is_set():
                    return
                reply, took = mg(client, self.key)
                self.results.append((took, reply in (b"EN\r\n", b"HD\r\n") or reply[:3] == b"VA "))
                time.sleep(0.005)
        finally:
            client.close()

    def stop(self) -> tuple[int, int, float]:
        """Stop; (ok replies, failed replies, slowest latency in seconds)."""
        self.stop_flag.set()
        self.thread.join(5)
        ok = sum(1 for _, good in self.results if good)
        slowest = max((t for t, _ in self.results), default=0.0)
        return ok, len(self.results) - ok, slowest
