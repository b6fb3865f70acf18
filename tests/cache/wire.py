"""Test helpers: Requests from raw client bytes, and a raw exchange with a real memcached.

``requests_from_bytes`` stands in for the protocol reader (``mcpframe.protocol.reader``):
it cuts a byte stream into the ``Request`` records the cache receives, with the same
guarantees (a storage request carries its data block with the CRLF; a block larger than
``max_value`` is swallowed and arrives as ``value=None``).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket

from mcpframe.protocol.commands import (
    CMD_GAT,
    CMD_GATS,
    CMD_MA,
    CMD_MD,
    CMD_ME,
    CMD_MG,
    CMD_MS,
    COMMANDS,
    MULTIGET,
    STORAGE_WITH_VALUE,
)
from mcpframe.protocol.request import Request
from tests.helpers import Memcached

META = frozenset({CMD_MG, CMD_MS, CMD_MD, CMD_MA, CMD_ME})
#: Sent after each exchange; memcached answers it in order, so its reply marks the end.
SENTINEL = b"version\r\n"


def requests_from_bytes(data: bytes, max_value: int = 1024 * 1024) -> list[Request]:
    """Split client bytes into Requests (unknown command words get code 0)."""
    reqs: list[Request] = []
    pos = 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        line = data[pos : nl + 1]
        pos = nl + 1
        toks = [t for t in line.rstrip(b"\r\n").split(b" ") if t]
        cmd = COMMANDS.get(toks[0], 0) if toks else 0
        key = b""
        if len(toks) > 1:
            key = toks[2] if cmd in (CMD_GAT, CMD_GATS) and len(toks) > 2 else toks[1]
        value: bytes | None = None
        if cmd in STORAGE_WITH_VALUE:
            n = int(toks[2] if cmd == CMD_MS else toks[4])
            block = data[pos : pos + n + 2]
            pos += n + 2
            value = block if n <= max_value else None
        if cmd in META:
            noreply = any(t.startswith(b"q") for t in toks[2:])
        else:
            noreply = toks[-1] == b"noreply" if toks else False
        nkeys = len(toks) - (2 if cmd in (CMD_GAT, CMD_GATS) else 1)
        reqs.append(Request(cmd, line, key, value, noreply, cmd in MULTIGET and nkeys > 1))
    return reqs


class MemcachedConn:
    """A real memcached (started fresh, killed on close) and one raw connection to it."""

    def __init__(self, *args: str) -> None:
        extra = ("-u", "root") if hasattr(os, "geteuid") and os.geteuid() == 0 else ()
        self.server = Memcached(*extra, *args)
        self.sock = socket.create_connection(self.server.addr, 5.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.sock.sendall(SENTINEL)
        self.end = self._read_until(b"\r\n")  # b"VERSION 1.6.x\r\n"

    def _read_until(self, end: bytes) -> bytes:
        while end not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("memcached closed the connection")
            self.buf += chunk
        i = self.buf.index(end) + len(end)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exchange(self, data: bytes) -> bytes:
        """Send ``data``; return every reply byte it produced."""
        self.sock.sendall(data + SENTINEL)
        return self._read_until(self.end)[: -len(self.end)]

    def stats(self) -> dict[str, int]:
        self.sock.sendall(b"stats\r\n")
        text = self._read_until(b"END\r\n").decode()
        out: dict[str, int] = {}
        for m in re.finditer(r"STAT (\w+) (-?\d+)\r\n", text):
            out[m.group(1)] = int(m.group(2))
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        # SIGKILL: a terminate costs ~200 ms of memcached shutdown per test.
        self.server.proc.kill()
        self.server.proc.wait()


class FakeClock:
    """A settable clock for the cache (seconds)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
