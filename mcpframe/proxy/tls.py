"""TLS contexts: for clients of ``tls:`` listeners (``--tls-*``) and for backends (``tls``).

Clients. Listeners spelled ``tls:HOST:PORT`` or ``tls:unix:PATH`` accept TLS only, with the
certificate chain ``--tls-cert`` and key ``--tls-key`` (memcached's ``ssl_chain_cert`` and
``ssl_key``); ``--tls-ca`` names the CAs client certificates are checked against and
``--tls-verify`` says whether a client must present one: ``none`` (memcached's
``ssl_verify_mode=0``, the default), ``request`` (checked when presented, 1) or ``require``
(2 and 3). One context serves every TLS listener; a reload (SIGHUP) reads the files again into
it, so renewed certificates take effect for new connections without a restart (files that do
not load are logged and the old ones kept).

Backends. ``mcp.backend{..., tls = true}`` (or ``mcp.backend_use_tls(true)`` before it)
connects with TLS 1.3, as memcached 1.6.45's proxy does, after ``mcp.init_tls()``. memcached
verifies nothing; mcpframe verifies the backend's certificate and host name by default
(against the system's CAs, or ``mcp.init_tls{ cafile = ... }``); ``verify = false`` turns both
off. Contexts are built per settings at each config load, so a reload picks up renewed files.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from mcpframe.config import TlsClient
from mcpframe.errors import ServeError

#: ``--tls-verify`` values and their OpenSSL modes.
VERIFY_MODES: dict[str, ssl.VerifyMode] = {
    "none": ssl.CERT_NONE,
    "request": ssl.CERT_OPTIONAL,
    "require": ssl.CERT_REQUIRED,
}


@dataclass(frozen=True)
class TlsServer:
    """The TLS settings of ``tls:`` listeners (``serve --tls-cert ...``)."""

    certfile: str
    keyfile: str | None = None
    cafile: str | None = None
    verify: str = "none"


def tls_server_options(
    cert: str | None, key: str | None = None, ca: str | None = None, verify: str = "none"
) -> TlsServer | None:
    """The listeners' TLS settings from the ``--tls-*`` options (None without a certificate);
    raises ServeError for a key, CA or mode given without what they need."""
    if verify not in VERIFY_MODES:
        raise ServeError(f"--tls-verify {verify!r}: expected one of none, request, require")
    if cert is None:
        if key is not None or ca is not None:
            raise ServeError("--tls-key and --tls-ca need --tls-cert")
        return None
    if verify != "none" and ca is None:
        raise ServeError(f"--tls-verify {verify} needs --tls-ca (the CAs of client certificates)")
    return TlsServer(cert, key, ca, verify)


def _load_server(ctx: ssl.SSLContext, opts: TlsServer) -> None:
    ctx.load_cert_chain(opts.certfile, opts.keyfile)
    if opts.cafile:
        ctx.load_verify_locations(opts.cafile)


def server_context(opts: TlsServer) -> ssl.SSLContext:
    """The context of the TLS listeners; raises ServeError naming a file that does not load."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # memcached's ssl_min_version default
    ctx.verify_mode = VERIFY_MODES[opts.verify]
    try:
        _load_server(ctx, opts)
    except (OSError, ssl.SSLError) as e:
        raise ServeError(f"cannot load the TLS certificate {opts.certfile}: {e}") from None
    return ctx


def reload_server_context(ctx: ssl.SSLContext, opts: TlsServer) -> None:
    """Read the certificate files again into ``ctx`` (new connections use them); they are
    loaded into a scratch context first, so files that fail leave ``ctx`` as it was."""
    server_context(opts)
    _load_server(ctx, opts)


_clients: dict[TlsClient, ssl.SSLContext] = {}


def client_context(settings: TlsClient) -> ssl.SSLContext:
    """The context backends with these settings connect with (built once per config load)."""
    ctx = _clients.get(settings)
    if ctx is None:
        ctx = _clients[settings] = build_client_context(settings)
    return ctx


def build_client_context(settings: TlsClient) -> ssl.SSLContext:
    """Raises ServeError naming the file that does not load."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3  # as memcached's proxy
    try:
        if settings.cafile:
            ctx.load_verify_locations(settings.cafile)
        else:
            ctx.load_default_certs()
    except (OSError, ssl.SSLError) as e:
        raise ServeError(f"mcp.init_tls: cannot load cafile {settings.cafile}: {e}") from None
    try:
        if settings.certfile:
            ctx.load_cert_chain(settings.certfile, settings.keyfile or None)
    except (OSError, ssl.SSLError) as e:
        raise ServeError(f"mcp.init_tls: cannot load certfile {settings.certfile}: {e}") from None
    if not settings.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def refresh_client_contexts(settings: set[TlsClient]) -> None:
    """At a config load: build the contexts of these settings afresh (renewed files are read
    again; ServeError if one does not load, before anything changes)."""
    fresh = {s: build_client_context(s) for s in settings}
    _clients.clear()
    _clients.update(fresh)
