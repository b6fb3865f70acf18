"""Real servers for the wire tests: memcached backends and mcpframe serving a route-library
config, on 127.0.0.1, plus a raw client. Without memcached the tests are skipped, unless
``MCPFRAME_REQUIRE_SERVERS=1`` (mcpframe's own suite sets it), in which case they fail."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import pytest

ROUTELIB_REASON = "needs the route library (branch routelib)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A server whose stderr goes to a file (a pipe nobody reads can fill up)."""

    def __init__(self, cmd: list[str], port: int) -> None:
        self.port = port
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.errors)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.errors.seek(0)
                err = self.errors.read().decode(errors="replace")
                raise RuntimeError(f"{cmd!r} exited with {self.proc.returncode}: {err}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return
            time.sleep(0.02)
        raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errors.close()


def memcached() -> Process:
    binary = shutil.which("memcached") or "/usr/bin/memcached"
    if not os.access(binary, os.X_OK):
        if os.environ.get("MCPFRAME_REQUIRE_SERVERS") == "1":
            pytest.fail("memcached is not installed")
        pytest.skip("memcached is not installed")
    port = free_port()
    user = ["-u", "root"] if os.geteuid() == 0 else []
    return Process([binary, "-U", "0", "-l", "127.0.0.1", "-p", str(port), "-t", "1", *user], port)


@functools.cache
def _has_routelib_option() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
    )
    return "--routelib" in done.stdout


# Two switches for checks by hand, which the suite neither sets nor needs (it ships no
# memcached file): MCPFRAME_REFERENCE_PROXY=<memcached-1.6.45 built with the proxy> runs the
# same tests on memcached's own route library, the handler files loaded after it as memcached
# loads custom handlers; MCPFRAME_STOCK_ROUTELIB=<memcached's routelib.lua> runs that file
# on mcpframe as an ordinary config, the same way (what these tests did before mcpframe had
# --routelib).


def _handler_files(directory: Path, keep_debug: bool) -> list[str]:
    package = resources.files("mcpframe_routes_extra")
    register = directory / "register.lua"
    # The stock routelib.lua replaces the global `debug` table with a function; mcpframe's
    # config VM still needs the table, so it is kept aside before and restored after.
    restore = "debug = __keep_debug\n" if keep_debug else ""
    register.write_text(restore + 'register_route_handlers({ "shadow", "warmup" })\n')
    return [*(str(package / f"route_{n}.lua") for n in ("shadow", "warmup")), str(register)]


def _by_hand_command(config: Path, port: int) -> list[str]:
    if reference := os.environ.get("MCPFRAME_REFERENCE_PROXY"):
        files = ["routelib", *_handler_files(config.parent, keep_debug=False)]
        user = ["-u", "root"] if os.geteuid() == 0 else []
        option = f"proxy_config={':'.join(files)},proxy_arg={config}"
        return [reference, "-U", "0", "-l", "127.0.0.1", "-p", str(port), "-t", "1", *user,
                "-o", option]  # fmt: skip
    keep = config.with_name("keep_debug.lua")
    keep.write_text("__keep_debug = debug\n")
    stock = os.environ["MCPFRAME_STOCK_ROUTELIB"]
    files = [str(keep), stock, *_handler_files(config.parent, keep_debug=True)]
    listen = ["--listen", f"127.0.0.1:{port}"]
    serve = [sys.executable, "-m", "mcpframe", "serve"]
    return [*serve, "--config", ":".join(files), "--start-arg", str(config), *listen]


def mcpframe_routelib(config_text: str, directory: Path) -> Process:
    """``mcpframe serve --routelib FILE`` on a route-library config written to ``directory``."""
    config = directory / "routes.lua"
    config.write_text(config_text)
    port = free_port()
    if os.environ.get("MCPFRAME_REFERENCE_PROXY") or os.environ.get("MCPFRAME_STOCK_ROUTELIB"):
        return Process(_by_hand_command(config, port), port)
    if not _has_routelib_option():
        pytest.skip(ROUTELIB_REASON)
    listen = ["--listen", f"127.0.0.1:{port}"]
    return Process(
        [sys.executable, "-m", "mcpframe", "serve", "--routelib", str(config), *listen], port
    )


class Client:
    """One connection; ``ask`` sends a batch and reads until the reply ends as expected."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 5)

    def ask(self, request: bytes, ends: bytes = b"\r\n", count: int = 1) -> bytes:
        self.sock.sendall(request)
        data = b""
        while data.count(ends) < count or not data.endswith(b"\r\n"):
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError(f"closed after {data!r}")
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


def ask(port: int, request: bytes, ends: bytes = b"\r\n", count: int = 1) -> bytes:
    """One request batch on a fresh connection."""
    client = Client(port)
    try:
        return client.ask(request, ends, count)
    finally:
        client.close()
