"""``proxy_req`` lines: one formatter, two formats (memcached 1.6.20's and 1.6.45's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from mcpframe.events import EventLog, format_event, res_word


class Keep:
    def __init__(self) -> None:
        self.events: list[Mapping[str, object]] = []

    def emit(self, event: Mapping[str, object]) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


def line(**kw: Any) -> str:
    sink = Keep()
    log = EventLog([(sink, frozenset({"proxyreqs"}))])
    log.proxy_req(**kw)
    (event,) = sink.events
    text = format_event({**event, "ts": 1796467602.000116, "gid": 7})
    assert text.startswith("ts=1796467602.116 gid=7 type=proxy_req ")  # usec not padded
    return text.split(" ", 3)[3]


def test_without_cfd_the_line_is_1_6_20s() -> None:
    got = line(req="mg foo v", elapsed=80, rtype=101, code=17, status=0, be="h:1", detail="d")
    assert got == "elapsed=80 type=101 code=17 status=0 be=h:1 detail=d req=mg foo v"


def test_with_cfd_the_line_is_1_6_45s() -> None:
    got = line(
        req="mg foo v", elapsed=80, rtype=101, code=17, status=0, be="h:1", detail="d", cfd=22
    )
    assert got == "elapsed=80 type=101 code=17 status=0 res=ok cfd=22 be=h:1 detail=d req=mg foo v"


def test_req_and_detail_are_cut() -> None:
    got = line(req="x" * 400, elapsed=0, rtype=0, code=0, status=0, be=":", detail="d" * 200)
    assert got == f"elapsed=0 type=0 code=0 status=0 be=: detail={'d' * 150} req={'x' * 300}"


@pytest.mark.parametrize(
    ("status", "code", "word"),
    [(0, 15, "good"), (0, 17, "ok"), (-1, 23, "any"), (-1, 17, "any"), (0, 0, "good")],
)
def test_res_word(status: int, code: int, word: str) -> None:
    assert res_word(status, code) == word
