"""A small memcached load generator: the fallback when memcaslap is missing or misbehaves.

Each connection keeps exactly one request in flight (no pipelining): send, read the whole
reply, record the latency, send the next. The mix matches bench/run.py's memcaslap profile:
fixed-size keys and values, a get/set ratio, optional multi-get of N keys per `get`.

Stdlib only (uses uvloop when importable). Prints one JSON object on stdout:

    python bench/loadgen.py --server 127.0.0.1:11211 --connections 32 --seconds 10

With ``--procs P`` it runs P copies of itself (connections split between them) and sums them,
so it can be spread over several cores when one Python process is the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any, cast

ERROR_PREFIXES = (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")


@dataclass
class Stats:
    """What one process measured. Latencies in microseconds, histogram in log2 buckets:
    bucket i holds latencies in (2**(i-1), 2**i] us, as memcaslap's Log2 Dist."""

    ops: int = 0
    gets: int = 0
    sets: int = 0
    get_keys: int = 0
    get_misses: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    lat_sum_us: float = 0.0
    lat_max_us: float = 0.0
    hist: list[int] = field(default_factory=lambda: [0] * 40)
    seconds: float = 0.0
    connect_failures: int = 0

    def record(self, lat_us: float) -> None:
        self.ops += 1
        self.lat_sum_us += lat_us
        if lat_us > self.lat_max_us:
            self.lat_max_us = lat_us
        self.hist[min(39, max(0, int(lat_us - 1).bit_length()))] += 1

    def merge(self, other: Stats) -> None:
        for name in ("ops", "gets", "sets", "get_keys", "get_misses", "errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.connect_failures += other.connect_failures
        self.error_samples.extend(other.error_samples[: max(0, 10 - len(self.error_samples))])
        self.lat_sum_us += other.lat_sum_us
        self.lat_max_us = max(self.lat_max_us, other.lat_max_us)
        self.hist = [a + b for a, b in zip(self.hist, other.hist, strict=True)]
        self.seconds = max(self.seconds, other.seconds)


def percentile_upper_bound(hist: list[int], q: float) -> int | None:
    """The upper bound (us) of the log2 bucket holding the q-quantile."""
    total = sum(hist)
    if total == 0:
        return None
    need = q * total
    seen = 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= need:
            return 1 << i
    return 1 << (len(hist) - 1)


def summary(stats: Stats) -> dict[str, object]:
    out: dict[str, object] = asdict(stats)
    secs = stats.seconds or 1.0
    out["tps"] = stats.ops / secs
    out["key_ops"] = stats.get_keys + stats.sets
    out["lat_avg_us"] = stats.lat_sum_us / stats.ops if stats.ops else None
    out["lat_p50_le_us"] = percentile_upper_bound(stats.hist, 0.50)
    out["lat_p99_le_us"] = percentile_upper_bound(stats.hist, 0.99)
    return out


class Workload:
    """Precomputed request bytes for a fixed key space."""

    def __init__(
        self, key_size: int, value_size: int, keys: int, get_ratio: float, multiget: int, seed: int
    ) -> None:
        self.rng = random.Random(seed)
        self.keys = [(b"bench:%0*d" % (key_size - 6, i))[:key_size] for i in range(keys)]
        value = b"v" * value_size
        self.get_reqs = [b"get " + k + b"\r\n" for k in self.keys]
        self.set_reqs = [b"set %s 0 0 %d\r\n%s\r\n" % (k, value_size, value) for k in self.keys]
        self.get_ratio = get_ratio
        self.multiget = max(1, multiget)

    def preload(self) -> bytes:
        return b"".join(self.set_reqs)

    def next(self) -> tuple[bytes, int]:
        """A request and the number of keys it gets (0 for a set)."""
        rng = self.rng
        if rng.random() >= self.get_ratio:
            return self.set_reqs[rng.randrange(len(self.keys))], 0
        if self.multiget == 1:
            return self.get_reqs[rng.randrange(len(self.keys))], 1
        picks = [self.keys[rng.randrange(len(self.keys))] for _ in range(self.multiget)]
        return b"get " + b" ".join(picks) + b"\r\n", self.multiget


class Conn(asyncio.Protocol):
    """One connection, one request in flight."""

    def __init__(self, work: Workload, stats: Stats, deadline: float) -> None:
        self.work = work
        self.stats = stats
        self.deadline = deadline
        self.buf = b""
        self.nkeys = 0
        self.sent = 0.0
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.stats.errors += 1
            if len(self.stats.error_samples) < 10:
                self.stats.error_samples.append(f"connection lost: {exc!r}")
            self.done.set_result(None)

    def send_next(self) -> None:
        if time.perf_counter() >= self.deadline:
            if not self.done.done():
                self.done.set_result(None)
            return
        req, self.nkeys = self.work.next()
        self.sent = time.perf_counter()
        assert self.transport is not None
        self.transport.write(req)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not buf.endswith(b"\r\n"):
            self.buf = buf
            return
        stats = self.stats
        if buf.startswith(ERROR_PREFIXES):
            stats.errors += 1
            if len(stats.error_samples) < 10:
                stats.error_samples.append(buf[:200].decode("latin-1").rstrip())
        elif self.nkeys:
            if not buf.endswith(b"END\r\n"):
                self.buf = buf
                return
            stats.gets += 1
            stats.get_keys += self.nkeys
            stats.get_misses += self.nkeys - buf.count(b"VALUE ")
        else:
            stats.sets += 1
            if buf != b"STORED\r\n":
                stats.errors += 1
                if len(stats.error_samples) < 10:
                    stats.error_samples.append(buf[:200].decode("latin-1").rstrip())
        self.buf = b""
        stats.record((time.perf_counter() - self.sent) * 1e6)
        self.send_next()


async def preload(host: str, port: int, work: Workload) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(work.preload())
        await writer.drain()
        for _ in work.keys:
            await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


async def run(args: argparse.Namespace, seed: int) -> Stats:
    host, _, port_s = args.server.rpartition(":")
    port = int(port_s)
    work = Workload(args.key_size, args.value_size, args.keys, args.get_ratio, args.multiget, seed)
    if not args.no_preload:
        await preload(host, port, work)
    stats = Stats()
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    deadline = start + args.seconds
    conns: list[Conn] = []
    for _ in range(args.connections):
        try:
            _, conn = await loop.create_connection(lambda: Conn(work, stats, deadline), host, port)
        except OSError as e:
            stats.connect_failures += 1
            if len(stats.error_samples) < 10:
                stats.error_samples.append(f"connect: {e}")
            continue
        conns.append(conn)
    for conn in conns:
        conn.send_next()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.done for c in conns)), args.seconds + 30)
    except TimeoutError:
        stats.errors += 1
        stats.error_samples.append("timed out waiting for replies")
    stats.seconds = time.perf_counter() - start
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return stats


def run_children(args: argparse.Namespace) -> Stats:
    """Split the connections over ``--procs`` copies of this script and sum their results."""
    if not args.no_preload:
        host, _, port = args.server.rpartition(":")
        work = Workload(args.key_size, args.value_size, args.keys, 1.0, 1, args.seed)
        asyncio.run(preload(host, int(port), work))
    per = [args.connections // args.procs] * args.procs
    for i in range(args.connections % args.procs):
        per[i] += 1
    children = []
    for i, conns in enumerate(per):
        argv = [sys.executable, __file__, "--procs", "1", "--seed", str(args.seed + i)]
        for name in ("server", "seconds", "key_size", "value_size", "keys", "get_ratio"):
            argv += ["--" + name.replace("_", "-"), str(getattr(args, name))]
        argv += ["--multiget", str(args.multiget), "--connections", str(conns), "--no-preload"]
        children.append(subprocess.Popen(argv, stdout=subprocess.PIPE))
    total = Stats()
    for child in children:
        out, _ = child.communicate(timeout=args.seconds + 60)
        part = json.loads(out)
        total.merge(Stats(**{k: part[k] for k in Stats.__dataclass_fields__}))
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--server", required=True, help="HOST:PORT")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--key-size", type=int, default=32)
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--keys", type=int, default=10000, help="key space, preloaded with sets")
    p.add_argument("--get-ratio", type=float, default=0.9)
    p.add_argument("--multiget", type=int, default=1, help="keys per get")
    p.add_argument("--procs", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-preload", action="store_true", help="skip setting the key space first")
    p.add_argument("--preload-only", action="store_true", help="set the key space and exit")
    args = p.parse_args(argv)
    if args.key_size < 12:
        p.error("--key-size must be at least 12")
    if args.preload_only:
        host, _, port = args.server.rpartition(":")
        work = Workload(args.key_size, args.value_size, args.keys, 1.0, 1, args.seed)
        asyncio.run(preload(host, int(port), work))
        json.dump({"preloaded": len(work.keys)}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    if args.procs > 1:
        stats = run_children(args)
    else:
        runner: Callable[[Coroutine[Any, Any, Stats]], Stats] = asyncio.run
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
        stats = runner(run(args, args.seed))
    json.dump(summary(stats), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
