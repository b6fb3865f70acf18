"""In-process cost of mcpframe's request path, without the kernel: CPU microseconds per op.

The socket benchmark (bench/run.py) measures what users see, but on a 2-core machine its
figures move by +-7 % from run to run, too much to judge a change of a few percent. This
script runs the same code path (client parse, route, Lua, placement, backend queue and
reply parsing, reply write) with the sockets taken out: mcpframe is started in-process with
a routes file, real client and backend connections are made (two real memcached backends),
then every transport is replaced by one that records writes. The loop feeds each of
``--conns`` clients one request per round (90 % get, 10 % set, 32-byte keys, 100-byte
values, as bench/run.py), lets the loop turn, answers every request the backends were sent
(hits for gets, STORED for sets) and lets it turn again. It prints the CPU time
(time.process_time) per key op (``--multiget 10``: 10-key gets, each counting 10), median of
``--repeat`` runs; the kernel's share (about half of the real cost) is absent. ``--metrics``
records what ``serve --metrics`` records (latency histograms).

    .venv/bin/python bench/inproc.py --ops 200000 --conns 32

``--binary``: the clients speak memcached's binary protocol (get and set packets, as memcaslap
``-B`` sends), which mcpframe translates to meta requests and back; the backends answer the
meta requests.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import free_port, wait_port

ROUTES = """
function mcp_config_pools()
  local b1 = mcp.backend("b1", "127.0.0.1", %d)
  local b2 = mcp.backend("b2", "127.0.0.1", %d)
  return mcp.pool({b1, b2})
end
function mcp_config_routes(p)
  mcp.attach(mcp.CMD_ANY_STORAGE, %s)
end
"""
#: ``--routelib HANDLER``: a route library config (docs/routelib.md) with one tree: ``direct``
#: (a default route_direct alone), ``router`` (the same behind a prefix router whose map the
#: keys miss), ``failover``, ``allfastest`` and ``split`` (two pools on the same two backends,
#: both healthy: failover asks the first, allfastest both, split both and answers with A's).
ROUTELIB = """
pools{
  main = { backends = { "127.0.0.1:%d b1", "127.0.0.1:%d b2" } },
  alt = { backends = { "127.0.0.1:%d b1", "127.0.0.1:%d b2" } },
}
routes{ %s }
"""
ROUTELIB_TREES = {
    "direct": 'default = route_direct{ child = "main" }',
    "router": 'conf = { mode = "prefix", stop = "/" }, map = { x = route_null{} }, '
    'default = route_direct{ child = "main" }',
    "failover": 'default = route_failover{ children = { "main", "alt" } }',
    "allfastest": 'default = route_allfastest{ children = { "main", "alt" } }',
    "split": 'default = route_split{ child_a = "main", child_b = "alt" }',
}
#: The route: a pass-through route (run without Lua, multigets one get per backend), or with
#: ``--lua`` the same work written so that it runs in Lua for every request and key, or with
#: ``--v2`` an API v2 function generator doing the same.
PASSTHROUGH = "function(r) return p(r) end"
IN_LUA = "function(r) local res = p(r) return res end"
#: ``--v2``: the API v2 route that only forwards (a function generator with one handle).
#: With ``--lua`` too, the same written so that it runs in Lua.
FORWARD_V2 = """(function()
    local fg = mcp.funcgen_new()
    local h = fg:new_handle(p)
    fg:ready({ n = "forward", f = function(rctx)
        return function(r) %s end
    end })
    return fg
  end)()"""
V2_PASSTHROUGH = "return rctx:enqueue_and_wait(r, h)"
V2_IN_LUA = "local res = rctx:enqueue_and_wait(r, h) return res"
#: ``--retry``: issue 15's route with logic: ask again when the answer is not ok (v1 or v2).
RETRY = "function(r) local res = p(r) if res:ok() then return res end return p(r) end"
V2_RETRY = (
    "local res = rctx:enqueue_and_wait(r, h) if res:ok() then return res end "
    "return rctx:enqueue_and_wait(r, h)"
)


class Recorder:
    """A transport that keeps what is written (and says it is not closing)."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def answer(written: bytes, value: bytes) -> bytes:
    """A memcached's replies to the requests in ``written``."""
    out = []
    for line in written.split(b"\r\n"):
        if line.startswith(b"get "):
            for key in line[4:].split():
                out.append(b"VALUE %s 0 %d\r\n%s\r\n" % (key, len(value), value))
            out.append(b"END\r\n")
        elif line.startswith(b"set "):
            out.append(b"STORED\r\n")
        elif line.startswith(b"mg "):
            out.append(b"VA %d f0 c1\r\n%s\r\n" % (len(value), value))
        elif line.startswith(b"ms "):
            out.append(b"HD c1\r\n")
    return b"".join(out)


class Answers(dict[bytes, bytes]):
    """The simulated backends: each request line's reply (b"" for a data block), made by
    :func:`answer` the first time the line is seen and looked up after that.

    A memcached answers a get by looking the key up and sending the item it holds. Building
    every reply anew in Python (splitting it into lines, matching each against four
    commands, formatting each hit) cost about 0.5 us per backend request, a fifth of the
    figure for a pass-through route and twice that for a route that asks two backends: the
    simulated backend's work, not mcpframe's, counted in the CPU per op. Looked up, it is
    about 0.15 us."""

    def __init__(self, value: bytes) -> None:
        super().__init__()
        self.value = value

    def __missing__(self, line: bytes) -> bytes:
        reply = self[line] = answer(line + b"\r\n", self.value)
        return reply

    def reply(self, written: bytes) -> bytes:
        """A memcached's replies to the requests in ``written``."""
        return b"".join(map(self.__getitem__, written.split(b"\r\n")))


async def measure(args: argparse.Namespace, ports: list[int]) -> list[float]:
    from mcpframe.events import EventLog
    from mcpframe.proxy.app import build_server, tune_process
    from mcpframe.proxy.server import Listen, ServerOptions
    from mcpframe.registry import build_registry

    tmp = Path(tempfile.mkdtemp())
    routes = tmp / "routes.lua"
    if args.v2:
        body = V2_RETRY if args.retry else V2_IN_LUA if args.lua else V2_PASSTHROUGH
        route = FORWARD_V2 % body
    else:
        route = RETRY if args.retry else IN_LUA if args.lua else PASSTHROUGH
    routes.write_text(ROUTES % (ports[0], ports[1], route))
    port = free_port()
    options = ServerOptions(listens=[Listen("127.0.0.1", port)])
    if args.metrics:
        from mcpframe.proxy.metrics import record_latency

    config: Any = routes
    if args.routelib:
        from mcpframe.config import ConfigSource

        tree = ROUTELIB_TREES[args.routelib]
        routes.write_text(ROUTELIB % (ports[0], ports[1], ports[0], ports[1], tree))
        config = ConfigSource(("routelib",), str(routes))
    server = build_server(options, config, build_registry(), EventLog([]))
    if args.metrics:
        record_latency(server)  # what `serve --metrics` records, before anything connects
    tune_process()  # as `mcpframe serve` does
    task = asyncio.create_task(server.serve_forever())
    socks = []
    for _ in range(200):
        await asyncio.sleep(0.02)
        try:
            socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.conns)]
            break
        except OSError:
            continue
    # Let the connections arrive and the backends validate.
    from mcpframe.protocol.binary import (
        OP_GET,
        OP_SET,
        OP_VERSION,
        BinaryRequest,
        encode_request,
    )

    for s in socks:
        s.sendall(encode_request(BinaryRequest(OP_VERSION)) if args.binary else b"version\r\n")
    for _ in range(100):
        await asyncio.sleep(0.02)
        if len(server.connections) == args.conns and all(
            b.state_name == "ready" for b in server.backends.values()
        ):
            break
    conns = list(server.connections)
    backends = list(server.backends.values())
    assert len(conns) == args.conns and all(b.state_name == "ready" for b in backends)
    for c in conns:
        c.transport = Recorder()  # type: ignore[assignment]
    links = []
    for b in backends:
        b.link.transport = Recorder()  # type: ignore[union-attr]
        links.append(b.link)
    rng = random.Random(1)
    value = b"v" * 100
    replies = Answers(value).reply
    keys = [b"k%031d" % i for i in range(10000)]
    requests = []
    for _ in range(4096):
        key = rng.choice(keys)
        if args.binary:
            get = rng.random() < 0.9
            op = BinaryRequest(OP_GET, key) if get else BinaryRequest(OP_SET, key, value)
            requests.append((b"get" if get else b"") + encode_request(op))
            continue
        if rng.random() < 0.9:
            more = [rng.choice(keys) for _ in range(args.multiget - 1)]
            requests.append(b"get " + b" ".join([key, *more]) + b"\r\n")
        else:
            requests.append(b"set " + key + b" 0 0 100\r\n" + value + b"\r\n")
    # (binary requests carry a b"get" prefix here for the count below; it is not sent)
    packets = [r[3:] if args.binary and r.startswith(b"get") else r for r in requests]
    rounds = max(1, args.ops // args.conns)
    # Per key op, as memcaslap and bench/run.py count them (a 10-key get is 10). Counted
    # before the clock starts: counting inside the timed loop's figure cost 0.10 us per op.
    key_ops = sum(
        (args.multiget if requests[j & 4095].startswith(b"get") else 1)
        for j in range(rounds * args.conns)
    )
    results = []
    for _ in range(args.repeat):
        t0 = time.process_time()
        i = 0
        for _ in range(rounds):
            for c in conns:
                c.data_received(packets[i & 4095])
                i += 1
            await asyncio.sleep(0)
            for link in links:
                tr = link.transport
                if tr.out:
                    data = b"".join(tr.out)
                    tr.out.clear()
                    link.data_received(replies(data))
            await asyncio.sleep(0)
        results.append((time.process_time() - t0) / key_ops * 1e6)
        for c in conns:
            c.transport.out.clear()
    task.cancel()
    for s in socks:
        s.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", type=int, default=100_000)
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--multiget", type=int, default=1, help="keys per get")
    p.add_argument(
        "--routelib",
        choices=sorted(ROUTELIB_TREES),
        help="a route library config with this handler (see ROUTELIB_TREES)",
    )
    p.add_argument("--lua", action="store_true", help="a route that runs in Lua")
    p.add_argument("--binary", action="store_true", help="binary-protocol clients")
    p.add_argument("--metrics", action="store_true", help="record what --metrics records")
    p.add_argument("--v2", action="store_true", help="an API v2 route that only forwards")
    p.add_argument(
        "--retry", action="store_true",
        help="a route with logic: ask again when the answer is not ok (with --v2: in v2)",
    )  # fmt: skip
    args = p.parse_args()
    procs = []
    ports = []
    try:
        for _ in range(2):
            port = free_port()
            proc = subprocess.Popen(
                [shutil.which("memcached") or "/usr/bin/memcached", "-u", "root", "-l",
                 "127.0.0.1", "-p", str(port), "-t", "1"],
            )  # fmt: skip
            procs.append(proc)
            wait_port(port, proc)
            ports.append(port)
        import uvloop

        results = uvloop.run(measure(args, ports))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
    import mcpframe.proxy.router
    from mcpframe.native import compiled

    print(
        f"{statistics.median(results):.2f} us CPU per op (median of {len(results)}, "
        f"min {min(results):.2f}; {', '.join(f'{r:.2f}' for r in results)}); "
        f"compiled={compiled(mcpframe.proxy.router)}"
    )


if __name__ == "__main__":
    main()
