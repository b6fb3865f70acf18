"""memcached 1.6.45's backend options through the wire (spec v2 8.4-8.7, 10.4): ``down``,
``depthlimit``, ``retrywaittime``, flap detection, ``stats proxybe``.

The backend is the scriptable fake (tests/fakebackend.py) where the test needs what a real
memcached cannot do on cue: never answer, close right after validating, or show whether a
connection was attempted at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakebackend import FakeBackend, FakeConn, validate
from tests.helpers import Client, Mcpframe
from tests.operations.support import BACKEND_FAILURE, LogTail, mg, stats

CONFIG = """
function mcp_config_pools()
    return mcp.pool({ mcp.backend({ label = "be", host = "127.0.0.1",
                                    port = mcp.start_arg, %s }) })
end
function mcp_config_routes(pool)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r) return pool(r) end)
end
"""


@pytest.fixture
def fake() -> Iterator[FakeBackend]:
    backend = FakeBackend()
    yield backend
    backend.close()


def start(
    factory: Callable[..., Mcpframe], tmp_path: Path, port: int, options: str
) -> tuple[Mcpframe, LogTail]:
    path = tmp_path / "be.lua"
    path.write_text(CONFIG % options)
    proxy = factory("--config", str(path), "--start-arg", str(port))
    return proxy, LogTail(proxy.proc)


def test_down_backend_never_connects_and_fails_at_once(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe], fake: FakeBackend
) -> None:
    proxy, log = start(mcpframe_factory, tmp_path, fake.port, "down = true")
    c = Client(proxy.addr)
    reply, took = mg(c, "k")
    assert reply == BACKEND_FAILURE
    assert took < 0.5
    with pytest.raises(TimeoutError):
        fake.accept(timeout=0.5)
    s = stats(proxy.addr)
    assert (s["proxy_backend_marked_bad"], s["proxy_backend_failed"]) == ("0", "0")
    assert stats(proxy.addr, "proxybe") == {}  # down backends are not listed
    c.close()
    assert log.count("proxy_backend") == 0


def test_depth_limit_fails_a_batch_that_finds_the_backend_too_deep(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe], fake: FakeBackend
) -> None:
    proxy, _ = start(mcpframe_factory, tmp_path, fake.port, "depthlimit = 2")
    conn = fake.accept()  # validated; it will never answer
    a = Client(proxy.addr)
    # Three pipelined requests at depth 0: admitted whole, although they take the depth to 3.
    a.send(b"mg a1 v\r\nmg a2 v\r\nmg a3 v\r\n")
    assert [conn.read_line() for _ in range(3)] == [b"mg a1 v\r\n", b"mg a2 v\r\n", b"mg a3 v\r\n"]
    b = Client(proxy.addr)
    reply, took = mg(b, "b1")
    assert reply == BACKEND_FAILURE
    assert took < 0.5
    assert conn.read_available(0.2) == b""  # never sent
    assert stats(proxy.addr)["proxy_request_failed_depth"] == "1"
    # Answer the three: the depth falls to 0 and requests pass again.
    conn.send(b"EN\r\nEN\r\nEN\r\n")
    assert [a.readline() for _ in range(3)] == [b"EN\r\n"] * 3
    b.send(b"mg b2 v\r\n")
    assert conn.read_line() == b"mg b2 v\r\n"
    conn.send(b"EN\r\n")
    assert b.readline() == b"EN\r\n"
    a.close()
    b.close()


@pytest.mark.parametrize(("waittime", "seconds"), [(1.4, 1), (1.6, 2)])
def test_retry_wait_rounds_to_whole_seconds(
    tmp_path: Path,
    mcpframe_factory: Callable[..., Mcpframe],
    fake: FakeBackend,
    waittime: float,
    seconds: int,
) -> None:
    _, log = start(
        mcpframe_factory,
        tmp_path,
        fake.port,
        f"failurelimit = 0, retrywaittime = {waittime}, readtimeout = 30",
    )
    conn = fake.accept()
    conn.close()  # "disconnected": with failurelimit 0, marked bad at once
    t0 = time.monotonic()
    fake.accept(timeout=seconds + 2)  # the retry
    waited = time.monotonic() - t0
    assert seconds - 0.2 < waited < seconds + 0.5
    assert log.wait_for("error=markedbad ")


def flappy(conn: FakeConn) -> None:
    """Validate, then close 0.1 s later (spec v2 8.5's observed sequence)."""
    validate(conn)
    time.sleep(0.1)


def test_flapping_backend_backs_off(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe], fake: FakeBackend
) -> None:
    fake.serve(flappy)
    options = (
        "failurelimit = 1, retrywaittime = 1, flaptime = 30, flapbackofframp = 2, "
        "flapbackoffmax = 5"
    )
    proxy, log = start(mcpframe_factory, tmp_path, fake.port, options)
    line = f"error=markedbadflap name=127.0.0.1 port={fake.port} label=be retry="
    # 1st close: flap 1, failure 1: reconnect at once. 2nd: flap 2 > 1: bad for 1 * 2**2 s.
    first = log.wait_for(line + "4", timeout=5)
    assert first, log.text()
    s = stats(proxy.addr)
    assert (s["proxy_backend_failed"], s["proxy_backend_marked_bad"]) == ("1", "1")
    assert stats(proxy.addr, "proxybe") == {"bad_be": "1"}
    c = Client(proxy.addr)
    reply, took = mg(c, "k")
    assert reply == BACKEND_FAILURE and took < 0.5
    c.close()
    # The retry 4 s later validates (bad cleared), closes again: flap 3, 1 * 2**3 capped at 5.
    second = log.wait_for(line + "5", timeout=8)
    assert second, log.text()
    assert 3.5 < second[0][0] - first[0][0] < 5.5
    assert stats(proxy.addr)["proxy_backend_marked_bad"] == "2"
