"""Route trees for ``mcpframe check``: a route library config's, and an API v2 config's.

Route library (``check --routelib``): what ``mcp_config_pools`` of ``mcpframe/lua/routelib.lua``
returned (``LoadedConfig.conf``: ``r`` the trees by listener tag, ``p`` the pools by name) is
walked here, in Python: each tree's router (mode, separators), its prefixes with their command
maps, its ``cmap`` and default, each handler (where it was written, its options) and its
children down to pools and backends.

API v2 (a hand-written config attaching function generators and ``mcp.router_new`` routers):
per listener tag and the commands attached, the router (mode, separators, each ``map`` entry
with its command map, ``cmap``, default) or the function generator, each generator by name
(where its generator function was written) with its handles: pools, the internal cache,
child generators, down to pools.

Both come out in one shape, printed by :func:`render_tree`. For a sample key: which entry of
each tree takes it and, for every pool below that entry, the backend the key lands on (the
pool's own selector, as ``serve`` places keys).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcpframe.config import ConfValue, LoadedConfig, LuaObject, PoolRef, PoolSpec
from mcpframe.protocol import commands as c

__all__ = ["describe_routelib", "describe_v2", "pool_sources", "render_tree"]

_ANY_STORAGE = c.CMD_ANY_STORAGE


def _s(v: object) -> str:
    return v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else str(v)


def _command(code: object) -> str:
    if code == _ANY_STORAGE:
        return "all"
    return c.NAMES.get(code, str(code)) if isinstance(code, int) else _s(code)


def _table(v: ConfValue) -> dict[Any, ConfValue]:
    return v if isinstance(v, dict) else {}


def _is_handler(v: ConfValue) -> bool:
    return isinstance(v, dict) and v.get(b"_rlib_route") is True


class _Tree:
    def __init__(self, loaded: LoadedConfig, conf: dict[Any, ConfValue]) -> None:
        self.loaded = loaded
        pools = conf.get(b"p")
        self.pools: dict[Any, ConfValue] = pools if isinstance(pools, dict) else {}

    def lookup(self, name: str) -> tuple[str, list[tuple[str, PoolSpec]]]:
        """What a child name means: a description and the pools (name, spec) below it."""
        if name == "internal":
            return "the proxy's internal cache", []
        raw = name.encode()
        found = self.pools.get(raw)
        if isinstance(found, PoolRef):
            return f"pool {name}", [(name, self.loaded.pools[found.index])]
        if isinstance(found, dict):
            zones = [
                (f"{name}.{_s(z)}", self.loaded.pools[ref.index])
                for z, ref in sorted(found.items(), key=lambda kv: _s(kv[0]))
                if isinstance(ref, PoolRef)
            ]
            return f"pool set {name}", zones
        for set_name, zones_of in sorted(self.pools.items(), key=lambda kv: -len(kv[0])):
            prefix = set_name + b"_"
            if isinstance(zones_of, dict) and raw.startswith(prefix):
                ref = zones_of.get(raw[len(prefix) :])
                if isinstance(ref, PoolRef):
                    return f"pool set {_s(set_name)} zone {_s(raw[len(prefix) :])}", [
                        (name, self.loaded.pools[ref.index])
                    ]
        return f"{name} (unknown)", []

    def handler(self, h: dict[Any, ConfValue]) -> dict[str, Any]:
        args = h.get(b"a")
        args = args if isinstance(args, dict) else {}
        options: dict[str, str] = {}
        children: list[dict[str, Any]] = []
        for k in sorted(args, key=_s):
            key, value = _s(k), args[k]
            if key.startswith("child"):
                children.extend(self.children(key, value))
            elif key != "stats_id" and not isinstance(value, dict):
                options[key] = _s(value).lower() if isinstance(value, bool) else _s(value)
        return {
            "handler": "route_" + _s(h.get(b"f")),
            "where": _s(h.get(b"where")),
            "options": options,
            "children": children,
        }

    def children(self, key: str, value: ConfValue) -> list[dict[str, Any]]:
        if _is_handler(value):
            assert isinstance(value, dict)
            return [{"option": key, **self.handler(value)}]
        if isinstance(value, bytes):
            what, pools = self.lookup(_s(value))
            return [
                {"option": key, "child": what, "name": _s(value), "pools": [n for n, _ in pools]}
            ]
        if isinstance(value, dict):
            out = []
            for k in sorted(value, key=lambda k: (isinstance(k, bytes), _s(k))):
                label = f"{key}[{_s(k)}]"
                out.extend(self.children(label, value[k]))
            return out
        return [{"option": key, "child": _s(value), "pools": []}]


def pool_sources(loaded: LoadedConfig) -> dict[str, str]:
    """Where each pool of a route library config was written (``file:line`` of its
    ``pools{}``), by its name in :meth:`LoadedConfig.named_pools`; empty for other configs."""
    conf = loaded.conf
    wheres = _table(conf.get(b"pw")) if isinstance(conf, dict) else {}
    out = {}
    for name in loaded.named_pools():
        top = name.split(".")[1] if name.startswith("p.") else ""
        where = wheres.get(top.encode())
        if isinstance(where, bytes):
            out[name] = _s(where)
    return out


def _router(conf: ConfValue) -> dict[str, str | None]:
    """The router's mode and separators as ``mcp.router_new`` reads them."""
    opts = conf if isinstance(conf, dict) else {}
    mode = opts.get(b"mode")
    if not isinstance(mode, bytes):  # start and stop are read only with a mode
        return {"mode": "prefix", "start": None, "stop": "/"}
    start, stop = opts.get(b"start"), opts.get(b"stop")
    if mode == b"anchor":
        return {
            "mode": "anchor",
            "start": _s(start) if start is not None else "/",
            "stop": _s(stop) if stop is not None else "/",
        }
    return {"mode": _s(mode), "start": None, "stop": _s(stop) if stop is not None else "/"}


def _prefix_of(router: dict[str, str | None], key: str) -> str | None:
    stop = router["stop"] or "/"
    if router["mode"] == "anchor":
        start = router["start"] or "/"
        if not key.startswith(start) or len(key) < len(start) + 2:
            return None
        end = key.find(stop, len(start))
        if end <= len(start):
            return None
        return key[len(start) : end]
    end = key.find(stop)
    return key[:end] if end > 0 else None


def describe_routelib(loaded: LoadedConfig, keys: list[str]) -> list[dict[str, Any]] | None:
    """The route trees of a route library config (None: not one), and for each key, the
    entry of each tree that takes it (a storage command; a command map shows its entries)."""
    conf = loaded.conf
    if not isinstance(conf, dict) or not isinstance(conf.get(b"r"), dict):
        return None
    tree = _Tree(loaded, conf)
    trees = conf[b"r"]
    assert isinstance(trees, dict)
    out = []
    for tag in sorted(trees, key=lambda t: (t != b"default", _s(t))):
        t = trees[tag]
        if not isinstance(t, dict):
            continue
        router = _router(t.get(b"conf"))
        entry: dict[str, Any] = {
            "tag": None if tag == b"default" else _s(tag),
            "router": router,
            "map": [],
            "cmap": [],
            "default": None,
        }
        mapping = _table(t.get(b"map"))
        for prefix in sorted(mapping, key=_s):
            v = mapping[prefix]
            if isinstance(v, dict) and isinstance(v.get(b"cmdmap"), dict):
                cmds = _table(v[b"cmdmap"])
                entry["map"].append(
                    {
                        "prefix": _s(prefix),
                        "commands": [
                            {"command": _command(code), **tree.handler(_table(cmds[code]))}
                            for code in sorted(cmds, key=lambda k: (k == _ANY_STORAGE, str(k)))
                        ],
                    }
                )
            elif isinstance(v, dict):
                entry["map"].append({"prefix": _s(prefix), **tree.handler(v)})
        cmap = _table(t.get(b"cmap"))
        for code in sorted(cmap, key=str):
            h = cmap[code]
            if isinstance(h, dict):
                entry["cmap"].append({"command": _command(code), **tree.handler(h)})
        default = t.get(b"default")
        if isinstance(default, dict):
            entry["default"] = tree.handler(default)
        entry["keys"] = [_place(tree, entry, key) for key in keys]
        out.append(entry)
    return out


#: A function generator's handle kinds (``_kinds`` in mcp_funcgen.lua).
_K_POOL, _K_INTERNAL, _K_CHILD = 1, 2, 3
#: Function generators nest (a handle to a child); deeper than this is not followed.
_MAX_DEPTH = 16


class _V2:
    """Reads an API v2 config's function generators and routers out of the route VM."""

    def __init__(self, loaded: LoadedConfig, where: Callable[[LuaObject], str]) -> None:
        self.loaded = loaded
        self.where = where
        self.pool_names = {id(spec): name for name, spec in loaded.named_pools().items()}
        self.by_name = {name: spec for name, spec in loaded.named_pools().items()}

    def pool_name(self, index: int) -> str:
        if 0 <= index < len(self.loaded.pools):
            return self.pool_names.get(id(self.loaded.pools[index]), f"#{index}")
        return f"#{index}"

    def lookup(self, name: str) -> tuple[str, list[tuple[str, PoolSpec]]]:
        spec = self.by_name.get(name)
        if spec is None and name.startswith("#") and name[1:].isdigit():
            index = int(name[1:])
            if index < len(self.loaded.pools):
                spec = self.loaded.pools[index]
        return (f"pool {name}", [(name, spec)]) if spec is not None else (name, [])

    def node(self, fg: LuaObject, depth: int = 0) -> dict[str, Any]:
        """A function generator: its name, where its generator function was written, and
        its handles down to pools."""
        if fg[b"_router"] is not None:
            return {
                "handler": "router (a router's target: its requests fail)",
                "where": "",
                "options": {},
                "children": [],
            }
        children: list[dict[str, Any]] = []
        kinds, targets = fg[b"_kinds"], fg[b"_targets"]
        for h in range(int(fg[b"_nh"] or 0)):
            kind, target, option = kinds[h], targets[h], f"handle {h}"
            if kind == _K_POOL:
                name = self.pool_name(int(target))
                children.append(
                    {"option": option, "child": f"pool {name}", "name": name, "pools": [name]}
                )
            elif kind == _K_INTERNAL:
                children.append(
                    {"option": option, "child": "the proxy's internal cache", "pools": []}
                )
            elif kind == _K_CHILD and depth < _MAX_DEPTH:
                children.append({"option": option, **self.node(target, depth + 1)})
        f = fg[b"_f"]
        ready = "" if fg[b"_ready"] else " (never made ready: its requests fail)"
        return {
            "handler": f"funcgen {_s(fg[b'_name'])}{ready}",
            "where": self.where(f) if f is not None else "",
            "options": {},
            "children": children,
        }

    def tree(
        self, attached: dict[str, Any], keys: list[str], ident: Callable[[LuaObject], str]
    ) -> dict[str, Any]:
        fn = attached["fn"]
        entry: dict[str, Any] = {
            "tag": attached["tag"],
            "commands": attached["label"],
            "router": None,
            "map": [],
            "cmap": [],
            "default": None,
        }
        rt = fn[b"_router"]
        if rt is None:
            entry["default"] = self.node(fn)
            node = entry["default"]
            entry["keys"] = [
                {"key": k, "via": node["handler"], "pools": _backends([node], self.lookup, k)}
                for k in keys
            ]
            return entry
        anchor = bool(rt[b"anchor"])
        entry["router"] = {
            "mode": "anchor" if anchor else "prefix",
            "start": _s(rt[b"start"]) if anchor else None,
            "stop": _s(rt[b"stop"]),
        }
        mapping = rt[b"map"]
        for prefix in sorted(mapping.keys() if mapping is not None else [], key=_s):
            v = mapping[prefix]
            if _is_fgen(v):
                entry["map"].append({"prefix": _s(prefix), **self.node(v)})
            else:
                entry["map"].append(
                    {
                        "prefix": _s(prefix),
                        "commands": [
                            {"command": _command(code), **self.node(v[code])}
                            for code in sorted(v.keys(), key=lambda k: (k == _ANY_STORAGE, k))
                        ],
                    }
                )
        cmap = rt[b"cmap"]
        for code in sorted(cmap.keys() if cmap is not None else []):
            entry["cmap"].append({"command": _command(code), **self.node(cmap[code])})
        if rt[b"default"] is not None:
            entry["default"] = self.node(rt[b"default"])
        entry["keys"] = [
            p for k in keys for p in self.place(rt, entry["router"], attached["codes"], k, ident)
        ]
        return entry

    def pick(
        self, rt: LuaObject, router: dict[str, Any], code: int, key: str
    ) -> tuple[str, LuaObject | None]:
        """What the router picks for ``code`` and ``key`` (mcp_router.lua's route_pick):
        how, and the function generator (None: the request fails)."""
        mapping = rt[b"map"]
        if mapping is not None:
            prefix = _prefix_of(router, key)
            hit = mapping[prefix.encode("utf-8", "surrogateescape")] if prefix else None
            if hit is not None:
                if _is_fgen(hit):
                    return f"prefix {prefix}", hit
                for cmd in (code, _ANY_STORAGE):
                    if hit[cmd] is not None:
                        return f"prefix {prefix}, cmdmap {_command(cmd)}", hit[cmd]
        cmap = rt[b"cmap"]
        if cmap is not None and cmap[code] is not None:
            return f"cmap {_command(code)}", cmap[code]
        if rt[b"default"] is not None:
            return "default", rt[b"default"]
        return "no match and no default: the request fails", None

    def place(
        self,
        rt: LuaObject,
        router: dict[str, Any],
        codes: list[int],
        key: str,
        ident: Callable[[LuaObject], str],
    ) -> list[dict[str, Any]]:
        """Where ``key`` goes, per group of the attached commands that go the same way."""
        groups: dict[tuple[str, str], tuple[list[int], LuaObject | None]] = {}
        for code in codes:
            via, fg = self.pick(rt, router, code, key)
            group = groups.setdefault((via, ident(fg) if fg is not None else ""), ([], fg))
            group[0].append(code)
        out = []
        for (via, _), (group_codes, fg) in groups.items():
            node = self.node(fg) if fg is not None else None
            text = via if node is None else f"{via} -> {node['handler']}"
            if len(groups) > 1:
                text = " ".join(_command(code) for code in group_codes) + f": {text}"
            pools = _backends([node], self.lookup, key) if node is not None else {}
            out.append({"key": key, "via": text, "pools": pools})
        return out


def _is_fgen(v: LuaObject) -> bool:
    """A function generator or router (a command map of a router's ``map`` is a plain table)."""
    return v[b"_nh"] is not None


def describe_v2(
    loaded: LoadedConfig,
    attachments: list[dict[str, Any]],
    keys: list[str],
    where: Callable[[LuaObject], str],
    ident: Callable[[LuaObject], str],
) -> list[dict[str, Any]] | None:
    """The route trees of an API v2 config (None: nothing attached is a function generator
    or router): one per listener tag and route attached (``attachments``: ``tag``, ``fn``,
    ``codes`` and their ``label``), and for each key where it goes."""
    state = loaded.routes.state
    v2 = state[b"v2"] if state is not None else None
    if v2 is None:
        return None
    is_funcgen = v2[b"is_funcgen"]
    walker = _V2(loaded, where)
    trees = [walker.tree(a, keys, ident) for a in attachments if is_funcgen(a["fn"])]
    return trees or None


def _place(tree: _Tree, entry: dict[str, Any], key: str) -> dict[str, Any]:
    prefix = _prefix_of(entry["router"], key) if entry["map"] else None
    taken: dict[str, Any] | None = None
    via = "default"
    for m in entry["map"]:
        if m["prefix"] == prefix:
            taken, via = m, f"prefix {prefix}"
    if taken is None and entry["cmap"]:
        via = "cmap (by command), else default"
    if taken is None:
        taken = entry["default"]
    if taken is None:
        return {"key": key, "via": via, "pools": {}}
    pools = _backends(taken.get("commands", [taken]), tree.lookup, key)
    return {"key": key, "via": via, "pools": pools}


def _backends(
    nodes: list[dict[str, Any]],
    lookup: Callable[[str], tuple[str, list[tuple[str, PoolSpec]]]],
    key: str,
) -> dict[str, str]:
    """For every pool below ``nodes`` (``lookup`` says what a child name holds), the backend
    ``key`` lands on."""
    raw = key.encode("utf-8", "surrogateescape")
    placed: dict[str, str] = {}
    for node in nodes:
        for name in _names_below(node):
            for pool_name, spec in lookup(name)[1]:
                try:
                    b = spec.backends[spec.select(raw)]
                    placed[pool_name] = b.name if b.label == b.name else f"{b.label} {b.name}"
                except Exception as exc:
                    placed[pool_name] = f"error: {exc}"
    return placed


def _names_below(node: dict[str, Any]) -> list[str]:
    """The child names (pools, sets, zones) of a handler and of the handlers below it."""
    out = [node["name"]] if "name" in node else []
    for child in node.get("children", []):
        out.extend(_names_below(child))
    return out


def _printable(v: str) -> str:
    """An option value on one line: ``\\r\\n`` and other control characters escaped."""
    return v if v.isprintable() else v.encode("unicode_escape").decode("ascii")


def _handler_lines(node: dict[str, Any], indent: str) -> list[str]:
    options = " ".join(f"{k}={_printable(v)}" for k, v in node["options"].items())
    where = f"  ({node['where']})" if node["where"] else ""
    lines = [node["handler"] + where + (f"  {options}" if options else "")]
    for child in node["children"]:
        if "handler" in child:
            sub = _handler_lines(child, indent + "  ")
            lines.append(f"{indent}  {child['option']}: {sub[0]}")
            lines.extend(sub[1:])
        else:
            lines.append(f"{indent}  {child['option']}: {child['child']}")
    return lines


def render_tree(trees: list[dict[str, Any]]) -> list[str]:
    """Text lines for :func:`describe_routelib`'s or :func:`describe_v2`'s result."""
    lines = ["", "route tree"]
    for t in trees:
        where = f"tag {t['tag']}" if t["tag"] else "untagged"
        commands = t.get("commands", "storage commands")
        r = t["router"]
        if r is None:  # a function generator attached as it is
            sub = _handler_lines(t["default"], "  ")
            lines.append(f"  {where}: {commands} -> {sub[0]}")
            lines.extend(sub[1:])
        else:
            seps = f"stop {r['stop']!r}" + (f" start {r['start']!r}" if r["start"] else "")
            router = f"router {r['mode']} {seps}" if t["map"] or t["cmap"] else "no router"
            lines.append(f"  {where}: {commands} -> {router}")

        def add(label: str, node: dict[str, Any], indent: str) -> None:
            sub = _handler_lines(node, indent)
            lines.append(f"{indent}{label} -> {sub[0]}")
            lines.extend(sub[1:])

        for m in t["map"]:
            if "commands" in m:
                lines.append(f"    prefix {m['prefix']} -> cmdmap")
                for cmd in m["commands"]:
                    add(cmd["command"], cmd, "      ")
            else:
                add(f"prefix {m['prefix']}", m, "    ")
        for cm in t["cmap"]:
            add(f"cmap {cm['command']}", cm, "    ")
        if r is not None and t["default"] is not None:
            add("default", t["default"], "    ")
        for placed in t["keys"]:
            lines.append(f"    key {placed['key']}: {placed['via']}")
            for pool, backend in placed["pools"].items():
                lines.append(f"      {pool}: {backend}")
    return lines
