"""``--workers N``: N worker processes sharing the listening ports, and their supervisor.

Each worker is a whole mcpframe (``serve`` run again with ``MCPFRAME_WORKER_*`` set): its own
Lua VMs, backend connections and event loop, listening with SO_REUSEPORT so the kernel
spreads new client connections over them, as memcached spreads them over its threads. The
supervisor (the process the operator started) holds no TCP socket (only the unix ones, below)
and runs no Lua route: it validates the config, starts the workers, restarts one that dies
(and logs it), and passes reload (SIGHUP) and shutdown (SIGTERM/SIGINT) on to all of them.

Unix sockets cannot be shared with SO_REUSEPORT: the supervisor binds each one once and every
worker inherits the listening descriptor (``proxy/listeners.py``, ``MCPFRAME_UNIX_FDS``).

Stats: every worker publishes its counters to a small JSON file in a directory the
supervisor owns, twice a second; ``stats`` and ``stats proxy`` on any worker answer the sums
over all workers (at most half a second old for the others). With ``--metrics`` the file
also holds a snapshot of the worker's metric families, so that any worker answers a scrape
for the whole group (``metrics_group.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType

from mcpframe.proxy.listeners import ENV_UNIX_FDS, encode_unix_fds

#: Environment a worker runs with.
ENV_INDEX = "MCPFRAME_WORKER_INDEX"
ENV_STATS_DIR = "MCPFRAME_STATS_DIR"
ENV_COUNT = "MCPFRAME_WORKER_COUNT"

#: Stats that describe one process rather than count something: never summed.
NOT_SUMMED = frozenset(
    {
        "pid", "uptime", "time", "version", "pointer_size", "max_connections",
        # each worker already reports its per-worker limit times the worker count
        "active_req_limit", "buffer_memory_limit",
    }
)  # fmt: skip
PUBLISH_INTERVAL = 0.5


def worker_index() -> int | None:
    value = os.environ.get(ENV_INDEX)
    return int(value) if value is not None else None


def worker_count() -> int:
    """How many workers share the process-wide limits (1 without --workers)."""
    return int(os.environ.get(ENV_COUNT, "1"))


class StatsBoard:
    """Per-worker stats files: publish our own, sum everyone's."""

    def __init__(self, directory: str, index: int) -> None:
        self.dir = Path(directory)
        self.index = index
        self.path = self.dir / f"worker-{index}.json"

    def publish(self, sections: dict[str, object]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ts": time.time(), "pid": os.getpid(), **sections}))
        os.replace(tmp, self.path)

    def published(self, section: str) -> list[tuple[int, int, object]]:
        """``(index, pid, section data)`` of every other worker that published lately."""
        out: list[tuple[int, int, object]] = []
        now = time.time()
        for path in self.dir.glob("worker-*.json"):
            if path == self.path:
                continue
            try:
                data = json.loads(path.read_text())
                index = int(path.stem.rpartition("-")[2])
            except (OSError, ValueError):
                continue
            if now - float(data.get("ts", 0)) > 10 * PUBLISH_INTERVAL + 5:
                continue  # a worker that died and was not replaced
            if section in data:
                out.append((index, int(data.get("pid", 0)), data[section]))
        return out

    def others(self, section: str) -> list[list[tuple[str, object]]]:
        return [
            [(str(k), v) for k, v in lines]  # type: ignore[attr-defined]
            for _, _, lines in self.published(section)
        ]

    def total(self, section: str, own: list[tuple[str, object]]) -> list[tuple[str, object]]:
        """``own`` with every counter replaced by its sum over all live workers."""
        sums: dict[str, object] = dict(own)
        for lines in self.others(section):
            for name, value in lines:
                if name in NOT_SUMMED or name not in sums:
                    continue
                mine = sums[name]
                if isinstance(mine, int) and isinstance(value, int):
                    sums[name] = mine + value
                elif isinstance(mine, (int, float, str)) and isinstance(value, (int, float, str)):
                    with contextlib.suppress(ValueError):
                        sums[name] = f"{float(mine) + float(value):.6f}"
        return [(name, sums[name]) for name, _ in own]


def probe_listen(addrs: Iterable[tuple[str, int]]) -> None:
    """Fail early, with the usual error, when a port is taken by something else."""
    for host, port in addrs:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind((host, port))


class Supervisor:
    """Starts, watches and signals the worker processes."""

    def __init__(
        self,
        count: int,
        argv: list[str],
        validate: Callable[[], str | None],
        log: Callable[[str], None],
        drain_timeout: float,
        unix_fds: dict[str, int] | None = None,
    ) -> None:
        self.count = count
        #: unix listeners bound here, by path: each worker inherits the descriptors.
        self.unix_fds = dict(unix_fds or {})
        self.argv = argv
        self.validate = validate
        self.log = log
        self.drain_timeout = drain_timeout
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started_at: dict[int, float] = {}
        self.stats_dir = tempfile.mkdtemp(prefix="mcpframe-stats-")
        self.stopping = False
        self.reload_requested = False

    def _spawn(self, index: int) -> None:
        env = {
            **os.environ,
            ENV_INDEX: str(index),
            ENV_STATS_DIR: self.stats_dir,
            ENV_COUNT: str(self.count),
        }
        if self.unix_fds:
            env[ENV_UNIX_FDS] = encode_unix_fds(self.unix_fds)
        self.procs[index] = subprocess.Popen(
            self.argv, env=env, pass_fds=tuple(self.unix_fds.values())
        )
        self.started_at[index] = time.monotonic()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload_requested = True
        else:
            self.stopping = True

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        try:
            for i in range(self.count):
                self._spawn(i)
            return self._watch()
        finally:
            self._shutdown()
            shutil.rmtree(self.stats_dir, ignore_errors=True)

    def _watch(self) -> int:
        while not self.stopping:
            if self.reload_requested:
                self.reload_requested = False
                error = self.validate()
                if error is not None:
                    self.log(f"reload refused, workers keep the old config: {error}")
                else:
                    for proc in self.procs.values():
                        with contextlib.suppress(ProcessLookupError):
                            proc.send_signal(signal.SIGHUP)
            for index, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None or self.stopping:
                    continue
                lived = time.monotonic() - self.started_at[index]
                if (
                    lived < 1.0
                    and code != 0
                    and all(p.poll() is not None for p in self.procs.values())
                ):
                    self.log(f"every worker failed to start (last exit code {code})")
                    return 1
                self.log(f"worker {index} (pid {proc.pid}) exited with code {code}; restarting it")
                if lived < 1.0:
                    time.sleep(0.5)  # do not spin on a worker that dies at once
                self._spawn(index)
            time.sleep(0.05)
        return 0

    def _shutdown(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.drain_timeout + 5
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def worker_argv() -> list[str]:
    """The command that runs one worker: this same ``serve`` invocation."""
    return [sys.executable, "-m", "mcpframe", *sys.argv[1:]]
