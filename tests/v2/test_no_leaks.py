"""A bounded burst of v2 requests whose backend replies come late and out of step with the
routes' waits (timeouts, background sends, FASTGOOD, callbacks): every client gets one reply
per request, in order, and afterwards no request is left active and every backend connection
is still in step (spec v2 3.15: slots are released only when everything they sent came back,
and late replies are dropped, not handed to another request)."""

from __future__ import annotations

import random
import re
import threading
import time

from tests.fakebackend import FakeBackend, FakeConn, validate
from tests.helpers import Client
from tests.route_api.conftest import Proxy
from tests.v2.conftest import StartProxy

SCENARIOS = [b"tmo", b"bg", b"eawtmo", b"fast", b"cb", b"all", b"direct", b"twice"]
CLIENTS = 4
PER_CLIENT = 24


def slow_backend(seed: int) -> FakeBackend:
    """Answers each request after 0-60 ms, a hit or a miss (a fake: a real memcached cannot
    be told to be late)."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def handler(conn: FakeConn) -> None:
        validate(conn)
        while True:
            line = conn.read_line(timeout=60)
            with lock:
                delay, reply = rng.random() * 0.06, rng.choice([b"HD\r\n", b"EN\r\n"])
            time.sleep(delay)
            conn.send(reply if line.startswith(b"mg ") else b"SERVER_ERROR what\r\n")

    return FakeBackend().serve(handler)


def read_reply(c: Client) -> bytes:
    first = c.readline()
    if first.startswith(b"VALUE "):
        return first + c.read_until(b"END\r\n")
    return first


def test_a_burst_leaves_nothing_behind(start_v2: StartProxy) -> None:
    fakes = [slow_backend(i) for i in range(3)]
    try:
        proxy: Proxy = start_v2(
            "funcgen.lua", {f"MCP_B{i + 1}": str(f.port) for i, f in enumerate(fakes)}
        )
        clients = [proxy.connect() for _ in range(CLIENTS)]
        sent: list[list[bytes]] = []
        for i, c in enumerate(clients):
            names = [SCENARIOS[(i + k) % len(SCENARIOS)] for k in range(PER_CLIENT)]
            c.send(b"".join(b"mg /%s/k%d v\r\n" % (n, k) for k, n in enumerate(names)))
            sent.append(names)
        for c, names in zip(clients, sent, strict=True):
            for k, name in enumerate(names):
                reply = read_reply(c)
                key = b"/%s/k%d" % (name, k)
                # a report about this very request, or a backend's answer to it
                assert reply.startswith(b"VALUE " + key + b" ") or reply in (
                    b"HD\r\n",
                    b"EN\r\n",
                ), (name, reply)
        deadline = time.monotonic() + 5
        while int(proxy.stats()["proxy_req_active"]) != 0:
            assert time.monotonic() < deadline, "requests left active"
            time.sleep(0.05)
        # every backend still answers: all three reply to a fresh request
        c = proxy.connect()
        c.send(b"mg /all/after v\r\n")
        assert re.fullmatch(
            rb"VALUE /all/after 0 \d+\r\n3\|(8|16),(8|16),(8|16)\r\nEND\r\n", read_reply(c)
        )
    finally:
        for f in fakes:
            f.close()
