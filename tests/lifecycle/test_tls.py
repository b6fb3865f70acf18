"""TLS: ``tls:`` listeners for clients (``--tls-*``) and ``tls = true`` backends, tested with
certificates made here (``openssl``), Python's TLS client and Debian's memcached built with TLS
(``memcached -Z``)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import MEMCACHED, ROOT, Client, Memcached, free_port, wait_port, wait_unix
from tests.lifecycle.support import serve, short_dir, stop
from tests.tlscerts import Pki, make_pki


def memcached_has_tls() -> bool:
    out = subprocess.run([MEMCACHED, "-h"], capture_output=True, timeout=10)
    return b"--enable-ssl" in out.stdout


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def sockdir() -> Iterator[Path]:
    with short_dir("mct") as d:
        yield d


def client_ctx(pki: Pki, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def set_get(c: Client, key: bytes, value: bytes) -> bytes:
    c.send(b"set %s 0 0 %d\r\n%s\r\nget %s\r\n" % (key, len(value), value, key))
    assert c.readline() == b"STORED\r\n"
    return c.read_until(b"END\r\n")


def peer_cn(c: Client) -> str:
    assert isinstance(c.sock, ssl.SSLSocket)
    cert = c.sock.getpeercert()
    assert cert is not None
    for rdn in cert["subject"]:
        for name, value in rdn:  # type: ignore[str-unpack]
            if name == "commonName":
                return str(value)
    raise AssertionError(f"no common name in {cert['subject']!r}")


def test_tls_listeners_tcp_and_unix_beside_a_plain_one(pki: Pki, sockdir: Path) -> None:
    cert, key = pki.issue("server", "mcpframe-one")
    tls_port, plain_port = free_port(), free_port()
    path = str(sockdir / "tls.sock")
    proc = serve(
        "--listen", f"tls:127.0.0.1:{tls_port}", "--listen", f"127.0.0.1:{plain_port}",
        "--listen", f"tls:unix:{path}:0600", "--tls-cert", str(cert), "--tls-key", str(key),
    )  # fmt: skip
    try:
        wait_port(tls_port, proc)
        wait_port(plain_port, proc)
        wait_unix(path, proc)
        c = Client(("127.0.0.1", tls_port), tls=client_ctx(pki))
        assert peer_cn(c) == "mcpframe-one"
        assert set_get(c, b"t", b"secret") == b"VALUE t 0 6\r\nsecret\r\nEND\r\n"
        c.close()
        u = Client(path, tls=client_ctx(pki))
        u.send(b"get t\r\n")
        assert u.read_until(b"END\r\n") == b"VALUE t 0 6\r\nsecret\r\nEND\r\n"
        u.close()
        p = Client(("127.0.0.1", plain_port))
        p.send(b"get t\r\n")
        assert p.read_until(b"END\r\n") == b"VALUE t 0 6\r\nsecret\r\nEND\r\n"
        p.close()
        # plain text on the TLS port is not a memcached conversation
        raw = Client(("127.0.0.1", tls_port))
        raw.send(b"version\r\n")
        assert b"VERSION" not in raw.read_available(0.5)
        raw.close()
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err


def test_client_certificates_required(pki: Pki) -> None:
    cert, key = pki.issue("server", "mcpframe-one")
    client_cert = pki.issue("client", "app-1", sans="")
    port = free_port()
    proc = serve(
        "--listen", f"tls:127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key),
        "--tls-ca", str(pki.ca), "--tls-verify", "require",
    )  # fmt: skip
    try:
        wait_port(port, proc)
        c = Client(("127.0.0.1", port), tls=client_ctx(pki, client_cert))
        c.send(b"version\r\n")
        assert c.readline().startswith(b"VERSION ")
        c.close()
        # without a certificate: refused (TLS 1.3 reports it at the first read)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            anon = Client(("127.0.0.1", port), tls=client_ctx(pki))
            anon.send(b"version\r\n")
            anon.readline()
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err


def test_reload_picks_up_a_renewed_certificate(pki: Pki, tmp_path: Path) -> None:
    cert, key = pki.issue("server", "before-renewal")
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    port = free_port()
    proc = serve(
        "--listen", f"tls:127.0.0.1:{port}", "--tls-cert", str(live_cert), "--tls-key",
        str(live_key),
    )  # fmt: skip
    try:
        wait_port(port, proc)
        old = Client(("127.0.0.1", port), tls=client_ctx(pki))
        assert peer_cn(old) == "before-renewal"
        renewed = pki.issue("renewed", "after-renewal")
        shutil.copy(renewed[0], live_cert)
        shutil.copy(renewed[1], live_key)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        seen = ""
        while time.monotonic() < deadline:
            c = Client(("127.0.0.1", port), tls=client_ctx(pki))
            seen = peer_cn(c)
            c.close()
            if seen == "after-renewal":
                break
            time.sleep(0.05)
        assert seen == "after-renewal"
        # a connection made before the renewal goes on
        assert set_get(old, b"k", b"v") == b"VALUE k 0 1\r\nv\r\nEND\r\n"
        old.close()
        # a renewal that does not load (key of another certificate) keeps the current one
        shutil.copy(key, live_key)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        c = Client(("127.0.0.1", port), tls=client_ctx(pki))
        assert peer_cn(c) == "after-renewal"
        c.close()
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert b"TLS certificates not reloaded, old kept" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "tls:127.0.0.1:{port}"], "a tls: listener needs --tls-cert"),
        (["--tls-cert", "{cert}"], "no listener is tls:"),
        (
            ["--listen", "tls:127.0.0.1:{port}", "--tls-cert", "{cert}", "--tls-verify", "require"],
            "--tls-verify require needs --tls-ca",
        ),
        (["--listen", "tls:127.0.0.1:{port}", "--tls-cert", "/nonexistent.pem"], "/nonexistent"),
    ],
)
def test_tls_option_errors_are_named(pki: Pki, args: list[str], message: str) -> None:
    cert, _ = pki.issue("server", "x")
    argv = [a.format(port=free_port(), cert=cert) for a in args]
    if "--listen" not in argv:
        argv += ["--listen", f"127.0.0.1:{free_port()}"]
    out = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", *argv],
        capture_output=True,
        timeout=30,
        cwd=ROOT,
    )
    assert out.returncode != 0
    assert message.encode() in out.stderr


# -- backends ----------------------------------------------------------------------------

BACKEND_CONFIG = """
function mcp_config_pools()
    {init}
    local be = mcp.backend{{ label = "tls", host = "{host}", port = {port}, tls = true }}
    return {{ main = mcp.pool({{ be }}) }}
end
function mcp_config_routes(p)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r) return p.main(r) end)
end
"""

needs_tls_memcached = pytest.mark.skipif(
    not memcached_has_tls(), reason="this memcached has no TLS (-Z)"
)


def tls_memcached(cert: Path, key: Path) -> Memcached:
    return Memcached("-Z", "-o", f"ssl_chain_cert={cert},ssl_key={key}")


def proxied_get(cfg: Path, key: bytes) -> tuple[bytes, bytes]:
    """(reply to set+get through mcpframe with ``cfg``, mcpframe's stderr)."""
    port = free_port()
    proc = serve("--config", str(cfg), "--listen", f"127.0.0.1:{port}")
    try:
        wait_port(port, proc)
        c = Client(("127.0.0.1", port))
        c.send(b"set %s 0 0 2\r\nhi\r\n" % key)
        first = c.readline()
        c.send(b"get %s\r\n" % key)
        reply = first + (
            c.readline() if first.startswith(b"SERVER_ERROR") else c.read_until(b"END\r\n")
        )
        c.close()
    finally:
        err = stop(proc)
    return reply, err


@needs_tls_memcached
def test_tls_backend_real_memcached_verified_by_ca(pki: Pki, tmp_path: Path) -> None:
    cert, key = pki.issue("mc", "memcached")
    mc = tls_memcached(cert, key)
    try:
        cfg = tmp_path / "routes.lua"
        init = f'mcp.init_tls{{ cafile = "{pki.ca}" }}'
        cfg.write_text(BACKEND_CONFIG.format(init=init, host="localhost", port=mc.port))
        reply, err = proxied_get(cfg, b"over-tls")
        assert reply == b"STORED\r\nVALUE over-tls 0 2\r\nhi\r\nEND\r\n", err
        # the value is in that memcached, which speaks TLS only on that port
        direct = Client(mc.addr, tls=client_ctx(pki))
        direct.send(b"get over-tls\r\n")
        assert direct.read_until(b"END\r\n") == b"VALUE over-tls 0 2\r\nhi\r\nEND\r\n"
        direct.close()
        raw = Client(mc.addr)
        raw.send(b"get over-tls\r\n")
        with contextlib.suppress(ConnectionResetError):  # memcached resets it, or says nothing
            assert b"VALUE" not in raw.read_available(0.5)
        raw.close()
    finally:
        mc.stop()


@needs_tls_memcached
@pytest.mark.parametrize(
    ("init", "host", "ok"),
    [
        ("mcp.init_tls()", "localhost", False),  # system CAs do not know the test CA
        ('mcp.init_tls{{ cafile = "{ca}" }}', "localhost", False),  # wrong host name in cert
        ('mcp.init_tls{{ cafile = "{ca}", verify = false }}', "localhost", True),
        ("mcp.init_tls{{ verify = false }}", "127.0.0.1", True),
    ],
)
def test_tls_backend_verification(pki: Pki, tmp_path: Path, init: str, host: str, ok: bool) -> None:
    # a certificate for another name only, so the host name check must fail
    cert, key = pki.issue("other", "other", sans="DNS:other.example")
    if init.startswith("mcp.init_tls()"):
        cert, key = pki.issue("mc", "memcached")  # right name, unknown CA
    mc = tls_memcached(cert, key)
    try:
        cfg = tmp_path / "routes.lua"
        cfg.write_text(BACKEND_CONFIG.format(init=init.format(ca=pki.ca), host=host, port=mc.port))
        reply, err = proxied_get(cfg, b"k")
    finally:
        mc.stop()
    if ok:
        assert reply == b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n", err
    else:
        assert reply.startswith(b"SERVER_ERROR backend failure\r\n"), reply
        assert b"error=connecting" in err


def test_tls_backend_needs_init_tls_and_backend_use_tls_sets_the_default(tmp_path: Path) -> None:
    cfg = tmp_path / "routes.lua"
    cfg.write_text(
        "function mcp_config_pools()\n"
        "    mcp.backend_use_tls(true)\n"
        '    local be = mcp.backend("a", "127.0.0.1", 11211)\n'
        "    return { main = mcp.pool({ be }) }\n"
        "end\n"
        "function mcp_config_routes(p) end\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "mcpframe", "check", str(cfg)],
        capture_output=True,
        timeout=30,
        cwd=ROOT,
    )
    assert out.returncode != 0
    assert b"TLS requested but not initialized: call mcp.init_tls()" in out.stdout + out.stderr


def test_a_backend_ca_file_that_does_not_load_stops_serve(tmp_path: Path) -> None:
    cfg = tmp_path / "routes.lua"
    cfg.write_text(
        BACKEND_CONFIG.format(
            init='mcp.init_tls{ cafile = "/nonexistent/ca.pem" }', host="localhost", port=11211
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--config", str(cfg),
         "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode != 0
    assert b"mcp.init_tls: cannot load cafile /nonexistent/ca.pem" in out.stderr


def test_rctx_tls_peer_cn_names_the_client_certificate(pki: Pki) -> None:
    cert, key = pki.issue("server", "mcpframe-cn")
    client_cert = pki.issue("client", "client-7", sans="")
    tls_port, plain_port = free_port(), free_port()
    proc = serve(
        "--config", str(ROOT / "tests" / "configs" / "v2" / "tls_cn.lua"),
        "--listen", f"tls:127.0.0.1:{tls_port}", "--listen", f"127.0.0.1:{plain_port}",
        "--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(pki.ca),
        "--tls-verify", "request",
    )  # fmt: skip
    try:
        wait_port(tls_port, proc)
        wait_port(plain_port, proc)
        for addr, tls, cn in [
            (tls_port, client_ctx(pki, client_cert), b"client-7"),
            (tls_port, client_ctx(pki), b"nil"),  # TLS, no client certificate
            (plain_port, None, b"nil"),
        ]:
            c = Client(("127.0.0.1", addr), tls=tls)
            c.send(b"mg k v\r\n")
            assert c.read_until(b"END\r\n") == b"VALUE k 0 %d\r\n%s\r\nEND\r\n" % (len(cn), cn)
            c.close()
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err


def test_memcached_command_line_z_serves_tls(pki: Pki) -> None:
    """``mcpframe memcached -Z -o ssl_chain_cert=...`` (memcached's spelling) serves TLS on
    its listeners, a ``notls:`` one in plain text."""
    cert, key = pki.issue("server", "mcpframe-z")
    port, plain = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpframe", "memcached", "-Z", "-U", "0", "-p", str(port),
         "-l", f"127.0.0.1,notls:127.0.0.1:{plain}",
         "-o", f"ssl_chain_cert={cert},ssl_key={key},ssl_session_cache"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        wait_port(port, proc)
        wait_port(plain, proc)
        c = Client(("127.0.0.1", port), tls=client_ctx(pki))
        assert peer_cn(c) == "mcpframe-z"
        assert set_get(c, b"z", b"tls") == b"VALUE z 0 3\r\ntls\r\nEND\r\n"
        c.close()
        p = Client(("127.0.0.1", plain))
        p.send(b"get z\r\n")
        assert p.read_until(b"END\r\n") == b"VALUE z 0 3\r\ntls\r\nEND\r\n"
        p.close()
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert b"ignoring -o ssl_session_cache" in err
