"""The TLS part of ``mcpframe memcached``: memcached's ``-Z`` and ``-o ssl_*`` options, checked
as memcached 1.6.45 (built with TLS) checks them, and mapped onto ``serve``'s ``tls:``
listeners and ``--tls-cert``, ``--tls-key``, ``--tls-ca``, ``--tls-verify``.

``ssl_chain_cert``, ``ssl_key``, ``ssl_ca_cert`` and ``ssl_verify_mode`` are taken;
``ssl_keyformat`` must be PEM; ``ssl_ciphers``, ``ssl_wbuf_size``, ``ssl_session_cache``,
``ssl_kernel_tls`` and ``ssl_min_version`` are checked and ignored (with a warning).
"""

from __future__ import annotations

PROG = "mcpframe"
#: memcached's exit statuses: ``return 1`` from main, sysexits' EX_USAGE.
EXIT_ERROR = 1
EX_USAGE = 64


class TlsRefused(Exception):
    """memcached would stop here: ``code`` and its ``message``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


#: memcached's ``-o ssl_*`` options: name -> its message when the value is missing (None:
#: a flag). SSL_TAKEN are those mcpframe serves with; the others are checked and ignored.
SSL_SUBOPTS: dict[str, str | None] = {
    "ssl_chain_cert": "Missing ssl_chain_cert argument",
    "ssl_key": "Missing ssl_key argument",
    "ssl_verify_mode": "Missing ssl_verify_mode argument",
    "ssl_keyformat": "Missing ssl_keyformat argument",
    "ssl_ciphers": "Missing ssl_ciphers argument",
    "ssl_ca_cert": "Missing ssl_ca_cert argument",
    "ssl_wbuf_size": "Missing ssl_wbuf_size argument",
    "ssl_session_cache": None,
    "ssl_kernel_tls": None,
    "ssl_min_version": "Missing ssl_min_version argument",
}
SSL_TAKEN = frozenset({"ssl_chain_cert", "ssl_key", "ssl_ca_cert", "ssl_verify_mode"})
#: OpenSSL's SSL_FILETYPE_PEM, memcached's default ssl_keyformat (the only one mcpframe reads).
SSL_FILETYPE_PEM = 1
#: ssl_verify_mode -> ``serve --tls-verify`` (3, "verify once", is 2 for a new connection).
SSL_VERIFY = {0: "none", 1: "request", 2: "require", 3: "require"}


def strtol(text: str) -> int | None:
    """memcached's ``safe_strtol``: the whole value an integer (blanks around allowed)."""
    try:
        return int(text.strip(), 10)
    except ValueError:
        return None


def check_ssl_subopt(name: str, value: str | None) -> None:
    """memcached's checks of one ``-o ssl_*`` option (its messages)."""
    missing = SSL_SUBOPTS[name]
    if missing is None:
        return
    if value is None:
        raise TlsRefused(EXIT_ERROR, missing)
    if name in ("ssl_verify_mode", "ssl_keyformat", "ssl_wbuf_size", "ssl_min_version"):
        n = strtol(value)
        if n is None or (name == "ssl_wbuf_size" and n < 0):
            raise TlsRefused(EXIT_ERROR, f"could not parse argument to {name}")
        if name == "ssl_verify_mode" and n not in SSL_VERIFY:
            raise TlsRefused(EXIT_ERROR, "Invalid ssl_verify_mode. Use help to see valid options.")
        if name == "ssl_min_version" and not 0 <= n <= 3:
            raise TlsRefused(EXIT_ERROR, "Invalid ssl_min_version. Use help to see valid options.")
        if name == "ssl_keyformat" and n != SSL_FILETYPE_PEM:
            raise TlsRefused(
                EX_USAGE,
                f"{PROG}: -o ssl_keyformat={value}: mcpframe reads PEM keys only "
                f"(ssl_keyformat={SSL_FILETYPE_PEM})",
            )


def tls_verify_mode(tls: dict[str, str], modes: set[str]) -> str:
    """``serve --tls-verify`` for -Z's TLS listeners: ``ssl_verify_mode`` for the plain
    ``-l`` entries, none for ``btls:``, require for ``mtls:``; mcpframe has one mode for all
    of them. Refuses what mcpframe cannot serve as memcached would."""
    if "ssl_chain_cert" not in tls:
        # memcached's words when it finds no certificate to load
        raise TlsRefused(
            EX_USAGE,
            "Error loading the certificate chain: (null) : no certificate "
            "(mcpframe: give it with -o ssl_chain_cert=<file>)",
        )
    default = SSL_VERIFY[strtol(tls.get("ssl_verify_mode", "0")) or 0]
    wanted = {default if m == "default" else m for m in modes}
    if len(wanted) > 1:
        raise TlsRefused(
            EX_USAGE,
            f"{PROG}: TLS listeners with different client certificate checks "
            f"({', '.join(sorted(wanted))}): mcpframe has one -o ssl_verify_mode for all "
            "(btls: means 0, mtls: 2)",
        )
    verify = wanted.pop() if wanted else default
    if verify != "none" and "ssl_ca_cert" not in tls:
        raise TlsRefused(
            EX_USAGE,
            f"{PROG}: client certificates are checked ({verify}): mcpframe needs their CAs "
            "in -o ssl_ca_cert=<file>",
        )
    return verify
