"""``--metrics`` with ``--workers N``: one endpoint answers for the whole process group."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ROOT, Client, Memcached, free_port, wait_port

CONFIG = """
function mcp_config_pools()
    return {{ main = mcp.pool({{ mcp.backend("a", "127.0.0.1", {port}) }}) }}
end
function mcp_config_routes(p)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r) return p.main(r) end)
end
"""

Samples = list[tuple[str, dict[str, str], float]]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def pick(samples: Samples, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    return [(ls, v) for n, ls, v in samples if n == name and labels.items() <= ls.items()]


def one(samples: Samples, name: str, **labels: str) -> float:
    found = pick(samples, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return found[0][1]


def test_one_endpoint_sums_the_workers_and_labels_per_worker_series(
    tmp_path: Path, memcached_factory: Callable[..., Memcached]
) -> None:
    mc = memcached_factory()
    cfg = tmp_path / "routes.lua"
    cfg.write_text(CONFIG.format(port=mc.port))
    port, mport = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpframe", "serve", "--config", str(cfg), "--workers", "2",
         "--listen", f"127.0.0.1:{port}", "--metrics", f"127.0.0.1:{mport}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        wait_port(port, proc)
        wait_port(mport, proc)
        pids: set[bytes] = set()
        sets = 0
        deadline = time.monotonic() + 15
        while len(pids) < 2 and time.monotonic() < deadline:
            c = Client(("127.0.0.1", port))
            c.send(b"set k%d 0 0 1\r\nx\r\nstats\r\n" % sets)
            assert c.readline() == b"STORED\r\n"
            sets += 1
            pids.add(c.read_until(b"\r\nEND\r\n").split(b"STAT pid ")[1].split(b"\r\n")[0])
            c.close()
        assert len(pids) == 2
        time.sleep(1.5)  # both workers have published their snapshots
        for _ in range(12):  # the kernel hands scrapes to either worker: each answers the same
            samples = scrape(mport)
            ups = pick(samples, "mcpframe_worker_up")
            assert sorted(ls["worker"] for ls, _ in ups) == ["0", "1"]
            assert {ls["pid"].encode() for ls, _ in ups} == pids
            assert one(samples, "mcpframe_commands_total", command="set") == sets
            assert one(samples, "mcpframe_backend_requests_total", label="a") == sets
            assert one(samples, "mcpframe_backend_response_seconds_count", label="a") == sets
            inf = one(samples, "mcpframe_backend_response_seconds_bucket", label="a", le="+Inf")
            assert inf == sets
            assert one(samples, "mcpframe_client_connections_accepted_total") >= sets
            per = pick(samples, "mcpframe_worker_routed_requests_total")
            assert sorted(ls["worker"] for ls, _ in per) == ["0", "1"]
            assert sum(v for _, v in per) == one(samples, "mcpframe_routed_requests_total")
            assert all(v > 0 for _, v in per)  # each worker routed some of the sets
            cpu = pick(samples, "process_cpu_seconds_total")
            assert sorted(ls["worker"] for ls, _ in cpu) == ["0", "1"]
            assert one(samples, "mcpframe_build_info") == 1  # not summed
        # no per-worker port any more
        with socket.socket() as s:
            s.settimeout(0.5)
            assert s.connect_ex(("127.0.0.1", mport + 1)) != 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
