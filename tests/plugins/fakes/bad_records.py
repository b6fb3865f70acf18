"""Plugins whose hooks return unusable things, one attribute per case."""

from __future__ import annotations

from collections.abc import Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Distribution, Hasher, KeyFilter, RouteHandler


class BadName:
    @hookimpl
    def mcpframe_hashers(self) -> Iterable[Hasher]:
        return [Hasher("Bad-Name", lambda key, seed: 0)]


class WrongType:
    @hookimpl
    def mcpframe_hashers(self) -> Iterable[object]:
        return [KeyFilter("oops", lambda conf: lambda key: key)]


class Raises:
    @hookimpl
    def mcpframe_key_filters(self) -> Iterable[KeyFilter]:
        raise RuntimeError("cannot read my config")


class Twice:
    @hookimpl
    def mcpframe_hashers(self) -> Iterable[Hasher]:
        return [Hasher("twice", lambda key, seed: 0), Hasher("twice", lambda key, seed: 1)]


class MissingKeyHasher:
    @hookimpl
    def mcpframe_distributions(self) -> Iterable[Distribution]:
        return [Distribution("orphan", lambda servers, options: lambda h: 0, key_hasher="nope")]


class MisspeltHook:
    @hookimpl
    def mcpframe_hasher(self) -> Iterable[Hasher]:
        return []


class BadSignature:
    @hookimpl
    def mcpframe_hashers(self, config: object) -> Iterable[Hasher]:
        return []


class ReturnsNone:
    @hookimpl
    def mcpframe_hashers(self) -> None:
        return None


class RouteBytes:
    @hookimpl
    def mcpframe_route_handlers(self) -> Iterable[RouteHandler]:
        return [RouteHandler("bytes", b"function route_bytes_conf(t) return t end")]  # type: ignore[arg-type]


class RouteEmpty:
    @hookimpl
    def mcpframe_route_handlers(self) -> Iterable[RouteHandler]:
        return [RouteHandler("empty", "  \n")]


class RouteBadName:
    @hookimpl
    def mcpframe_route_handlers(self) -> Iterable[RouteHandler]:
        return [RouteHandler("Shadow-1", "x = 1")]


class RouteMissingFile:
    @hookimpl
    def mcpframe_route_handlers(self) -> Iterable[RouteHandler]:
        return [RouteHandler.from_file("gone", "/nonexistent/route_gone.lua")]


class RouteWrongType:
    @hookimpl
    def mcpframe_route_handlers(self) -> Iterable[object]:
        return [Hasher("first", lambda key, seed: 0)]


bad_name = BadName()
wrong_type = WrongType()
raises = Raises()
twice = Twice()
missing_key_hasher = MissingKeyHasher()
misspelt_hook = MisspeltHook()
bad_signature = BadSignature()
returns_none = ReturnsNone()
route_bytes = RouteBytes()
route_empty = RouteEmpty()
route_bad_name = RouteBadName()
route_missing_file = RouteMissingFile()
route_wrong_type = RouteWrongType()
