"""A closed client connection is freed at once, not left for the cyclic garbage collector.

`serve` runs the collector rarely (proxy/app.py `tune_process`), and a long-lived connection
sits in its oldest generation, so an object cycle through a closed connection would hold its
buffers until a full collection. This runs the server in-process (the only way to count the
connection objects) with the collector off, and churns connections over the wire.
"""

from __future__ import annotations

import asyncio
import gc

import uvloop

from mcpframe.events import EventLog
from mcpframe.proxy.client import ClientConnection
from mcpframe.proxy.server import Listen, ProxyServer, ServerOptions
from tests.helpers import free_port


async def _churn(n: int) -> int:
    port = free_port()
    options = ServerOptions(listens=[Listen("127.0.0.1", port)])
    server = ProxyServer(options, None, EventLog([]), None)
    task = asyncio.create_task(server.serve_forever())
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if server.servers:
                break
        gc.collect()
        gc.disable()
        try:
            for _ in range(n):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"set a 0 0 1\r\nx\r\n")
                assert await reader.readline() == b"STORED\r\n"
                writer.close()
                await writer.wait_closed()
            for _ in range(100):  # the server sees the last closes shortly after
                await asyncio.sleep(0.01)
                if not server.connections:
                    break
            return sum(1 for o in gc.get_objects() if type(o) is ClientConnection)
        finally:
            gc.enable()
    finally:
        task.cancel()


def test_closed_connections_are_freed_without_the_collector() -> None:
    assert uvloop.run(_churn(200)) == 0
