"""Memory benchmark: the internal cache's bytes per item against memcached's, and `--memory`.

Three experiments, each server on a free loopback port, started and stopped here:

1. *Bytes per item.* memcached (``-m`` large enough for everything) and mcpframe with no
   config (``python -m mcpframe serve --memory MB``, MB large enough) are each filled with
   ``--items`` items: ``--value-size``-byte values under 19-byte keys, sent as pipelined
   ``set ... noreply`` in bounded batches (each batch ends with ``mn``, whose ``MN`` reply
   says the server has read it all). For each: the RSS growth of the server's process tree
   (VmRSS from /proc/<pid>/status, before the fill and after), that growth per item, and the
   server's own ``stats`` figures ``bytes``, ``curr_items`` and ``evictions``.
2. *The limit.* mcpframe with ``--memory M`` (``--memory-mb``, 64 by default), and memcached
   with ``-m M`` for reference, filled with ``--overfill`` (3) times M of key+value data: the
   RSS growth against M, and whether it is within 10% of it.
   After each fill of 1 and 2, on the same filled server, *pauses*: for ``--pause-seconds``
   (in 2 ``--limit-pause-seconds``) set+get pairs on random keys of those sent, one request
   at a time (each waits for its reply), every request's latency recorded: the worst, p50,
   p99 and p99.9. A stop-the-world pause in the server (a full cyclic GC walking millions of
   objects, a key table resize) shows up as the worst one. In 2 most keys were evicted, so
   most gets miss and every set of a new key evicts.
   Experiment 1 runs once per value size of ``--value-sizes`` (100 and 10 bytes by default).
3. *Cache.execute.* ops/s of the cache called directly in this process (no sockets), the
   speed every unhooked command is answered at: sets into an empty cache, gets that hit, and
   sets into a full cache (each one evicts). ``--no-execute`` skips it, ``--execute-only``
   runs nothing else. Then its pauses (unless ``--no-execute-pauses``): filled in process
   with ``--items`` items of ``--value-size`` bytes, then ``--pause-seconds`` of set+get
   pairs, each request's wall time and thread CPU time (the worst and p99.9 of each): on a
   shared machine the scheduler's delays show in the wall time only.

    .venv/bin/python bench/memory.py [--items 1000000] [--value-sizes 100,10] [--memory-mb 64]

MB means MiB here, as ``--memory`` does. The whole run is bounded by ``--budget`` seconds
(an experiment that runs out of time reports what it filled); everything started here is
stopped on exit, each child in its own process group. Stdlib only; the mcpframe measured is
the one in this script's repository (its root is the servers' working directory).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

# The process helpers are bench/run.py's (this directory is on sys.path when run as a script).
from run import free_port, process_tree, wait_port

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
KEY_FORMAT = b"memkey:%012d"  # 19 bytes
KEY_SIZE = len(KEY_FORMAT % 0)
BATCH = 1000  # sets per pipelined batch
IO_TIMEOUT = 60.0
TOLERANCE = 0.10


# --------------------------------------------------------------------------------------------
# processes


class Processes:
    """The processes this script starts, each in its own session, so stopping one stops its
    children too and nothing else."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            with contextlib.suppress(Exception):
                self.stop(proc)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def cleanup_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into SystemExit so the ``finally`` that stops the servers runs."""
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# --------------------------------------------------------------------------------------------
# /proc


def status_kib(pid: int, field_name: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its children."""
    return sum(status_kib(p, "VmRSS") for p in process_tree(pid)) * 1024


def tree_hwm(pid: int) -> int:
    """Peak resident bytes (VmHWM), summed over the tree."""
    return sum(status_kib(p, "VmHWM") for p in process_tree(pid)) * 1024


# --------------------------------------------------------------------------------------------
# talking to a server


class Conn:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), IO_TIMEOUT)
        self.buf = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def read_until(self, end: bytes) -> bytes:
        while end not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self.buf += chunk
        i = self.buf.index(end) + len(end)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def stats(self) -> dict[str, int]:
        self.sock.sendall(b"stats\r\n")
        out: dict[str, int] = {}
        for line in self.read_until(b"END\r\n").decode("latin-1").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
                out[parts[1]] = int(parts[2])
        return out


@dataclass
class Fill:
    sent: int = 0
    seconds: float = 0.0
    worst_batch: float = 0.0  # the longest wait for a batch's MN: a pause during the fill
    unexpected: list[str] = field(default_factory=list)
    stopped: str = ""


def fill(conn: Conn, n: int, value_size: int, deadline: float) -> Fill:
    """Store keys 0..n-1 with pipelined ``set ... noreply``, one batch in flight ahead of the
    batch being confirmed (each batch ends with ``mn``; its ``MN`` confirms the batch)."""
    value = b"x" * value_size + b"\r\n"
    head = b"set " + KEY_FORMAT + b" 0 0 %d noreply\r\n" % value_size
    result = Fill()
    started = time.monotonic()
    in_flight = 0
    for first in range(0, n, BATCH):
        if time.monotonic() > deadline:
            result.stopped = "time budget exhausted"
            break
        last = min(n, first + BATCH)
        conn.sock.sendall(b"".join([head % i + value for i in range(first, last)] + [b"mn\r\n"]))
        result.sent = last
        in_flight += 1
        if in_flight > 1:
            _confirm(conn, result)
            in_flight -= 1
    while in_flight:
        _confirm(conn, result)
        in_flight -= 1
    result.seconds = time.monotonic() - started
    return result


def _confirm(conn: Conn, result: Fill) -> None:
    t0 = time.perf_counter()
    reply = conn.read_until(b"MN\r\n")
    result.worst_batch = max(result.worst_batch, time.perf_counter() - t0)
    if reply != b"MN\r\n" and len(result.unexpected) < 5:
        result.unexpected.append(reply[:200].decode("latin-1"))


def pauses(conn: Conn, n: int, value_size: int, seconds: float, deadline: float) -> dict[str, Any]:
    """Set+get pairs on random keys among the ``n`` filled, one request at a time, for
    ``seconds``: the latency of every request, summarised (milliseconds)."""
    import random

    rng = random.Random(16)
    value = b"y" * value_size + b"\r\n"
    head = b"set " + KEY_FORMAT + b" 0 0 %d\r\n" % value_size
    # An array, not a list: a collection in this client while it runs would otherwise walk
    # every float recorded so far, and its pause would count as the server's.
    latencies = array("d")
    misses = 0
    stop = min(time.monotonic() + seconds, deadline)
    sock = conn.sock
    clock = time.perf_counter
    while time.monotonic() < stop:
        i = rng.randrange(n)
        t0 = clock()
        sock.sendall(head % i + value)
        if conn.read_until(b"\r\n") != b"STORED\r\n":
            raise RuntimeError("set not stored")
        t1 = clock()
        sock.sendall(b"get " + KEY_FORMAT % i + b"\r\n")
        if not conn.read_until(b"END\r\n").startswith(b"VALUE"):
            misses += 1
        t2 = clock()
        latencies.append(t1 - t0)
        latencies.append(t2 - t1)
    ordered = sorted(latencies)
    count = len(ordered)

    def pct(p: float) -> float:
        return round(ordered[min(count - 1, int(p * count))] * 1000, 3) if count else 0.0

    return {
        "requests": count,
        "max_ms": round(ordered[-1] * 1000, 3) if count else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "get_misses": misses,
    }


# --------------------------------------------------------------------------------------------
# servers


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]


def start_server(procs: Processes, name: str, make_argv: Callable[[int], list[str]]) -> Server:
    """Start on a free port; try a new port if another process took it meanwhile."""
    last: Exception | None = None
    for _ in range(5):
        port = free_port()
        proc = procs.start(make_argv(port))
        try:
            wait_port(port, proc)
            return Server(name, port, proc)
        except (RuntimeError, TimeoutError) as e:
            last = e
            procs.stop(proc)
    raise RuntimeError(f"could not start {name}: {last}")


def memcached_argv(binary: str, memory_mb: int) -> Callable[[int], list[str]]:
    root = ["-u", "root"] if os.geteuid() == 0 else []

    def argv(port: int) -> list[str]:
        return [
            binary, "-U", "0", "-l", "127.0.0.1", "-p", str(port), "-t", "1",
            "-m", str(memory_mb), "-c", "64", *root,
        ]  # fmt: skip

    return argv


def mcpframe_argv(python: str, memory_mb: int) -> Callable[[int], list[str]]:
    def argv(port: int) -> list[str]:
        return [
            python, "-m", "mcpframe", "serve", "--listen", f"127.0.0.1:{port}",
            "--memory", str(memory_mb),
        ]  # fmt: skip

    return argv


def measure(
    procs: Processes,
    name: str,
    make_argv: Callable[[int], list[str]],
    items: int,
    value_size: int,
    deadline: float,
    pause_seconds: float = 0.0,
) -> dict[str, Any]:
    """Start a server, fill it, report RSS and stats (and the pauses under load), stop it."""
    row: dict[str, Any] = {"server": name, "items_sent": 0}
    server = start_server(procs, name, make_argv)
    conn = Conn(server.port)
    try:
        conn.stats()  # let the connection's own buffers exist before the baseline
        time.sleep(0.3)
        before = tree_rss(server.proc.pid)
        result = fill(conn, items, value_size, deadline)
        time.sleep(0.5)  # let the server settle (nothing should still be in flight)
        after = tree_rss(server.proc.pid)
        stats = conn.stats()
        row.update(
            items_sent=result.sent,
            fill_seconds=round(result.seconds, 2),
            fill_worst_batch_ms=round(result.worst_batch * 1000, 1),
            sets_per_second=round(result.sent / result.seconds) if result.seconds else None,
            rss_before=before,
            rss_after=after,
            rss_growth=after - before,
            rss_peak=tree_hwm(server.proc.pid),
            bytes=stats.get("bytes"),
            curr_items=stats.get("curr_items"),
            evictions=stats.get("evictions"),
            limit_maxbytes=stats.get("limit_maxbytes"),
        )
        curr = stats.get("curr_items") or 0
        row["rss_per_item"] = round((after - before) / curr, 1) if curr else None
        row["stats_bytes_per_item"] = round(stats["bytes"] / curr, 1) if curr else None
        if pause_seconds > 0 and result.sent:
            row["pauses"] = pauses(conn, result.sent, value_size, pause_seconds, deadline)
        if result.unexpected:
            row["unexpected_replies"] = result.unexpected
        if result.stopped:
            row["stopped"] = result.stopped
    finally:
        conn.close()
        procs.stop(server.proc)
    return row


# --------------------------------------------------------------------------------------------
# Cache.execute, in process


def execute_bench(keys: int, value_size: int, rounds: int) -> dict[str, float]:
    """Best-of-``rounds`` ops/s of ``Cache.execute`` for sets (into an empty cache), gets
    (hits), and sets into a full cache (every set evicts)."""
    sys.path.insert(0, str(ROOT))
    from mcpframe.cache import Cache
    from mcpframe.protocol.reader import RequestReader
    from mcpframe.protocol.request import Request

    value = b"x" * value_size + b"\r\n"

    def parse(data: bytes) -> list[Request]:
        return [r for r in RequestReader(max_value=1 << 20).feed(data) if isinstance(r, Request)]

    sets = parse(b"".join(b"set " + KEY_FORMAT % i + b" 0 0 %d\r\n" % value_size + value
                          for i in range(keys)))  # fmt: skip
    gets = parse(b"".join(b"get " + KEY_FORMAT % i + b"\r\n" for i in range(keys)))
    assert len(sets) == len(gets) == keys

    def timed(cache: Cache, reqs: list[Request]) -> float:
        execute = cache.execute
        t0 = time.perf_counter()
        for r in reqs:
            execute(r)
        return len(reqs) / (time.perf_counter() - t0)

    best = {"set": 0.0, "get": 0.0, "set_evicting": 0.0}
    for _ in range(rounds):
        cache = Cache(memory_limit=1 << 34)
        best["set"] = max(best["set"], timed(cache, sets))
        best["get"] = max(best["get"], timed(cache, gets))
        small = Cache(memory_limit=max(1 << 20, keys * (value_size + KEY_SIZE) // 20))
        timed(small, sets)  # fill it first
        best["set_evicting"] = max(best["set_evicting"], timed(small, sets))
        del cache, small
        gc.collect()
    return {k: round(v) for k, v in best.items()}


def execute_pauses(items: int, value_size: int, seconds: float) -> dict[str, float]:
    """The cache's own pauses, apart from the scheduler's: ``Cache.execute`` in this process
    filled with ``items`` sets, then set+get pairs on random keys for ``seconds``; per
    request the wall time and this thread's CPU time (a request that waited for the CPU, on
    a shared machine, has a long wall time and a short CPU time; a pause of the cache's own
    has both long). Milliseconds."""
    import random

    sys.path.insert(0, str(ROOT))
    from mcpframe.cache import Cache
    from mcpframe.protocol.commands import CMD_GET, CMD_SET
    from mcpframe.protocol.request import Request

    cache = Cache(memory_limit=items * (KEY_SIZE + value_size + 700))  # no eviction
    execute = cache.execute
    value = b"x" * value_size + b"\r\n"
    head = b"set %b 0 0 " + b"%d\r\n" % value_size
    wall, cpu = time.perf_counter, time.thread_time
    fill_wall = fill_cpu = 0.0
    for i in range(items):
        key = KEY_FORMAT % i
        t0, c0 = wall(), cpu()
        execute(Request(CMD_SET, head % key, key, value))
        fill_wall, fill_cpu = max(fill_wall, wall() - t0), max(fill_cpu, cpu() - c0)
    rng = random.Random(16)
    # Arrays, not lists of floats, which every full collection here would walk (the
    # collector's pause would count as the cache's).
    wall_times = array("d")
    cpu_times = array("d")
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        key = KEY_FORMAT % rng.randrange(items)
        for req in (
            Request(CMD_SET, head % key, key, value),
            Request(CMD_GET, b"get %b\r\n" % key, key, None),
        ):
            t0, c0 = wall(), cpu()
            execute(req)
            cpu_times.append(cpu() - c0)
            wall_times.append(wall() - t0)
    walls = sorted(wall_times)
    cpus = sorted(cpu_times)
    n = len(walls)
    del cache
    gc.collect()
    return {
        "requests": n,
        "fill_worst_wall_ms": round(fill_wall * 1000, 2),
        "fill_worst_cpu_ms": round(fill_cpu * 1000, 2),
        "max_wall_ms": round(walls[-1] * 1000, 2) if n else 0.0,
        "max_cpu_ms": round(cpus[-1] * 1000, 2) if n else 0.0,
        "p999_wall_ms": round(walls[int(0.999 * n)] * 1000, 3) if n else 0.0,
        "p999_cpu_ms": round(cpus[int(0.999 * n)] * 1000, 3) if n else 0.0,
    }


# --------------------------------------------------------------------------------------------
# report


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / MIB:,.1f}"


def _n(v: Any) -> str:
    return "-" if v is None else f"{v:,}"


def print_items_table(rows: list[dict[str, Any]], items: int, value_size: int) -> None:
    print(f"\n1. bytes per item: {items:,} items, {KEY_SIZE}-byte keys, {value_size}-byte values")
    header = (
        f"{'server':<22}{'RSS before':>11}{'RSS after':>11}{'growth MB':>11}{'bytes/item':>11}"
        f"{'stats bytes':>14}{'bytes/item':>11}{'curr_items':>12}{'evictions':>11}{'fill s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        if "error" in r:
            print(f"{r['server']:<22}ERROR {r['error']}")
            continue
        print(
            f"{r['server']:<22}{_mib(r['rss_before']):>11}{_mib(r['rss_after']):>11}"
            f"{_mib(r['rss_growth']):>11}{_n(r['rss_per_item']):>11}{_n(r['bytes']):>14}"
            f"{_n(r['stats_bytes_per_item']):>11}{_n(r['curr_items']):>12}"
            f"{_n(r['evictions']):>11}{r['fill_seconds']:>8}"
        )
        for note in ("stopped", "unexpected_replies"):
            if note in r:
                print(f"    {note}: {r[note]}")
    print_pauses(rows, "")
    ok = [r for r in rows if r.get("rss_per_item")]
    if len(ok) == 2:
        ratio = ok[1]["rss_per_item"] / ok[0]["rss_per_item"]
        print(f"RSS bytes per item, {ok[1]['server']} / {ok[0]['server']}: {ratio:.2f}x")


def print_pauses(rows: list[dict[str, Any]], what: str) -> None:
    paused = [r for r in rows if "pauses" in r]
    if not paused:
        return
    print(f"\n   pauses: set+get pairs one at a time on random keys{what} (ms)")
    print(
        f"{'server':<22}{'requests':>10}{'max':>10}{'p50':>10}{'p99':>10}{'p99.9':>10}"
        f"{'fill: worst batch':>19}"
    )
    for r in paused:
        p = r["pauses"]
        print(
            f"{r['server']:<22}{p['requests']:>10,}{p['max_ms']:>10.2f}{p['p50_ms']:>10.3f}"
            f"{p['p99_ms']:>10.3f}{p['p999_ms']:>10.3f}{r['fill_worst_batch_ms']:>19.1f}"
        )


def print_limit_table(rows: list[dict[str, Any]], limit_mb: int, overfill: float) -> None:
    print(f"\n2. the limit: {limit_mb} MB, filled with {overfill:g}x that much key+value data")
    header = (
        f"{'server':<22}{'items sent':>12}{'limit MB':>10}{'growth MB':>11}{'growth/limit':>14}"
        f"{'within 10%':>12}{'stats bytes':>14}{'curr_items':>12}{'evictions':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        if "error" in r:
            print(f"{r['server']:<22}ERROR {r['error']}")
            continue
        print(
            f"{r['server']:<22}{_n(r['items_sent']):>12}{limit_mb:>10}{_mib(r['rss_growth']):>11}"
            f"{r['growth_over_limit']:>14.3f}{'yes' if r['within_tolerance'] else 'NO':>12}"
            f"{_n(r['bytes']):>14}{_n(r['curr_items']):>12}{_n(r['evictions']):>11}"
        )
        for note in ("stopped", "unexpected_replies"):
            if note in r:
                print(f"    {note}: {r[note]}")
    print_pauses(rows, " of all those sent, most evicted: every set evicts")


# --------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--items", type=int, default=1_000_000, help="items for experiment 1")
    p.add_argument("--value-size", type=int, default=100, help="bytes per value, in 2 and 3")
    p.add_argument("--value-sizes", default="100,10", help="bytes per value, each a run of 1")
    p.add_argument("--pause-seconds", type=float, default=20.0, help="pause load, in 1 (0: none)")
    p.add_argument(
        "--limit-pause-seconds", type=float, default=10.0, help="pause load, in 2 (0: none)"
    )
    p.add_argument("--memory-mb", type=int, default=64, help="the limit for experiment 2")
    p.add_argument("--overfill", type=float, default=3.0, help="data sent / limit, in 2")
    p.add_argument("--python", default=sys.executable, help="interpreter running mcpframe")
    p.add_argument("--memcached", default=shutil.which("memcached") or "/usr/bin/memcached")
    p.add_argument("--budget", type=float, default=1200.0, help="seconds for the whole run")
    p.add_argument("--no-execute", action="store_true", help="skip the Cache.execute bench")
    p.add_argument("--execute-only", action="store_true", help="only the Cache.execute bench")
    p.add_argument(
        "--no-execute-pauses", action="store_true", help="skip the in-process pause probe"
    )
    p.add_argument("--execute-keys", type=int, default=100_000)
    p.add_argument("--execute-rounds", type=int, default=5)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    args.value_sizes = [int(v) for v in str(args.value_sizes).split(",") if v]
    if (
        args.items < 1
        or args.value_size < 0
        or min(args.value_sizes, default=-1) < 0
        or args.memory_mb < 1
        or args.overfill <= 0
    ):
        p.error("--items, --memory-mb and --overfill must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    deadline = started + args.budget
    procs = Processes()
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    # Capacity: memcached needs about key + value + 60 bytes per item, plus slab rounding;
    # mcpframe charges its real Python cost, a few hundred bytes per item more.
    limit_items = math.ceil(args.overfill * args.memory_mb * MIB / (KEY_SIZE + args.value_size))
    # (kind, value size, name, argv, items): experiment 1 once per value size, then 2.
    experiments: list[tuple[str, int, str, Callable[[int], list[str]], int]] = []
    for size in args.value_sizes:
        # Capacity: memcached needs about key + value + 60 bytes per item, plus slab rounding;
        # mcpframe charges its real Python cost, which is a little more.
        data = args.items * (KEY_SIZE + size + 2)
        memcached_mb = max(64, math.ceil(data * 2 / MIB) + 64)
        mcpframe_mb = max(64, math.ceil((data + args.items * 700) * 1.25 / MIB))
        experiments += [
            (f"items{size}", size, f"memcached -m {memcached_mb}",
             memcached_argv(args.memcached, memcached_mb), args.items),
            (f"items{size}", size, f"mcpframe --memory {mcpframe_mb}",
             mcpframe_argv(args.python, mcpframe_mb), args.items),
        ]  # fmt: skip
    experiments += [
        ("limit", args.value_size, f"memcached -m {args.memory_mb}",
         memcached_argv(args.memcached, args.memory_mb), limit_items),
        ("limit", args.value_size, f"mcpframe --memory {args.memory_mb}",
         mcpframe_argv(args.python, args.memory_mb), limit_items),
    ]  # fmt: skip
    rows: dict[str, list[dict[str, Any]]] = {"limit": []}
    with cleanup_on_signals():
        try:
            for kind, size, name, make_argv, n in [] if args.execute_only else experiments:
                print(f"filling {name} with {n:,} items of {size} bytes ...", flush=True)
                pause_seconds = args.pause_seconds if kind != "limit" else args.limit_pause_seconds
                try:
                    row = measure(procs, name, make_argv, n, size, deadline, pause_seconds)
                except Exception as e:  # report it and go on with the next experiment
                    row = {"server": name, "error": f"{type(e).__name__}: {e}"}
                if kind == "limit" and "rss_growth" in row:
                    limit = args.memory_mb * MIB
                    row["growth_over_limit"] = row["rss_growth"] / limit
                    row["within_tolerance"] = abs(row["rss_growth"] - limit) <= TOLERANCE * limit
                rows.setdefault(kind, []).append(row)
        finally:
            procs.stop_all()
    results.update(rows)
    if not args.execute_only:
        for size in args.value_sizes:
            print_items_table(rows.get(f"items{size}", []), args.items, size)
        print_limit_table(rows["limit"], args.memory_mb, args.overfill)
    if not args.no_execute:
        if time.monotonic() < deadline:
            ops = execute_bench(args.execute_keys, args.value_size, args.execute_rounds)
            results["execute"] = ops
            print(
                f"\n3. Cache.execute, in process ({args.execute_keys:,} keys, best of "
                f"{args.execute_rounds}): " + ", ".join(f"{k} {v:,} ops/s" for k, v in ops.items())
            )
        else:
            print("\n3. Cache.execute: skipped (time budget exhausted)")
        if not args.no_execute_pauses and time.monotonic() < deadline:
            p = execute_pauses(args.items, args.value_size, args.pause_seconds)
            results["execute_pauses"] = p
            print(
                f"   pauses, in process ({args.items:,} items of {args.value_size} bytes, then "
                f"{p['requests']:,} set/get requests): worst {p['max_wall_ms']} ms wall, "
                f"{p['max_cpu_ms']} ms CPU; p99.9 {p['p999_wall_ms']} ms wall, "
                f"{p['p999_cpu_ms']} ms CPU; worst set of the fill {p['fill_worst_wall_ms']} "
                f"ms wall, {p['fill_worst_cpu_ms']} ms CPU"
            )
    elapsed = time.monotonic() - started
    results["elapsed_s"] = round(elapsed, 1)
    print(f"\ntotal time {elapsed:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
