"""Side-by-side benchmark: memcached direct vs mcpframe vs twemproxy (nutcracker).

Starts two memcached backends on free loopback ports, mcpframe with a pool of both (a
generated routes.lua), nutcracker with a ketama pool of the same two (a generated yaml), then
drives every target with the same load (memcaslap by default, bench/loadgen.py as fallback) in
alternating rounds. For each run it records the client's ops/s and latency, the CPU seconds
the target process (and its children) used (/proc/<pid>/stat utime+stime), and the backends'
own op counters as a cross-check. Prints one table per load shape and writes JSON on request.

    .venv/bin/python bench/run.py --seconds 10 --rounds 2 --connections 32,128 --json out.json

``--binary`` adds the same load in memcached's binary protocol (memcaslap ``-B``) against
memcached direct (``memcached-bin``) and a pass-through mcpframe (``mcpframe-bin``, which
translates every packet to a text request and back), and reports each one's CPU per op
against the text protocol's on the same target.

Pinning (when `taskset` exists and there are >= 2 CPUs): the proxy under test on CPU 0, the
load generator and the backends on CPU 1. Everything binds 127.0.0.1 only, and everything
started here is stopped on exit (each child runs in its own process group).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
KEY_SIZE = 32
VALUE_SIZE = 100
GET_RATIO = 0.9
#: ``mcpframe`` runs a pass-through route (``return p.main(r)``, no Lua per request);
#: ``mcpframe-lua`` a v1 route with retry logic, which runs in Lua for every request and key.
DEFAULT_TARGETS = ("memcached", "mcpframe", "mcpframe-lua", "twemproxy")
#: The same route logic on every proxy that can run it (issue 15's matrix). The kind names a
#: config written by :func:`route_config`; ``None`` as a kind is mcpframe's pass-through route.
#: ``cproxy20`` is memcached 1.6.20's proxy (v1 API), ``cproxy45`` memcached 1.6.45's (v2 API and
#: its embedded route library); both are looked up in --cproxy-dir and skipped when missing.
ROUTE_TARGETS: dict[str, tuple[str, str]] = {
    "mcpframe": ("mcpframe", "v1-direct"),
    "mcpframe-lua": ("mcpframe", "v1-retry"),
    "mcpframe-v2": ("mcpframe", "v2-retry"),
    "mcpframe-direct": ("mcpframe", "routelib-direct"),
    "mcpframe-failover": ("mcpframe", "routelib-failover"),
    "mcpframe-allfastest": ("mcpframe", "routelib-allfastest"),
    "cproxy20": ("cproxy20", "v1-direct"),
    "cproxy20-lua": ("cproxy20", "v1-retry"),
    "cproxy45-v2": ("cproxy45", "v2-retry"),
    "cproxy45-direct": ("cproxy45", "routelib-direct"),
    "cproxy45-failover": ("cproxy45", "routelib-failover"),
    "cproxy45-allfastest": ("cproxy45", "routelib-allfastest"),
}
ALL_TARGETS = ("memcached", *ROUTE_TARGETS, "twemproxy")
CPROXY_BINARIES = {"cproxy20": "memcached-1.6.20-proxy", "cproxy45": "memcached-1.6.45-proxy"}
#: Backend key operations per client key operation, by route kind (allfastest asks both pools).
FANOUT = {"routelib-allfastest": 2}
#: ``--binary``: the same load in the binary protocol, against these targets of ALL_TARGETS.
BINARY_SUFFIX = "-bin"
BINARY_TARGETS = ("memcached", "mcpframe")
SAMPLE_INTERVAL = 0.25
# The lines mcpframe writes on start-up and on a (re)load; anything else during a run is news.
MCPFRAME_QUIET = re.compile(rb"^(mcpframe \S+ listening on |ts=\S+ type=proxy_conf )")


# --------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s")


class Processes:
    """Every process this script starts, each in its own session (process group), so that
    stopping one stops its children too, and nothing else."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        argv: Sequence[str],
        *,
        stdout: int | IO[bytes] = subprocess.DEVNULL,
        stderr: int | IO[bytes] = subprocess.DEVNULL,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                self.stop(proc)
        self.procs.clear()


class Pinning:
    """`taskset -c N` prefixes, or nothing when taskset is missing or there is one CPU."""

    def __init__(self, enabled: bool) -> None:
        self.note = ""
        self.taskset = shutil.which("taskset")
        ncpu = len(os.sched_getaffinity(0))
        self.active = False
        if not enabled:
            self.note = "pinning disabled (--no-pin)"
        elif self.taskset is None:
            self.note = "taskset not found (util-linux): running unpinned"
        elif ncpu < 2 or not {0, 1} <= os.sched_getaffinity(0):
            self.note = f"CPUs 0 and 1 not both available ({ncpu} usable): running unpinned"
        else:
            ok = subprocess.run([self.taskset, "-c", "1", "true"], capture_output=True).returncode
            self.active = ok == 0
            self.note = (
                "proxy under test on CPU 0; load generator and backends on CPU 1"
                if self.active
                else "taskset failed: running unpinned"
            )

    def prefix(self, cpus: str) -> list[str]:
        return [self.taskset, "-c", cpus] if self.active and self.taskset else []


# --------------------------------------------------------------------------------------------
# /proc accounting


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm is in parentheses and may hold spaces: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def pid_cpu_seconds(pid: int) -> float:
    """utime+stime+cutime+cstime of one process, in seconds (0 if it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # after comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


def cpu_times() -> dict[str, tuple[int, int]]:
    """Per CPU (and 'cpu' for all): (busy ticks, total ticks) from /proc/stat."""
    out: dict[str, tuple[int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu"):
            continue
        name, *vals = line.split()
        nums = [int(v) for v in vals[:8]]  # user nice system idle iowait irq softirq steal
        total = sum(nums)
        out[name] = (total - nums[3] - nums[4], total)
    return out


def children_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def memcached_stats(port: int) -> dict[str, int]:
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(b"stats\r\n")
        buf = b""
        while not buf.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    out: dict[str, int] = {}
    for line in buf.decode("latin-1").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
            out[parts[1]] = int(parts[2])
    return out


# --------------------------------------------------------------------------------------------
# targets


@dataclass
class Sample:
    t: float
    target: float
    loadgen: float
    ours: float
    cpus: dict[str, tuple[int, int]]


@dataclass
class Target:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    stderr_path: Path | None = None
    backends: list[int] = field(default_factory=list)  # backend ports this target feeds
    fanout: int = 1  # backend key ops per client key op when every backend answers


def route_config(kind: str, ports: Sequence[int]) -> str:
    """The Lua config of one route kind over the two backends, in the API the kind names.

    ``v1-*`` are memcached 1.6.20 configs (``mcp_config_routes``); ``v2-retry`` a 1.6.45
    function generator; ``routelib-*`` a route-library config (``proxy_config=routelib``). The
    retry logic is issue 15's: ask the pool, and ask again if the answer is not ok.
    """
    b = ", ".join(f'mcp.backend("b{i + 1}", "127.0.0.1", {p})' for i, p in enumerate(ports))
    head = "-- written by bench/run.py\n"
    if kind in ("v1-direct", "v1-retry"):
        route = "return p.main(r)"
        if kind == "v1-retry":
            route = "local res = p.main(r) if res:ok() then return res end return p.main(r)"
        return head + (
            f"function mcp_config_pools() return {{ main = mcp.pool({{ {b} }}) }} end\n"
            "function mcp_config_routes(p)\n"
            f"    mcp.attach(mcp.CMD_ANY_STORAGE, function(r) {route} end)\n"
            "end\n"
        )
    if kind == "v2-retry":
        return head + (
            f"function mcp_config_pools() return mcp.pool({{ {b} }}) end\n"
            "function mcp_config_routes(pool)\n"
            "    local fg = mcp.funcgen_new()\n"
            "    local h = fg:new_handle(pool)\n"
            '    fg:ready({ n = "retry", f = function(rctx)\n'
            "        return function(r)\n"
            "            local res = rctx:enqueue_and_wait(r, h)\n"
            "            if res:ok() then return res end\n"
            "            return rctx:enqueue_and_wait(r, h)\n"
            "        end\n"
            "    end })\n"
            "    mcp.attach(mcp.CMD_ANY_STORAGE, fg)\n"
            "end\n"
        )
    handler = kind.removeprefix("routelib-")
    if handler not in ("direct", "failover", "allfastest"):
        raise ValueError(f"unknown route kind {kind!r}")
    hosts = [f'"127.0.0.1:{p}"' for p in ports]
    child = 'child = "main"' if handler == "direct" else 'children = { "main", "alt" }'
    return head + (
        "pools{\n"
        f"    main = {{ backends = {{ {', '.join(hosts)} }} }},\n"
        f"    alt = {{ backends = {{ {', '.join(reversed(hosts))} }} }},\n"
        "}\n"
        f"routes{{ default = route_{handler}{{ {child} }} }}\n"
    )


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, procs: Processes) -> None:
        self.args = args
        self.tmp = tmp
        self.procs = procs
        self.pin = Pinning(not args.no_pin)
        self.memcached = shutil.which("memcached") or "/usr/bin/memcached"
        self.nutcracker = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
        self.memcaslap = shutil.which("memcaslap") or shutil.which("memaslap")
        self.backend_procs: list[subprocess.Popen[bytes]] = []
        self.backend_ports: list[int] = []
        self.targets: dict[str, Target] = {}
        self.mslap_cfg = tmp / "memcaslap.cfg"
        self.mslap_cfg.write_text(
            "# written by bench/run.py\n"
            f"key\n{KEY_SIZE} {KEY_SIZE} 1\n"
            f"value\n{VALUE_SIZE} {VALUE_SIZE} 1\n"
            f"cmd\n0 {1 - GET_RATIO:.3f}\n1 {GET_RATIO:.3f}\n"
        )

    # -- starting things ---------------------------------------------------------------------

    def _start_listening(
        self,
        make_argv: Callable[[int], list[str]],
        name: str,
        cpus: str,
        stderr: IO[bytes] | int = subprocess.DEVNULL,
    ) -> tuple[int, subprocess.Popen[bytes]]:
        """Start a server on a free port; retry on a new port if another process took it."""
        last: Exception | None = None
        for _ in range(5):
            port = free_port()
            proc = self.procs.start(
                self.pin.prefix(cpus) + make_argv(port), stderr=stderr, cwd=ROOT
            )
            try:
                wait_port(port, proc)
                return port, proc
            except (RuntimeError, TimeoutError) as e:
                last = e
                Processes.stop(proc)
        raise RuntimeError(f"could not start {name}: {last}")

    def start_backends(self) -> None:
        root_args = ["-u", "root"] if os.geteuid() == 0 else []
        for i in range(2):

            def argv(port: int) -> list[str]:
                return [
                    self.memcached, "-U", "0", "-l", "127.0.0.1", "-p", str(port), "-t", "1",
                    "-m", "1024", "-c", "4096", *root_args,
                ]  # fmt: skip

            port, proc = self._start_listening(argv, f"memcached backend {i + 1}", "1")
            self.backend_ports.append(port)
            self.backend_procs.append(proc)

    def start_target(self, name: str) -> Target:
        if name == "memcached" + BINARY_SUFFIX:
            target = Target(name, self.backend_ports[0], self.backend_procs[0])
            target.backends = [self.backend_ports[0]]
        elif name == "memcached":
            # memcached hit directly: the first backend is the target.
            target = Target(name, self.backend_ports[0], self.backend_procs[0])
            target.backends = [self.backend_ports[0]]
        elif name.startswith("mcpframe"):
            target = self._start_mcpframe(name)
        elif name.startswith("cproxy"):
            target = self._start_cproxy(name)
        elif name == "twemproxy":
            target = self._start_twemproxy()
        else:
            raise ValueError(f"unknown target {name!r}")
        self.targets[name] = target
        return target

    def _write_config(self, name: str) -> tuple[str, Path]:
        """The route kind of target ``name`` (workers suffix ignored) and its config file."""
        kind = ROUTE_TARGETS[name.partition("-w")[0]][1]
        path = self.tmp / f"{name}.lua"
        path.write_text(route_config(kind, self.backend_ports))
        return kind, path

    def _start_mcpframe(self, name: str) -> Target:
        kind, routes = self._write_config(name)
        config = ["--routelib", str(routes)] if kind.startswith("routelib-") else [
            "--config", str(routes)
        ]  # fmt: skip
        workers = name.partition("-w")[2]
        extra = ["--workers", workers] if workers else []
        cpus = "0" if not workers or workers == "1" else "0,1"
        err_path = self.tmp / f"{name}.stderr"
        err = err_path.open("ab")

        def argv(port: int) -> list[str]:
            return [
                self.args.python, "-m", "mcpframe", "serve", *config,
                "--listen", f"127.0.0.1:{port}", *extra,
            ]  # fmt: skip

        try:
            port, proc = self._start_listening(argv, name, cpus, stderr=err)
        finally:
            err.close()
        fanout = FANOUT.get(kind, 1)
        return Target(name, port, proc, err_path, list(self.backend_ports), fanout)

    def _start_cproxy(self, name: str) -> Target:
        kind, routes = self._write_config(name)
        binary = self.args.cproxy_dir / CPROXY_BINARIES[ROUTE_TARGETS[name][0]]
        config = (
            f"proxy_config=routelib,proxy_arg={routes}"
            if kind.startswith("routelib-")
            else f"proxy_config={routes}"
        )
        root_args = ["-u", "root"] if os.geteuid() == 0 else []
        err_path = self.tmp / f"{name}.stderr"
        err = err_path.open("ab")

        def argv(port: int) -> list[str]:
            return [
                str(binary), "-U", "0", "-l", "127.0.0.1", "-p", str(port), "-t", "1",
                "-c", "4096", "-o", config, *root_args,
            ]  # fmt: skip

        try:
            port, proc = self._start_listening(argv, name, "0", stderr=err)
        finally:
            err.close()
        fanout = FANOUT.get(kind, 1)
        return Target(name, port, proc, err_path, list(self.backend_ports), fanout)

    def _start_twemproxy(self) -> Target:
        conf = self.tmp / "nutcracker.yml"
        log = self.tmp / "nutcracker.log"
        servers = "".join(
            f"    - 127.0.0.1:{p}:1 b{i + 1}\n" for i, p in enumerate(self.backend_ports)
        )

        def argv(port: int) -> list[str]:
            conf.write_text(
                "# written by bench/run.py\n"
                "bench:\n"
                f"  listen: 127.0.0.1:{port}\n"
                f"  hash: {self.args.twemproxy_hash}\n"
                "  distribution: ketama\n"
                "  auto_eject_hosts: false\n"
                "  preconnect: true\n"
                "  server_connections: 1\n"
                "  servers:\n" + servers
            )
            return [
                self.nutcracker, "-c", str(conf), "-s", str(free_port()), "-a", "127.0.0.1",
                "-o", str(log), "-p", str(self.tmp / "nutcracker.pid"), "-v", "4",
            ]  # fmt: skip

        try:
            port, proc = self._start_listening(argv, "twemproxy", "0")
        except RuntimeError as e:
            tail = log.read_text(errors="replace")[-1000:] if log.exists() else ""
            raise RuntimeError(f"{e}; nutcracker log: {tail}") from e
        return Target("twemproxy", port, proc, log, list(self.backend_ports))

    # -- one measurement ---------------------------------------------------------------------

    def loadgen_argv(
        self, port: int, conns: int, multiget: int, seconds: float, binary: bool = False
    ) -> list[str]:
        if binary and self.args.loadgen != "memcaslap":
            raise RuntimeError("the binary-protocol load needs memcaslap (-B)")
        if self.args.loadgen == "memcaslap":
            assert self.memcaslap is not None
            secs = max(1, round(seconds))
            argv = [
                self.memcaslap, "-s", f"127.0.0.1:{port}", "-T", "1", "-c", str(conns),
                "-t", f"{secs}s", "-X", str(VALUE_SIZE), "-F", str(self.mslap_cfg),
                "-S", f"{secs}s",
            ]  # fmt: skip
            if multiget > 1:
                argv += ["-d", str(multiget)]
            if binary:
                argv.append("-B")
        else:
            argv = [
                self.args.python, str(LOADGEN), "--server", f"127.0.0.1:{port}",
                "--connections", str(conns), "--seconds", str(seconds),
                "--key-size", str(KEY_SIZE), "--value-size", str(VALUE_SIZE),
                "--get-ratio", str(GET_RATIO), "--multiget", str(multiget),
                "--procs", str(self.args.loadgen_procs), "--no-preload",
            ]  # fmt: skip
        return self.pin.prefix("1") + argv

    def _sample(self, target_pids: list[int], gen_pid: int, our_pids: list[int]) -> Sample:
        return Sample(
            t=time.monotonic(),
            target=sum(pid_cpu_seconds(p) for p in target_pids),
            loadgen=sum(pid_cpu_seconds(p) for p in process_tree(gen_pid)),
            ours=sum(pid_cpu_seconds(p) for p in our_pids),
            cpus=cpu_times(),
        )

    def wait_quiet(self, max_wait: float, threshold: float = 0.15) -> tuple[float, float]:
        """Wait (at most max_wait s) until processes not started here use < threshold cores.
        Returns (seconds waited, last foreign load in cores)."""
        long_running = {p.pid for p in self.backend_procs} | {
            t.proc.pid for t in self.targets.values()
        }
        our_pids = [pid for root in long_running for pid in process_tree(root)]
        t0 = time.monotonic()
        foreign = 0.0
        while True:
            a_cpu, a_ours, a_t = cpu_times(), sum(map(pid_cpu_seconds, our_pids)), time.monotonic()
            time.sleep(0.5)
            b_cpu, b_ours, b_t = cpu_times(), sum(map(pid_cpu_seconds, our_pids)), time.monotonic()
            busy = (b_cpu["cpu"][0] - a_cpu["cpu"][0]) / CLK_TCK
            foreign = max(0.0, busy - (b_ours - a_ours)) / (b_t - a_t)
            if foreign < threshold or b_t - t0 >= max_wait:
                return b_t - t0, foreign

    def measure(
        self, target: Target, conns: int, multiget: int, seconds: float, round_no: int
    ) -> dict[str, Any]:
        long_running = {p.pid for p in self.backend_procs} | {
            t.proc.pid for t in self.targets.values()
        }
        our_pids = [pid for root in long_running for pid in process_tree(root)]
        target_pids = process_tree(target.proc.pid)
        if self.args.loadgen == "python":
            # set the key space before the measured window (bench/loadgen.py --no-preload).
            pre = self.loadgen_argv(target.port, 1, 1, 1)
            pre = [*pre[: pre.index("--connections")], "--preload-only"]
            subprocess.run(pre, capture_output=True, timeout=60, check=True)
        err_offset = target.stderr_path.stat().st_size if target.stderr_path else 0
        st_before = [memcached_stats(p) for p in target.backends]
        cpu_backends0 = sum(pid_cpu_seconds(p.pid) for p in self.backend_procs)
        lg0 = children_cpu_seconds()
        binary = target.name.endswith(BINARY_SUFFIX)
        argv = self.loadgen_argv(target.port, conns, multiget, seconds, binary)
        with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
            gen = self.procs.start(argv, stdout=out_f, stderr=err_f)
            first = self._sample(target_pids, gen.pid, our_pids)
            samples = [first]
            timed_out = False
            deadline = first.t + seconds + 45
            while gen.poll() is None:
                if time.monotonic() > deadline:
                    timed_out = True
                    Processes.stop(gen)
                    break
                time.sleep(SAMPLE_INTERVAL)
                samples.append(self._sample(target_pids, gen.pid, our_pids))
            gen.wait()
            self.procs.procs.remove(gen)
            out_f.seek(0)
            err_f.seek(0)
            out, err = out_f.read(), err_f.read()
        lg_cpu = children_cpu_seconds() - lg0
        last = self._sample(target_pids, gen.pid, our_pids)
        cpu_backends = sum(pid_cpu_seconds(p.pid) for p in self.backend_procs) - cpu_backends0
        alive = target.proc.poll() is None
        st_after = [memcached_stats(p) for p in target.backends] if alive else st_before

        wall = last.t - first.t
        cpu_target = last.target - first.target
        res: dict[str, Any] = {
            "target": target.name,
            "connections": conns,
            "multiget": multiget,
            "round": round_no,
            "loadgen": self.args.loadgen,
            "loadgen_argv": argv,
            "loadgen_exit": gen.returncode,
            "timed_out": timed_out,
            "wall_s": wall,
            "target_alive": alive,
        }
        if self.args.loadgen == "memcaslap":
            res.update(parse_memcaslap(out.decode("latin-1", "replace")))
        else:
            res.update(parse_loadgen(out))
        noise = [
            ln
            for ln in err.decode("latin-1", "replace").splitlines()
            if ln.strip() and not ln.startswith("\x1b")
        ]
        res["loadgen_stderr"] = noise[:20]
        backend_ops = sum(
            (a.get("cmd_get", 0) - b.get("cmd_get", 0))
            + (a.get("cmd_set", 0) - b.get("cmd_set", 0))
            for a, b in zip(st_after, st_before, strict=True)
        )
        res["backend_key_ops"] = backend_ops
        res["backend_get_misses"] = sum(
            a.get("get_misses", 0) - b.get("get_misses", 0)
            for a, b in zip(st_after, st_before, strict=True)
        )
        client_ops = res.get("key_ops") or 0
        # A fan-out route (allfastest) makes several backend ops of one client op: count client
        # ops, so CPU per op is per request the client made.
        res["backend_vs_client"] = backend_ops / target.fanout / client_ops if client_ops else None
        denom = backend_ops // target.fanout or client_ops
        res["target_cpu_s"] = cpu_target
        res["target_cpu_us_per_op"] = cpu_target / denom * 1e6 if denom else None
        res["backends_cpu_s"] = cpu_backends
        res["loadgen_cpu_s"] = lg_cpu
        # Utilisation over the steady part of the run: traffic starts as soon as the load
        # generator does and lasts its own run time (memcaslap then idles ~1 s before it
        # exits); skip half a second of ramp-up and a quarter second at the end.
        run_len = float(res.get("seconds") or seconds)
        steady = [x for x in samples if first.t + 0.5 <= x.t <= first.t + run_len - 0.25]
        a, b = (steady[0], steady[-1]) if len(steady) >= 2 else (first, last)
        span = max(1e-6, b.t - a.t)
        res["steady_window_s"] = span
        res["target_core_busy_pct"] = 100.0 * (b.target - a.target) / span
        res["loadgen_core_busy_pct"] = 100.0 * (b.loadgen - a.loadgen) / span
        res["cpu_busy_pct"] = {
            name: 100.0
            * (b.cpus[name][0] - a.cpus[name][0])
            / max(1, b.cpus[name][1] - a.cpus[name][1])
            for name in b.cpus
            if name in a.cpus
        }
        machine_busy = (b.cpus["cpu"][0] - a.cpus["cpu"][0]) / CLK_TCK
        ours = (b.ours - a.ours) + (b.loadgen - a.loadgen)
        # CPU used by processes that are not ours (other jobs on the machine), in cores.
        res["foreign_cores"] = max(0.0, machine_busy - ours) / span
        if target.stderr_path is not None and target.name.startswith("mcpframe"):
            with target.stderr_path.open("rb") as f:
                f.seek(err_offset)
                new = f.read()
            lines = [ln for ln in new.splitlines() if ln and not MCPFRAME_QUIET.match(ln)]
            res["target_stderr_lines"] = len(lines)
            res["target_stderr_sample"] = [ln.decode("utf-8", "replace") for ln in lines[:20]]
        if not alive:
            res["target_exit"] = target.proc.returncode
        return res


# --------------------------------------------------------------------------------------------
# parsing load generator output

_RUN_RE = re.compile(r"Run time: ([\d.]+)s Ops: (\d+) TPS: (\d+)")
_COUNTER_RE = re.compile(r"^(cmd_get|cmd_set|get_misses|verify_failed): (\d+)", re.M)


def parse_memcaslap(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    m = _RUN_RE.search(text)
    if m:
        out["seconds"] = float(m.group(1))
        out["ops"] = int(m.group(2))
        out["tps"] = float(m.group(3))
    counters = {k: int(v) for k, v in _COUNTER_RE.findall(text)}
    out.update(counters)
    if "cmd_get" in counters:
        out["key_ops"] = counters["cmd_get"] + counters.get("cmd_set", 0)
    block = text.split("Total Statistics (", 1)
    if len(block) == 2:
        body = block[1]
        events = re.match(r"(\d+) events", body)
        if events:
            out["requests"] = int(events.group(1))
        for name in ("Min", "Max", "Avg"):
            mm = re.search(rf"^\s*{name}:\s+([\d.]+)", body, re.M)
            if mm:
                out[f"lat_{name.lower()}_us"] = float(mm.group(1))
        hist = parse_log2_dist(body)
        if hist:
            out["lat_p50_le_us"] = _quantile_bound(hist, 0.50)
            out["lat_p99_le_us"] = _quantile_bound(hist, 0.99)
    if "tps" not in out:
        out["error"] = "no 'Run time: ... TPS:' line in memcaslap output"
        out["raw_tail"] = text[-2000:]
    return out


def parse_log2_dist(body: str) -> dict[int, int]:
    """memcaslap's 'Log2 Dist' rows: 'base: n0 n1 n2 n3' for buckets base..base+3, where
    bucket i counts latencies in (2**(i-1), 2**i] microseconds."""
    hist: dict[int, int] = {}
    part = body.split("Log2 Dist:", 1)
    if len(part) < 2:
        return hist
    for line in part[1].splitlines()[1:]:
        m = re.match(r"^\s*(\d+):\s+([\d\s]+)$", line)
        if not m:
            break
        base = int(m.group(1))
        for j, n in enumerate(m.group(2).split()):
            hist[base + j] = int(n)
    return hist


def _quantile_bound(hist: dict[int, int], q: float) -> int | None:
    total = sum(hist.values())
    if not total:
        return None
    seen = 0
    for i in sorted(hist):
        seen += hist[i]
        if seen >= q * total:
            return 1 << i
    return None


def parse_loadgen(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        return {"error": "bench/loadgen.py printed no JSON", "raw_tail": raw[-2000:].decode()}
    out = {
        k: data[k]
        for k in (
            "seconds", "ops", "tps", "key_ops", "get_misses", "errors", "error_samples",
            "lat_avg_us", "lat_max_us", "lat_p50_le_us", "lat_p99_le_us", "connect_failures",
        )
        if k in data
    }  # fmt: skip
    out["requests"] = data.get("ops")
    # tps in key-ops/s, like memcaslap (a 10-key get counts 10).
    if data.get("seconds"):
        out["tps"] = data["key_ops"] / data["seconds"]
    return out


# --------------------------------------------------------------------------------------------
# summary and report


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.fmean(vals) if vals else None


def _median(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
    for r in runs:
        if r.get("warmup"):
            continue
        groups.setdefault((r["connections"], r["multiget"], r["target"]), []).append(r)
    rows: list[dict[str, Any]] = []
    for (conns, mg, target), rs in groups.items():
        good = [r for r in rs if "tps" in r and r.get("target_alive")]
        tps = [float(r["tps"]) for r in good]
        rows.append(
            {
                "connections": conns,
                "multiget": mg,
                "target": target,
                "runs": len(rs),
                "good_runs": len(good),
                "ops_per_s": _median(tps),
                "ops_per_s_min": min(tps) if tps else None,
                "ops_per_s_max": max(tps) if tps else None,
                "lat_avg_us": _mean([r.get("lat_avg_us") for r in good]),
                "lat_p99_le_us": max(
                    (r["lat_p99_le_us"] for r in good if r.get("lat_p99_le_us")), default=None
                ),
                "cpu_us_per_op": _median([r.get("target_cpu_us_per_op") for r in good]),
                "target_core_busy_pct": _mean([r.get("target_core_busy_pct") for r in good]),
                "loadgen_core_busy_pct": _mean([r.get("loadgen_core_busy_pct") for r in good]),
                "cpu0_busy_pct": _mean([r.get("cpu_busy_pct", {}).get("cpu0") for r in good]),
                "cpu1_busy_pct": _mean([r.get("cpu_busy_pct", {}).get("cpu1") for r in good]),
                "foreign_cores": _mean([r.get("foreign_cores") for r in good]),
                "backend_vs_client": _mean([r.get("backend_vs_client") for r in good]),
                "client_get_misses": sum(r.get("get_misses", 0) or 0 for r in good),
                "client_gets": sum(r.get("cmd_get", 0) or 0 for r in good),
                "client_errors": sum(r.get("errors", 0) or 0 for r in good),
                "target_stderr_lines": sum(r.get("target_stderr_lines", 0) for r in rs),
                "failures": [
                    r.get("error") or f"target exited {r.get('target_exit')}"
                    for r in rs
                    if r not in good
                ],
            }
        )
    for row in rows:
        row["check_failures"] = sanity_failures(row)
    by_shape: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_shape.setdefault((row["connections"], row["multiget"]), {})[row["target"]] = row
    for shape in by_shape.values():
        mc = shape.get("memcached", {})
        tw = shape.get("twemproxy", {})
        for row in shape.values():
            row["ops_vs_memcached"] = _ratio(row["ops_per_s"], mc.get("ops_per_s"))
            row["ops_vs_twemproxy"] = _ratio(row["ops_per_s"], tw.get("ops_per_s"))
            row["cpu_vs_twemproxy"] = _ratio(row["cpu_us_per_op"], tw.get("cpu_us_per_op"))
            if row["target"].endswith(BINARY_SUFFIX):
                text = shape.get(row["target"].removesuffix(BINARY_SUFFIX), {})
                row["cpu_vs_text"] = _ratio(row["cpu_us_per_op"], text.get("cpu_us_per_op"))
    # Paired ratios: each round's run against twemproxy's run of the same round and shape.
    # The host's speed can drift between rounds (other tenants); a ratio taken within one
    # round, minutes apart at most, is steadier than a ratio of medians.
    by_round: dict[tuple[int, int, int, str], dict[str, Any]] = {}
    for r in runs:
        if not r.get("warmup") and "tps" in r and r.get("target_alive"):
            by_round[(r["connections"], r["multiget"], r["round"], r["target"])] = r
    for row in rows:
        ops_ratios, cpu_ratios = [], []
        for (conns, mg, rnd, target), r in by_round.items():
            if (conns, mg, target) != (row["connections"], row["multiget"], row["target"]):
                continue
            tw_run = by_round.get((conns, mg, rnd, "twemproxy"))
            if tw_run is None:
                continue
            ops_ratios.append(_ratio(float(r["tps"]), float(tw_run["tps"])))
            cpu_ratios.append(
                _ratio(r.get("target_cpu_us_per_op"), tw_run.get("target_cpu_us_per_op"))
            )
        row["paired_ops_vs_twemproxy"] = _median(ops_ratios)
        row["paired_cpu_vs_twemproxy"] = _median(cpu_ratios)
        if row["target"].endswith(BINARY_SUFFIX):
            # Binary against text on the same target, paired within each round.
            text_name = row["target"].removesuffix(BINARY_SUFFIX)
            pairs = [
                _ratio(r.get("target_cpu_us_per_op"), t.get("target_cpu_us_per_op"))
                for (conns, mg, rnd, target), r in by_round.items()
                if (conns, mg, target) == (row["connections"], row["multiget"], row["target"])
                and (t := by_round.get((conns, mg, rnd, text_name))) is not None
            ]
            row["paired_cpu_vs_text"] = _median(pairs)
    rows.sort(key=lambda r: (r["multiget"], r["connections"], _target_order(r["target"])))
    return rows


def sanity_failures(row: dict[str, Any]) -> list[str]:
    """Reasons not to trust a row's ops/s: ops the client counted that never reached a backend
    (error replies, closed connections), or gets that missed although every key was set."""
    out = []
    ratio = row["backend_vs_client"]
    if ratio is not None and not 0.95 <= ratio <= 1.05:
        out.append(
            f"backends served {ratio:.0%} of the key ops the client counted: the client was "
            "answered without a backend (error replies or closed connections)"
        )
    gets, misses = row["client_gets"], row["client_get_misses"]
    if gets and misses > 0.01 * gets:
        out.append(f"{misses:,} of {gets:,} gets missed (the load sets every key it gets)")
    if row["client_errors"]:
        out.append(f"{row['client_errors']} error replies seen by the client")
    return out


def _target_order(name: str) -> tuple[int, str]:
    base = name.partition("-w")[0].removesuffix(BINARY_SUFFIX)
    return (ALL_TARGETS.index(base) if base in ALL_TARGETS else 9, name)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _f(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def print_report(rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    out = sys.stdout
    out.write("\n")
    lg = meta["loadgen"]
    out.write(
        f"mix: {round(GET_RATIO * 100)}% get / {round((1 - GET_RATIO) * 100)}% set, "
        f"key {KEY_SIZE} B, value {VALUE_SIZE} B; load generator: {lg}; "
        f"{meta['args']['rounds']} round(s) x {meta['args']['seconds']} s\n"
    )
    out.write(f"pinning: {meta['pinning']}\n")
    out.write(f"workers: {meta['workers_note']}\n")
    shapes = sorted({(r["multiget"], r["connections"]) for r in rows})
    head = (
        f"{'target':<20}{'ops/s':>10}{'min..max':>17}{'lat avg':>9}{'p99<=':>8}"
        f"{'CPU us/op':>10}{'core%':>7}{'cpu0%':>7}{'cpu1%':>7}{'other':>7}{'vs mc':>7}"
        f"{'vs twem':>8}{'CPU/twem':>9}{'be/cl':>7}{'err':>5}\n"
    )
    for mg, conns in shapes:
        title = f"connections={conns}" + (f", multiget={mg} keys" if mg > 1 else ", single get")
        out.write(f"\n== {title} ==\n{head}")
        for r in (r for r in rows if r["connections"] == conns and r["multiget"] == mg):
            span = f"{_f(r['ops_per_s_min'], ',.0f')}..{_f(r['ops_per_s_max'], ',.0f')}"
            errs = r["target_stderr_lines"] + len(r["failures"]) + len(r["check_failures"])
            out.write(
                f"{r['target']:<20}{_f(r['ops_per_s'], ',.0f'):>10}{span:>17}"
                f"{_f(r['lat_avg_us'], '.0f'):>9}{_f(r['lat_p99_le_us'], '.0f'):>8}"
                f"{_f(r['cpu_us_per_op'], '.1f'):>10}{_f(r['target_core_busy_pct'], '.0f'):>7}"
                f"{_f(r['cpu0_busy_pct'], '.0f'):>7}{_f(r['cpu1_busy_pct'], '.0f'):>7}"
                f"{_f(r['foreign_cores'], '.2f'):>7}"
                f"{_f(r['ops_vs_memcached'], '.2f'):>7}{_f(r['ops_vs_twemproxy'], '.2f'):>8}"
                f"{_f(r['cpu_vs_twemproxy'], '.2f'):>9}{_f(r['backend_vs_client'], '.2f'):>7}"
                f"{errs:>5}\n"
            )
            if r["target"] != "twemproxy" and r.get("paired_ops_vs_twemproxy") is not None:
                out.write(
                    f"    paired with twemproxy's run of the same round (median over rounds): "
                    f"ops/s {_f(r['paired_ops_vs_twemproxy'], '.2f')}, "
                    f"CPU/op {_f(r['paired_cpu_vs_twemproxy'], '.2f')}\n"
                )
            if r.get("cpu_vs_text") is not None:
                out.write(
                    f"    binary protocol: CPU/op {_f(r['cpu_vs_text'], '.2f')}x the text "
                    f"protocol's on the same target (paired by round: "
                    f"{_f(r.get('paired_cpu_vs_text'), '.2f')}x)\n"
                )
            for failure in r["failures"]:
                out.write(f"    run failed: {failure}\n")
            for failure in r["check_failures"]:
                out.write(f"    CHECK FAILED, ops/s not valid: {failure}\n")
        others = [r["foreign_cores"] for r in rows if r["connections"] == conns]
        worst = max((x for x in others if x is not None), default=0.0)
        if worst > 0.1:
            out.write(
                f"  note: processes not started here used {worst:.2f} cores on average during "
                "one target's runs: numbers are noisier than on an idle machine "
                "(see --quiet-wait)\n"
            )
    out.write(
        "\ncolumns: ops/s = key operations per second seen by the client (median of rounds; "
        "min..max over rounds); lat avg in us, p99<= = upper bound of the log2 latency bucket "
        "holding p99 (worst round); CPU us/op = CPU of the target process tree / key ops the "
        "backends served (median); core% = target CPU / wall in the steady part of the run; "
        "cpu0%, cpu1% = machine CPU busy (all processes); other = cores used by processes "
        "not started here; vs mc, vs twem = ops/s ratios; CPU/twem = CPU us/op ratio; be/cl = "
        "backend key ops / client key ops (~1.00 when every op reached a backend); err = "
        "failed checks + unexpected mcpframe stderr lines + failed runs\n"
    )
    for note in meta["loadgen_checks"]:
        out.write(f"load generator check: {note}\n")
    for r in rows:
        if r["target_stderr_lines"]:
            out.write(f"{r['target']} stderr during c={r['connections']}: see JSON\n")


def loadgen_checks(rows: list[dict[str, Any]]) -> list[str]:
    """Is the load generator (or its CPU) the limit? memcached direct must go well above the
    proxies, and the load generator's CPU must have room during the proxy runs."""
    notes = []
    for mg, conns in sorted({(r["multiget"], r["connections"]) for r in rows}):
        shape = {r["target"]: r for r in rows if r["connections"] == conns and r["multiget"] == mg}
        mc = shape.get("memcached")
        proxies = [r for n, r in shape.items() if n != "memcached" and r["ops_per_s"]]
        if not mc or not mc["ops_per_s"] or not proxies:
            continue
        for p in proxies:
            if p["check_failures"]:
                notes.append(f"c={conns} mg={mg}: {p['target']} failed its checks: no verdict")
                continue
            factor = mc["ops_per_s"] / p["ops_per_s"]
            cpu0 = p["cpu0_busy_pct"] or 0.0
            cpu1 = p["cpu1_busy_pct"] or 0.0
            lg = _f(p["loadgen_core_busy_pct"], ".0f")
            if factor < 1.3 or cpu1 >= 95:
                verdict = "the load generator side (CPU 1) may be the limit"
            elif cpu0 >= 85 or (p["target_core_busy_pct"] or 0) >= 80:
                verdict = (
                    f"CPU 0 is (nearly) saturated (proxy {_f(p['target_core_busy_pct'], '.0f')}% + "
                    "others): the proxy side is the limit"
                )
            else:
                verdict = "neither CPU saturated: latency (round trips, wake-ups) is the limit"
            notes.append(
                f"c={conns} mg={mg}: memcached direct {mc['ops_per_s']:,.0f} ops/s = "
                f"{factor:.1f}x {p['target']} {p['ops_per_s']:,.0f} ops/s; during "
                f"{p['target']} runs the load generator used {lg}% of a core, "
                f"CPU 1 {cpu1:.0f}% busy, CPU 0 {cpu0:.0f}% busy: {verdict}"
            )
    return notes


# --------------------------------------------------------------------------------------------
# main


def machine_info(args: argparse.Namespace, bench: Bench) -> dict[str, Any]:
    def first_line(argv: list[str]) -> str:
        try:
            p = subprocess.run(argv, capture_output=True, timeout=10, text=True)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"unavailable ({e})"
        text = (p.stdout + p.stderr).strip().splitlines()
        return text[0] if text else ""

    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "memcached": first_line([bench.memcached, "-V"]),
        "nutcracker": first_line([bench.nutcracker, "--version"]),
        "memcaslap": first_line([bench.memcaslap, "-V"]) if bench.memcaslap else "not found",
        "mcpframe": first_line([args.python, "-m", "mcpframe", "--version"]),
    }


def mcpframe_serve_help(python: str) -> str:
    """``mcpframe serve --help`` of the interpreter under test: which options it has."""
    p = subprocess.run(
        [python, "-m", "mcpframe", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
        cwd=ROOT,
    )
    return p.stdout + p.stderr


def unavailable_targets(args: argparse.Namespace, serve_help: str) -> dict[str, str]:
    """Targets this machine cannot run, with why: a C proxy binary that is not there, or an
    mcpframe without the route library (``--routelib``)."""
    out: dict[str, str] = {}
    for name in args.target_list:
        impl, kind = ROUTE_TARGETS.get(name, ("", ""))
        if impl in CPROXY_BINARIES:
            binary = args.cproxy_dir / CPROXY_BINARIES[impl]
            if not os.access(binary, os.X_OK):
                out[name] = f"{binary} not found (see --cproxy-dir)"
        elif impl == "mcpframe" and kind.startswith("routelib-") and "--routelib" not in serve_help:
            out[name] = "`mcpframe serve --help` has no --routelib option"
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds over all targets")
    p.add_argument("--connections", default="32,128", help="comma-separated client conns")
    p.add_argument(
        "--multiget", type=int, default=0,
        help="also run every connection count with N-key multi-gets (0 or 1: off)",
    )  # fmt: skip
    p.add_argument(
        "--workers", default="",
        help="mcpframe --workers values to compare, e.g. 1,2 (only if mcpframe supports it)",
    )  # fmt: skip
    p.add_argument(
        "--targets", default=",".join(DEFAULT_TARGETS),
        help=f"comma-separated, from: {', '.join(ALL_TARGETS)}",
    )  # fmt: skip
    p.add_argument(
        "--cproxy-dir", type=Path, default=ROOT.parent / "shared" / "bin",
        help="where memcached-1.6.20-proxy and memcached-1.6.45-proxy are (cproxy* targets)",
    )  # fmt: skip
    p.add_argument(
        "--binary", action="store_true",
        help="also run memcached and mcpframe with the binary protocol (memcaslap -B)",
    )  # fmt: skip
    p.add_argument("--warmup", type=float, default=2.0, help="unrecorded run per target first")
    p.add_argument(
        "--loadgen", choices=("auto", "memcaslap", "python"), default="auto",
        help="auto: memcaslap if installed and sane, else bench/loadgen.py",
    )  # fmt: skip
    p.add_argument("--loadgen-procs", type=int, default=1, help="processes for bench/loadgen.py")
    p.add_argument("--twemproxy-hash", choices=("fnv1a_64", "md5"), default="fnv1a_64")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--json", type=Path, help="write runs and summary here")
    p.add_argument("--budget", type=float, default=0.0, help="stop starting runs after N s")
    p.add_argument(
        "--quiet-wait", type=float, default=0.0,
        help="before each run wait up to N s for other processes to use < 0.15 cores",
    )  # fmt: skip
    default_py = ROOT / ".venv" / "bin" / "python"
    p.add_argument(
        "--python", default=str(default_py) if default_py.exists() else sys.executable,
        help="interpreter that runs mcpframe (and bench/loadgen.py)",
    )  # fmt: skip
    args = p.parse_args(argv)
    args.conns_list = [int(x) for x in args.connections.split(",") if x.strip()]
    args.target_list = [x.strip() for x in args.targets.split(",") if x.strip()]
    for t in args.target_list:
        if t not in ALL_TARGETS:
            p.error(f"unknown target {t!r}; choose from {', '.join(ALL_TARGETS)}")
    if args.binary:
        args.target_list += [t + BINARY_SUFFIX for t in BINARY_TARGETS if t in args.target_list]
        if args.loadgen == "python":
            p.error("--binary needs memcaslap (--loadgen auto or memcaslap)")
    if args.seconds < 1 or args.rounds < 1 or not args.conns_list:
        p.error("need --seconds >= 1, --rounds >= 1 and at least one connection count")
    return args


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def cleanup_on_signals() -> Iterator[None]:
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def choose_loadgen(args: argparse.Namespace, bench: Bench, log: list[str]) -> None:
    if args.loadgen == "python":
        return
    if bench.memcaslap is None:
        if args.loadgen == "memcaslap":
            raise SystemExit("memcaslap not found (Debian: libmemcached-tools)")
        log.append("memcaslap not found: using bench/loadgen.py")
        args.loadgen = "python"
        return
    want = args.loadgen
    args.loadgen = "memcaslap"
    probe = bench.measure(bench.targets["memcached"], args.conns_list[0], 1, 2.0, 0)
    ok = "tps" in probe and probe["tps"] > 0 and not probe["timed_out"]
    ok = ok and abs((probe.get("backend_vs_client") or 0) - 1.0) < 0.05
    if ok:
        log.append(f"memcaslap probe against memcached direct: {probe['tps']:,.0f} ops/s, sane")
    elif want == "memcaslap":
        raise SystemExit(f"memcaslap probe failed: {probe}")
    else:
        log.append(f"memcaslap misbehaved ({probe.get('error', probe)}): using bench/loadgen.py")
        args.loadgen = "python"


def run_rounds(
    args: argparse.Namespace,
    bench: Bench,
    targets: list[str],
    shapes: list[tuple[int, int]],
    runs: list[dict[str, Any]],
    deadline: float,
) -> str:
    """All measured runs, targets alternating within each round. Returns why it stopped early
    ('' when it did not)."""
    for rnd in range(1, args.rounds + 1):
        for conns, mg in shapes:
            k = (rnd - 1) % len(targets)
            for name in targets[k:] + targets[:k]:
                if time.monotonic() > deadline:
                    return "time budget (--budget) reached: stopped early"
                target = bench.targets[name]
                if target.proc.poll() is not None and not name.startswith("memcached"):
                    print(f"  {name} had exited ({target.proc.returncode}): restarting")
                    target = bench.start_target(name)
                waited, calm = (
                    bench.wait_quiet(args.quiet_wait) if args.quiet_wait > 0 else (0.0, None)
                )
                r = bench.measure(target, conns, mg, args.seconds, rnd)
                r["quiet_wait_s"] = waited
                r["foreign_cores_before"] = calm
                runs.append(r)
                print(
                    f"  round {rnd} c={conns} mg={mg} {name:<20} "
                    f"{_f(r.get('tps'), ',.0f'):>10} ops/s  "
                    f"cpu {_f(r.get('target_cpu_us_per_op'), '.1f')} us/op  "
                    f"core {r['target_core_busy_pct']:.0f}%  "
                    f"other {r['foreign_cores']:.2f} cores"
                    + (f"  ERROR {r['error']}" if "error" in r else "")
                    + ("" if r["target_alive"] else "  TARGET EXITED"),
                    flush=True,
                )
                for line in r.get("target_stderr_sample", [])[:5]:
                    print(f"    {name} stderr: {line}", flush=True)
    return ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    procs = Processes()
    runs: list[dict[str, Any]] = []
    log: list[str] = []
    meta: dict[str, Any] = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    stderr_tails: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="mcpframe-bench-") as tmpdir, cleanup_on_signals():
        tmp = Path(tmpdir)
        bench = Bench(args, tmp, procs)
        try:
            check = subprocess.run(
                [args.python, "-c", "import mcpframe"], capture_output=True, cwd=ROOT
            )
            if check.returncode != 0 and any(t.startswith("mcpframe") for t in args.target_list):
                raise SystemExit(
                    f"{args.python} cannot import mcpframe: run "
                    "`.venv/bin/pip install -e . --no-deps` or pass --python"
                )
            serve_help = mcpframe_serve_help(args.python) if check.returncode == 0 else ""
            skipped = unavailable_targets(args, serve_help)
            for name, why in skipped.items():
                print(f"skipping target {name}: {why}", flush=True)
                log.append(f"skipped target {name}: {why}")
            targets = [t for t in args.target_list if t not in skipped]
            workers = [w.strip() for w in args.workers.split(",") if w.strip()]
            if "mcpframe" in targets and workers:
                if "--workers" in serve_help:
                    i = targets.index("mcpframe")
                    targets[i : i + 1] = [f"mcpframe-w{w}" for w in workers]
                    workers_note = f"mcpframe run with --workers {', '.join(workers)}"
                else:
                    workers_note = (
                        "`mcpframe serve --help` has no --workers option: "
                        "workers variation skipped, mcpframe runs as one process"
                    )
            else:
                workers_note = "not varied (single-process mcpframe)"
            meta["pinning"] = bench.pin.note
            meta["workers_note"] = workers_note
            if bench.pin.active:
                # this script samples /proc during runs: keep it off the proxy's CPU.
                os.sched_setaffinity(0, {1})
            print(f"pinning: {bench.pin.note}", flush=True)
            print(f"workers: {workers_note}", flush=True)
            bench.start_backends()
            bench.start_target("memcached")
            for name in targets:
                if name != "memcached":
                    bench.start_target(name)
            print(
                "started: "
                + ", ".join(f"{t.name}@127.0.0.1:{t.port}" for t in bench.targets.values())
                + f"; backends {bench.backend_ports}",
                flush=True,
            )
            choose_loadgen(args, bench, log)
            for line in log:
                print(line, flush=True)
            meta["machine"] = machine_info(args, bench)
            meta["loadgen"] = args.loadgen
            meta["log"] = log

            mgs = [1] + ([args.multiget] if args.multiget > 1 else [])
            shapes = [(c, mg) for mg in mgs for c in args.conns_list]
            n_runs = len(shapes) * len(targets) * args.rounds
            per_run = args.seconds + 2.0
            estimate = n_runs * (per_run + args.quiet_wait / 2) + len(targets) * (args.warmup + 2)
            budget = args.budget or estimate * 1.5 + 60
            print(f"{n_runs} runs of {args.seconds:g} s: about {estimate:.0f} s", flush=True)

            if args.warmup > 0:
                for name in targets:
                    r = bench.measure(bench.targets[name], args.conns_list[0], 1, args.warmup, 0)
                    r["warmup"] = True
                    runs.append(r)
            try:
                stop_reason = run_rounds(args, bench, targets, shapes, runs, started + budget)
            except Exception as e:  # report what was measured, and why it stopped
                stop_reason = f"aborted: {type(e).__name__}: {e}"
            if stop_reason:
                print(stop_reason)
                log.append(stop_reason)
        finally:
            procs.stop_all()
            for t in bench.targets.values():
                if t.stderr_path and t.stderr_path.exists():
                    stderr_tails[t.name] = t.stderr_path.read_text(errors="replace")[-4000:]
        rows = summarise(runs)
        meta["loadgen_checks"] = loadgen_checks(rows)
        meta["elapsed_s"] = time.monotonic() - started
        print_report(rows, meta)
        print(f"total time {meta['elapsed_s']:.0f} s")
        if args.json:
            payload = {"meta": meta, "summary": rows, "runs": runs, "stderr_tails": stderr_tails}
            args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
            print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
