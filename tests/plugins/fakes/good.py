"""A well-behaved third-party plugin: one record of each kind."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence

from mcpframe.hookspecs import hookimpl
from mcpframe.types import (
    BackendInfo,
    Distribution,
    FilterFunction,
    Hasher,
    KeyFilter,
    Logger,
    LogSink,
    Selector,
)


def crc32(key: bytes, seed: int) -> int:
    # Spread to 64 bits so the high half is not always zero.
    low = zlib.crc32(key, seed & 0xFFFFFFFF)
    return (zlib.crc32(key, low) << 32) | low


def build_modulo(servers: Sequence[BackendInfo], options: Mapping[str, object]) -> Selector:
    n = len(servers)
    return (lambda h: h % n) if n else (lambda h: -1)


def build_prefix(conf: bytes) -> FilterFunction:
    sep = conf[:1]
    return lambda key: key.partition(sep)[0]


class ListSink:
    def __init__(self) -> None:
        self.events: list[Mapping[str, object]] = []

    def emit(self, event: Mapping[str, object]) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


def build_list(arg: str) -> LogSink:
    return ListSink()


@hookimpl
def mcpframe_hashers() -> Iterable[Hasher]:
    return [Hasher("crc32", crc32, "CRC-32 twice")]


@hookimpl
def mcpframe_distributions() -> Iterable[Distribution]:
    return [Distribution("modulo", build_modulo, key_hasher="crc32")]


@hookimpl
def mcpframe_key_filters() -> Iterable[KeyFilter]:
    return [KeyFilter("prefix", build_prefix)]


@hookimpl
def mcpframe_loggers() -> Iterable[Logger]:
    return [Logger("memory", build_list)]
