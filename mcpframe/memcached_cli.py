"""``mcpframe memcached ARGS...``: memcached 1.6.45's own command line, run as ``serve``.

A service that started ``memcached -o proxy_config=...`` starts mcpframe by changing the
program (``mcpframe memcached`` or the ``mcpframe-memcached`` script) and nothing else. The
options are read the way memcached reads them (glibc ``getopt_long``: clustered short options,
``--long=value``, unique prefixes of long names, options after operands; then ``-o`` split on
``,`` into ``name[=value]``), and each one is:

- taken: ``-p -l -t -m -I -c -P -v``, ``-o proxy_config,proxy_arg``; TLS: ``-Z`` and
  ``-o ssl_chain_cert,ssl_key,ssl_ca_cert,ssl_verify_mode`` become ``serve``'s ``tls:``
  listeners and ``--tls-*`` options (``-l notls:``/``btls:``/``mtls:`` too);
- accepted with one warning line when it means nothing to mcpframe (``-U -R -u``, slab, LRU,
  hash table and extstore tuning...);
- refused with memcached's own message and exit status when memcached would refuse it, or
  when it asks for something mcpframe does not do (``-d``, ``-Y``, SASL).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import typer

from mcpframe import __version__
from mcpframe.cli import ServeSettings, run_serve
from mcpframe.memcached_tls import (
    EX_USAGE,
    EXIT_ERROR,
    PROG,
    SSL_FILETYPE_PEM,
    SSL_SUBOPTS,
    SSL_TAKEN,
    TlsRefused,
    check_ssl_subopt,
    tls_verify_mode,
)

T = TypeVar("T")
#: sysexits' EX_OSERR (PROG, EXIT_ERROR and EX_USAGE: memcached_tls.py).
EX_OSERR = 71

#: Short options, as memcached 1.6.45 declares them (a ``:`` follows those taking a value).
SHORTOPTS = "a:AZp:s:U:m:Mc:khiVrvdl:u:P:f:n:t:D:LR:Cb:B:I:SFXWY:e:o:N:"
#: Long options: name -> (short option, takes a value: 0 no, 1 required, 2 optional).
LONGOPTS: dict[str, tuple[str, int]] = {
    "unix-mask": ("a", 1), "enable-shutdown": ("A", 0), "enable-ssl": ("Z", 0),
    "port": ("p", 1), "unix-socket": ("s", 1), "udp-port": ("U", 1),
    "memory-limit": ("m", 1), "disable-evictions": ("M", 0), "conn-limit": ("c", 1),
    "lock-memory": ("k", 0), "help": ("h", 0), "license": ("i", 0), "version": ("V", 0),
    "enable-coredumps": ("r", 0), "verbose": ("v", 2), "daemon": ("d", 0),
    "listen": ("l", 1), "user": ("u", 1), "pidfile": ("P", 1),
    "slab-growth-factor": ("f", 1), "slab-min-size": ("n", 1), "threads": ("t", 1),
    "enable-largepages": ("L", 0), "max-reqs-per-event": ("R", 1), "disable-cas": ("C", 0),
    "listen-backlog": ("b", 1), "protocol": ("B", 1), "max-item-size": ("I", 1),
    "enable-sasl": ("S", 0), "disable-flush-all": ("F", 0), "disable-dumping": ("X", 0),
    "disable-watch": ("W", 0), "auth-file": ("Y", 1), "memory-file": ("e", 1),
    "extended": ("o", 1), "napi-ids": ("N", 1),
}  # fmt: skip

#: Short options accepted and ignored, with what they are (the warning says it).
IGNORED: dict[str, str] = {
    "A": "the shutdown command",
    "U": "UDP port",
    "M": "no evictions",
    "k": "memory locking",
    "r": "core dump size",
    "u": "user to run as",
    "f": "slab growth factor",
    "n": "slab minimum size",
    "D": "stats prefix delimiter",
    "L": "large memory pages",
    "R": "requests per event",
    "C": "disabling CAS",
    "b": "listen backlog",
    "F": "disabling flush_all",
    "X": "disabling dump commands",
    "W": "disabling watch",
    "e": "memory file",
    "N": "NAPI ids",
}

#: memcached 1.6.45's ``-o`` names (its own, the proxy's and extstore's, plus
#: ``relaxed_privileges`` of debug builds) that mcpframe accepts and ignores, with the message
#: memcached prints when the value is missing (None: the name takes no value, or may omit it).
IGNORED_SUBOPTS: dict[str, str | None] = {
    "maxconns_fast": None,
    "hashpower": "Missing numeric argument for hashpower",
    "no_hashexpand": None,
    "slab_reassign": None,
    "slab_automove": None,
    "slab_automove_ratio": "Missing slab_automove_ratio argument",
    "slab_automove_window": "Missing slab_automove_window argument",
    "tail_repair_time": "Missing numeric argument for tail_repair_time",
    "hash_algorithm": "Missing hash_algorithm argument",
    "lru_crawler": None,
    "lru_crawler_sleep": "Missing lru_crawler_sleep value",
    "lru_crawler_tocrawl": "Missing lru_crawler_tocrawl value",
    "lru_maintainer": None,
    "hot_lru_pct": "Missing hot_lru_pct argument",
    "warm_lru_pct": "Missing warm_lru_pct argument",
    "hot_max_factor": "Missing hot_max_factor argument",
    "warm_max_factor": "Missing warm_max_factor argument",
    "temporary_ttl": "Missing temporary_ttl argument",
    "idle_timeout": "Missing numeric argument for idle_timeout",
    "watcher_logbuf_size": "Missing watcher_logbuf_size argument",
    "worker_logbuf_size": "Missing worker_logbuf_size argument",
    "slab_sizes": None,
    "track_sizes": None,
    "no_inline_ascii_resp": None,
    "inline_ascii_resp": None,
    "modern": None,
    "no_modern": None,
    "no_chunked_items": None,
    "no_slab_reassign": None,
    "no_slab_automove": None,
    "no_maxconns_fast": None,
    "no_lru_crawler": None,
    "no_lru_maintainer": None,
    "no_drop_privileges": None,
    "drop_privileges": None,
    "resp_obj_mem_limit": None,
    "read_buf_mem_limit": "Missing read_buf_mem_limit argument",
    "relaxed_privileges": None,
    "proxy_uring": None,
    "proxy_memprofile": None,
    "ext_page_size": "Missing ext_page_size argument",
    "ext_wbuf_size": "Missing ext_wbuf_size argument",
    "ext_threads": "Missing ext_threads argument",
    "ext_io_depth": "Missing ext_io_depth argument",
    "ext_path": "missing argument to ext_path, ie: ext_path=/d/file:5G",
    "ext_item_size": "Missing ext_item_size argument",
    "ext_item_age": "Missing ext_item_age argument",
    "ext_low_ttl": "Missing ext_low_ttl argument",
    "ext_recache_rate": "Missing ext_recache_rate argument",
    "ext_compact_under": "Missing ext_compact_under argument",
    "ext_drop_under": "Missing ext_drop_under argument",
    "ext_max_sleep": "Missing ext_max_sleep argument",
    "ext_max_frag": "Missing ext_max_frag argument",
    "ext_drop_unread": None,
    "slab_automove_freeratio": "Missing slab_automove_freeratio argument",
}


def _range(low: int, high: int, message: str) -> Callable[[str], str | None]:
    return lambda v: None if low <= atoi(v) <= high else message.format(atoi(v))


def _hashpower(v: str) -> str | None:
    n = atoi(v)
    if n < 12:
        return f"Initial hashtable multiplier of {n} is too low"
    if n > 32:
        return (
            f"Initial hashtable multiplier of {n} is too high\n"
            'Choose a value based on "STAT hash_power_level" from a running instance'
        )
    return None


#: memcached's checks of the values of ``-o`` options mcpframe otherwise ignores: a value
#: memcached refuses is refused with its message (None: the value is fine).
SUBOPT_CHECKS: dict[str, Callable[[str], str | None]] = {
    "hashpower": _hashpower,
    "hash_algorithm": lambda v: (
        None
        if v in ("jenkins", "murmur3", "xxh3")
        else "Unknown hash_algorithm option (jenkins, murmur3, xxh3)"
    ),
    "slab_automove": _range(0, 2, "slab_automove must be between 0 and 2"),
    "slab_automove_window": _range(3, 1800, "slab_automove_window must be > 2 and < 1800"),
    "tail_repair_time": _range(
        10, 2**31 - 1, "Cannot set tail_repair_time to less than 10 seconds"
    ),
    "lru_crawler_sleep": _range(0, 1_000_000, "LRU crawler sleep must be between 0 and 1 second"),
    "hot_lru_pct": _range(1, 79, "hot_lru_pct must be > 1 and < 80"),
    "warm_lru_pct": _range(1, 79, "warm_lru_pct must be > 1 and < 80"),
    "hot_max_factor": lambda v: None if _atof(v) > 0 else "hot_max_factor must be > 0",
    "warm_max_factor": lambda v: None if _atof(v) > 0 else "warm_max_factor must be > 0",
}

#: memcached's slab page (1 MiB) and the default largest slab chunk (half a page).
SLAB_PAGE_SIZE = 1024 * 1024
SLAB_CHUNK_MAX = SLAB_PAGE_SIZE // 2

USAGE = """\
Usage: mcpframe memcached [memcached's options]   (or: mcpframe-memcached ...)
memcached 1.6.45's command line, run as `mcpframe serve`.
Taken:
-p, --port=<num>          TCP port for the -l addresses without one (default: 11211)
-l, --listen=<addr>       interface to listen on (default: INADDR_ANY); repeatable or
                          comma separated: [proto[ascii]:][tag[NAME]: or tag_NAME_:]ip[:port]
-t, --threads=<num>       worker processes (with -o proxy_config; default: 1)
-m, --memory-limit=<num>  internal cache memory in megabytes (default: 64)
-I, --max-item-size=<num> largest value (default: 1m, min: 1k, max: 1024m)
-c, --conn-limit=<num>    client connections at once, per process (default: 1024)
-P, --pidfile=<file>      save PID in <file> (for reload: SIGHUP)
-v, --verbose             verbose (repeat for more)
-o, --extended            comma separated list of extended options:
   - proxy_config:        Lua config files, separated with ':' (routelib: the route
                          library, its config file given as proxy_arg)
   - proxy_arg:           the config's mcp.start_arg
   - ssl_chain_cert:      TLS certificate chain (with -Z)
   - ssl_key:             its private key
   - ssl_ca_cert:         the CAs of client certificates
   - ssl_verify_mode:     0 no client certificate, 1 checked if given, 2 and 3 required
-Z, --enable-ssl          TLS on every -l listener but those spelled notls:
-h, --help                print this help and exit
-V, --version             print version and exit
Accepted and ignored, with a warning: -U -a -A -M -k -r -u -f -n -D -L -R -C -b -B -F -X -W
-e -N, and memcached's other -o options (slab, LRU, hash table, logging buffers, extstore,
ssl_ciphers, ssl_wbuf_size, ssl_session_cache, ssl_kernel_tls, ssl_min_version).
Refused: -d (run mcpframe under a service manager), -Y (authentication), -S (SASL).
"""


class Exit(Exception):
    """Stop with ``code`` after printing ``message`` (memcached's text) on stderr."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def atoi(text: str) -> int:
    """C's ``atoi``: leading blanks, a sign, the digits that follow; 0 when there are none."""
    text = text.lstrip(" \t\n\r\v\f")
    sign = -1 if text[:1] == "-" else 1
    if text[:1] in "+-":
        text = text[1:]
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0


def getopt_long(args: list[str]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """``(option, value)`` pairs and the operands, as glibc's ``getopt_long`` finds them.

    Raises:
        Exit: an unknown, ambiguous or incomplete option, with glibc's message followed by
            memcached's ``Illegal argument "?"``.
    """

    def bad(message: str) -> Exit:
        return Exit(EXIT_ERROR, f'{PROG}: {message}\nIllegal argument "?"')

    opts: list[tuple[str, str | None]] = []
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            operands += args[i:]
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            exact = name in LONGOPTS
            matches = [name] if exact else [n for n in LONGOPTS if n.startswith(name)]
            if not matches:
                raise bad(f"unrecognized option '{arg}'")
            if len(matches) > 1:
                found = " ".join(f"'--{n}'" for n in matches)
                raise bad(f"option '--{name}' is ambiguous; possibilities: {found}")
            full = matches[0]
            short, has_arg = LONGOPTS[full]
            if has_arg == 0 and eq:
                raise bad(f"option '--{full}' doesn't allow an argument")
            if has_arg == 1 and not eq:
                if i >= len(args):
                    raise bad(f"option '--{full}' requires an argument")
                value, eq = args[i], "="
                i += 1
            opts.append((short, value if eq else None))
            continue
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
            continue
        j = 1
        while j < len(arg):
            ch = arg[j]
            j += 1
            pos = SHORTOPTS.find(ch)
            if ch == ":" or pos < 0:
                raise bad(f"invalid option -- '{ch}'")
            if SHORTOPTS[pos + 1 : pos + 2] == ":":
                if j < len(arg):
                    value = arg[j:]
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise bad(f"option requires an argument -- '{ch}'")
                opts.append((ch, value))
                break
            opts.append((ch, None))
    return opts, operands


@dataclass
class Listener:
    """One entry of memcached's ``-l`` list, parsed as memcached 1.6.45 parses it."""

    host: str
    port: int
    tag: str | None = None
    #: TLS (with -Z): None (plain), "default" (-o ssl_verify_mode), "none" (btls:, no client
    #: certificate) or "require" (mtls:, a client certificate required).
    tls: str | None = None

    def serve_spelling(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        tag = f"tag[{self.tag}]:" if self.tag else ""
        tls = "tls:" if self.tls is not None else ""
        return f"{tls}{tag}{host}:{self.port}"


#: memcached's listener prefixes with -Z: (prefix, TLS mode, its name in the error without -Z)
TLS_PREFIXES = (("notls", None, "notls"), ("btls", "none", "btls"), ("mtls", "require", "otls"))


def parse_listeners(inter: str, port: int, ssl: bool = False) -> list[Listener]:
    """memcached's ``server_sockets``: entries split on ``,`` and ``;``, each
    ``[notls:|btls:|mtls:][proto[NAME]:][tag[NAME]:|tag_NAME_:]HOST[:PORT]`` (``*``: every
    interface); with ``ssl`` (-Z) an entry is TLS unless ``notls:``."""

    def refuse(message: str) -> Exit:
        # memcached then reports the whole list with errno, which is still 0 here.
        return Exit(
            EX_OSERR, f"{message}\nfailed to listen on one of interface(s) {inter}: Success"
        )

    out: list[Listener] = []
    for entry in inter.replace(";", ",").split(","):
        if not entry:
            continue
        p = entry
        mode: str | None = "default" if ssl else None
        for prefix, prefix_mode, shown in TLS_PREFIXES:
            if p.startswith(prefix):
                if not ssl:
                    # (sic: memcached names mtls "otls" here)
                    raise refuse(f"'{shown}' option is valid only when SSL is enabled")
                mode, p = prefix_mode, p[len(prefix) + 1 :]
                break
        if p.startswith("proto"):
            p = p[5:]
            if p.startswith("["):
                end = p.find("]")
                if end < 0:
                    raise refuse(f'Invalid protocol spec: "{p}"')
                name, p = p[1:end], p[end + 2 :]
                # memcached compares only len(name) characters, so a prefix names it too.
                if not name or "proxy".startswith(name) or "ascii".startswith(name):
                    pass
                elif "binary".startswith(name) or "negotiating".startswith(name):
                    raise refuse(f'mcpframe serves the ASCII protocol: "{entry}" asks for {name}')
        tag: str | None = None
        if p.startswith("tag") and p[3:4] in ("[", "_"):
            p = p[3:]
            end = p.find("]")
            if end < 0:
                end = p.find("_", 1)
            if end < 0:
                raise refuse(f'Invalid tag in socket config: "{p}"')
            tag, p = p[1:end], p[end + 2 :]
            if not 1 <= len(tag) <= 8:
                raise refuse(f'Listener tags must be between 1 and 8 characters: "{tag}"')
        host: str | None = None
        the_port = port
        if p.startswith("["):
            end = p.find("]")
            if end < 0:
                raise refuse(f'Invalid IPV6 address: "{p}"')
            host, p = p[1:end], p[end + 1 :]
        colon = p.find(":")
        if colon >= 0 and (":" not in p[colon + 1 :] or host is not None):
            port_text = p[colon + 1 :]
            p = p[:colon]
            try:
                the_port = int(port_text.strip())
            except ValueError:
                raise refuse(f'Invalid port number: "{port_text}"') from None
        if host is None:
            host = p
        if host in ("*", ""):
            host = "0.0.0.0"
        out.append(Listener(host, the_port, tag, mode))
    return out


def item_size(text: str) -> int:
    """``-I``: a number of bytes, or with a ``k``/``m`` suffix (either case)."""
    unit = text[-1:]
    if unit in ("k", "K"):
        return atoi(text[:-1]) * 1024
    if unit in ("m", "M"):
        return atoi(text[:-1]) * 1024 * 1024
    return atoi(text)


@dataclass
class Parsed:
    """What memcached's command line asks of mcpframe."""

    settings: ServeSettings
    warnings: list[str] = field(default_factory=list)


def parse(args: list[str]) -> Parsed:
    """memcached's option processing, in its order; the first error stops it (:class:`Exit`).

    ``-h`` and ``-V`` stop it too, with status 0 and their text as the message.
    """
    opts, operands = getopt_long(args)
    warnings: list[str] = []
    port = 11211
    inter: str | None = None
    threads: int | None = None
    memory = 64
    item_size_max = 1024 * 1024
    slab_chunk_max = SLAB_CHUNK_MAX
    chunk_max_set = False
    pid_file: str | None = None
    verbose = 0
    maxconns = 1024
    config: str | None = None
    start_arg: str | None = None
    protocol_specified = False
    protocol = "auto"
    unix_path: str | None = None
    unix_mask = 0o700
    ssl = False
    #: -o ssl_chain_cert, ssl_key, ssl_ca_cert, ssl_verify_mode (as given)
    tls: dict[str, str] = {}
    tls_ignored: list[str] = []

    def ignore(flag: str, value: str | None, what: str) -> None:
        shown = flag if value is None else f"{flag} {value}"
        warnings.append(f"ignoring {shown}: {what} means nothing to mcpframe")

    for opt, optarg in opts:
        value = optarg.lstrip(" \t\n\r\v\f") if optarg is not None else ""
        if opt == "Z":
            ssl = True
            continue
        if opt == "S":
            raise Exit(EX_USAGE, "This server is not built with SASL support.")
        if opt == "s":
            unix_path = value
            continue
        if opt == "a":
            unix_mask = _octal(value)
            continue
        if opt == "d":
            raise Exit(
                EX_USAGE,
                f"{PROG}: -d: mcpframe does not daemonize; run it in the foreground under a "
                "service manager (systemd: Type=simple)",
            )
        if opt == "Y":
            raise Exit(
                EX_USAGE,
                f"{PROG}: -Y {value}: mcpframe has no ASCII authentication; it will not serve "
                "without the authentication this asks for",
            )
        if opt == "h":
            raise Exit(0, USAGE)
        if opt == "V":
            raise Exit(0, f"mcpframe {__version__} (memcached 1.6.45 command line)")
        if opt == "i":
            raise Exit(0, "mcpframe is MIT-licensed; memcached is BSD-licensed.")
        if opt == "p":
            port = atoi(value)
        elif opt == "m":
            memory = atoi(value)
        elif opt == "c":
            maxconns = atoi(value)
            if maxconns <= 0:
                raise Exit(EXIT_ERROR, "Maximum connections must be greater than 0")
        elif opt == "v":
            verbose += 1
        elif opt == "l":
            # memcached skips a -l that is already part of the list (a plain substring test).
            if inter is None:
                inter = value
            elif value not in inter:
                inter = f"{inter},{value}"
        elif opt == "t":
            threads = atoi(value)
            if threads <= 0:
                raise Exit(EXIT_ERROR, "Number of threads must be greater than 0")
            if threads > 64:
                warnings.append(
                    "WARNING: Setting a high number of workerthreads is not recommended.\n"
                    " Set this value to the number of cores in your machine or less."
                )
        elif opt == "P":
            pid_file = value
        elif opt == "R" and atoi(value) <= 0:
            raise Exit(EXIT_ERROR, "Number of requests per event must be greater than 0")
        elif opt == "f" and _atof(value) <= 1.0:
            raise Exit(EXIT_ERROR, "Factor must be greater than 1")
        elif opt == "n" and atoi(value) <= 0:
            raise Exit(EXIT_ERROR, "Chunk size must be greater than 0")
        elif opt == "D" and not value:
            raise Exit(EXIT_ERROR, "No delimiter specified")
        elif opt == "N" and atoi(value) <= 0:
            raise Exit(EXIT_ERROR, "Maximum number of NAPI IDs must be greater than 0")
        elif opt == "B":
            protocol_specified = True
            if value not in ("auto", "binary", "ascii"):
                raise Exit(
                    EX_USAGE,
                    f"Invalid value for binding protocol: {value}\n"
                    " -- should be one of auto, binary, or ascii",
                )
            protocol = value
        elif opt == "I":
            item_size_max = item_size(value)
        elif opt == "o":
            for sub in value.split(","):
                if not sub:
                    continue
                name, eq, subvalue = sub.partition("=")
                if name == "proxy_config":
                    if not eq:
                        raise Exit(EXIT_ERROR, "Missing proxy_config file argument")
                    if protocol_specified:
                        raise Exit(EXIT_ERROR, "Cannot specify a protocol with proxy mode enabled")
                    config = subvalue
                    protocol_specified = True
                elif name == "proxy_arg":
                    start_arg = subvalue
                elif name in SSL_SUBOPTS:
                    _tls(check_ssl_subopt, name, subvalue if eq else None)
                    if name in SSL_TAKEN:
                        tls[name] = subvalue
                    elif not (name == "ssl_keyformat" and atoi(subvalue) == SSL_FILETYPE_PEM):
                        tls_ignored.append(sub)
                elif name == "slab_chunk_max":
                    slab_chunk_max = _slab_chunk_max(subvalue if eq else None)
                    chunk_max_set = True
                elif name in IGNORED_SUBOPTS:
                    missing = IGNORED_SUBOPTS[name]
                    if missing is not None and not eq:
                        raise Exit(EXIT_ERROR, missing)
                    check = SUBOPT_CHECKS.get(name)
                    error = check(subvalue) if check is not None and eq else None
                    if error is not None:
                        raise Exit(EXIT_ERROR, error)
                    warnings.append(f"ignoring -o {sub}: mcpframe has no such setting")
                else:
                    raise Exit(EXIT_ERROR, f'Illegal suboption "{sub}"')
        elif opt in IGNORED:
            ignore(f"-{opt}", optarg, IGNORED[opt])
    for operand in operands:
        warnings.append(f"ignoring {operand!r}: memcached takes no operands")

    # memcached's checks after the options, in its order (same texts, same statuses).
    if item_size_max < 1024:
        raise Exit(EX_USAGE, "Item max size cannot be less than 1024 bytes.")
    if item_size_max > memory * 1024 * 1024 // 2:
        raise Exit(EX_USAGE, "Cannot set item size limit higher than 1/2 of memory max.")
    if item_size_max > 1024 * 1024 * 1024:
        raise Exit(EX_USAGE, "Cannot set item size limit higher than a gigabyte.")
    if item_size_max > 1024 * 1024 and not chunk_max_set:
        slab_chunk_max = SLAB_PAGE_SIZE // 2
    if slab_chunk_max > item_size_max:
        raise Exit(
            EX_USAGE,
            f"slab_chunk_max (bytes: {slab_chunk_max}) cannot be larger than -I "
            f"(item_size_max {item_size_max})",
        )
    if item_size_max % slab_chunk_max:
        raise Exit(
            EX_USAGE,
            f"-I (item_size_max: {item_size_max}) must be evenly divisible by "
            f"slab_chunk_max (bytes: {slab_chunk_max})",
        )
    if SLAB_PAGE_SIZE % slab_chunk_max:
        raise Exit(
            EX_USAGE,
            f"slab_chunk_max (bytes: {slab_chunk_max}) must divide evenly into "
            f"{SLAB_PAGE_SIZE} (slab_page_size)",
        )

    if config is not None and not config.strip(":"):
        # memcached loads an empty file name, which defines nothing.
        raise Exit(EXIT_ERROR, "ERROR: Configuration file missing 'mcp_config_pools' function")
    tls_verify = "none"
    if unix_path is not None:
        # memcached listens on the unix socket instead of TCP ("disables network support"),
        # and without TLS.
        listen = [f"unix:{unix_path}:{unix_mask:04o}"]
    elif port == 0:
        raise Exit(EX_USAGE, f"{PROG}: -p 0: memcached then opens no TCP port; nor would mcpframe")
    else:
        interfaces = inter if inter is not None else "*"
        listeners = parse_listeners(interfaces, port, ssl)
        listen = [x.serve_spelling() for x in listeners]
        if ssl:
            modes = {x.tls for x in listeners if x.tls is not None}
            tls_verify = _tls(tls_verify_mode, tls, modes)
    for sub in tls_ignored:
        warnings.append(f"ignoring -o {sub}: mcpframe has no such TLS setting")
    if not ssl and tls:
        warnings.append(
            "ignoring -o "
            + ",".join(f"{k}={v}" for k, v in tls.items())
            + ": without -Z there is no TLS"
        )
        tls = {}
    paths = tuple(p for p in (config or "").split(":") if p)
    workers = threads or 1
    if not paths and workers > 1:
        warnings.append(
            f"ignoring -t {workers}: without -o proxy_config the internal cache runs in one process"
        )
        workers = 1
    settings = ServeSettings(
        config=paths,
        start_arg=start_arg,
        listen=listen,
        memory=max(memory, 1),
        max_item_size=item_size_max,
        workers=workers,
        pid_file=Path(pid_file) if pid_file else None,
        verbose=verbose,
        max_connections=maxconns,
        protocol=protocol,
        tls_cert=Path(tls["ssl_chain_cert"]) if "ssl_chain_cert" in tls else None,
        tls_key=Path(tls["ssl_key"]) if "ssl_key" in tls else None,
        tls_ca=Path(tls["ssl_ca_cert"]) if "ssl_ca_cert" in tls else None,
        tls_verify=tls_verify,
    )
    return Parsed(settings, warnings)


def _tls(check: Callable[..., T], *args: object) -> T:
    """A check of memcached_tls.py, its refusal turned into memcached's exit."""
    try:
        return check(*args)
    except TlsRefused as e:
        raise Exit(e.code, e.message) from None


def _octal(text: str) -> int:
    """C's ``strtol(text, NULL, 8)``, as memcached reads ``-a``: leading octal digits, else 0."""
    text = text.strip()
    end = 0
    while end < len(text) and text[end] in "01234567":
        end += 1
    return int(text[:end], 8) if end else 0


def _atof(text: str) -> float:
    """C's ``atof`` for the forms memcached's options use (a leading decimal number)."""
    text = text.strip()
    end = 0
    while end < len(text) and (text[end].isdigit() or text[end] in ".+-eE"):
        end += 1
    for stop in range(end, 0, -1):
        try:
            return float(text[:stop])
        except ValueError:
            continue
    return 0.0


def _slab_chunk_max(value: str | None) -> int:
    if value is None:
        raise Exit(EXIT_ERROR, "Missing slab_chunk_max argument")
    try:
        kb = int(value.strip())
    except ValueError:
        raise Exit(EXIT_ERROR, "could not parse argument to slab_chunk_max") from None
    if kb <= 0:
        raise Exit(EXIT_ERROR, "slab_chunk_max must be >= 0")
    if kb > 1024:
        raise Exit(EXIT_ERROR, "slab_chunk_max must be specified in kilobytes.")
    return kb * 1024


def run(args: list[str], warn: Callable[[str], None] | None = None) -> None:
    """Parse memcached's ``args`` and serve; exits as memcached would on a bad one."""
    from mcpframe.proxy.workers import worker_index

    def to_stderr(line: str) -> None:
        sys.stderr.write(f"{PROG}: {line}\n")

    try:
        parsed = parse(args)
    except Exit as e:
        stream = sys.stdout if e.code == 0 else sys.stderr
        if e.message:
            stream.write(e.message if e.message.endswith("\n") else e.message + "\n")
            stream.flush()
        raise SystemExit(e.code) from None
    if worker_index() is None:  # each worker parses the same line again: warn once
        for line in parsed.warnings:
            (warn or to_stderr)(line)
        sys.stderr.flush()
    try:
        run_serve(parsed.settings)
    except typer.Exit as e:  # outside a typer app (the script), nothing else catches it
        raise SystemExit(e.exit_code) from None


def main() -> None:
    """The ``mcpframe-memcached`` script: ``mcpframe memcached`` under its own name, so a
    service file changes only the program it starts."""
    # --workers starts each worker as ``python -m mcpframe <argv[1:]>``: spell it that way.
    sys.argv = [sys.argv[0], "memcached", *sys.argv[1:]]
    run(sys.argv[2:])
