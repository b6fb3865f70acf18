"""The hook specifications: what a plugin can provide to mcpframe.

There is one hook per plugin kind. Each returns an iterable of frozen records from
:mod:`mcpframe.types`; mcpframe calls the hooks when it starts and when it reloads its config,
never while serving requests, and the :class:`~mcpframe.registry.Registry` checks what they
return.

A plugin is a module (or any object) with functions named after these hooks and decorated with
:data:`hookimpl`, declared as an entry point in the ``mcpframe`` group of its package::

    [project.entry-points.mcpframe]
    crc32 = "mcpframe_crc32"

mcpframe's own distributions, hashers, filters, loggers and route handlers are plugins of
exactly that shape (see ``mcpframe/default_plugins/``). Each hook below shows a complete tiny
plugin.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from mcpframe.types import Distribution, Hasher, KeyFilter, Logger, RouteHandler

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "mcpframe"
"""The pluggy project name, which is also the entry-point group plugins are declared in."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification; only this module uses it."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's hook implementation: ``@hookimpl`` above ``def mcpframe_hashers(): ...``."""


# A spec's body is never run (pluggy only reads its name and signature); the raise keeps mypy
# from reading an empty body as a missing return.


@hookspec
def mcpframe_distributions() -> Iterable[Distribution]:
    """Provide key distributions, each published to Lua as ``mcp.dist_<name>``.

    A distribution turns a 64-bit key hash into the index of a backend in a pool. Its
    ``build(servers, options)`` runs once per pool when a config loads and returns the
    per-request ``selector(hash64) -> index``. See :class:`~mcpframe.types.Distribution`.

    Example (a complete plugin module, ``mcpframe_modulo.py``)::

        from mcpframe.hookspecs import hookimpl
        from mcpframe.types import Distribution


        def build_modulo(servers, options):
            n = len(servers)
            if n == 0:
                return lambda h: -1
            return lambda h: h % n


        @hookimpl
        def mcpframe_distributions():
            return [Distribution("modulo", build_modulo, description="hash modulo pool size")]

    A config then uses ``mcp.pool(list, {dist = mcp.dist_modulo})``.

    :return: the distributions this plugin provides (an empty iterable is fine).
    """
    raise NotImplementedError


@hookspec
def mcpframe_hashers() -> Iterable[Hasher]:
    """Provide key hashers, each published to Lua as ``mcp.hash_<name>``.

    A hasher turns the (filtered) key bytes and the pool's numeric seed into an unsigned
    64-bit integer; it runs once per request. See :class:`~mcpframe.types.Hasher`.

    Example (a complete plugin module, ``mcpframe_crc32.py``)::

        import zlib

        from mcpframe.hookspecs import hookimpl
        from mcpframe.types import Hasher


        def crc32(key, seed):
            return zlib.crc32(key, seed & 0xFFFFFFFF)


        @hookimpl
        def mcpframe_hashers():
            return [Hasher("crc32", crc32, "CRC-32 of the key, low 32 bits of the seed")]

    A config then uses ``mcp.pool(list, {hash = mcp.hash_crc32})``.

    :return: the hashers this plugin provides (an empty iterable is fine).
    """
    raise NotImplementedError


@hookspec
def mcpframe_key_filters() -> Iterable[KeyFilter]:
    """Provide key filters, chosen by name with the ``filter`` option of ``mcp.pool``.

    A filter picks the part of a key that is hashed, so related keys land on one backend.
    ``build(filter_conf)`` runs once per pool; the filter it returns runs once per request. See
    :class:`~mcpframe.types.KeyFilter`.

    Example (a complete plugin module, ``mcpframe_prefix.py``)::

        from mcpframe.hookspecs import hookimpl
        from mcpframe.types import KeyFilter


        def build_prefix(conf):
            sep = conf[:1]

            def prefix(key):
                return key.partition(sep)[0]

            return prefix


        @hookimpl
        def mcpframe_key_filters():
            return [KeyFilter("prefix", build_prefix, "hash the key up to the first conf byte")]

    A config then uses ``mcp.pool(list, {filter = "prefix", filter_conf = "::"})``.

    :return: the key filters this plugin provides (an empty iterable is fine).
    """
    raise NotImplementedError


@hookspec
def mcpframe_loggers() -> Iterable[Logger]:
    """Provide loggers, chosen on the command line with ``--logger NAME[:ARG]``.

    ``build(arg)`` runs once at start-up and returns a :class:`~mcpframe.types.LogSink` whose
    ``emit(event)`` receives event dicts such as
    ``{"ts": 1700000000.5, "type": "proxy_error", "msg": "..."}``. See
    :class:`~mcpframe.types.Logger`.

    Example (a complete plugin module, ``mcpframe_counter.py``)::

        import collections

        from mcpframe.hookspecs import hookimpl
        from mcpframe.types import Logger


        class CountingSink:
            def __init__(self):
                self.counts = collections.Counter()

            def emit(self, event):
                self.counts[event["type"]] += 1

            def close(self):
                pass


        @hookimpl
        def mcpframe_loggers():
            return [Logger("counter", lambda arg: CountingSink(), "count events by type")]

    The operator then starts ``mcpframe serve --logger counter``.

    :return: the loggers this plugin provides (an empty iterable is fine).
    """
    raise NotImplementedError


@hookspec
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    """Provide route handlers, each used in a route-library config as ``route_<name>{...}``.

    A handler is Lua source defining ``route_<name>_conf(args, ctx)`` (config VM: check the
    arguments, return what the workers get) and ``route_<name>_start(args, ctx, fgen)`` (each
    worker VM: make handles for the children and call ``fgen:ready``). See
    :class:`~mcpframe.types.RouteHandler`.

    Example (a complete plugin module, ``mcpframe_first.py``, with ``route_first.lua`` beside
    it)::

        from pathlib import Path

        from mcpframe.hookspecs import hookimpl
        from mcpframe.types import RouteHandler


        @hookimpl
        def mcpframe_route_handlers():
            here = Path(__file__).with_name("route_first.lua")
            return [RouteHandler.from_file("first", here, "ask the first child only")]

    where ``route_first.lua`` holds::

        function route_first_conf(t, ctx)
            if t.children == nil then error("route_first needs children") end
            return t
        end

        function route_first_start(a, ctx, fgen)
            local h = fgen:new_handle(a.children[1])
            fgen:ready({ n = ctx:label(), f = function(rctx)
                return function(r) return rctx:enqueue_and_wait(r, h) end
            end })
        end

    A config then uses ``routes{ map = { foo = route_first{ children = { "main" } } } }``.

    :return: the route handlers this plugin provides (an empty iterable is fine).
    """
    raise NotImplementedError
