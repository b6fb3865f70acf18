"""The `mcpframe` command: the only entry point for users."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mcpframe import __version__, check_cli, plugins_cli
from mcpframe.errors import ConfigError, PluginError, ServeError

if TYPE_CHECKING:
    from mcpframe.proxy.server import ServerOptions
    from mcpframe.registry import Registry

app = typer.Typer(
    name="mcpframe",
    help="A memcached proxy with Lua routes (memcached 1.6.20's proxy API) and plugins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
        Path | None,
        typer.Option(
            "--config", "-c", help="Lua routes file (memcached proxy API).", dir_okay=False
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
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            metavar="HOST:PORT",
            help="Serve Prometheus metrics on http://HOST:PORT/metrics (one endpoint for all "
            "workers).",
        ),
    ] = None,
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
    from mcpframe.proxy import app as assembly
    from mcpframe.proxy.server import ServerOptions, parse_listen
    from mcpframe.proxy.tls import tls_server_options
    from mcpframe.proxy.workers import worker_index
    from mcpframe.registry import build_registry

    try:
        listens = [parse_listen(x) for x in (listen or ["127.0.0.1:11211"])]
        is_worker = worker_index() is not None
        options = ServerOptions(
            listens=listens,
            memory_mb=memory,
            max_item_size=max_item_size,
            verbose=verbose,
            pid_file=None if is_worker or pid_file is None else str(pid_file),
            drain_timeout=drain_timeout,
            reuse_port=is_worker,
            tls=tls_server_options(
                None if tls_cert is None else str(tls_cert),
                None if tls_key is None else str(tls_key),
                None if tls_ca is None else str(tls_ca),
                tls_verify,
            ),
        )
        if workers > 1 and config is None:
            _fail(
                "--workers needs --config: the embedded cache lives in one process "
                "(run it with --workers 1)"
            )
        registry = build_registry()
        events = assembly.event_log(registry, logger)
        if config is not None and not config.is_file():
            _fail(f"config file not found: {config}")
        metrics_address = None
        if metrics is not None:
            from mcpframe.proxy.metrics import parse_metrics_address

            # a bad address fails before anything starts
            metrics_address = parse_metrics_address(metrics)
        server = assembly.build_server(options, config, registry, events)
        if config is not None and workers > 1 and not is_worker:
            _supervise(workers, options, config, registry, metrics_address)
            return
        assembly.run(server, metrics)
    except (ConfigError, PluginError, ServeError) as e:
        _fail(str(e))


app.command(name="check")(check_cli.check)


def _supervise(
    count: int,
    options: ServerOptions,
    config: Path,
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
    log(f"{__version__} supervising {count} workers on {listens}: config {config}")
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
