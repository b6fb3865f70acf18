"""The route library's language at load time, through the CLI: bad configs fail with the
file, line and handler named and nothing serves; handlers written in Lua next to the config;
zones from the environment or a file; backend strings; settings; memcached's command line;
reloads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.check.test_check_cli import check_json, run_check
from tests.helpers import ROOT, Client, Mcpframe, Memcached, free_port, wait_port
from tests.route_api.conftest import refused_port


def write(tmp_path: Path, text: str, name: str = "rl.lua") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


POOLS = f'pools{{ main = {{ backends = {{ "127.0.0.1:{refused_port()}" }} }} }}\n'

BAD = [
    # (config after POOLS, the line named, the message)
    ("routes{\n    default = route_bogus{ child = 'main' },\n}\n", 3,
     "unknown route handler: route_bogus (registered: allfastest, allsync, direct, failover, "
     "null, random, ratelim, split, ttl, zfailover)"),
    ("routes{ map = {\n    a = route_direct{ child = 'main' },\n"
     "    b = route_failover{ children = { 'main', 'nope' } },\n} }\n", 4,
     "route_failover: no pool matching: nope"),
    ("routes{ default = route_direct{ child = 'set_none_a' } }\n", 2,
     "route_direct: no pool set matching: set_none_a"),
    ("routes{ default = route_failover{ children = { 'main' }, failover_count = 0 } }\n", 2,
     "route_failover: option failover_count must be a whole number >= 1 (got 0)"),
    ("routes{ default = route_allfastest{ children = { 'main' }, wait = 'soon' } }\n", 2,
     "route_allfastest: option wait must be a number of seconds > 0 (got soon)"),
    ("routes{ default = route_direct{} }\n", 2, "route_direct: missing option child"),
    ("routes{ default = route_ttl{ child = 'main' } }\n", 2, "route_ttl: missing option ttl"),
    ("routes{ default = route_ratelim{ child = 'main', fillrate = 1 } }\n", 2,
     "route_ratelim: must specify limit to route_ratelim"),
    ("routes{ default = route_zfailover{ children = 'main' } }\n", 2,
     "route_zfailover: route_zfailover must have a local_zone defined"),
    ("routes{ map = { a = cmdmap{ get = route_null{}, bogus = route_null{} } } }\n", 2,
     "unknown command in cmdmap: bogus"),
    ("routes{ map = { a = cmdmap{ get = route_ttl{ ttl = 1, child = 'main' } } } }\n", 2,
     "route_ttl: invalid command for route_ttl"),
    ("routes{ conf = { mode = 'prefix' } }\n", 2, "routes{}: must pass map or cmap to a router"),
    ("settings{ backend_connect_timeout = 1 }\n", 0, "missing routes{} section"),
    ("pools{ internal = { backends = {} } }\n", 2,
     "pool name 'internal' is reserved, please use another name"),
    ("pools{ p = { backends = { '10.0.0.1' } } }\n", 2,
     "pool p: 10.0.0.1 is an invalid backend string. must be at least host:port"),
    ("settings{ backend_connect_timeout = 'x' }\nroutes{ default = route_null{} }\n", None,
     "settings{} backend_connect_timeout: "),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_bad_configs_name_file_line_and_handler(
    tmp_path: Path, text: str, line: int | None, message: str
) -> None:
    config = write(tmp_path, POOLS + text)
    done = run_check("--routelib", str(config))
    assert done.returncode == 1
    where = {None: "", 0: f"{config}: "}.get(line, f"{config}:{line}: ")
    assert f"Failed to execute mcp_config_pools: {where}{message}" in done.stderr, done.stderr


def serve_fails(*args: str) -> str:
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--listen", f"127.0.0.1:{port}", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode != 0
    return done.stderr


def test_serve_refuses_a_bad_config_before_listening(tmp_path: Path) -> None:
    config = write(tmp_path, POOLS + "routes{\n  default = route_direct{ child = 'nope' } }\n")
    stderr = serve_fails("--routelib", str(config))
    assert f"{config}:3: route_direct: no pool matching: nope" in stderr


def test_routelib_without_its_file(tmp_path: Path) -> None:
    stderr = serve_fails("--config", "routelib")
    assert "routelib needs its config file as the start argument" in stderr
    assert "routelib config file not found: nope.lua" in serve_fails("--routelib", "nope.lua")


# spec/mcp-v2.md's handler written in Lua (its example, tested as it stands there too)
HELLO = (ROOT / "tests/configs/spec_v2/hello.lua").read_text()


def test_handlers_written_in_lua_next_to_the_config(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    handlers = write(tmp_path, HELLO, "hello.lua")
    config = write(tmp_path, "routes{ map = { h = route_hello{} }, default = route_hello{} }\n")
    proxy = mcpframe_factory("--routelib", str(config), "--config", str(handlers))
    c = Client(proxy.addr)
    c.send(b"mg h/a\r\nget zz\r\n")
    assert c.read_available(0.3) == (
        b"SERVER_ERROR hello from h\r\nSERVER_ERROR hello from default\r\n"
    )


def test_a_handler_in_the_routelib_file_is_config_vm_only(tmp_path: Path) -> None:
    # as in 1.6.45, the routelib file runs in the config VM only; mcpframe says where to go
    config = write(tmp_path, HELLO + "routes{ default = route_hello{} }\n")
    done = run_check("--routelib", str(config))
    assert done.returncode == 1
    assert f"{config}:14: route_hello: no function route_hello_start in the route VM" in (
        done.stderr
    )


def test_zones_from_the_environment_and_from_a_file(tmp_path: Path) -> None:
    zone_file = write(tmp_path, "east\nignored\n", "zone")
    body = """\
    pools{ set_s = { east = { backends = { "127.0.0.1:11" } },
                     west = { backends = { "127.0.0.1:12" } } } }
    routes{ default = route_zfailover{ children = "set_s" } }
    """
    env = {**os.environ, "MY_ZONE": "west"}
    good = write(tmp_path, 'local_zone_from_env("MY_ZONE")\n' + body, "env.lua")
    assert run_check("--routelib", str(good), env=env).returncode == 0
    good = write(tmp_path, f'local_zone_from_file("{zone_file}")\n' + body, "file.lua")
    assert run_check("--routelib", str(good)).returncode == 0
    bad = write(tmp_path, 'local_zone_from_env("NO_SUCH_ZONE_VAR")\n' + body, "bad.lua")
    assert "failed to get local zone from environment variable: NO_SUCH_ZONE_VAR" in (
        run_check("--routelib", str(bad)).stderr
    )
    bad = write(tmp_path, 'local_zone("north")\n' + body, "north.lua")
    assert "route_zfailover: local_zone north is not a zone of children" in (
        run_check("--routelib", str(bad)).stderr
    )


def test_backend_strings_options_and_labels(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """\
        settings{ pool_options = { seed = "s" }, backend_options = { port = 22122 } }
        pools{
            main = {
                options = { dist = mcp.dist_jump_hash },
                backends = { "127.0.0.1:11211", "127.0.0.1:11212 x_y", "127.0.0.1:11213 _down_",
                             { host = "127.0.0.1", label = "t" }, { host = "127.0.0.2" } },
            },
        }
        routes{ default = route_direct{ child = "main" } }
        """,
    )
    report = check_json("--routelib", str(config))
    (pool,) = report["pools"]
    assert pool["seed"]["string"] == "s"
    assert [(b["label"], b["port"]) for b in pool["backends"]] == [
        ("127.0.0.1:11211", "11211"),
        ("x_y", "11212"),  # 1.6.45 keeps the letters only: "x"
        ("127.0.0.1:11213", "11213"),
        ("t", "22122"),
        ("127.0.0.2:22122", "22122"),
    ]


def test_a_down_backend_fails_over(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe], memcached_server: Memcached
) -> None:
    config = write(
        tmp_path,
        f"""\
        pools{{ down = {{ backends = {{ "127.0.0.1:{memcached_server.port} _down_" }} }},
                up = {{ backends = {{ "127.0.0.1:{memcached_server.port} up" }} }} }}
        routes{{ map = {{ d = route_direct{{ child = "down" }} }},
                 default = route_failover{{ children = {{ "down", "up" }} }} }}
        """,
    )
    proxy = mcpframe_factory("--routelib", str(config))
    c = Client(proxy.addr)
    c.send(b"set k 0 0 1\r\nv\r\nget k\r\nmg d/k v\r\n")
    assert c.read_available(0.3) == (
        b"STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\nSERVER_ERROR backend failure\r\n"
    )


def test_debug_stays_the_debug_library(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """\
        debug(false)
        assert(type(debug.traceback) == "function")
        routes{ default = route_null{} }
        """,
    )
    assert run_check("--routelib", str(config)).returncode == 0


def test_memcached_command_line(tmp_path: Path, memcached_server: Memcached) -> None:
    config = write(
        tmp_path,
        f'pools{{ m = {{ backends = {{ "127.0.0.1:{memcached_server.port}" }} }} }}\n'
        'routes{ default = route_direct{ child = "m" } }\n',
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpframe", "memcached", "-U", "0", "-l", "127.0.0.1",
         "-p", str(port), "-o", f"proxy_config=routelib,proxy_arg={config}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port, proc)
        c = Client(("127.0.0.1", port))
        c.send(b"set via 0 0 2\r\nmc\r\n")
        assert c.readline() == b"STORED\r\n"
        direct = Client(memcached_server.addr)
        direct.send(b"get via\r\n")
        assert direct.read_until(b"END\r\n") == b"VALUE via 0 2\r\nmc\r\nEND\r\n"
    finally:
        proc.terminate()
        proc.wait(10)


def test_reload_picks_up_the_new_tree(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    config = write(tmp_path, HELLO.replace("hello from", "old") + "")
    handlers = config.rename(tmp_path / "hello.lua")
    routes = write(tmp_path, "routes{ default = route_hello{} }\n")
    proxy = mcpframe_factory("--routelib", str(routes), "--config", str(handlers))
    c = Client(proxy.addr)
    c.send(b"mg a\r\n")
    assert c.readline() == b"SERVER_ERROR old default\r\n"
    routes.write_text("routes{ map = { a = route_null{} }, default = route_hello{} }\n")
    os.kill(proxy.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while True:
        c.send(b"mg a/x\r\n")
        got = c.readline()
        if got == b"EN\r\n" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert got == b"EN\r\n"


def test_a_config_may_replace_the_debug_library(tmp_path: Path) -> None:
    # memcached's own routelib file assigns a function to the global `debug`; mcpframe's
    # config and route VMs keep working (they hold debug.getinfo from before)
    config = write(
        tmp_path,
        """\
        debug = function() end
        function mcp_config_pools()
            return mcp.pool({ mcp.backend("b1", "127.0.0.1", 11211) })
        end
        function mcp_config_routes(p)
            local fg = mcp.funcgen_new()
            local h = fg:new_handle(p)
            fg:ready({ n = "x", f = function(rctx) return function(r)
                return rctx:enqueue_and_wait(r, h) end end })
            mcp.attach(mcp.CMD_ANY_STORAGE, mcp.router_new({ map = { a = fg } }))
        end
        """,
        "v2.lua",
    )
    done = run_check(str(config))
    assert done.returncode == 0, done.stderr


def test_stat_counters_follow_their_names_across_reloads(
    tmp_path: Path, mcpframe_factory: Callable[..., Mcpframe]
) -> None:
    tree = (
        'routes{{ map = {{ {} = route_failover{{ children = {{ "internal" }}, stats = true }} }} }}'
    )
    config = write(tmp_path, tree.format("a"))
    proxy = mcpframe_factory("--routelib", str(config))
    c = Client(proxy.addr)

    def user_stats() -> list[bytes]:
        c.send(b"stats proxy\r\n")
        lines = c.read_until(b"END\r\n").split(b"\r\n")
        return [line for line in lines if line.startswith(b"STAT user_")]

    assert user_stats() == [b"STAT user_a_retries 0"]
    config.write_text(tree.format("b"))
    os.kill(proxy.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while user_stats() != [b"STAT user_b_retries 0"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert user_stats() == [b"STAT user_b_retries 0"]  # a_retries blanked, b counted anew


def test_verbose_says_what_it_builds(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """\
        verbose(true)
        pools{ main = { backends = { "127.0.0.1:11211 a" } } }
        routes{ default = route_direct{ child = "main" } }
        """,
    )
    done = run_check("--routelib", str(config))
    assert "verbosity set to:\ttrue\n" in done.stdout
    assert "making backend for... 127.0.0.1:11211 a\n" in done.stdout
