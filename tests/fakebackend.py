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
import threading
import time
from collections.abc import Callable


class FakeConn:
    """One accepted connection from the proxy."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(5.0)
        self.buf = b""
        #: Set once a read found the proxy had closed the connection.
        self.closed_by_peer = False

    def _fill(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            self.closed_by_peer = True
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
        # shutdown first: it wakes a thread blocked in recv on this socket and sends the FIN
        # at once (a bare close from another thread would wait for that recv to return).
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
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

    # -- scripted serving (see the handlers at the end of this module) ---------------------

    def serve(self, handler: Handler) -> FakeBackend:
        """Accept every connection from now on, in a background thread, and run
        ``handler(conn)`` for each in a thread of its own. Returns ``self``."""
        self._stopping = threading.Event()
        self.accepted = 0
        self._handler = handler
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        return self

    def set_handler(self, handler: Handler) -> None:
        """Use ``handler`` for the connections accepted from now on."""
        self._handler = handler

    def _accept_loop(self) -> None:
        listener = self.listener
        listener.settimeout(0.05)
        while not self._stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            conn = FakeConn(sock)
            self.conns.append(conn)
            self.accepted += 1
            threading.Thread(target=_quietly, args=(self._handler, conn), daemon=True).start()

    def refuse(self) -> None:
        """Stop listening (connections are refused) and drop every open connection."""
        stopping = getattr(self, "_stopping", None)
        if stopping is not None:
            stopping.set()
            self._thread.join(5)
        for conn in self.conns:
            conn.close()
        self.conns = []
        with contextlib.suppress(OSError):
            self.listener.close()

    def listen_again(self, handler: Handler | None = None) -> FakeBackend:
        """Listen on the same port again, serving with ``handler`` (or the previous one)."""
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        return self.serve(handler or self._handler)

    def close(self) -> None:
        stopping = getattr(self, "_stopping", None)
        if stopping is not None:
            stopping.set()
        for conn in self.conns:
            conn.close()
        with contextlib.suppress(OSError):
            self.listener.close()


# -- Handlers for FakeBackend.serve --------------------------------------------------------
#
# Each scripts one behaviour; they end when the proxy closes the connection or the fake is
# closed. ``answer`` is a minimal well-behaved backend to compare with.

Handler = Callable[[FakeConn], None]
_FOREVER = 3600.0


def _quietly(handler: Handler, conn: FakeConn) -> None:
    with contextlib.suppress(OSError, ConnectionError, AssertionError, ValueError):
        handler(conn)
    conn.close()


def validate(conn: FakeConn) -> None:
    """Answer the proxy's ``version`` check."""
    line = conn.read_line(timeout=_FOREVER)
    if line != b"version\r\n":
        raise AssertionError(f"expected the proxy's version check, got {line!r}")
    conn.send(b"VERSION 1.0.0-mock\r\n")


def simple_reply(line: bytes) -> bytes:
    """A tiny memcached: ``mg``/``get`` miss, ``ms``/``md``/``ma`` say ``HD``, ``set`` stores
    (the value is dropped)."""
    word = line.split(b" ", 1)[0].strip()
    if word == b"mg":
        return b"EN\r\n"
    if word in (b"ms", b"md", b"ma"):
        return b"HD\r\n"
    if word == b"get":
        return b"END\r\n"
    if word == b"set":
        return b"STORED\r\n"
    return b"ERROR\r\n"


def serve_requests(conn: FakeConn, reply: Callable[[bytes], bytes] = simple_reply) -> None:
    """Answer each request line with ``reply(line)`` (``ms``/``set`` data blocks dropped)."""
    while True:
        line = conn.read_line(timeout=_FOREVER)
        tokens = line.split()
        if tokens[:1] == [b"ms"] and len(tokens) > 2 and tokens[2].isdigit():
            conn.read_exactly(int(tokens[2]) + 2, timeout=30.0)
        elif tokens[:1] == [b"set"] and len(tokens) > 4 and tokens[4].isdigit():
            conn.read_exactly(int(tokens[4]) + 2, timeout=30.0)
        conn.send(reply(line))


def swallow(conn: FakeConn) -> None:
    """Read whatever comes until the proxy closes; never answer."""
    while not conn.closed_by_peer:
        conn.read_available(_FOREVER)


def answer(reply: Callable[[bytes], bytes] = simple_reply) -> Handler:
    """A well-behaved backend: validate, then answer each request with ``reply(line)``."""

    def run(conn: FakeConn) -> None:
        validate(conn)
        serve_requests(conn, reply)

    return run


def stall(validated: bool = True) -> Handler:
    """Accept (and answer ``version`` if ``validated``), then read but never answer."""

    def run(conn: FakeConn) -> None:
        if validated:
            validate(conn)
        swallow(conn)

    return run


def reply_with(
    data: bytes, *, chunk: int = 0, interval: float = 0.0, then: str = "stay"
) -> Handler:
    """Validate, wait for one request line, send ``data`` (in ``chunk``-byte pieces every
    ``interval`` seconds when ``chunk`` is set), then ``then``: ``"stay"`` (keep reading,
    never answer), ``"close"`` (close the socket) or ``"answer"`` (answer later requests
    with :func:`simple_reply`)."""

    def run(conn: FakeConn) -> None:
        validate(conn)
        conn.read_line(timeout=_FOREVER)
        step = chunk or len(data) or 1
        for i in range(0, len(data), step):
            if i and interval:
                time.sleep(interval)
            conn.send(data[i : i + step])
        if then == "close":
            return
        if then == "answer":
            serve_requests(conn)
        else:
            swallow(conn)

    return run


def on_version(data: bytes, then: str = "stay") -> Handler:
    """Answer the ``version`` check with ``data`` (``b""``: say nothing), then ``then``:
    ``"stay"`` (keep reading, never answer), ``"close"`` or ``"answer"``."""

    def run(conn: FakeConn) -> None:
        conn.read_line(timeout=_FOREVER)
        if data:
            conn.send(data)
        if then == "close":
            return
        if then == "answer":
            serve_requests(conn)
        else:
            swallow(conn)

    return run


def close_at_once(conn: FakeConn) -> None:
    """Accept and close at once, before the version check is answered."""
    conn.close()


def idle_data(data: bytes, delay: float) -> Handler:
    """Validate, then ``delay`` seconds later send ``data`` although nothing was asked."""

    def run(conn: FakeConn) -> None:
        validate(conn)
        time.sleep(delay)
        conn.send(data)
        swallow(conn)

    return run
