"""``mcpframe memcached ARGS...`` and the ``mcpframe-memcached`` script: memcached 1.6.45's
command line, run as ``serve``.

The refusals are compared with what the memcached 1.6.45 proxy build prints and returns for
the same arguments (observed with /work/shared/bin/memcached-1.6.45-proxy and frozen here;
memcached names itself by its argv[0] where mcpframe says ``mcpframe``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mcpframe.memcached_cli import parse
from tests.helpers import ROOT, Client, Memcached, free_port, wait_port

SCRIPT = Path(sys.executable).parent / "mcpframe-memcached"


def memcached_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpframe", "memcached", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


ILLEGAL = 'Illegal argument "?"\n'


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (["-x"], 1, "mcpframe: invalid option -- 'x'\n" + ILLEGAL),
        (["--bogus=1"], 1, "mcpframe: unrecognized option '--bogus=1'\n" + ILLEGAL),
        (["-p"], 1, "mcpframe: option requires an argument -- 'p'\n" + ILLEGAL),
        (["--port"], 1, "mcpframe: option '--port' requires an argument\n" + ILLEGAL),
        (["--thr"], 1, "mcpframe: option '--threads' requires an argument\n" + ILLEGAL),
        (["--help=1"], 1, "mcpframe: option '--help' doesn't allow an argument\n" + ILLEGAL),
        (
            ["--p", "1"],
            1,
            "mcpframe: option '--p' is ambiguous; possibilities: '--port' '--pidfile' "
            "'--protocol'\n" + ILLEGAL,
        ),
        (["-o", "bogus_opt"], 1, 'Illegal suboption "bogus_opt"\n'),
        (["-o", "no_lru_crawler,bogus=1"], 1, 'Illegal suboption "bogus=1"\n'),
        (["-o", "proxy_config"], 1, "Missing proxy_config file argument\n"),
        (
            ["-B", "binary", "-o", "proxy_config=x.lua"],
            1,
            "Cannot specify a protocol with proxy mode enabled\n",
        ),
        (["-o", "hashpower=abc"], 1, "Initial hashtable multiplier of 0 is too low\n"),
        (
            ["-o", "hash_algorithm=foo"],
            1,
            "Unknown hash_algorithm option (jenkins, murmur3, xxh3)\n",
        ),
        (["-o", "slab_automove=5"], 1, "slab_automove must be between 0 and 2\n"),
        (
            ["-B", "foo"],
            64,
            "Invalid value for binding protocol: foo\n"
            " -- should be one of auto, binary, or ascii\n",
        ),
        (
            ["-I", "1500k"],
            64,
            "-I (item_size_max: 1536000) must be evenly divisible by slab_chunk_max "
            "(bytes: 524288)\n",
        ),
        (["-t", "0"], 1, "Number of threads must be greater than 0\n"),
        (["--threads=abc"], 1, "Number of threads must be greater than 0\n"),
        (["-c", "0"], 1, "Maximum connections must be greater than 0\n"),
        (["-R", "0"], 1, "Number of requests per event must be greater than 0\n"),
        (["-f", "1"], 1, "Factor must be greater than 1\n"),
        (["-N", "0"], 1, "Maximum number of NAPI IDs must be greater than 0\n"),
        # TLS: memcached's texts (observed with Debian's memcached built with TLS)
        (
            ["-Z"],
            64,
            "Error loading the certificate chain: (null) : no certificate "
            "(mcpframe: give it with -o ssl_chain_cert=<file>)\n",
        ),
        (["-o", "ssl_chain_cert"], 1, "Missing ssl_chain_cert argument\n"),
        (["-o", "ssl_verify_mode=x"], 1, "could not parse argument to ssl_verify_mode\n"),
        (
            ["-o", "ssl_verify_mode=7"],
            1,
            "Invalid ssl_verify_mode. Use help to see valid options.\n",
        ),
        (
            ["-o", "ssl_min_version=9"],
            1,
            "Invalid ssl_min_version. Use help to see valid options.\n",
        ),
        (["-o", "ssl_wbuf_size=x"], 1, "could not parse argument to ssl_wbuf_size\n"),
        (
            ["-l", "mtls:127.0.0.1:1"],
            71,
            "'otls' option is valid only when SSL is enabled\n"
            "failed to listen on one of interface(s) mtls:127.0.0.1:1: Success\n",
        ),
        (
            ["-l", "notls:127.0.0.1"],
            71,
            "'notls' option is valid only when SSL is enabled\n"
            "failed to listen on one of interface(s) notls:127.0.0.1: Success\n",
        ),
        (["-S"], 64, "This server is not built with SASL support.\n"),
        (["-I", "1x"], 64, "Item max size cannot be less than 1024 bytes.\n"),
        (["-I", "2000m"], 64, "Cannot set item size limit higher than 1/2 of memory max.\n"),
        (["-m", "abc"], 64, "Cannot set item size limit higher than 1/2 of memory max.\n"),
        (
            ["-I", "2k"],
            64,
            "slab_chunk_max (bytes: 524288) cannot be larger than -I (item_size_max 2048)\n",
        ),
        (
            ["-l", "tag_toolongname_:127.0.0.1:1"],
            71,
            'Listener tags must be between 1 and 8 characters: "toolongname"\n'
            "failed to listen on one of interface(s) tag_toolongname_:127.0.0.1:1: Success\n",
        ),
        (
            ["-l", "tag[]:127.0.0.1:1"],
            71,
            'Listener tags must be between 1 and 8 characters: ""\n'
            "failed to listen on one of interface(s) tag[]:127.0.0.1:1: Success\n",
        ),
        (
            ["-l", "tag_bad:127.0.0.1"],
            71,
            'Invalid tag in socket config: "_bad:127.0.0.1"\n'
            "failed to listen on one of interface(s) tag_bad:127.0.0.1: Success\n",
        ),
        (
            ["-l", "127.0.0.1:abc"],
            71,
            'Invalid port number: "abc"\n'
            "failed to listen on one of interface(s) 127.0.0.1:abc: Success\n",
        ),
    ],
)
def test_refused_as_memcached_refuses(args: list[str], code: int, stderr: str) -> None:
    done = memcached_cli(*args)
    assert (done.returncode, done.stderr) == (code, stderr)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["-d"], ["does not daemonize"]),
        (["-Y", "/etc/auth"], ["no ASCII authentication"]),
    ],
)
def test_refused_features_are_named(tmp_path: Path, args: list[str], names: list[str]) -> None:
    done = memcached_cli("-l", "127.0.0.1", "-p", str(free_port()), *args)
    assert done.returncode != 0
    for name in names:
        assert name in done.stderr


@pytest.mark.parametrize("value", ["auto", "ascii", "binary"])
def test_binding_protocol_is_serves_protocol(value: str) -> None:
    assert parse(["-B", value]).settings.protocol == value
    assert parse([]).settings.protocol == "auto"


def test_unix_socket_replaces_tcp_as_in_memcached() -> None:
    settings = parse(["-s", "/run/mc.sock", "-a", "0660", "-p", "11211"]).settings
    assert settings.listen == ["unix:/run/mc.sock:0660"]
    assert parse(["-s", "/run/mc.sock"]).settings.listen == ["unix:/run/mc.sock:0700"]
    assert parse(["-a", "755"]).settings.listen != ["unix:/run/mc.sock:0755"]


TLS = ["-Z", "-o", "ssl_chain_cert=/etc/mc/chain.pem,ssl_key=/etc/mc/key.pem"]


def test_tls_listeners_and_files() -> None:
    parsed = parse([*TLS, "-p", "11211", "-l", "127.0.0.1,notls:127.0.0.1:2,tag_a_:127.0.0.1:3"])
    settings = parsed.settings
    assert settings.listen == ["tls:127.0.0.1:11211", "127.0.0.1:2", "tls:tag[a]:127.0.0.1:3"]
    assert (str(settings.tls_cert), str(settings.tls_key)) == (
        "/etc/mc/chain.pem", "/etc/mc/key.pem",
    )  # fmt: skip
    assert (settings.tls_ca, settings.tls_verify, parsed.warnings) == (None, "none", [])
    assert parse([*TLS, "-l", "127.0.0.1"]).settings.listen == ["tls:127.0.0.1:11211"]


@pytest.mark.parametrize(
    ("mode", "verify"), [("0", "none"), ("1", "request"), ("2", "require"), ("3", "require")]
)
def test_ssl_verify_mode_is_tls_verify(mode: str, verify: str) -> None:
    settings = parse([*TLS, "-o", f"ssl_verify_mode={mode},ssl_ca_cert=/etc/mc/ca.pem"]).settings
    assert (settings.tls_verify, str(settings.tls_ca)) == (verify, "/etc/mc/ca.pem")


def test_btls_and_mtls_listeners() -> None:
    ca = "ssl_ca_cert=/etc/mc/ca.pem"
    settings = parse([*TLS, "-o", ca, "-l", "mtls:127.0.0.1:1,notls:127.0.0.1:2"]).settings
    assert settings.listen == ["tls:127.0.0.1:1", "127.0.0.1:2"]
    assert settings.tls_verify == "require"
    assert parse([*TLS, "-l", "btls:127.0.0.1:1"]).settings.tls_verify == "none"
    done = memcached_cli(*TLS, "-o", ca, "-l", "mtls:127.0.0.1:1,btls:127.0.0.1:2")
    assert done.returncode == 64
    assert "one -o ssl_verify_mode for all" in done.stderr
    done = memcached_cli(*TLS, "-o", "ssl_verify_mode=2", "-l", "127.0.0.1")
    assert done.returncode == 64
    assert "-o ssl_ca_cert" in done.stderr


def test_tls_settings_mcpframe_ignores_and_ssl_without_z() -> None:
    parsed = parse([*TLS, "-o", "ssl_ciphers=HIGH,ssl_session_cache,ssl_keyformat=1"])
    assert parsed.warnings == [
        "ignoring -o ssl_ciphers=HIGH: mcpframe has no such TLS setting",
        "ignoring -o ssl_session_cache: mcpframe has no such TLS setting",
    ]
    parsed = parse(["-o", "ssl_chain_cert=/etc/mc/chain.pem", "-l", "127.0.0.1"])
    assert parsed.settings.listen == ["127.0.0.1:11211"]
    assert parsed.settings.tls_cert is None
    assert parsed.warnings == [
        "ignoring -o ssl_chain_cert=/etc/mc/chain.pem: without -Z there is no TLS"
    ]
    done = memcached_cli(*TLS, "-o", "ssl_keyformat=2")
    assert (done.returncode, "PEM keys only" in done.stderr) == (64, True)


def test_help_and_version() -> None:
    done = memcached_cli("-h")
    assert done.returncode == 0
    assert "-o, --extended" in done.stdout and "proxy_config" in done.stdout
    done = memcached_cli("--version")
    assert done.returncode == 0
    assert "memcached 1.6.45 command line" in done.stdout


POOLS = """
-- proxy_arg=be_PORT:env_prod arrives as { be = "PORT", env = "prod" }
function mcp_config_pools()
    local be = mcp.backend("main1", "127.0.0.1", mcp.start_arg.be)
    return { main = mcp.pool({ be }), env = mcp.start_arg.env }
end
"""
ROUTES = """
function mcp_config_routes(p)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r) return p.main(r) end)
    mcp.attach(mcp.CMD_MN, function(r) return "MN\\r\\n" end)
    mcp.attach(mcp.CMD_MG, function(r) return "HD t=b env=" .. p.env .. "\\r\\n" end, "b")
end
"""

#: A unit that ran memcached's proxy; the test runs it with only the program changed.
UNIT = """\
[Unit]
Description=memcached proxy
After=network.target

[Service]
Type=simple
ExecStart=/usr/bin/memcached -u memcache -U 0 -p {port} -t 2 -m 64 -I 2m -c 4096 \
-l 127.0.0.1 -l tag_b_:127.0.0.1:{tag_port} -P {pid} -v \
-o proxy_config={a}:{b},proxy_arg=be_{be}:env_prod -o no_lru_crawler,ext_path=/var/mc:1G
ExecReload=/bin/kill -HUP $MAINPID
Restart=always

[Install]
WantedBy=multi-user.target
"""


def exec_start(unit: str) -> list[str]:
    """The ExecStart command of a unit (continuation lines joined)."""
    text = unit.replace("\\\n", "")
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


@contextlib.contextmanager
def started(argv: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        wait_port(port, proc, timeout=30)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_memcached_unit_runs_with_the_program_changed(
    tmp_path: Path, memcached_server: Memcached
) -> None:
    assert SCRIPT.exists(), "the mcpframe-memcached script is installed with the package"
    a, b = tmp_path / "a.lua", tmp_path / "b.lua"
    a.write_text(POOLS)
    b.write_text(ROUTES)
    port, tag_port, pid = free_port(), free_port(), tmp_path / "mc.pid"
    unit = UNIT.format(port=port, tag_port=tag_port, pid=pid, a=a, b=b, be=memcached_server.port)
    argv = exec_start(unit)
    assert argv[0] == "/usr/bin/memcached"
    argv[0] = str(SCRIPT)  # the only change
    with started(argv, port) as proc:
        wait_port(tag_port, proc, timeout=30)
        c = Client(("127.0.0.1", port))
        c.send(b"set unit/k 0 0 5\r\nhello\r\n")
        assert c.readline() == b"STORED\r\n"
        # It went to the real memcached behind the config.
        direct = Client(memcached_server.addr)
        direct.send(b"get unit/k\r\n")
        assert direct.read_until(b"END\r\n") == b"VALUE unit/k 0 5\r\nhello\r\nEND\r\n"
        c.send(b"mg unit/k v\r\n")
        assert c.readline() == b"VA 5\r\n"
        assert c.readline() == b"hello\r\n"
        # The tag_b_ listener uses the route attached for tag "b"; untagged ones don't.
        t = Client(("127.0.0.1", tag_port))
        t.send(b"mg unit/k v\r\n")
        assert t.readline() == b"HD t=b env=prod\r\n"
        # -P wrote the pid that a reload (ExecReload: kill -HUP $MAINPID) signals.
        deadline = time.monotonic() + 10
        while not pid.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert int(pid.read_text()) == proc.pid
        b.write_text(ROUTES.replace("HD t=b", "HD t=b2"))
        os.kill(proc.pid, signal.SIGHUP)
        while True:
            t2 = Client(("127.0.0.1", tag_port))
            t2.send(b"mg unit/k v\r\n")
            line = t2.readline()
            t2.close()
            if line == b"HD t=b2 env=prod\r\n":
                break
            assert time.monotonic() < deadline, line
            time.sleep(0.1)
        for conn in (c, t, direct):
            conn.close()
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    text = err.decode()
    assert proc.returncode == 0, text
    # One warning line per option that means nothing to a proxy, each said once (not once
    # per worker).
    for shown in ("-u memcache", "-U 0", "-o no_lru_crawler", "-o ext_path="):
        assert text.count(f"mcpframe: ignoring {shown}") == 1, text
    assert "supervising 2 workers" in text
    assert "ignoring -c" not in text  # -c is taken: --max-connections


def test_plain_memcached_line_without_proxy_config_is_a_cache(
    mcpframe_memcached: Callable[..., int],
) -> None:
    port = mcpframe_memcached(
        "-U", "0", "-l", "127.0.0.1", "--port", "{port}", "--memory-limit=8", "-I", "512k"
    )
    c = Client(("127.0.0.1", port))
    c.send(b"set k 0 0 1\r\nx\r\nget k\r\n")
    assert c.read_until(b"END\r\n") == b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n"
    c.send(b"stats settings\r\n")
    settings = c.read_until(b"END\r\n")
    assert b"STAT maxbytes 8388608\r\n" in settings
    assert b"STAT item_size_max 524288\r\n" in settings
    c.send(b"set big 0 0 524289\r\n" + b"x" * 524289 + b"\r\n")
    assert c.readline() == b"SERVER_ERROR object too large for cache\r\n"
    c.close()


@pytest.fixture
def mcpframe_memcached() -> Iterator[Callable[..., int]]:
    """Start ``mcpframe memcached ARGS`` ("{port}" in ARGS: a free port); stopped after."""
    stack = contextlib.ExitStack()

    def start(*args: str) -> int:
        port = free_port()
        argv = [sys.executable, "-m", "mcpframe", "memcached"]
        argv += [a.replace("{port}", str(port)) for a in args]
        stack.enter_context(started(argv, port))
        return port

    with stack:
        yield start


def test_conn_limit_refuses_as_memcached_does(mcpframe_memcached: Callable[..., int]) -> None:
    port = mcpframe_memcached("-l", "127.0.0.1", "-p", "{port}", "-c", "2")
    first, second = Client(("127.0.0.1", port)), Client(("127.0.0.1", port))
    for c in (first, second):
        c.send(b"version\r\n")
        assert c.readline().startswith(b"VERSION ")
    third = Client(("127.0.0.1", port))
    assert third.readline() == b"ERROR Too many open connections\r\n"
    assert third.is_closed()
    first.send(b"stats\r\n")
    general = first.read_until(b"END\r\n")
    assert b"STAT max_connections 2\r\n" in general
    assert b"STAT rejected_connections 1\r\n" in general
    first.close()
    # A slot is free again once a client leaves.
    deadline = time.monotonic() + 5
    while True:
        fourth = Client(("127.0.0.1", port))
        fourth.send(b"version\r\n")
        line = fourth.readline()
        fourth.close()
        if line.startswith(b"VERSION "):
            break
        assert time.monotonic() < deadline, line
        time.sleep(0.05)
    for c in (second, third):
        c.close()


def test_long_forms_clusters_and_repeated_extended(
    tmp_path: Path, mcpframe_memcached: Callable[..., int]
) -> None:
    routes = tmp_path / "r.lua"
    routes.write_text(
        "function mcp_config_pools() return {} end\n"
        "function mcp_config_routes()\n"
        "  mcp.attach(mcp.CMD_MG, function(r)\n"
        "    return 'HD ' .. tostring(mcp.start_arg) .. '\\r\\n' end)\n"
        "end\n"
    )
    port = mcpframe_memcached(
        "-vvp{port}",
        "--listen=127.0.0.1",
        "--thr",
        "1",
        f"--extended=proxy_config={routes}",
        "--ext",
        "proxy_arg=first,proxy_arg=second",
        "--",
        "ignored-operand",
    )
    c = Client(("127.0.0.1", port))
    c.send(b"mg k\r\n")
    assert c.readline() == b"HD second\r\n"  # the last proxy_arg wins, as in memcached
    c.close()


def test_unix_socket_line_serves_on_the_socket(tmp_path: Path) -> None:
    """memcached's ``-s PATH -a MODE``: the cache answers on the socket, with that mode."""
    path = tmp_path / "mc.sock"
    argv = [sys.executable, "-m", "mcpframe", "memcached", "-s", str(path), "-a", "0660"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            assert time.monotonic() < deadline, "no socket after 30 s"
            time.sleep(0.05)
        assert path.stat().st_mode & 0o777 == 0o660
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(path))
            s.sendall(b"set k 0 0 1\r\nx\r\nget k\r\n")
            got = b""
            while not got.endswith(b"END\r\n"):
                chunk = s.recv(4096)
                assert chunk, got
                got += chunk
        assert got == b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n"
    finally:
        proc.terminate()
        proc.wait(20)
    assert not path.exists()
