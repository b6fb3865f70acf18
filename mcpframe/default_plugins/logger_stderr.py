"""The ``stderr`` logger: one ``key=value`` line per event on standard error.

``mcpframe serve --logger stderr`` prints lines such as
``ts=1700000000.123456 type=proxy_error msg="backend failure: conntimeout"``: ``ts``, ``type``
and ``msg`` first, then the other keys in the order given. A value with a space, a quote, an
``=`` or nothing at all is written as a JSON string, so every line splits unambiguously.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Logger, LogSink

_FIRST = ("ts", "type", "msg")


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    text = str(value)
    if not text or any(c in text for c in ' "=\n\r\t\\'):
        return json.dumps(text)
    return text


def format_event(event: Mapping[str, object]) -> str:
    """The line (without newline) the stderr logger writes for ``event``."""
    keys = [k for k in _FIRST if k in event] + [k for k in event if k not in _FIRST]
    return " ".join(f"{k}={_value(event[k])}" for k in keys)


class StderrSink:
    """Writes each event as one line to the current ``sys.stderr``."""

    def emit(self, event: Mapping[str, object]) -> None:
        stream = sys.stderr
        stream.write(format_event(event) + "\n")
        stream.flush()

    def close(self) -> None:
        sys.stderr.flush()


def build_stderr(arg: str) -> LogSink:
    """The sink; ``--logger stderr`` takes no argument."""
    if arg:
        raise ValueError(f"logger 'stderr' takes no argument (got {arg!r})")
    return StderrSink()


@hookimpl
def mcpframe_loggers() -> Iterable[Logger]:
    return [Logger("stderr", build_stderr, "key=value lines on standard error")]
