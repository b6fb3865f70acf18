"""The `mcpframe` command: the only entry point for users."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from mcpframe import __version__
from mcpframe.errors import ConfigError, McpframeError, PluginError, ServeError

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
            help="HOST:PORT[:TAG] to listen on; repeatable. [default: 127.0.0.1:11211]",
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
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging.")] = 0,
) -> None:
    """Run the proxy (with no --config: a memcached-compatible cache)."""
    from mcpframe.proxy.server import ServerOptions, parse_listen

    try:
        listens = [parse_listen(x) for x in (listen or ["127.0.0.1:11211"])]
        options = ServerOptions(
            listens=listens, memory_mb=memory, max_item_size=max_item_size, verbose=verbose
        )
        registry = _registry()
        events = _events(registry, logger)
        loaded = None
        if config is not None:
            from mcpframe.lua.config import ConfigLoader

            if not config.is_file():
                _fail(f"config file not found: {config}")
            loaded = ConfigLoader(registry).load(str(config))
        _run(options, loaded, events)
    except (ConfigError, PluginError, ServeError) as e:
        _fail(str(e))
    except McpframeError as e:  # pragma: no cover - every subclass is handled above
        _fail(str(e))


def _registry() -> object:
    from mcpframe.registry import build_registry

    return build_registry()


def _events(registry: object, specs: list[str] | None) -> object:
    from mcpframe.proxy.events import DEFAULT_SINK_STREAMS, EventLog

    sinks = []
    for spec in specs or ["stderr"]:
        name, _, arg = spec.partition(":")
        sinks.append((registry.loggers[name].build(arg), DEFAULT_SINK_STREAMS))  # type: ignore[attr-defined]
    return EventLog(sinks)


def _run(options: object, loaded: object, events: object) -> None:
    from mcpframe.proxy.server import ProxyServer

    runner: Callable[[Coroutine[Any, Any, None]], None]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        runner = asyncio.run
    server = ProxyServer(options, loaded, events)  # type: ignore[arg-type]
    listens = ", ".join(str(x) for x in server.options.listens)
    mode = f"config {loaded.path}" if loaded is not None else "embedded cache (no config)"  # type: ignore[attr-defined]
    sys.stderr.write(f"mcpframe {__version__} listening on {listens}: {mode}\n")
    sys.stderr.flush()
    runner(server.serve_forever())


def _mount_plugins() -> None:
    from mcpframe import plugins_cli

    app.add_typer(plugins_cli.app, name="plugins")


def main() -> None:
    _mount_plugins()
    app()
