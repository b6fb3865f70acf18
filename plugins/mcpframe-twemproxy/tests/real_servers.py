"""Helpers for the placement tests: finding and running servers, talking to them."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable

import pytest


def require_binary(name: str, fallback: str) -> str:
    path = shutil.which(name) or (fallback if os.access(fallback, os.X_OK) else None)
    if path is None:
        message = f"{name} is not installed"
        if os.environ.get("MCPFRAME_REQUIRE_SERVERS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: all are held open together while they are chosen."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


class Server:
    """A server process whose stderr goes to a temporary file (a pipe nobody reads can fill)."""

    def __init__(self, cmd: list[str]) -> None:
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.errors)

    def wait_port(self, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.errors.seek(0)
                err = self.errors.read().decode(errors="replace")
                raise RuntimeError(f"{self.proc.args!r} exited with {self.proc.returncode}: {err}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return
            time.sleep(0.02)
        raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errors.close()


class Conversation:
    """One client connection that sends a pipelined batch and reads its reply lines."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.buf = b""

    def lines(self, request: bytes, count: int) -> list[bytes]:
        self.sock.sendall(request)
        while self.buf.count(b"\r\n") < count:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buf += chunk
        *lines, self.buf = self.buf.split(b"\r\n", count)
        return lines

    def close(self) -> None:
        self.sock.close()


Starter = Callable[..., int]
