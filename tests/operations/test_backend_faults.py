"""Backend faults injected with the scriptable fake backend (spec 7, DESIGN "Reliability").

Every scenario routes ``/a/`` keys to the backend in trouble and every other key to a real,
healthy memcached, and asserts on numbers: how long the affected requests took to fail, that
a client of the healthy backend was never slowed down meanwhile, the ``proxy_backend`` log
lines (memcached's format and reason names) and the ``stats`` counters.

Timeouts are short (read 0.4 s, connect 0.4 s, retry 0.6 s) so each scenario takes ~2 s.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from tests.fakebackend import (
    FakeBackend,
    FakeConn,
    Handler,
    answer,
    close_at_once,
    idle_data,
    on_version,
    reply_with,
    stall,
    swallow,
    validate,
)
from tests.helpers import Client, Mcpframe, Memcached, free_port
from tests.operations.support import (
    BACKEND_FAILURE,
    Prober,
    Watch,
    backend_stats,
    mg,
    poll_until,
    start_faults_proxy,
)

READ = 0.4
RETRY = 0.6
#: Scheduling slack allowed on top of a timeout (a loaded 2-core CI machine).
SLACK = 0.35
#: A request that "fails fast" or a healthy one answers within this.
FAST = 0.1

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def healthy(memcached_factory: Callable[..., Memcached]) -> Memcached:
    return memcached_factory()


@pytest.fixture
def fakes() -> Iterator[list[FakeBackend]]:
    made: list[FakeBackend] = []
    yield made
    for fake in made:
        fake.close()


def serve(fakes: list[FakeBackend], handler: Handler, port: int = 0) -> FakeBackend:
    fake = FakeBackend(port).serve(handler)
    fakes.append(fake)
    return fake


def line_for(reason: str, port: int, depth: int | str = r"\d+", rbuf: str = r"\S*") -> str:
    """The regex of a spec 7.4 log line, as ``watch proxyevents`` shows it
    (``type=proxy_backend error=...``) or as the stderr logger writes it (``gid=`` after the
    type, an empty value as ``""``)."""
    empty = '|""' if rbuf == "" else ""
    return (
        rf"type=proxy_backend (?:gid=\d+ )?error={reason} name=127\.0\.0\.1 port={port} "
        rf"depth={depth} rbuf=(?:{rbuf}{empty})$"
    )


def exact_line(reason: str, port: int, depth: int, rbuf: str) -> str:
    """A ``watch proxyevents`` line body after ``ts=... gid=...``, byte for byte (spec 9.3)."""
    return (
        rf"^ts=\d+\.\d+ gid=\d+ type=proxy_backend error={reason} name=127\.0\.0\.1 "
        rf"port={port} depth={depth} rbuf={re.escape(rbuf)}$"
    )


def test_stalled_backend_fails_its_keys_within_the_read_timeout(
    connect: Callable[[tuple[str, int]], Client],
    healthy: Memcached,
    fakes: list[FakeBackend],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    fake = serve(fakes, stall())
    proxy, log = start_faults_proxy(mcpframe_factory, fake.port, healthy.port)
    watch = Watch(proxy.addr)
    probe = Prober(proxy.addr)
    c = connect(proxy.addr)
    reply, took = mg(c, "/a/one")
    assert reply == BACKEND_FAILURE
    assert READ * 0.95 <= took < READ + SLACK
    # Five pipelined requests all fail together, at one read timeout, in order.
    t0 = time.monotonic()
    c.send(b"".join(b"mg /a/p%d v\r\n" % i for i in range(5)))
    assert [c.readline() for _ in range(5)] == [BACKEND_FAILURE] * 5
    assert READ * 0.95 <= time.monotonic() - t0 < READ + SLACK
    ok, failed, slowest = probe.stop()
    assert failed == 0 and ok >= 20
    assert slowest < FAST
    assert log.settled(line_for("timeout", fake.port, 1, ""), 1) == 1
    assert log.settled(line_for("timeout", fake.port, 5, ""), 1) == 1
    assert len(watch.wait_for(exact_line("timeout", fake.port, 1, ""))) == 1
    assert len(watch.wait_for(exact_line("timeout", fake.port, 5, ""))) == 1
    watch.close()
    # Each failure is followed by a connection that validates, which resets the count: a
    # backend that validates and then stalls is reconnected, never marked bad.
    total, failed_stat, marked_bad = backend_stats(proxy.addr)
    assert (total, failed_stat, marked_bad) == (2, 2, 0)


def test_backend_that_never_validates_is_marked_bad_then_fails_fast(
    connect: Callable[[tuple[str, int]], Client],
    healthy: Memcached,
    fakes: list[FakeBackend],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    fake = serve(fakes, on_version(b""))  # accepts, reads "version", never answers
    proxy, log = start_faults_proxy(
        mcpframe_factory, fake.port, healthy.port, failure_limit=1, retry_timeout=RETRY
    )
    probe = Prober(proxy.addr)
    c = connect(proxy.addr)
    # Attempt 1 times out validating (readvalidate), attempt 2 too, then it is marked bad:
    # a request queued meanwhile costs at most one read timeout.
    reply, took = mg(c, "/a/first")
    assert reply == BACKEND_FAILURE
    assert took < READ + SLACK
    marked = log.wait_for(line_for("markedbad", fake.port, 0, ""), timeout=2 * READ + 2)
    assert len(marked) == 1
    assert log.settled(line_for("readvalidate", fake.port, r"\d+", ""), 2) == 2
    # Bad: every request fails at once, without network activity.
    accepted = fake.accepted
    for i in range(30):
        reply, took = mg(c, f"/a/fast{i}")
        assert reply == BACKEND_FAILURE
        assert took < FAST
    # Retries go on quietly while it stays bad (one per retry timeout + read timeout).
    time.sleep(2 * (RETRY + READ) + 0.2)
    assert fake.accepted - accepted >= 2
    assert log.settled(r"error=readvalidate", 2) == 2
    assert log.settled(r"error=markedbad", 1) == 1
    # It starts answering: back within one retry cycle.
    fake.set_handler(answer())
    back, waited = poll_until(lambda: mg(c, "/a/back")[0] == b"EN\r\n", timeout=5)
    assert back and waited < RETRY + READ + SLACK
    ok, failed, slowest = probe.stop()
    assert failed == 0 and ok >= 50 and slowest < FAST
    assert backend_stats(proxy.addr) == (2, 1, 1)


def test_failure_limit_zero_marks_bad_on_first_failure(
    healthy: Memcached, fakes: list[FakeBackend], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    # spec 7.4's test: failurelimit 0, a mock that never answers version.
    fake = serve(fakes, on_version(b""))
    proxy, log = start_faults_proxy(mcpframe_factory, fake.port, healthy.port, failure_limit=0)
    found = log.wait_for(line_for("markedbad", fake.port, 0, ""), timeout=READ + 2)
    assert len(found) == 1
    lines = [line for _, line in log.matching(r"type=proxy_backend")]
    assert re.search(line_for("readvalidate", fake.port, 0, ""), lines[0])
    assert re.search(line_for("markedbad", fake.port, 0, ""), lines[1])
    assert backend_stats(proxy.addr) == (2, 0, 1)


def test_refused_connections_mark_bad_and_recover_when_it_listens(
    connect: Callable[[tuple[str, int]], Client],
    healthy: Memcached,
    fakes: list[FakeBackend],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    port = free_port()  # nothing listens there
    proxy, log = start_faults_proxy(mcpframe_factory, port, healthy.port, retry_timeout=RETRY)
    found = log.wait_for(line_for("markedbad", port, 0, ""), timeout=3)
    assert len(found) == 1
    # spec 7.4, verified live on memcached: four "connecting" lines, then "markedbad".
    connecting = log.matching(line_for("connecting", port, 0, ""))
    assert len(connecting) == 4
    assert found[0][0] - connecting[0][0] < 0.2
    assert backend_stats(proxy.addr) == (2, 3, 1)
    c = connect(proxy.addr)
    t0 = time.monotonic()
    for i in range(50):
        c.send(f"mg /a/{i} v\r\nmg /b/{i} v\r\n".encode())
        assert c.readline() == BACKEND_FAILURE
        assert c.readline() == b"EN\r\n"
    assert time.monotonic() - t0 < 50 * FAST / 2
    # Quiet retries while nothing listens.
    time.sleep(2 * RETRY)
    assert log.settled(r"error=connecting", 4) == 4
    serve(fakes, answer(), port=port)
    back, waited = poll_until(lambda: mg(c, "/a/back")[0] == b"EN\r\n", timeout=5)
    assert back and waited < RETRY + SLACK
    assert backend_stats(proxy.addr) == (2, 3, 1)


def test_connect_timeout_is_conntimeout(
    connect: Callable[[tuple[str, int]], Client],
    healthy: Memcached,
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    # A listener whose accept queue is full drops SYNs: the connect hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), 1)
    try:
        proxy, log = start_faults_proxy(
            mcpframe_factory, port, healthy.port, connect_timeout=0.3, failure_limit=0
        )
        c = connect(proxy.addr)
        reply, took = mg(c, "/a/x")  # queued while connecting: fails at the connect timeout
        assert reply == BACKEND_FAILURE
        assert took < 0.3 + SLACK
        assert len(log.wait_for(line_for("conntimeout", port, r"[01]", ""), timeout=2)) == 1
        assert len(log.wait_for(line_for("markedbad", port, 0, ""), timeout=2)) == 1
        assert mg(c, "/b/x")[0] == b"EN\r\n"
    finally:
        filler.close()
        listener.close()


@pytest.mark.parametrize(
    ("name", "handler", "request_", "reason", "depth", "rbuf"),
    [
        ("garbage", reply_with(b"garbage\r\n"), b"mg /a/x v\r\n", "parsing", 1,
         "garbage%0D%0A"),
        ("error line", reply_with(b"ERROR\r\n"), b"mg /a/x v\r\n", "invalidprotocol", 0, ""),
        ("close mid-value", reply_with(b"VA 10\r\n01234", then="close"), b"mg /a/x v\r\n",
         "disconnected", 1, ""),
        ("missing END", reply_with(b"VALUE /a/x 0 2\r\nhi\r\nXYZ\r\n"), b"get /a/x\r\n",
         "missingend", 1, "XYZ%0D%0A"),
        ("two values for one key",
         reply_with(b"VALUE /a/x 0 2\r\nhi\r\nVALUE /a/x 0 1\r\nz\r\nEND\r\n"),
         b"get /a/x\r\n", "missingend", 1,
         "VALUE%20%2Fa%2Fx%200%202%0D%0Ahi%0D%0AVALUE%20%2Fa%2Fx%200%201%0D%0Az%0D%0AEND%0D%0A"),
        ("stat reply", reply_with(b"STAT pid 1\r\n"), b"mg /a/x v\r\n", "unhandledres", 1,
         "STAT%20pid%201%0D%0A"),
        ("hang up", reply_with(b"", then="close"), b"mg /a/x v\r\n", "disconnected", 1, ""),
    ],
)  # fmt: skip
def test_broken_replies_fail_fast(
    connect: Callable[[tuple[str, int]], Client],
    name: str,
    handler: Handler,
    request_: bytes,
    reason: str,
    depth: int,
    rbuf: str,
    healthy: Memcached,
    fakes: list[FakeBackend],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    fake = serve(fakes, handler)
    proxy, log = start_faults_proxy(mcpframe_factory, fake.port, healthy.port)
    c = connect(proxy.addr)
    for _ in range(5):
        t0 = time.monotonic()
        c.send(request_)
        reply = c.readline()
        took = time.monotonic() - t0
        # An ERROR line is forwarded as is; anything else becomes a backend failure.
        assert reply == (b"ERROR\r\n" if reason == "invalidprotocol" else BACKEND_FAILURE)
        assert took < FAST + 0.1, name  # no timeout involved
        assert mg(c, "/b/x")[0] == b"EN\r\n"
    assert len(log.wait_for(line_for(reason, fake.port, depth, rbuf), n=5, timeout=2)) == 5
    # Each failure came after a validated connect: reconnected at once, never marked bad.
    assert backend_stats(proxy.addr) == (2, 5, 0)


def test_slow_drip_is_not_a_timeout_but_a_gap_is(
    connect: Callable[[tuple[str, int]], Client],
    healthy: Memcached,
    fakes: list[FakeBackend],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    # The read timeout measures inactivity (spec 7.3): a reply trickling in with gaps shorter
    # than the timeout completes, even when the whole reply takes longer than the timeout.
    def script(conn: FakeConn) -> None:
        validate(conn)
        conn.read_line()
        for i in range(0, 10, 2):  # 5 pieces, 0.12 s apart
            time.sleep(0.12 if i else 0)
            conn.send(b"VA 2\r\nhi\r\n"[i : i + 2])
        conn.read_line()
        conn.send(b"VA 2")
        time.sleep(3 * READ)
        conn.send(b"\r\nhi\r\n")
        swallow(conn)

    fake = serve(fakes, script)
    proxy, log = start_faults_proxy(mcpframe_factory, fake.port, healthy.port)
    probe = Prober(proxy.addr)
    c = connect(proxy.addr)
    reply, took = mg(c, "/a/drip")
    assert reply == b"VA 2\r\nhi\r\n"
    assert 4 * 0.12 * 0.95 <= took < 4 * 0.12 + SLACK and took > READ
    # A gap longer than the timeout fails it, one read timeout after the last byte.
    c.send(b"mg /a/gap v\r\n")
    t0 = time.monotonic()
    assert c.readline() == BACKEND_FAILURE
    assert READ * 0.95 <= time.monotonic() - t0 < READ + SLACK
    _ok, failed, slowest = probe.stop()
    assert failed == 0 and slowest < FAST
    # rbuf shows what memcached's buffer would hold: the partial header.
    assert log.settled(line_for("timeout", fake.port, 1, "VA%202"), 1) == 1


def test_value_without_end_times_out_like_memcached(
    connect: Callable[[tuple[str, int]], Client],
    healthy: Memcached,
    fakes: list[FakeBackend],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    # spec 6.8: "VALUE /b/a 0 2\r\nhi\r\nEN" and a read timeout -> backend failure, and the
    # log shows error=timeout ... depth=1 rbuf=EN.
    fake = serve(fakes, reply_with(b"VALUE /a/a 0 2\r\nhi\r\nEN"))
    proxy, log = start_faults_proxy(mcpframe_factory, fake.port, healthy.port, read_timeout=0.5)
    watch = Watch(proxy.addr)
    c = connect(proxy.addr)
    t0 = time.monotonic()
    c.send(b"get /a/a\r\n")
    assert c.readline() == BACKEND_FAILURE
    assert 0.5 * 0.95 <= time.monotonic() - t0 < 0.5 + SLACK
    assert log.settled(line_for("timeout", fake.port, 1, "EN"), 1) == 1
    assert len(watch.wait_for(exact_line("timeout", fake.port, 1, "EN"))) == 1
    watch.close()


def test_version_then_garbage_in_the_same_read_is_dropped(
    connect: Callable[[tuple[str, int]], Client],
    healthy: Memcached,
    fakes: list[FakeBackend],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    fake = serve(fakes, on_version(b"VERSION 1.6.20\r\ngarbage\r\n", then="answer"))
    proxy, log = start_faults_proxy(mcpframe_factory, fake.port, healthy.port)
    c = connect(proxy.addr)
    for i in range(10):
        assert mg(c, f"/a/{i}") == (b"EN\r\n", pytest.approx(0, abs=FAST))
    assert log.count(r"type=proxy_backend") == 0
    assert backend_stats(proxy.addr) == (2, 0, 0)


@pytest.mark.parametrize(
    ("reply", "reason", "rbuf"),
    [(b"STORED\r\n", "badvalidate", "STORED%0D%0A"), (b"SERVER_ERROR x\r\n", "readvalidate",
      "SERVER_ERROR%20x%0D%0A"), (b"garbage\r\n", "readvalidate", "garbage%0D%0A")],
)  # fmt: skip
def test_bad_version_replies(
    connect: Callable[[tuple[str, int]], Client],
    reply: bytes,
    reason: str,
    rbuf: str,
    healthy: Memcached,
    fakes: list[FakeBackend],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    fake = serve(fakes, on_version(reply))
    proxy, log = start_faults_proxy(mcpframe_factory, fake.port, healthy.port)
    found = log.wait_for(line_for("markedbad", fake.port, 0, ""), timeout=3)
    assert len(found) == 1
    assert log.settled(line_for(reason, fake.port, r"\d+", rbuf), 4) == 4  # failure limit 3
    c = connect(proxy.addr)
    assert mg(c, "/a/x") == (BACKEND_FAILURE, pytest.approx(0, abs=FAST))
    assert backend_stats(proxy.addr) == (2, 3, 1)


def test_closing_before_validation_is_marked_bad(
    healthy: Memcached, fakes: list[FakeBackend], mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    # Accept-and-close (a server at its connection limit, a forwarder with a dead target):
    # 1.6.20 would reconnect in a tight loop forever; the count survives until validation.
    fake = serve(fakes, close_at_once)
    proxy, log = start_faults_proxy(mcpframe_factory, fake.port, healthy.port)
    assert len(log.wait_for(line_for("markedbad", fake.port, 0, ""), timeout=3)) == 1
    first = log.count(r"error=(disconnected|reading)")
    assert first == 4
    accepted = fake.accepted
    time.sleep(RETRY * 2.5)
    # Retries only every retry timeout, silently.
    assert 1 <= fake.accepted - accepted <= 3
    assert log.count(r"error=(disconnected|reading)") == first
    assert backend_stats(proxy.addr) == (2, 3, 1)


def test_trailing_data_is_delivered_then_resets(
    connect: Callable[[tuple[str, int]], Client],
    healthy: Memcached,
    fakes: list[FakeBackend],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    fake = serve(fakes, reply_with(b"HD\r\nEXTRA\r\n", then="answer"))
    proxy, log = start_faults_proxy(mcpframe_factory, fake.port, healthy.port)
    c = connect(proxy.addr)
    # The reply owed is delivered, then the connection is reset (and reconnected at once).
    for i in range(3):
        assert mg(c, f"/a/{i}") == (b"HD\r\n", pytest.approx(0, abs=FAST))
    found = log.wait_for(line_for("trailingdata", fake.port, 0, "EXTRA%0D%0A"), n=3)
    assert len(found) == 3
    assert backend_stats(proxy.addr) == (2, 3, 0)


def test_data_while_idle_is_closedsock(
    connect: Callable[[tuple[str, int]], Client],
    healthy: Memcached,
    fakes: list[FakeBackend],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    fake = serve(fakes, idle_data(b"surprise\r\n", delay=0.1))
    proxy, log = start_faults_proxy(mcpframe_factory, fake.port, healthy.port)
    found = log.wait_for(line_for("closedsock", fake.port, 0, "surprise%0D%0A"), timeout=3)
    assert len(found) == 1
    fake.set_handler(answer())
    c = connect(proxy.addr)
    back, waited = poll_until(lambda: mg(c, "/a/z")[0] == b"EN\r\n", timeout=3)
    assert back and waited < 0.5
    assert log.count(r"error=closedsock") <= 2  # one more if the reconnect beat set_handler
    assert backend_stats(proxy.addr)[2] == 0


def test_unresolvable_host_is_a_connect_failure_not_a_crash(
    connect: Callable[[tuple[str, int]], Client],
    healthy: Memcached,
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    # spec 7.1 [Q]: 1.6.20 aborts with free(): invalid pointer. [R]: failure "connecting".
    proxy, log = start_faults_proxy(
        mcpframe_factory, 11211, healthy.port, host_a="no-such-host.invalid"
    )
    pattern = (
        r"type=proxy_backend (?:gid=\d+ )?error=connecting name=no-such-host\.invalid port=11211 "
    )
    assert len(log.wait_for(r"error=markedbad name=no-such-host", timeout=3)) == 1
    assert log.settled(pattern, 4) == 4
    c = connect(proxy.addr)
    for i in range(10):
        assert mg(c, f"/a/{i}") == (BACKEND_FAILURE, pytest.approx(0, abs=FAST))
        assert mg(c, f"/b/{i}")[0] == b"EN\r\n"
    time.sleep(2 * RETRY)
    assert proxy.proc.poll() is None
    assert log.settled(pattern, 4) == 4


def _keepalive_timer(server_port: int) -> set[str]:
    """The TCP timer kinds of the connections to ``server_port`` (``02`` = keepalive)."""
    kinds = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[2].endswith(f":{server_port:04X}") and fields[3] == "01":  # ESTABLISHED
                kinds.add(fields[5].split(":")[0])
    return kinds


@pytest.mark.parametrize("keepalive", [True, False])
def test_tcp_keepalive(
    connect: Callable[[tuple[str, int]], Client],
    keepalive: bool,
    healthy: Memcached,
    fakes: list[FakeBackend],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    fake = serve(fakes, answer())
    proxy, _ = start_faults_proxy(
        mcpframe_factory, fake.port, healthy.port, keepalive=int(keepalive)
    )
    c = connect(proxy.addr)
    assert mg(c, "/a/x")[0] == b"EN\r\n"
    assert _keepalive_timer(fake.port) == ({"02"} if keepalive else {"00"})
