"""Helpers for the protocol tests: feeding a parser three ways (STYLE item 11)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Feedable(Protocol[T]):
    def feed(self, data: bytes) -> list[T]: ...

    def buffered(self) -> int: ...


def feed_chunks(parser: Feedable[Any], chunks: Iterable[bytes]) -> list[Any]:
    out: list[Any] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def splits(data: bytes, step: int = 1) -> Iterable[tuple[int, list[bytes]]]:
    """Every way of cutting ``data`` in two (at offsets 0, step, 2*step, ...)."""
    for i in range(0, len(data) + 1, step):
        yield i, [data[:i], data[i:]]


def check_three_ways(
    make: Callable[[], Feedable[Any]],
    data: bytes,
    expected: Sequence[Any],
    trailing: bytes,
    completion: bytes,
    completed: Sequence[Any],
    *,
    ends: bool = False,
    split_step: int = 1,
) -> None:
    """Feed ``data`` whole, byte by byte, cut in two at every offset, and followed by the
    start of another message (``trailing``), which must stay buffered until ``completion``
    arrives and then yield ``completed``. With ``ends`` (the stream is over after ``data``:
    a close or a failure) the trailing bytes must be ignored instead."""
    parser = make()
    assert parser.feed(data) == list(expected), "whole"
    if not ends:
        assert parser.buffered() == 0
    assert feed_chunks(make(), bytewise(data)) == list(expected), "byte by byte"
    for i, chunks in splits(data, split_step):
        assert feed_chunks(make(), chunks) == list(expected), f"split at {i}"
    parser = make()
    assert parser.feed(data + trailing) == list(expected), "with trailing bytes"
    if ends:
        assert parser.feed(completion) == []
    else:
        assert parser.buffered() == len(trailing)
        assert parser.feed(completion) == list(completed)
        assert parser.buffered() == 0
