"""The ``jsonfile`` logger: one JSON object per line, appended to a file.

``mcpframe serve --logger jsonfile:/var/log/mcpframe.jsonl`` appends lines such as
``{"ts": 1700000000.5, "type": "proxy_error", "msg": "..."}``. The file is opened once, in
append mode and line-buffered, so each event reaches the file as a whole line and tools such as
``tail -f | jq`` see it at once. Bytes values are decoded as UTF-8 (bad bytes as ``\\xNN``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Logger, LogSink


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


class JsonFileSink:
    """Appends each event to ``path`` as one JSON line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed by close())

    def emit(self, event: Mapping[str, object]) -> None:
        self._file.write(json.dumps(event, default=_jsonable, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._file.close()


def build_jsonfile(arg: str) -> LogSink:
    """The sink for ``--logger jsonfile:PATH``; PATH is required and opened at once."""
    if not arg:
        raise ValueError("logger 'jsonfile' needs a file: --logger jsonfile:/path/to/file.jsonl")
    try:
        return JsonFileSink(arg)
    except OSError as exc:
        raise ValueError(f"logger 'jsonfile' cannot open {arg!r}: {exc.strerror}") from exc


@hookimpl
def mcpframe_loggers() -> Iterable[Logger]:
    return [Logger("jsonfile", build_jsonfile, "one JSON object per line, appended to a file")]
