"""``mcpframe serve --metrics HOST:PORT``: the Prometheus endpoint, through the CLI and HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakebackend import FakeBackend, stall
from tests.helpers import ROOT, Client, Mcpframe, Memcached, free_port
from tests.operations.support import (
    BACKEND_FAILURE,
    FAULTS,
    LogTail,
    mg,
    stats,
)

pytestmark = pytest.mark.timeout(60)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> tuple[Samples, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, text


def value(samples: Samples, metric: str, **labels: str) -> float:
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == metric and want <= ls]
    assert len(found) == 1, (metric, labels, found)
    return found[0]


def start(
    factory: Callable[..., Mcpframe], port_a: int, port_b: int, metrics_port: int, **env: str
) -> Mcpframe:
    full = {"MCP_TEST_PORT_A": str(port_a), "MCP_TEST_PORT_B": str(port_b), **env}
    proxy = factory("--config", str(FAULTS), "--metrics", f"127.0.0.1:{metrics_port}", env=full)
    LogTail(proxy.proc)
    return proxy


def test_counters_gauges_and_histograms(
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
    connect: Callable[[tuple[str, int]], Client],
) -> None:
    healthy = memcached_factory()
    dead = free_port()
    mport = free_port()
    proxy = start(mcpframe_factory, dead, healthy.port, mport, MCP_RETRY_TIMEOUT="30")
    c = connect(proxy.addr)
    for i in range(5):
        c.send(b"ms /b/%d 2\r\nhi\r\n" % i)
        assert c.readline() == b"HD\r\n"
    for i in range(10):
        assert mg(c, f"/b/{i}")[0] in (b"VA 2\r\nhi\r\n", b"EN\r\n")
    time.sleep(0.2)  # backend a: refused four times, marked bad
    for i in range(3):
        assert mg(c, f"/a/{i}")[0] == BACKEND_FAILURE
    samples, text = scrape(mport)
    a = {"backend": f"127.0.0.1:{dead}", "label": "a"}
    b = {"backend": f"127.0.0.1:{healthy.port}", "label": "b"}
    assert value(samples, "mcpframe_commands_total", command="mg") == 13
    assert value(samples, "mcpframe_commands_total", command="ms") == 5
    assert value(samples, "mcpframe_routed_requests_total") == 18
    assert value(samples, "mcpframe_backend_requests_total", **b) == 15
    assert value(samples, "mcpframe_backend_requests_total", **a) == 3
    assert value(samples, "mcpframe_backend_bad", **a) == 1
    assert value(samples, "mcpframe_backend_bad", **b) == 0
    assert value(samples, "mcpframe_backend_connected", **b) == 1
    assert value(samples, "mcpframe_backend_connected", **a) == 0
    assert value(samples, "mcpframe_backend_errors_total", reason="connecting", **a) == 4
    assert value(samples, "mcpframe_backend_errors_total", reason="timeout", **b) == 0
    assert value(samples, "mcpframe_backend_connects_total", **b) == 1
    assert value(samples, "mcpframe_backends") == 2
    assert value(samples, "mcpframe_backend_marked_bad_total") == 1
    assert value(samples, "mcpframe_build_info", memcached="1.6.45") == 1
    assert value(samples, "mcpframe_backend_failed_total") == 3
    # Latency: one observation per reply from b, none for the fast failures of a.
    assert value(samples, "mcpframe_backend_response_seconds_count", **b) == 15
    assert value(samples, "mcpframe_backend_response_seconds_bucket", le="+Inf", **b) == 15
    assert 0 < value(samples, "mcpframe_backend_response_seconds_sum", **b) < 1
    assert value(samples, "mcpframe_backend_response_seconds_count", **a) == 0
    assert value(samples, "mcpframe_pool_backends", pool="a") == 1
    assert value(samples, "mcpframe_pool_backends_bad", pool="a") == 1
    assert value(samples, "mcpframe_pool_backends_bad", pool="b") == 0
    assert value(samples, "mcpframe_pool_requests_total", pool="b") == 15
    assert value(samples, "mcpframe_config_reloads_total") == 1
    assert value(samples, "mcpframe_client_connections") >= 1
    # User stats and the rest read exactly what `stats`/`stats proxy` report.
    proxy_stats = stats(proxy.addr, "proxy")
    assert value(samples, "mcpframe_user_stat", name="to_a") == int(proxy_stats["user_to_a"])
    assert value(samples, "process_resident_memory_bytes") > 10_000_000
    # Every family has HELP and TYPE; reasons are memcached's names.
    assert text.count("# TYPE mcpframe_backend_errors_total counter") == 1
    for reason in ("timeout", "conntimeout", "readvalidate", "trailingdata", "markedbad"):
        assert (f'reason="{reason}"' in text) == (reason != "markedbad")


def test_timeouts_and_depth_while_a_backend_stalls(
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
    connect: Callable[[tuple[str, int]], Client],
) -> None:
    healthy = memcached_factory()
    fake = FakeBackend().serve(stall())
    try:
        mport = free_port()
        proxy = start(mcpframe_factory, fake.port, healthy.port, mport, MCP_READ_TIMEOUT="0.5")
        c = connect(proxy.addr)
        assert mg(c, "/b/warm")[0] == b"EN\r\n"
        c.send(b"mg /a/1 v\r\nmg /a/2 v\r\nmg /a/3 v\r\n")
        time.sleep(0.2)
        during, _ = scrape(mport)
        a = {"backend": f"127.0.0.1:{fake.port}"}
        assert value(during, "mcpframe_backend_depth", **a) == 3
        assert value(during, "mcpframe_pool_depth", pool="a") == 3
        assert value(during, "mcpframe_requests_active") == 3
        assert [c.readline() for _ in range(3)] == [BACKEND_FAILURE] * 3
        after, _ = scrape(mport)
        assert value(after, "mcpframe_backend_depth", **a) == 0
        assert value(after, "mcpframe_backend_timeouts_total", **a) == 1
        assert value(after, "mcpframe_backend_errors_total", reason="timeout", **a) == 1
        assert value(after, "mcpframe_backend_bad", **a) == 0
        assert value(after, "mcpframe_requests_active") == 0
        assert value(after, "mcpframe_backend_failed_total") == 1
    finally:
        fake.close()


def test_http_details_and_embedded_mode(mcpframe_factory: Callable[..., Mcpframe]) -> None:
    mport = free_port()
    proxy = mcpframe_factory("--metrics", f"127.0.0.1:{mport}")
    c = Client(proxy.addr)
    c.send(b"set k 0 0 1\r\nx\r\nget k\r\n")
    assert c.read_until(b"END\r\n") == b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n"
    c.close()
    samples, _ = scrape(mport)
    assert value(samples, "mcpframe_cache_items") == 1
    assert value(samples, "mcpframe_cache_get_hits_total") == 1
    assert not [k for k in samples if k[0] == "mcpframe_backend_requests_total"]
    req = urllib.request.Request(f"http://127.0.0.1:{mport}/metrics", method="HEAD")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200 and resp.read() == b""
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{mport}/nope", timeout=5)
    assert err.value.code == 404
    req = urllib.request.Request(f"http://127.0.0.1:{mport}/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 405


def test_every_status_line_carries_the_http_reason_phrase(
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    """Status lines as HTTP defines them (``431 Request Header Fields Too Large``, not
    ``431 Error``), read off the socket: urllib would hide the phrase."""
    mport = free_port()
    mcpframe_factory("--metrics", f"127.0.0.1:{mport}")

    def status_line(request: bytes) -> bytes:
        c = Client(("127.0.0.1", mport))
        try:
            c.send(request)
            return c.readline()
        finally:
            c.close()

    assert status_line(b"GET /metrics HTTP/1.1\r\n\r\n") == b"HTTP/1.1 200 OK\r\n"
    assert status_line(b"GET /nope HTTP/1.1\r\n\r\n") == b"HTTP/1.1 404 Not Found\r\n"
    assert status_line(b"PUT / HTTP/1.1\r\n\r\n") == b"HTTP/1.1 405 Method Not Allowed\r\n"
    head = b"GET /metrics HTTP/1.1\r\nX-Long: " + b"x" * 9000
    assert status_line(head) == b"HTTP/1.1 431 Request Header Fields Too Large\r\n"


@pytest.mark.parametrize(
    ("address", "message"),
    [("nonsense", "invalid metrics address 'nonsense'"), ("127.0.0.1:0", "invalid metrics")],
)
def test_bad_metrics_address_is_one_clear_line(address: str, message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--listen", f"127.0.0.1:{free_port()}",
         "--metrics", address],
        capture_output=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 1
    assert message in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()


def test_metrics_port_in_use(memcached_server: Memcached) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--listen", f"127.0.0.1:{free_port()}",
         "--metrics", f"127.0.0.1:{memcached_server.port}"],
        capture_output=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert f"cannot listen for metrics on 127.0.0.1:{memcached_server.port}" in err
    assert "Traceback" not in err
