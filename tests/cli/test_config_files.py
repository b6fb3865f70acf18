"""Several config files loaded in order and the start argument (spec v2 1.7, 1.8), through
``serve``'s command line and the wire: ``--config`` repeated or as a ``:`` list,
``--start-arg`` seen as ``mcp.start_arg`` in both VMs, reload of every file, errors that name
the file and line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import ROOT, Client, Mcpframe, free_port, wait_port

# Defines only mcp_config_pools; what it returns tells the routes what the config VM saw.
POOLS = """
SEEN_BY_POOLS = LATER_GLOBAL
function mcp_config_pools()
    return { arg = mcp.start_arg, later = LATER_GLOBAL, version = VERSION or "v1" }
end
"""
# Defines mcp_config_routes; sees the first file's globals and may overwrite them.
ROUTES = """
LATER_GLOBAL = "set-by-b"
local first_saw = type(mcp_config_pools)
function mcp_config_routes(p)
    mcp.attach(mcp.CMD_MG, function(r)
        local a = mcp.start_arg
        local shown = a
        if type(a) == "table" then
            local keys = {}
            for k, v in pairs(a) do keys[#keys + 1] = k .. "=" .. tostring(v) end
            table.sort(keys)
            shown = table.concat(keys, ",")
        end
        return string.format("HD %s %s %s %s %s\\r\\n", tostring(shown), type(p.arg),
            tostring(p.later), first_saw, p.version)
    end)
end
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def mg(proxy: Mcpframe) -> bytes:
    c = Client(proxy.addr)
    try:
        c.send(b"mg foo\r\n")
        return c.readline()
    finally:
        c.close()


@pytest.mark.parametrize("spelling", ["colon", "repeated"])
def test_files_run_in_order_and_share_globals(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe], spelling: str
) -> None:
    a, b = write(tmp_path, "a.lua", POOLS), write(tmp_path, "b.lua", ROUTES)
    args = ["--config", f"{a}:{b}"] if spelling == "colon" else ["-c", a, "--config", b]
    proxy = mcpframe_factory(*args)
    # No --start-arg: false in both VMs. The config VM ran b.lua before mcp_config_pools,
    # so it saw b's global; b saw a's function.
    assert mg(proxy) == b"HD false boolean set-by-b function v1\r\n"


@pytest.mark.parametrize(
    ("arg", "shown", "kind"),
    [
        ("prod", "prod", "string"),
        ("/etc/mc/routes.lua", "/etc/mc/routes.lua", "string"),
        ("foo_bar:baz:x_1_2", "baz=true,foo=bar,x=1", "table"),
    ],
)
def test_start_arg_in_both_vms(
    tmp_path: Path,
    mcpframe_factory: Callable[..., Mcpframe],
    arg: str,
    shown: str,
    kind: str,
) -> None:
    a, b = write(tmp_path, "a.lua", POOLS), write(tmp_path, "b.lua", ROUTES)
    proxy = mcpframe_factory("--config", f"{a}:{b}", "--start-arg", arg)
    assert mg(proxy) == f"HD {shown} {kind} set-by-b function v1\r\n".encode()


def test_reload_runs_every_file_again(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    a, b = write(tmp_path, "a.lua", POOLS), write(tmp_path, "b.lua", ROUTES)
    pid_file = tmp_path / "pid"
    proxy = mcpframe_factory("--config", a, "--config", b, "--pid-file", str(pid_file))
    assert mg(proxy).endswith(b" v1\r\n")
    # Edit the second file only: the reload must run it again too, before mcp_config_pools.
    Path(b).write_text('VERSION = "v2"\n' + ROUTES)
    os.kill(int(pid_file.read_text()), signal.SIGHUP)
    deadline = time.monotonic() + 10
    while mg(proxy) != b"HD false boolean set-by-b function v2\r\n":
        assert time.monotonic() < deadline, "reload did not pick up the second file"
        time.sleep(0.05)


def test_reload_with_a_broken_second_file_keeps_the_old_config(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    a, b = write(tmp_path, "a.lua", POOLS), write(tmp_path, "b.lua", ROUTES)
    pid_file = tmp_path / "pid"
    proxy = mcpframe_factory("--config", f"{a}:{b}", "--pid-file", str(pid_file))
    before = mg(proxy)
    Path(b).write_text("\n\nlocal x = = 1\n")
    os.kill(int(pid_file.read_text()), signal.SIGHUP)
    c = Client(proxy.addr)
    deadline = time.monotonic() + 10
    while True:
        c.send(b"stats\r\n")
        stats = c.read_until(b"END\r\n")
        if b"STAT proxy_config_reload_fails 1\r\n" in stats:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    c.close()
    assert mg(proxy) == before
    _, err = proxy.stop()
    # The broken file and its line (Lua shortens a long path from the left, as in memcached).
    assert b"b.lua:3: unexpected symbol near '='" in err


def serve_fails(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--listen", "127.0.0.1:1", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_errors_name_the_file_and_line(tmp_path: Path) -> None:
    a = write(tmp_path, "a.lua", POOLS)
    b = write(tmp_path, "b.lua", "function mcp_config_routes() end\nerror('boom')\n")
    done = serve_fails("--config", f"{a}:{b}")
    assert done.returncode == 1
    assert "b.lua:2: boom" in done.stderr
    done = serve_fails("--config", a, "--config", str(tmp_path / "missing.lua"))
    assert done.returncode == 1
    assert f"config file not found: {tmp_path / 'missing.lua'}" in done.stderr
    # A file that defines no mcp_config_routes: every file ran, none defined it.
    done = serve_fails("--config", f"{a}:{a}")
    assert done.returncode == 1
    assert "missing 'mcp_config_routes' function" in done.stderr


def test_serve_takes_memcached_tag_spellings(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    routes = write(
        tmp_path,
        "r.lua",
        "function mcp_config_pools() return {} end\n"
        "function mcp_config_routes()\n"
        "  mcp.attach(mcp.CMD_MG, function(r) return 'HD none\\r\\n' end)\n"
        "  mcp.attach(mcp.CMD_MG, function(r) return 'HD a\\r\\n' end, 'a')\n"
        "  mcp.attach(mcp.CMD_MG, function(r) return 'HD bb\\r\\n' end, 'bb')\n"
        "end\n",
    )
    a_port, b_port = free_port(), free_port()
    proxy = mcpframe_factory(
        "--config",
        routes,
        "--listen",
        f"tag_a_:127.0.0.1:{a_port}",
        "--listen",
        f"tag[bb]:127.0.0.1:{b_port}",
    )
    wait_port(a_port, proxy.proc)
    wait_port(b_port, proxy.proc)
    assert mg(proxy) == b"HD none\r\n"
    for port, reply in ((a_port, b"HD a\r\n"), (b_port, b"HD bb\r\n")):
        c = Client(("127.0.0.1", port))
        c.send(b"mg foo\r\n")
        assert c.readline() == reply
        c.close()


SERVER_STATS = """
function mcp_config_pools()
    local general, settings = mcp.server_stats(), mcp.server_stats("settings")
    local ok, err = pcall(mcp.server_stats, "bogus")
    local items, classes = mcp.server_stats("items"), 0
    for class, fields in pairs(items) do
        if math.type(class) == "integer" and fields.number == "1" then classes = classes + 1 end
    end
    return {
        seen = table.concat({ type(general.pid), general.pid,
            general.proxy_config_reloads or "none", settings.maxbytes,
            tostring(ok), err, tostring(classes) }, " "),
    }
end
function mcp_config_routes(p)
    mcp.attach(mcp.CMD_MG, function(r) return "HD " .. p.seen .. "\\r\\n" end)
end
"""


def test_server_stats_from_the_config(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    config = write(tmp_path, "stats.lua", SERVER_STATS)
    pid_file = tmp_path / "pid"
    proxy = mcpframe_factory("--config", config, "--pid-file", str(pid_file))
    pid = proxy.proc.pid
    error = "unknown subcommand passed to server_stats"  # pcall: no caller line
    first = mg(proxy).decode()
    # At the first load: no proxy lines yet (no config was running), an empty cache.
    assert first.startswith(f"HD string {pid} none 67108864 false ")
    assert first.endswith(f"{error} 0\r\n")
    # An item in the internal cache (set is not routed), then a reload: the config reads
    # its slab class and the reload counter.
    c = Client(proxy.addr)
    c.send(b"set k 0 0 5\r\nhello\r\n")
    assert c.readline() == b"STORED\r\n"
    c.close()
    os.kill(int(pid_file.read_text()), signal.SIGHUP)
    deadline = time.monotonic() + 10
    while (line := mg(proxy).decode()) == first:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert line.startswith(f"HD string {pid} 1 67108864 false ")
    assert line.endswith(f"{error} 1\r\n")
