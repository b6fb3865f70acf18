"""What ``--metrics`` costs: 20k pipelined ``mg`` through the proxy, with and without it.

Run: ``.venv/bin/python -m tests.operations.bench_metrics [rounds]``. Prints the median time
per run and the difference. Not a test (timings on a shared machine are noisy); through
sockets, so the kernel's share dilutes the difference: docs/operations.md quotes
``bench/inproc.py --metrics`` instead, which measures the proxy's own CPU per op.
"""

from __future__ import annotations

import statistics
import sys
import time

from tests.helpers import Client, Mcpframe, Memcached, free_port
from tests.operations.support import CONFIGS

N = 20_000


def one_run(addr: tuple[str, int]) -> float:
    c = Client(addr)
    try:
        batch = b"".join(b"mg bench%d v\r\n" % (i % 100) for i in range(N))
        t0 = time.perf_counter()
        c.send(batch)
        got = 0
        while got < N:
            line = c.readline()
            if line.startswith(b"VA "):
                c.readline()
            got += 1
        return time.perf_counter() - t0
    finally:
        c.close()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    a, b = Memcached(), Memcached()
    env = {"MCP_TEST_PORT_A": str(a.port), "MCP_TEST_PORT_B": str(b.port)}
    cfg = str(CONFIGS / "two_backends.lua")
    plain = Mcpframe("--config", cfg, env=env)
    metered = Mcpframe("--config", cfg, "--metrics", f"127.0.0.1:{free_port()}", env=env)
    try:
        for p in (plain, metered):
            c = Client(p.addr)
            for i in range(100):
                c.send(b"ms bench%d 5\r\nhello\r\n" % i)
                c.readline()
            c.close()
            one_run(p.addr)  # warm up
        times: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(rounds):
            times["without"].append(one_run(plain.addr))
            times["with"].append(one_run(metered.addr))
        base = statistics.median(times["without"])
        with_m = statistics.median(times["with"])
        print(f"{N} pipelined mg, median of {rounds} runs:")
        print(f"  without --metrics: {base * 1000:.1f} ms ({N / base:,.0f} req/s)")
        print(f"  with --metrics:    {with_m * 1000:.1f} ms ({N / with_m:,.0f} req/s)")
        print(f"  difference: {(with_m - base) / base * 100:+.1f}%")
    finally:
        plain.stop()
        metered.stop()
        a.stop()
        b.stop()


if __name__ == "__main__":
    main()
