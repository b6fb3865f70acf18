"""``mcpframe check CONFIG [--key K ...]``: load a config the way ``serve`` does, without serving.

It prints what the config built: each pool (its backends, dist, hasher, filter and seed), the
routes attached (by listener tag, which commands, and the Lua function that handles them), the
route tree of an API v2 or route library config (``routelib_tree.py``), and for each ``--key``
the backend it lands on in every pool, through the same filter, hasher and dist as ``serve``.
Any error (a missing file, a Lua error with file and line, an unknown or failed plugin, a key
that cannot be placed) is printed to stderr and the exit status is 1.

The main CLI registers :func:`check` as its ``check`` command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mcpframe.protocol.replies import KEY_MAX_LENGTH

if TYPE_CHECKING:
    from mcpframe.config import LoadedConfig, LuaObject, PoolSpec
    from mcpframe.registry import Registry

__all__ = ["check", "describe"]

# Shown elsewhere in a pool's description, so left out of its "options" line.
_POOL_FIELDS = frozenset({"dist", "hash", "seed", "filter", "filter_conf"})


class CheckFailed(Exception):
    """A problem that makes ``check`` exit with status 1; the message is for the operator."""


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "backslashreplace")


def _command_groups() -> tuple[dict[int, str], frozenset[int], frozenset[int]]:
    from mcpframe.config import ROUTABLE
    from mcpframe.protocol import commands as c

    # What mcp.CMD_ANY and mcp.CMD_ANY_STORAGE attach (mn is never attached), as the loader
    # keeps them: the hooks of the commands that can reach a route.
    return c.NAMES, ROUTABLE, c.KEYED


def _describe_pool(
    name: str, pool: PoolSpec, registry: Registry, where: str | None = None
) -> dict[str, Any]:
    seed = None
    if pool.seed is not None:
        seed = {"string": _text(pool.seed), "value": registry.hashers["xxhash"].hash(pool.seed, 0)}
    return {
        "name": name,
        "where": where or pool.where,
        "dist": pool.dist,
        "hash": pool.hash,
        "filter": pool.filter,
        "filter_conf": _text(pool.filter_conf),
        "seed": seed,
        "options": {k: v for k, v in sorted(pool.options.items()) if k not in _POOL_FIELDS},
        "backends": [
            {"index": i, "label": b.label, "host": b.host, "port": b.port}
            for i, b in enumerate(pool.backends)
        ],
    }


class _LuaView:
    """What ``check`` reads of route functions in the route VM: where a function was written,
    and an identity for each function or function generator (Python's wrappers of one Lua
    value are not equal)."""

    def __init__(self, loaded: LoadedConfig) -> None:
        lua = loaded.routes.lua
        try:
            # `source` is "@" + the chunk name, the path as given: unlike `short_src`, it is
            # never shortened with "..." (Lua cuts short_src at 60 bytes).
            # An API v2 function generator (or router) is named by its `n` (fgen:ready).
            self._where: LuaObject | None = lua.execute(
                b"return function(f) "
                b"if type(f) == 'table' then return (f._router and 'router ' or 'funcgen ') "
                b".. tostring(f._name) end "
                b"local i = debug.getinfo(f, 'S') "
                b"local src = i.source:sub(1, 1) == '@' and i.source:sub(2) or i.short_src "
                b"return src .. ':' .. i.linedefined end"
            )
        except Exception:  # a runtime without the debug library: no locations, still a report
            self._where = None
        try:
            self._ident: LuaObject | None = lua.execute(
                b"return function(v) return string.format('%p', v) end"
            )
        except Exception:
            self._ident = None

    def where(self, fn: LuaObject) -> str:
        if self._where is None:
            return "?"
        try:
            value = self._where(fn)
        except Exception:
            return "?"
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    def ident(self, fn: LuaObject) -> str:
        """The same string for the same Lua value (where it was written, without Lua)."""
        if self._ident is not None:
            try:
                return str(self._ident(fn))
            except Exception:
                pass
        return self.where(fn)


def _attachments(loaded: LoadedConfig, view: _LuaView) -> list[dict[str, Any]]:
    """What each listener tag has attached: per route function (or function generator), the
    commands it takes, in tag order, then command order."""
    names, every, storage = _command_groups()
    out = []
    for tag in sorted(loaded.routes.hooks):
        groups: dict[str, dict[str, Any]] = {}
        for code, fn in sorted(loaded.routes.hooks[tag].items()):
            key = view.ident(fn)
            if key not in groups:
                groups[key] = {"tag": tag or None, "fn": fn, "codes": []}
            groups[key]["codes"].append(code)
        for group in groups.values():
            attached = frozenset(group["codes"])
            group["group"] = None
            if attached == every:
                group["group"] = "CMD_ANY"
            elif attached == storage:
                group["group"] = "CMD_ANY_STORAGE"
            group["commands"] = [names.get(code, str(code)) for code in group["codes"]]
            out.append(group)
    return out


def _commands_label(attached: dict[str, Any]) -> str:
    if attached["group"]:
        return f"{attached['group']} ({len(attached['commands'])} commands)"
    return " ".join(attached["commands"])


def _describe_routes(
    loaded: LoadedConfig, view: _LuaView, attachments: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    routes = loaded.routes
    # Pass-through routes (`return pool(r)`) run without Lua per request: say to which pool.
    pool_names = {id(spec): name for name, spec in loaded.named_pools().items()}

    def passthrough(fn: LuaObject) -> str | None:
        index = routes.passthrough_pools(fn)
        if not isinstance(index, int) or not 0 <= index < len(loaded.pools):
            return None
        return pool_names.get(id(loaded.pools[index]), f"#{index}")

    return [
        {
            "tag": a["tag"],
            "group": a["group"],
            "commands": a["commands"],
            "function": view.where(a["fn"]),
            "passthrough": passthrough(a["fn"]),
        }
        for a in attachments
    ]


def _place(key: str, pools: dict[str, PoolSpec]) -> dict[str, Any]:
    raw = key.encode("utf-8", "surrogateescape")
    if not raw or len(raw) > KEY_MAX_LENGTH or any(b <= 32 or b == 127 for b in raw):
        return {
            "key": key,
            "error": f"not a memcached key: 1 to {KEY_MAX_LENGTH} bytes, no spaces or "
            f"control characters (got {len(raw)} bytes)",
        }
    placed: dict[str, Any] = {}
    for name, pool in pools.items():
        try:
            index = pool.select(raw)
        except Exception as exc:
            placed[name] = {"error": f"{pool.where}: {exc}"}
            continue
        backend = pool.backends[index]
        placed[name] = {
            "index": index,
            "label": backend.label,
            "host": backend.host,
            "port": backend.port,
        }
    return {"key": key, "pools": placed}


def describe(path: Path | str, keys: list[str], start_arg: str | None = None) -> dict[str, Any]:
    """Load ``path`` (one file, or several as a ``:`` list, as ``serve --config``) with
    ``start_arg`` against the installed plugins and describe it (what ``--json`` prints).

    Raises:
        CheckFailed: a file is missing, a plugin conflicts, or the config does not load.
    """
    from mcpframe.config import ConfigSource
    from mcpframe.errors import McpframeError
    from mcpframe.proxy.app import load_config
    from mcpframe.registry import build_registry

    paths = tuple(p for p in str(path).split(":") if p)
    for one in paths:
        if one != "routelib" and not Path(one).is_file():
            raise CheckFailed(f"{one}: config file not found")
    try:
        registry = build_registry()
        loaded = load_config(ConfigSource(paths, start_arg), registry)
    except McpframeError as exc:
        raise CheckFailed(str(exc)) from None
    except Exception as exc:  # a plugin raising something unexpected while a pool is built
        raise CheckFailed(f"{path}: {type(exc).__name__}: {exc}") from None
    from mcpframe.routelib_tree import describe_routelib, describe_v2, pool_sources

    pools = loaded.named_pools()
    sources = pool_sources(loaded)
    view = _LuaView(loaded)
    attachments = _attachments(loaded, view)
    routelib = describe_routelib(loaded, keys)
    v2 = None
    if routelib is None:  # (a route library config's tree says what its funcgens are)
        v2 = describe_v2(
            loaded,
            [{**a, "label": _commands_label(a)} for a in attachments],
            keys,
            view.where,
            view.ident,
        )
    return {
        "config": str(path),
        "routelib": routelib,
        "v2": v2,
        "pools": [
            _describe_pool(name, pool, registry, sources.get(name)) for name, pool in pools.items()
        ],
        "routes": _describe_routes(loaded, view, attachments),
        "keys": [_place(key, pools) for key in keys],
        "failed_plugins": [str(error) for error in registry.failed],
    }


def _key_errors(report: dict[str, Any]) -> list[str]:
    errors = []
    for placed in report["keys"]:
        if "error" in placed:
            errors.append(f"key {placed['key']!r}: {placed['error']}")
            continue
        for pool, where in placed["pools"].items():
            if "error" in where:
                errors.append(f"key {placed['key']!r} in pool {pool}: {where['error']}")
    return errors


def _lua_value(value: object) -> str:
    """An option value as it was written in Lua: ``true``, ``160``, ``ketama``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _render(report: dict[str, Any]) -> str:
    lines = [f"config {report['config']}: loaded"]
    for pool in report["pools"]:
        seed = "-"
        if pool["seed"] is not None:
            seed = f"{pool['seed']['string']!r} ({pool['seed']['value']})"
        options = " ".join(f"{k}={_lua_value(v)}" for k, v in pool["options"].items())
        lines += [
            "",
            f"pool {pool['name']}  ({pool['where']})",
            f"  dist      {pool['dist']}",
            f"  hash      {pool['hash']}",
            f"  filter    {pool['filter'] or '-'}"
            + (f" {pool['filter_conf']!r}" if pool["filter"] else ""),
            f"  seed      {seed}",
        ]
        if options:
            lines.append(f"  options   {options}")
        lines.append(f"  backends  {len(pool['backends'])}")
        for b in pool["backends"]:
            lines.append(f"    {b['index']:>3}  {b['label']}  {b['host']}:{b['port']}")
    lines += ["", "routes"]
    if not report["routes"]:
        lines.append("  (none attached: every command is answered by the internal cache)")
    for route in report["routes"]:
        tag = f"tag {route['tag']}" if route["tag"] else "untagged"
        commands = _commands_label(route)
        target = route["function"]
        if route["passthrough"] is not None:
            target += f" (pass-through: pool {route['passthrough']})"
        lines.append(f"  {tag}: {commands} -> {target}")
    trees = report.get("routelib") or report.get("v2")
    if trees:
        from mcpframe.routelib_tree import render_tree

        lines += render_tree(trees)
    if report["keys"]:
        lines += ["", "keys"]
    for placed in report["keys"]:
        lines.append(f"  {placed['key']}")
        if "error" in placed:
            lines.append(f"    error: {placed['error']}")
            continue
        for pool, where in placed["pools"].items():
            if "error" in where:
                lines.append(f"    {pool}: error: {where['error']}")
            else:
                lines.append(
                    f"    {pool}: {where['index']}  {where['label']}  "
                    f"{where['host']}:{where['port']}"
                )
    return "\n".join(lines)


def check(
    config: Annotated[
        str | None,
        typer.Argument(
            help="Lua config file to check (several: a ':' list, run in order).",
            metavar="CONFIG",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            "-k",
            metavar="KEY",
            help="Show the backend KEY lands on in each pool; repeatable.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    start_arg: Annotated[
        str | None,
        typer.Option("--start-arg", metavar="ARG", help="The config's mcp.start_arg."),
    ] = None,
    routelib: Annotated[
        str | None,
        typer.Option(
            "--routelib",
            metavar="FILE",
            help="A route library config, as serve --routelib (CONFIG files, if given, run "
            "after the library).",
        ),
    ] = None,
) -> None:
    """Load a config without serving: print pools, routes, and where keys land."""
    try:
        if routelib is not None:
            if start_arg is not None:
                raise CheckFailed("--routelib FILE is the start argument: drop --start-arg")
            if not Path(routelib).is_file():
                raise CheckFailed(f"{routelib}: config file not found")
            config = "routelib" + (f":{config}" if config else "")
            start_arg = routelib
        if config is None:
            raise CheckFailed("give a CONFIG file or --routelib FILE")
        report = describe(config, key or [], start_arg)
    except CheckFailed as exc:
        typer.echo(f"mcpframe check: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(report, indent=2) if as_json else _render(report))
    for failure in report["failed_plugins"]:
        typer.echo(f"mcpframe check: warning: {failure}", err=True)
    errors = _key_errors(report)
    for error in errors:
        typer.echo(f"mcpframe check: {error}", err=True)
    if errors:
        raise typer.Exit(1)
