"""The `mcpframe` command: the only entry point for users."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mcpframe import __version__, check_cli, plugins_cli
from mcpframe.errors import ConfigError, PluginError, ServeError

if TYPE_CHECKING:
    from mcpframe.config import ConfigSource
    from mcpframe.proxy.server import ServerOptions
    from mcpframe.registry import Registry

app = typer.Typer(
    name="mcpframe",
    help="A memcached proxy with Lua routes (memcached 1.6.20's and 1.6.45's proxy APIs) and "
    "plugins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Protocol(StrEnum):
    """``serve --protocol``: memcached's ``-B`` choices."""

    auto = "auto"
    ascii = "ascii"
    binary = "binary"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mcpframe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """A memcached proxy with Lua routes and plugins."""


def _fail(message: str) -> None:
    typer.echo(f"mcpframe: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def serve(
    config: Annotated[
        list[str] | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE[:FILE...]",
            help="Lua config file (memcached proxy API); repeatable, or a ':' list: the files "
            "run in order in each Lua VM.",
        ),
    ] = None,
    start_arg: Annotated[
        str | None,
        typer.Option(
            "--start-arg",
            metavar="ARG",
            help="Seen by the config as mcp.start_arg (memcached's -o proxy_arg).",
        ),
    ] = None,
    routelib: Annotated[
        str | None,
        typer.Option(
            "--routelib",
            metavar="FILE",
            help="A route library config (settings{}, pools{}, routes{}: docs/routelib.md); "
            "memcached's -o proxy_config=routelib,proxy_arg=FILE. --config files given too "
            "run after the library (handlers written in Lua).",
        ),
    ] = None,
    listen: Annotated[
        list[str] | None,
        typer.Option(
            "--listen",
            "-l",
            help="HOST:PORT[:TAG] or unix:PATH[:MODE][:TAG] (MODE in octal, default 0700) "
            "to listen on, after tls: for TLS clients; repeatable. [default: 127.0.0.1:11211]",
        ),
    ] = None,
    memory: Annotated[
        int, typer.Option("--memory", "-m", min=1, help="Internal cache size in megabytes.")
    ] = 64,
    max_item_size: Annotated[
        int,
        typer.Option("--max-item-size", "-I", min=1024, help="Largest value accepted, in bytes."),
    ] = 1024 * 1024,
    logger: Annotated[
        list[str] | None,
        typer.Option("--logger", help="Logger plugin NAME[:ARG]; repeatable. [default: stderr]"),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-t",
            min=1,
            help="Worker processes sharing the listeners (TCP: SO_REUSEPORT; unix sockets: "
            "bound once, inherited).",
        ),
    ] = 1,
    pid_file: Annotated[
        Path | None, typer.Option("--pid-file", help="Write the process id here (for reload).")
    ] = None,
    drain_timeout: Annotated[
        float,
        typer.Option(
            "--drain-timeout", min=0, help="Seconds to finish in-flight requests on stop."
        ),
    ] = 5.0,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            min=0,
            help="Client connections at once, per process; more are refused as memcached's "
            "-c refuses them (0: no limit).",
        ),
    ] = 0,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            metavar="HOST:PORT",
            help="Serve Prometheus metrics on http://HOST:PORT/metrics (one endpoint for all "
            "workers).",
        ),
    ] = None,
    protocol: Annotated[
        Protocol,
        typer.Option(
            "--protocol",
            "-B",
            help="What clients speak: auto (from each connection's first byte), ascii, binary.",
        ),
    ] = Protocol.auto,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            dir_okay=False,
            help="Certificate chain (PEM) of the tls: listeners (memcached's ssl_chain_cert).",
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-key", dir_okay=False, help="Its private key, unless in --tls-cert (ssl_key)."
        ),
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(
            "--tls-ca",
            dir_okay=False,
            help="CA certificates (PEM) client certificates are checked against (ssl_ca_cert).",
        ),
    ] = None,
    tls_verify: Annotated[
        str,
        typer.Option(
            "--tls-verify",
            metavar="none|request|require",
            help="Client certificates: not asked for, checked if sent, or required "
            "(ssl_verify_mode 0, 1, 2).",
        ),
    ] = "none",
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging.")] = 0,
) -> None:
    """Run the proxy (with no --config: a memcached-compatible cache)."""
    paths = config_paths(config or [])
    if routelib is not None:
        if start_arg is not None:
            _fail("--routelib FILE is the start argument: give --start-arg without --routelib")
        if not Path(routelib).is_file():
            _fail(f"routelib config file not found: {routelib}")
        paths, start_arg = ("routelib", *paths), routelib
    run_serve(
        ServeSettings(
            config=paths,
            start_arg=start_arg,
            listen=listen or ["127.0.0.1:11211"],
            memory=memory,
            max_item_size=max_item_size,
            logger=logger,
            workers=workers,
            pid_file=pid_file,
            drain_timeout=drain_timeout,
            max_connections=max_connections,
            metrics=metrics,
            protocol=protocol.value,
            verbose=verbose,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_ca=tls_ca,
            tls_verify=tls_verify,
        )
    )


def config_paths(values: list[str]) -> tuple[str, ...]:
    """``--config`` values: each may be a ``:`` list, as memcached's ``proxy_config``."""
    return tuple(path for value in values for path in value.split(":") if path)


@dataclass
class ServeSettings:
    """What ``serve`` runs with, from its own options or from memcached's (``memcached``)."""

    config: tuple[str, ...] = ()
    start_arg: str | None = None
    listen: list[str] = field(default_factory=lambda: ["127.0.0.1:11211"])
    memory: int = 64
    max_item_size: int = 1024 * 1024
    logger: list[str] | None = None
    workers: int = 1
    pid_file: Path | None = None
    drain_timeout: float = 5.0
    max_connections: int = 0
    metrics: str | None = None
    #: ``auto``, ``ascii`` or ``binary`` (``--protocol``, memcached's ``-B``).
    protocol: str = "auto"
    verbose: int = 0
    #: the tls: listeners' certificate, key, client CAs and verification (none, request,
    #: require: memcached's ssl_verify_mode 0, 1, 2 and 3).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    tls_verify: str = "none"


def run_serve(settings: ServeSettings) -> None:
    """Build and run the proxy (or, with several workers, their supervisor)."""
    from mcpframe.config import ConfigSource
    from mcpframe.proxy import app as assembly
    from mcpframe.proxy.server import ServerOptions, parse_listen
    from mcpframe.proxy.tls import tls_server_options
    from mcpframe.proxy.workers import worker_index
    from mcpframe.registry import build_registry

    try:
        listens = [parse_listen(x) for x in settings.listen]
        is_worker = worker_index() is not None
        pid_file = settings.pid_file
        options = ServerOptions(
            listens=listens,
            memory_mb=settings.memory,
            max_item_size=settings.max_item_size,
            verbose=settings.verbose,
            pid_file=None if is_worker or pid_file is None else str(pid_file),
            drain_timeout=settings.drain_timeout,
            reuse_port=is_worker,
            max_connections=settings.max_connections,
            protocol=settings.protocol,
            tls=tls_server_options(
                None if settings.tls_cert is None else str(settings.tls_cert),
                None if settings.tls_key is None else str(settings.tls_key),
                None if settings.tls_ca is None else str(settings.tls_ca),
                settings.tls_verify,
            ),
        )
        config = ConfigSource(settings.config, settings.start_arg) if settings.config else None
        if settings.workers > 1 and config is None:
            _fail(
                "--workers needs --config: the embedded cache lives in one process "
                "(run it with --workers 1)"
            )
        registry = build_registry()
        events = assembly.event_log(registry, settings.logger)
        for path in settings.config:
            if path != "routelib" and not Path(path).is_file():
                _fail(f"config file not found: {path}")
        metrics_address = None
        if settings.metrics is not None:
            from mcpframe.proxy.metrics import parse_metrics_address

            # a bad address fails before anything starts
            metrics_address = parse_metrics_address(settings.metrics)
        server = assembly.build_server(options, config, registry, events)
        if config is not None and settings.workers > 1 and not is_worker:
            _supervise(settings.workers, options, config, registry, metrics_address)
            return
        assembly.run(server, settings.metrics)
    except (ConfigError, PluginError, ServeError) as e:
        _fail(str(e))


app.command(name="check")(check_cli.check)


@app.command(
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
)
def memcached(ctx: typer.Context) -> None:
    """Run the proxy from memcached's own command line (-p, -l, -t, -o proxy_config=...)."""
    from mcpframe import memcached_cli

    memcached_cli.run(list(ctx.args))


def _supervise(
    count: int,
    options: ServerOptions,
    config: ConfigSource,
    registry: Registry,
    metrics: tuple[str, int] | None = None,
) -> None:
    from mcpframe.proxy.app import load_config
    from mcpframe.proxy.listeners import UnixSocketFile
    from mcpframe.proxy.workers import Supervisor, probe_listen, worker_argv

    tcp = [x for x in options.listens if not x.is_unix]
    try:
        probe_listen((x.host, x.port) for x in tcp)
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        _fail(f"cannot listen on {tcp[0]}: {reason.lower()}")
    if metrics is not None:  # every worker listens there too (SO_REUSEPORT)
        try:
            probe_listen([metrics])
        except OSError as e:
            reason = os.strerror(e.errno) if e.errno else str(e)
            _fail(f"cannot listen for metrics on {metrics[0]}:{metrics[1]}: {reason.lower()}")
    # Unix sockets: bound once here, inherited by every worker (proxy/listeners.py).
    sockets: list[UnixSocketFile] = []
    try:
        for listen in options.listens:
            if listen.is_unix:
                sockets.append(UnixSocketFile(listen))
    except ServeError as e:
        for made in sockets:
            made.sock.close()
            made.remove()
        _fail(str(e))

    def validate() -> str | None:
        try:
            load_config(config, registry)
        except (ConfigError, PluginError) as e:
            return str(e)
        return None

    def log(message: str) -> None:
        sys.stderr.write(f"mcpframe: {message}\n")
        sys.stderr.flush()

    listens = ", ".join(str(x) for x in options.listens)
    log(f"{__version__} supervising {count} workers on {listens}: config {config.label}")
    if options.pid_file:
        Path(options.pid_file).write_text(f"{os.getpid()}\n")
    unix_fds = {made.path: made.sock.fileno() for made in sockets}
    try:
        code = Supervisor(
            count, worker_argv(), validate, log, options.drain_timeout, unix_fds
        ).run()
    finally:
        for made in sockets:
            made.sock.close()
            made.remove()
        if options.pid_file:
            Path(options.pid_file).unlink(missing_ok=True)
    raise typer.Exit(code)


@app.command()
def reload(
    pid_file: Annotated[
        Path, typer.Option("--pid-file", help="The pid file given to `serve --pid-file`.")
    ],
) -> None:
    """Ask a running mcpframe to reload its config (sends SIGHUP)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError) as e:
        _fail(f"cannot read a pid from {pid_file}: {e}")
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        _fail(f"no process {pid} (from {pid_file}): is mcpframe running?")
    typer.echo(f"sent SIGHUP to {pid}")


app.add_typer(plugins_cli.app, name="plugins")


def main() -> None:
    app()
