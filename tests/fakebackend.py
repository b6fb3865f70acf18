"""A scriptable fake memcached backend, for injecting faults a real memcached can't produce.

It exists only for that: stalls, slow drips, garbage, half-closed sockets, refused or
never-validated connections. Everything about normal forwarding is tested against real
memcached processes. The test drives it explicitly: accept the proxy's connection, read
exactly what the proxy sent, write arbitrary bytes back, close.

    fake = FakeBackend()                       # listens on 127.0.0.1:<free port>
    conn = fake.accept()                       # answers the proxy's `version` check
    assert conn.read_line() == b"get /b/a\\r\\n"
    conn.send(b"garbage\\r\\n")
    ...
    fake.close()
"""

from __future__ import annotations

import contextlib
import socket
import time


class FakeConn:
    """One accepted connection from the proxy."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(5.0)
        self.buf = b""

    def _fill(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("proxy closed the backend connection")
        self.buf += chunk

    def read_line(self, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            self._fill(max(0.01, deadline - time.monotonic()))
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def read_exactly(self, n: int, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(max(0.01, deadline - time.monotonic()))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_available(self, wait: float = 0.2) -> bytes:
        """Whatever the proxy sends within ``wait`` seconds of silence."""
        with contextlib.suppress(TimeoutError, ConnectionError):
            while True:
                self._fill(wait)
        out, self.buf = self.buf, b""
        return out

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def is_closed(self, wait: float = 2.0) -> bool:
        """True when the proxy closed this connection within ``wait`` seconds."""
        try:
            self._fill(wait)
        except ConnectionError:
            return True
        except TimeoutError:
            return False
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class FakeBackend:
    """A loopback listener whose connections the test scripts by hand."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(16)
        self.port = int(self.listener.getsockname()[1])
        self.conns: list[FakeConn] = []

    def accept(self, validate: bool = True, timeout: float = 5.0) -> FakeConn:
        """Accept the proxy's next connection; answer its ``version`` check if ``validate``."""
        self.listener.settimeout(timeout)
        sock, _ = self.listener.accept()
        conn = FakeConn(sock)
        self.conns.append(conn)
        if validate:
            line = conn.read_line()
            if line != b"version\r\n":
                raise AssertionError(f"expected the proxy's version check, got {line!r}")
            conn.send(b"VERSION 1.0.0-mock\r\n")
        return conn

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        with contextlib.suppress(OSError):
            self.listener.close()
