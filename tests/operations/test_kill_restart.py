"""Real memcached backends killed, stopped and restarted under load.

Client threads hammer keys of both backends (``/a/`` keys on the backend in trouble, the rest
on a healthy one) while the test kills (SIGKILL) or freezes (SIGSTOP) backend A and brings it
back. Asserted, with numbers: the affected keys fail within the read timeout, the other
backend's clients never see a failure or a slow reply, A's keys succeed again within the retry
timeout of A coming back, the proxy never crashes, and the counters and log lines add up.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from tests.helpers import Client, Mcpframe, Memcached, free_port
from tests.operations.support import (
    LogTail,
    MemcachedAt,
    backend_stats,
    poll_until,
    start_faults_proxy,
)

READ = 0.4
RETRY = 0.5
SLACK = 0.35

pytestmark = pytest.mark.timeout(90)


@dataclass
class Load:
    """Client threads, each sending ``ms`` + ``mg`` pairs for its own key prefix."""

    addr: tuple[str, int]
    prefix: str
    threads: int = 2
    stop_flag: threading.Event = field(default_factory=threading.Event)
    # (monotonic time the pair was sent, seconds until both replies, both replies ok)
    samples: list[tuple[float, float, bool]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def start(self) -> Load:
        self.workers = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(self.threads)
        ]
        for w in self.workers:
            w.start()
        return self

    def _run(self, n: int) -> None:
        try:
            client = Client(self.addr)
        except OSError as e:
            self.errors.append(repr(e))
            return
        try:
            for i in range(200_000):  # bounded; the test stops it after a few seconds
                if self.stop_flag.is_set():
                    return
                key = f"{self.prefix}{n}-{i % 50}"
                t0 = time.monotonic()
                client.send(f"ms {key} 2 T0\r\nhi\r\nmg {key} v\r\n".encode())
                first = client.readline()
                second = client.readline()
                if second.startswith(b"VA "):
                    second += client.readline()
                ok = first == b"HD\r\n" and (second in (b"VA 2\r\nhi\r\n", b"EN\r\n"))
                self.samples.append((t0, time.monotonic() - t0, ok))
                time.sleep(0.002)
        except (OSError, ConnectionError) as e:
            self.errors.append(repr(e))
        finally:
            client.close()

    def stop(self) -> None:
        self.stop_flag.set()
        for w in self.workers:
            w.join(5)

    def between(self, start: float, end: float) -> list[tuple[float, float, bool]]:
        return [s for s in self.samples if start <= s[0] < end]


@pytest.fixture
def backend_a() -> Iterator[MemcachedAt]:
    m = MemcachedAt(free_port())
    yield m
    if m.proc is not None and m.proc.poll() is None:
        os.kill(m.proc.pid, signal.SIGCONT)
    m.stop()


def _start(
    factory: Callable[..., Mcpframe], a: MemcachedAt, b: Memcached, **env: object
) -> tuple[Mcpframe, LogTail]:
    return start_faults_proxy(
        factory, a.port, b.port, read_timeout=READ, retry_timeout=RETRY, **env
    )


def test_kill_and_restart_under_load(
    backend_a: MemcachedAt,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    b = memcached_factory()
    proxy, log = _start(mcpframe_factory, backend_a, b)
    load_a = Load(proxy.addr, "/a/").start()
    load_b = Load(proxy.addr, "/b/").start()
    cycles = []
    try:
        time.sleep(0.5)
        for _ in range(2):
            killed = time.monotonic()
            backend_a.kill()
            # The affected keys fail, each request within the read timeout.
            failing, _ = poll_until(
                lambda k=killed: any(not ok for t, _, ok in load_a.between(k, 1e12)), 2
            )
            assert failing
            time.sleep(0.6)
            restarted = time.monotonic()
            backend_a.start()
            back, _ = poll_until(
                lambda r=restarted: any(ok and t > r for t, _, ok in load_a.between(r, 1e12)),
                RETRY + 3 * SLACK + 1,
            )
            assert back
            first_ok = min(t for t, _, ok in load_a.between(restarted, 1e12) if ok)
            cycles.append((killed, restarted, first_ok))
            time.sleep(0.5)
    finally:
        load_a.stop()
        load_b.stop()
    assert not load_a.errors and not load_b.errors
    assert proxy.proc.poll() is None  # zero crashes
    # The healthy backend's clients: every reply ok and fast, through both kills.
    assert len(load_b.samples) > 200
    assert all(ok for _, _, ok in load_b.samples)
    assert max(took for _, took, _ in load_b.samples) < 0.1
    for killed, restarted, first_ok in cycles:
        down = load_a.between(killed, restarted)
        failed = [s for s in down if not s[2]]
        assert len(failed) >= 5
        # A dead backend costs each request at most the read timeout (here: far less, the
        # kernel refuses at once) and then fails fast.
        assert max(took for _, took, _ in down) < READ + SLACK
        # Back within the retry timeout of the restart (plus the pair in flight).
        assert first_ok - restarted < RETRY + SLACK
        after = load_a.between(first_ok + 0.05, first_ok + 0.4)
        assert after and all(ok for _, _, ok in after)
    # Each kill: a "disconnected" (or "reading") line, connect refusals up to the failure
    # limit (3 -> 4 lines), one markedbad; the quiet retries log nothing. Once in a while (1
    # CI run in ~10) a kill gave 3 lost-connection lines over the two cycles: the log is in
    # the message below for when it happens again; the backend counters are checked exactly.
    port = backend_a.port
    lines = [text for _, text in log.matching(rf"port={port} ")]
    assert log.settled(rf"error=markedbad name=127\.0\.0\.1 port={port} ", 2) == 2, lines
    lost = log.count(rf"error=(disconnected|reading) name=127\.0\.0\.1 port={port} ")
    refused = log.count(rf"error=connecting name=127\.0\.0\.1 port={port} ")
    assert 2 <= lost <= 3 and lost + refused in (2 * 4, 2 * 4 + 1), lines
    total, failed_stat, marked_bad = backend_stats(proxy.addr)
    assert (total, marked_bad) == (2, 2)
    assert failed_stat == 2 * 3


def test_frozen_backend_under_load(
    backend_a: MemcachedAt,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    # SIGSTOP: the kernel still accepts connections but nothing answers. In-flight requests
    # time out; reconnects fail their version check; with failure limit 1 the backend is
    # marked bad after two attempts and then fails fast. SIGCONT brings it back.
    b = memcached_factory()
    proxy, log = _start(mcpframe_factory, backend_a, b, failure_limit=1)
    load_a = Load(proxy.addr, "/a/").start()
    load_b = Load(proxy.addr, "/b/").start()
    assert backend_a.proc is not None
    try:
        time.sleep(0.5)
        frozen = time.monotonic()
        os.kill(backend_a.proc.pid, signal.SIGSTOP)
        marked = log.wait_for(r"error=markedbad", timeout=4 * READ + 2)
        assert len(marked) == 1
        marked_at = marked[0][0]
        time.sleep(0.5)
        thawed = time.monotonic()
        os.kill(backend_a.proc.pid, signal.SIGCONT)
        back, _ = poll_until(
            lambda: any(ok for _, _, ok in load_a.between(thawed, 1e12)), RETRY + READ + 2
        )
        assert back
        time.sleep(0.3)
    finally:
        load_a.stop()
        load_b.stop()
    assert proxy.proc.poll() is None
    assert all(ok for _, _, ok in load_b.samples) and len(load_b.samples) > 100
    assert max(took for _, took, _ in load_b.samples) < 0.1
    # Marked bad within: one read timeout for the requests in flight, then two failed
    # version checks (limit 1), each one read timeout.
    assert marked_at - frozen < 3 * READ + SLACK
    frozen_samples = load_a.between(frozen, thawed)
    # Each request costs at most a read timeout (it may wait behind one version check)...
    assert max(took for _, took, _ in frozen_samples) < 2 * READ + SLACK
    # ...and once marked bad they fail fast.
    fast = load_a.between(marked_at + 0.05, thawed)
    assert fast and all(not ok for _, _, ok in fast)
    assert max(took for _, took, _ in fast) < 0.05
    first_ok = min(t for t, _, ok in load_a.between(thawed, 1e12) if ok)
    assert first_ok - thawed < RETRY + READ + SLACK
    port = backend_a.port
    assert log.settled(rf"error=timeout name=127\.0\.0\.1 port={port} ", 1) == 1
    assert log.settled(rf"error=readvalidate name=127\.0\.0\.1 port={port} ", 1) == 1
