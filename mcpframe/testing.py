"""A pytest plugin for mcpframe plugin authors, registered through the ``pytest11`` entry point.

Installing mcpframe makes these available in any test suite, with nothing to configure:

Fixtures:
    ``mcpframe_plugin_manager``: a fresh :class:`~mcpframe.plugins.PluginManager` with every
    installed plugin loaded (yours included, once your package is installed, e.g. with
    ``pip install -e .``), honouring the ``MCPFRAME_*`` switches.
    ``mcpframe_registry``: the :class:`~mcpframe.registry.Registry` built from it.

Contract checks, plain functions raising :exc:`AssertionError` with an explanation; the
built-ins pass the same checks::

    from mcpframe.testing import check_distribution, check_hasher, check_key_filter

    def test_my_dist(mcpframe_registry):
        check_distribution(mcpframe_registry.distributions["modulo"], consistent=False)

    def test_my_hasher(mcpframe_registry):
        check_hasher(mcpframe_registry.hashers["crc32"])

    def test_my_filter(mcpframe_registry):
        check_key_filter(mcpframe_registry.key_filters["prefix"], b"::")

    def test_my_route_handler(mcpframe_registry):
        check_route_handler(mcpframe_registry.route_handlers["shadow"],
                            {"child": "main", "child_shadow": "canary"})

Real servers for wire tests, on 127.0.0.1 and free ports, stopped after the test: the fixture
``mcpframe_servers`` (:class:`Servers`: ``.memcached()``, ``.mcpframe(*serve_args)``,
``.start(cmd, port)``) and :class:`WireClient`, one client connection::

    def test_my_route_on_the_wire(mcpframe_servers, tmp_path):
        backend = mcpframe_servers.memcached()
        config = tmp_path / "routes.lua"
        config.write_text(f'pools{{ main = {{ backends = {{ "127.0.0.1:{backend}" }} }} }}\n'
                          "routes{ default = route_mine{ child = 'main' } }\n")
        port = mcpframe_servers.mcpframe("--routelib", str(config))
        with WireClient(port) as client:
            assert client.ask(b"set a 0 0 1\r\nx\r\n") == b"STORED\r\n"
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import pytest

from mcpframe.plugins import PluginManager, create_plugin_manager
from mcpframe.registry import Registry, build_registry
from mcpframe.types import BackendInfo, Distribution, Hasher, KeyFilter, RouteHandler

if TYPE_CHECKING:
    from mcpframe.config import LoadedConfig

__all__ = [
    "ServerProcess",
    "Servers",
    "WireClient",
    "check_distribution",
    "check_hasher",
    "check_key_filter",
    "check_route_handler",
    "free_ports",
    "mcpframe_load_config",
    "mcpframe_plugin_manager",
    "mcpframe_registry",
    "mcpframe_servers",
    "require_binary",
    "sample_keys",
    "sample_servers",
]


_U64 = 1 << 64


def _expect(condition: bool, message: str) -> None:
    # Not `assert`: these checks must hold under `python -O` and outside pytest as well.
    if not condition:
        raise AssertionError(message)


def sample_keys(count: int = 2000, seed: int = 20) -> list[bytes]:
    """Reproducible memcached-looking keys: short, long (250 bytes), binary-safe, and empty."""
    rng = random.Random(seed)
    keys = [b"", b"a", b"foo", b"/test/0", b"x" * 250]
    while len(keys) < count:
        length = rng.randrange(1, 64)
        keys.append(bytes(rng.randrange(33, 127) for _ in range(length)))
    return keys[:count]


def sample_servers(count: int, port: str = "11211") -> list[BackendInfo]:
    """``count`` distinct backends, ``10.0.<i // 250>.<i % 250 + 1>:port``, ids 1..count."""
    return [
        BackendInfo(i + 1, f"10.0.{i // 250}.{i % 250 + 1}", port, f"b{i + 1}")
        for i in range(count)
    ]


def _hashes(count: int, seed: int = 64) -> list[int]:
    rng = random.Random(seed)
    edges = [0, 1, 0xFFFFFFFF, 1 << 32, _U64 - 1, 1 << 63]
    return edges + [rng.getrandbits(64) for _ in range(count - len(edges))]


def check_hasher(hasher: Hasher, *, seeds: Sequence[int] = (0, 1, 0xFFFFFFFF, _U64 - 1)) -> None:
    """Check the :class:`~mcpframe.types.Hasher` contract.

    * ``hash(key, seed)`` returns an int in ``[0, 2**64)`` for keys from empty to 250 bytes and
      seeds across the 64-bit range (the pool seed is a 64-bit value);
    * the same inputs give the same output;
    * it spreads keys, in the low 32 bits too (ring distributions use only those): at least
      99% of 2000 distinct keys get distinct low halves.
    """
    keys = sample_keys()
    for seed in seeds:
        values = []
        for key in keys:
            h = hasher.hash(key, seed)
            _expect(
                type(h) is int and 0 <= h < _U64,
                f"hasher {hasher.name!r}: hash({key!r}, {seed}) = {h!r}, "
                f"expected an int in [0, 2**64)",
            )
            values.append(h)
        again = [hasher.hash(key, seed) for key in keys]
        _expect(values == again, f"hasher {hasher.name!r} is not deterministic (seed {seed})")
        low = {h & 0xFFFFFFFF for h in values}
        _expect(
            len(low) >= 0.99 * len(set(keys)),
            f"hasher {hasher.name!r}: only {len(low)} distinct low 32-bit values for "
            f"{len(set(keys))} keys (seed {seed})",
        )


def check_distribution(
    dist: Distribution,
    *,
    max_servers: int = 12,
    options: Mapping[str, object] | None = None,
    consistent: bool = True,
    balanced: bool = True,
) -> None:
    """Check the :class:`~mcpframe.types.Distribution` contract for pools of 0..max_servers.

    * ``build`` accepts an empty pool, and its selector does not raise (any index it returns
      is out of range, which the caller reports);
    * for n = 1..max_servers every selector returns an int in ``range(n)`` for 2000 hashes,
      including 0 and 2**64-1, and two builds with the same servers agree;
    * ``balanced``: every backend gets at least a quarter of its fair share of keys;
    * ``consistent``: adding a backend at the end only moves keys *to* the new backend, and
      moves at most twice the ideal fraction 1/(n+1). Jump hash and ring hash promise this;
      a modulo distribution does not (pass ``consistent=False``).
    """
    opts: Mapping[str, object] = options or {}
    hashes = _hashes(2000)
    empty = dist.build([], opts)
    for h in hashes[:10]:
        i = empty(h)
        _expect(type(i) is int, f"dist {dist.name!r}: empty pool selector returned {i!r}")
    previous: list[int] | None = None
    for n in range(1, max_servers + 1):
        servers = sample_servers(n)
        select = dist.build(servers, opts)
        placed = [select(h) for h in hashes]
        bad = [
            (h, i)
            for h, i in zip(hashes, placed, strict=True)
            if type(i) is not int or not 0 <= i < n
        ]
        _expect(not bad, f"dist {dist.name!r}, {n} servers: out-of-range results {bad[:5]}")
        rebuilt = dist.build(servers, opts)
        again = [rebuilt(h) for h in hashes]
        _expect(placed == again, f"dist {dist.name!r}, {n} servers: not deterministic")
        if balanced:
            counts = [placed.count(i) for i in range(n)]
            floor = len(hashes) / n / 4
            _expect(
                min(counts) >= floor,
                f"dist {dist.name!r}, {n} servers: unbalanced, keys per server {counts}",
            )
        if consistent and previous is not None:
            moved = [(old, new) for old, new in zip(previous, placed, strict=True) if old != new]
            wrong = [m for m in moved if m[1] != n - 1]
            _expect(
                not wrong,
                f"dist {dist.name!r}: growing from {n - 1} to {n} servers moved keys between "
                f"old servers {wrong[:5]}",
            )
            limit = 2 * len(hashes) / n
            _expect(
                len(moved) <= limit,
                f"dist {dist.name!r}: growing from {n - 1} to {n} servers moved {len(moved)} "
                f"of {len(hashes)} keys (ideal {len(hashes) / n:.0f})",
            )
        previous = placed


def check_key_filter(filt: KeyFilter, filter_conf: bytes = b"{}") -> None:
    """Check the :class:`~mcpframe.types.KeyFilter` contract with one ``filter_conf``.

    * ``build(filter_conf)`` returns a callable; the filter returns bytes for every key,
      including the empty key, keys made only of conf bytes, and 250-byte keys;
    * the same key gives the same bytes;
    * a key holding none of the conf bytes comes back unchanged.
    """
    apply = filt.build(filter_conf)
    _expect(callable(apply), f"filter {filt.name!r}: build() returned {apply!r}")
    conf_bytes = set(filter_conf)
    keys = [*sample_keys(500), filter_conf, filter_conf * 2, b"a" + filter_conf + b"b"]
    keys += [bytes([c]) for c in conf_bytes] + [b"k" + filter_conf * 50]
    for key in keys:
        out = apply(key)
        _expect(
            type(out) is bytes,
            f"filter {filt.name!r} (conf {filter_conf!r}): {key!r} -> {out!r}, expected bytes",
        )
        _expect(out == apply(key), f"filter {filt.name!r}: not deterministic for {key!r}")
        if not conf_bytes.intersection(key):
            _expect(
                out == key,
                f"filter {filt.name!r} (conf {filter_conf!r}) changed {key!r}, which holds "
                f"none of the conf bytes, to {out!r}",
            )


# Runs a handler's chunk in an environment of its own, so that what it defines is exactly the
# keys of that environment; stand-ins for routelib's ctx (config and worker side) and fgen.
_ROUTE_HARNESS = b"""
local source, chunkname = ...
local env = setmetatable({}, { __index = _G })
local chunk, err = load(source, chunkname, "t", env)
if chunk == nil then return nil, err end
local ok, msg = pcall(chunk)
if not ok then return nil, tostring(msg) end
local defined = {}
for k in pairs(env) do defined[#defined + 1] = tostring(k) end
table.sort(defined)
return env, defined
"""
_ROUTE_CTX = b"""
local label, cmd, pools, zone = ...
local ids, next_id = {}, 0
return {
    label = function(self) return label end,
    cmd = function(self) return cmd end,
    pool = function(self, name) if pools[name] then return { name = name } end end,
    local_zone = function(self) return zone end,
    get_stats_id = function(self, name)
        if ids[name] == nil then next_id = next_id + 1; ids[name] = next_id end
        return ids[name]
    end,
    get_child = function(self, name) return name end,
}
"""
_ROUTE_FGEN = b"""
local fgen = { handles = 0, readies = {} }
function fgen:new_handle(child)
    if child == nil then error("new_handle: nil child", 2) end
    self.handles = self.handles + 1
    return self.handles
end
function fgen:ready(opts) self.readies[#self.readies + 1] = opts end
return fgen
"""


def _to_lua(lua: object, value: object) -> object:
    """Python args as Lua sees them from a config: str -> string, list -> array, dict -> table."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, Mapping):
        items = {_to_lua(lua, k): _to_lua(lua, v) for k, v in value.items()}
        return lua.table_from(items)  # type: ignore[attr-defined]
    if isinstance(value, (list, tuple)):
        return lua.table_from([_to_lua(lua, v) for v in value])  # type: ignore[attr-defined]
    return value


def _from_lua(value: object) -> object:
    """A Lua value as plain Python: tables become dicts (keys 1..n stay ints), strings str."""
    from lupa import lua54

    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if lua54.lua_type(value) == "table":
        return {_from_lua(k): _from_lua(v) for k, v in value.items()}  # type: ignore[attr-defined]
    if lua54.lua_type(value) is not None:
        return f"<{lua54.lua_type(value)}>"
    return value


def check_route_handler(
    handler: RouteHandler,
    args: Mapping[str, object] | None = None,
    *,
    refused: Sequence[Mapping[str, object]] = (),
    label: str = "test",
    pools: Sequence[str] = (),
    start: bool = True,
) -> dict[object, object]:
    """Check the :class:`~mcpframe.types.RouteHandler` contract, without serving anything.

    * the source compiles under its chunk name (``chunkname``, else ``route_<name>``);
    * running it defines exactly the globals ``route_<name>_conf`` and ``route_<name>_start``,
      both functions, and nothing else (helpers must be ``local``: every handler shares the
      VM's globals);
    * ``route_<name>_conf(args, ctx)`` raises (``error(...)``) for every table in ``refused``;
    * when ``args`` is given (the table a config would write as ``route_<name>{...}``),
      ``route_<name>_conf(args, ctx)`` accepts it and returns a table; and, with ``start``,
      ``route_<name>_start`` run on that table with a stand-in function generator calls
      ``fgen:ready{...}`` exactly once with a function ``f``. Child names stay strings (the
      route library would pass pools) and ``mcp`` holds only the constants; pass
      ``start=False`` if the start function needs more of the worker VM.

    ``ctx`` answers ``label()`` with ``label``, ``cmd()`` with ``mcp.CMD_ANY_STORAGE``,
    ``pool(name)`` for the names in ``pools``, ``get_stats_id(name)`` with 1, 2, ...

    Returns what ``_conf`` returned for ``args``, as Python (tables as dicts, strings as str),
    for further asserts; ``{}`` without ``args``.
    """
    from lupa import lua54

    from mcpframe.lua.runtime import CONSTANTS, first_line, new_runtime

    name = handler.name
    chunk = handler.chunkname or f"route_{name}"
    what = f"route handler {name!r} ({chunk})"
    _expect(isinstance(handler.lua, str), f"{what}: lua is {type(handler.lua).__name__}, not str")
    lua = new_runtime()
    lua.globals().mcp = lua.table_from({k.encode(): v for k, v in CONSTANTS.items()})
    env, defined = lua.execute(_ROUTE_HARNESS, handler.lua.encode(), ("@" + chunk).encode())
    _expect(env is not None, f"{what} does not load: {first_line(defined)}")
    names = [n.decode() for n in defined.values()]
    expected = [f"route_{name}_conf", f"route_{name}_start"]
    for fn in expected:
        _expect(
            lua54.lua_type(env[fn.encode()]) == "function",
            f"{what} does not define the function {fn} (it defines: {', '.join(names) or 'none'})",
        )
    extra = sorted(set(names) - set(expected))
    _expect(not extra, f"{what} defines other globals: {', '.join(extra)} (make them local)")
    conf, start_fn = (env[fn.encode()] for fn in expected)

    def ctx() -> object:
        pool_table = lua.table_from({p.encode(): True for p in pools})
        return lua.execute(_ROUTE_CTX, label.encode(), CONSTANTS["CMD_ANY_STORAGE"], pool_table)

    def configure(given: Mapping[str, object]) -> object:
        return conf(_to_lua(lua, dict(given)), ctx())

    for bad in refused:
        try:
            configure(bad)
        except lua54.LuaError:
            continue
        raise AssertionError(f"{what}: route_{name}_conf accepted {dict(bad)!r}")
    if args is None:
        return {}
    try:
        result = configure(args)
    except lua54.LuaError as exc:
        raise AssertionError(
            f"{what}: route_{name}_conf({dict(args)!r}) raised {first_line(exc.args[0])}"
        ) from None
    _expect(
        lua54.lua_type(result) == "table",
        f"{what}: route_{name}_conf returned {_from_lua(result)!r}, expected a table",
    )
    if start:
        fgen = lua.execute(_ROUTE_FGEN)
        try:
            start_fn(result, ctx(), fgen)
        except lua54.LuaError as exc:
            raise AssertionError(
                f"{what}: route_{name}_start raised {first_line(exc.args[0])}"
            ) from None
        readies = list(fgen.readies.values())
        _expect(
            len(readies) == 1, f"{what}: route_{name}_start called fgen:ready {len(readies)} times"
        )
        _expect(
            lua54.lua_type(readies[0]) == "table" and lua54.lua_type(readies[0].f) == "function",
            f"{what}: route_{name}_start called fgen:ready without a function f",
        )
    converted = _from_lua(result)
    assert isinstance(converted, dict)
    return converted


@pytest.fixture
def mcpframe_plugin_manager() -> PluginManager:
    """A fresh plugin manager with every installed plugin loaded (not the cached one)."""
    return create_plugin_manager()


@pytest.fixture
def mcpframe_registry(mcpframe_plugin_manager: PluginManager) -> Registry:
    """The registry of ``mcpframe_plugin_manager``: ``.distributions``, ``.hashers`` ..."""
    return build_registry(mcpframe_plugin_manager)


@pytest.fixture
def mcpframe_load_config(
    mcpframe_registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], LoadedConfig]:
    """Load Lua config text the way ``mcpframe serve`` does, without serving.

    Returns a function ``load(source) -> LoadedConfig``; ``loaded.named_pools()["main"]``
    is the pool the config returned as ``main``, and its ``select(key)`` gives the 0-based
    backend index a key lands on, through the same filter, hasher and dist as ``serve``::

        def test_my_dist_in_a_pool(mcpframe_load_config):
            loaded = mcpframe_load_config('''
                function mcp_config_pools()
                    local b = { mcp.backend("a", "127.0.0.1", 11211),
                                mcp.backend("b", "127.0.0.1", 11212) }
                    return { main = mcp.pool(b, { dist = mcp.dist_modulo }) }
                end
                function mcp_config_routes(p) end
            ''')
            assert loaded.named_pools()["main"].select(b"foo") in (0, 1)
    """
    from mcpframe.proxy.app import load_config

    directory = tmp_path_factory.mktemp("mcpframe-config")
    count = 0

    def load(source: str) -> LoadedConfig:
        nonlocal count
        count += 1
        path = directory / f"config{count}.lua"
        path.write_text(textwrap.dedent(source))
        return load_config(path, mcpframe_registry)

    return load


# -- real servers for wire tests ------------------------------------------------------------


def free_ports(count: int = 1) -> list[int]:
    """``count`` distinct free loopback ports (held open together while they are chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def require_binary(name: str, *fallbacks: str) -> str:
    """The path of a server binary on PATH or at one of ``fallbacks``; without it the test is
    skipped, or fails when ``MCPFRAME_REQUIRE_SERVERS=1`` (mcpframe's own suite sets it)."""
    found = shutil.which(name) or next((f for f in fallbacks if os.access(f, os.X_OK)), None)
    if found is None:
        message = f"{name} is not installed"
        if os.environ.get("MCPFRAME_REQUIRE_SERVERS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


class ServerProcess:
    """A server started for a test, listening on ``127.0.0.1:port`` once constructed.

    Its stderr goes to a temporary file (a pipe nobody reads can fill up and stall it); a server
    that exits or does not listen within ``timeout`` seconds raises with that stderr.
    """

    def __init__(self, cmd: Sequence[str], port: int, timeout: float = 10.0) -> None:
        self.port = port
        self._stderr = ""
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=self._errors)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{cmd!r} exited with {self.proc.returncode}: {self.stderr}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"{cmd!r}: nothing listening on 127.0.0.1:{port}: {self.stderr}")

    @property
    def stderr(self) -> str:
        """What the server wrote to stderr so far (kept after :meth:`stop`)."""
        if not self._errors.closed:
            self._errors.seek(0)
            self._stderr = self._errors.read().decode(errors="replace")
        return self._stderr

    def terminate(self) -> None:
        """Ask the server to stop (SIGTERM), without waiting."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after 5 s) and wait for it."""
        self.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if not self._errors.closed:
            _ = self.stderr
            self._errors.close()


def _listen_port(args: Sequence[str]) -> int | None:
    """The port of the last ``--listen HOST:PORT[:TAG]`` in ``args`` (bound last), if any."""
    for flag, value in zip(reversed(args[:-1]), reversed(args[1:]), strict=True):
        if flag == "--listen" and value.count(":") in (1, 2):
            return int(value.split(":")[1])
    return None


class Servers:
    """Starts real servers for one test and stops them all after it (the ``mcpframe_servers``
    fixture). Every starter returns the port the server listens on."""

    def __init__(self) -> None:
        self.started: list[ServerProcess] = []

    def start(self, cmd: Sequence[str], port: int) -> ServerProcess:
        """Run ``cmd``, wait until it listens on ``127.0.0.1:port``, stop it after the test."""
        server = ServerProcess(cmd, port)
        self.started.append(server)
        return server

    def memcached(self, *args: str) -> int:
        """A memcached (``-t 1``, TCP only) with ``args`` added; its port."""
        binary = require_binary("memcached", "/usr/bin/memcached")
        port = free_ports()[0]
        user = ("-u", "root") if os.geteuid() == 0 else ()
        cmd = [binary, "-U", "0", "-l", "127.0.0.1", "-p", str(port), "-t", "1", *user, *args]
        return self.start(cmd, port).port

    def mcpframe(self, *args: str) -> int:
        """``mcpframe serve ARGS`` with this Python; its port. Without a ``--listen`` in
        ``args`` it listens on a free port; with some, the last one is waited for."""
        port = _listen_port(args)
        if port is None:
            port = free_ports()[0]
            args = (*args, "--listen", f"127.0.0.1:{port}")
        return self.start([sys.executable, "-m", "mcpframe", "serve", *args], port).port

    def stop_all(self) -> None:
        """Signal every server first, then wait: they shut down in parallel."""
        for server in self.started:
            server.terminate()
        for server in self.started:
            server.stop()
        self.started.clear()


@pytest.fixture
def mcpframe_servers() -> Iterator[Servers]:
    """Start memcached and mcpframe (or any server) on 127.0.0.1 for this test; see
    :class:`Servers`. Everything started is stopped when the test ends."""
    servers = Servers()
    try:
        yield servers
    finally:
        servers.stop_all()


class WireClient:
    """One client connection to ``127.0.0.1:port`` sending raw protocol bytes."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self._buf = b""

    def ask(self, request: bytes, ends: bytes = b"\r\n", count: int = 1) -> bytes:
        """Send ``request``; read until the reply holds ``count`` times ``ends`` and ends a line."""
        self.sock.sendall(request)
        data, self._buf = self._buf, b""
        while data.count(ends) < count or not data.endswith(b"\r\n"):
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError(f"closed by the server after {data!r}")
            data += chunk
        return data

    def lines(self, request: bytes, count: int) -> list[bytes]:
        """Send ``request``; the next ``count`` reply lines, without their line ends."""
        self.sock.sendall(request)
        while self._buf.count(b"\r\n") < count:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError(f"closed by the server after {self._buf!r}")
            self._buf += chunk
        *lines, self._buf = self._buf.split(b"\r\n", count)
        return lines

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
