"""JSON-lines logger with sampling, for mcpframe: the logger ``jsonlog``.

mcpframe finds this module through the entry point in ``pyproject.toml`` and calls its hook
when it starts. The operator then chooses it with::

    mcpframe serve --logger jsonlog:/var/log/mcpframe.jsonl,sample=0.1

Each event becomes one JSON object on one line, appended to the file (standard error
without one). ``sample=RATE`` keeps that fraction of the events, chosen at random, and marks
each kept one with ``"sample_rate": RATE`` so counts can be scaled back; events whose type ends
in ``_error`` are always kept. ``seed=N`` makes the sampling repeatable.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Logger, LogSink

NAME = "jsonlog"
DESCRIPTION = "JSON-lines logger with sampling, for mcpframe"


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


class JsonLinesSink:
    """Writes sampled events as JSON lines; ``emit`` runs on the event loop, so it only buffers."""

    def __init__(self, path: str, sample: float, seed: int | None) -> None:
        self.sample = sample
        self._random = random.Random(seed).random
        # Opened once, line-buffered: each event reaches the file as a whole line.
        self._file: TextIO | None = (
            open(path, "a", encoding="utf-8", buffering=1) if path else None  # noqa: SIM115
        )

    def emit(self, event: Mapping[str, object]) -> None:
        if self.sample < 1.0 and not str(event.get("type", "")).endswith("_error"):
            if self._random() >= self.sample:
                return
            event = {**event, "sample_rate": self.sample}
        line = json.dumps(event, default=_jsonable, ensure_ascii=False, separators=(",", ":"))
        (self._file or sys.stderr).write(line + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        else:
            sys.stderr.flush()


def build(arg: str) -> LogSink:
    """Called once at start-up with what follows ``jsonlog:`` in ``--logger``.

    ``arg`` is a comma-separated list: a file path (or ``path=FILE``; none or ``-`` means
    standard error), ``sample=RATE`` with ``0 < RATE <= 1``, and ``seed=N``. A bad argument
    raises :exc:`ValueError`, whose message the operator sees.
    """
    path, sample, seed = "", 1.0, None
    for item in filter(None, (part.strip() for part in arg.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            key, value = "path", item
        try:
            if key == "path":
                path = "" if value == "-" else value
            elif key == "sample":
                sample = float(value)
                if not 0.0 < sample <= 1.0:
                    raise ValueError
            elif key == "seed":
                seed = int(value)
            else:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"logger {NAME!r}: bad argument {item!r}; expected [PATH][,sample=RATE][,seed=N] "
                f"with 0 < RATE <= 1"
            ) from None
    try:
        return JsonLinesSink(path, sample, seed)
    except OSError as exc:
        raise ValueError(f"logger {NAME!r} cannot open {path!r}: {exc.strerror}") from exc


@hookimpl
def mcpframe_loggers() -> Iterable[Logger]:
    return [Logger(NAME, build, DESCRIPTION)]
