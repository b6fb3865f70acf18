"""mcpframe serving a route-library config for the wire tests, through mcpframe.testing's
real-server helpers (memcached backends come from its ``mcpframe_servers`` fixture)."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from mcpframe.testing import Servers, WireClient, free_ports

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


def mcpframe_routelib(servers: Servers, config_text: str, directory: Path) -> int:
    """``mcpframe serve --routelib FILE`` on a route-library config written to ``directory``;
    its port."""
    config = directory / "routes.lua"
    config.write_text(config_text)
    if os.environ.get("MCPFRAME_REFERENCE_PROXY") or os.environ.get("MCPFRAME_STOCK_ROUTELIB"):
        port = free_ports()[0]
        return servers.start(_by_hand_command(config, port), port).port
    return servers.mcpframe("--routelib", str(config))


def ask(port: int, request: bytes, ends: bytes = b"\r\n", count: int = 1) -> bytes:
    """One request batch on a fresh connection."""
    with WireClient(port) as client:
        return client.ask(request, ends, count)
