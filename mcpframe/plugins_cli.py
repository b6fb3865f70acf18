"""``mcpframe plugins ...``: what is installed, what loaded, what failed and why.

The main CLI mounts this sub-app with ``main_app.add_typer(plugins_cli.app, name="plugins")``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mcpframe.errors import PluginError
from mcpframe.registry import Registry, build_registry
from mcpframe.types import PluginKind

__all__ = ["COLUMNS", "app", "plugin_rows"]

app = typer.Typer(help="Inspect mcpframe plugins.", no_args_is_help=True)

COLUMNS = ("name", "kind", "lua_name", "package", "version", "status")
"""The table columns; ``--json`` objects carry these keys plus ``entry_point``, ``error`` and
``description``."""

_HEADERS = ("NAME", "KIND", "LUA NAME", "PACKAGE", "VERSION", "STATUS")


@app.callback()
def plugins() -> None:
    """Inspect mcpframe plugins."""


def plugin_rows(registry: Registry) -> list[dict[str, str | None]]:
    """One row per record provided (status ``ok``), then per failed and disabled plugin.

    A failed or disabled plugin never ran, so what it would provide is unknown: its row carries
    the entry-point name, kind ``-`` and the error or the switch that kept it out.
    """
    aliases: dict[str, list[str]] = {}
    for dist in registry.distributions.values():
        if dist.key_hasher is not None:
            aliases.setdefault(dist.key_hasher, []).append(f"mcp.dist_{dist.name}.hash")
    rows: list[dict[str, str | None]] = []
    for kind in PluginKind:
        table = registry.table(kind)
        for name, record in table.items():
            source = table.source(name)
            # A hasher may also be published as a distribution's .hash (md5 is both
            # mcp.hash_md5 and mcp.dist_ring_hash.hash).
            lua_name = ", ".join([kind.lua_name(name), *aliases.get(name, ())])
            rows.append(
                {
                    "name": name,
                    "kind": kind.value,
                    "lua_name": lua_name,
                    "package": source.package,
                    "version": source.version,
                    "status": "ok",
                    "entry_point": source.entry_point,
                    "error": None,
                    "description": record.description,
                }
            )
    for error in registry.failed:
        tried = registry.sources.get(error.plugin)
        rows.append(
            {
                "name": error.plugin,
                "kind": "-",
                "lua_name": "-",
                "package": error.package,
                "version": tried.version if tried else "",
                "status": "failed",
                "entry_point": error.plugin,
                "error": error.cause,
                "description": "",
            }
        )
    for disabled in registry.disabled:
        s = disabled.source
        rows.append(
            {
                "name": s.entry_point,
                "kind": "-",
                "lua_name": "-",
                "package": s.package,
                "version": s.version,
                "status": "disabled",
                "entry_point": s.entry_point,
                "error": disabled.reason,
                "description": "",
            }
        )
    return rows


def _table(rows: list[dict[str, str | None]]) -> str:
    cells = [list(_HEADERS)]
    for row in rows:
        line = [row[c] or "" for c in COLUMNS]
        if row["error"]:
            line[-1] = f"{row['status']}: {row['error']}"
        cells.append(line)
    # The status column, last, is not padded: an error message may be long.
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]])
        for line in cells
    )


@app.command("list")
def list_plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list for scripts.")] = False,
) -> None:
    """List every plugin: built-ins, third-party, failed and disabled ones."""
    try:
        registry = build_registry()
    except PluginError as exc:  # a conflict, or mcpframe itself not installed
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    rows = plugin_rows(registry)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        typer.echo(_table(rows))
