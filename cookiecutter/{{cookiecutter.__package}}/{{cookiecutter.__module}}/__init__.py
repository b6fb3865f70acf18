{%- if cookiecutter.kind == "dist" -%}
"""{{ cookiecutter.description }}: the key distribution ``mcp.dist_{{ cookiecutter.name }}``.

mcpframe finds this module through the entry point in ``pyproject.toml`` and calls its hook
when it starts or reloads a config. A config then uses::

    mcp.pool({ b1, b2, b3 }, { dist = mcp.dist_{{ cookiecutter.name }} })

The distribution below is the simplest there is, the key hash modulo the number of backends.
Replace :func:`build` with yours; ``tests/`` runs mcpframe's contract checks on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mcpframe.hookspecs import hookimpl
from mcpframe.types import BackendInfo, Distribution, PoolOptions, Selector

NAME = "{{ cookiecutter.name }}"
DESCRIPTION = {{ cookiecutter.description | jsonify }}


def build(servers: Sequence[BackendInfo], options: PoolOptions) -> Selector:
    """Called once per pool; returns the selector, called once per request.

    ``servers`` are the pool's backends in order (``host``, ``port``, ``label``); ``options``
    is the whole ``mcp.pool`` options table, where options of your own can live. The selector
    maps the 64-bit key hash to a 0-based index into ``servers``.
    """
    n = len(servers)
    if n == 0:
        return lambda h: -1  # no backend: the pool call fails, as memcached's does

    def select(h: int) -> int:
        return h % n

    return select


@hookimpl
def mcpframe_distributions() -> Iterable[Distribution]:
    return [Distribution(NAME, build, description=DESCRIPTION)]
{% elif cookiecutter.kind == "hasher" -%}
"""{{ cookiecutter.description }}: the key hasher ``mcp.hash_{{ cookiecutter.name }}``.

mcpframe finds this module through the entry point in ``pyproject.toml`` and calls its hook
when it starts or reloads a config. A config then uses::

    mcp.pool({ b1, b2, b3 }, { hash = mcp.hash_{{ cookiecutter.name }} })

The hasher below is BLAKE2b cut to 64 bits and keyed with the pool seed. Replace
:func:`hash_key` with yours; ``tests/`` runs mcpframe's contract checks on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import Hasher

NAME = "{{ cookiecutter.name }}"
DESCRIPTION = {{ cookiecutter.description | jsonify }}


def hash_key(key: bytes, seed: int) -> int:
    """Called once per request with the (filtered) key; returns an int in ``[0, 2**64)``.

    ``seed`` is the pool's 64-bit seed: 0 without a ``seed`` option, else XXH3-64 of it.
    Ring distributions use only the low 32 bits, so those must be well mixed.
    """
    digest = hashlib.blake2b(key, digest_size=8, key=seed.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little")


@hookimpl
def mcpframe_hashers() -> Iterable[Hasher]:
    return [Hasher(NAME, hash_key, DESCRIPTION)]
{% elif cookiecutter.kind == "key_filter" -%}
"""{{ cookiecutter.description }}: the key filter ``"{{ cookiecutter.name }}"``.

mcpframe finds this module through the entry point in ``pyproject.toml`` and calls its hook
when it starts or reloads a config. A config then uses::

    mcp.pool({ b1, b2, b3 }, { filter = "{{ cookiecutter.name }}", filter_conf = ":/" })

The filter below hashes a key up to the first byte that appears in ``filter_conf``, so with
``":/"`` the keys ``user:1/name`` and ``user/2`` both hash as ``user``. Replace :func:`build`
with yours; ``tests/`` runs mcpframe's contract checks on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mcpframe.hookspecs import hookimpl
from mcpframe.types import FilterFunction, KeyFilter

NAME = "{{ cookiecutter.name }}"
DESCRIPTION = {{ cookiecutter.description | jsonify }}


def build(conf: bytes) -> FilterFunction:
    """Called once per pool with its ``filter_conf`` (2 to 5 bytes); returns the filter.

    The filter runs once per request and returns the bytes to hash; the key sent to the
    backend never changes. A key holding none of the conf bytes must come back unchanged.
    """
    stop = re.compile(b"[" + re.escape(conf) + b"]")

    def key_filter(key: bytes) -> bytes:
        found = stop.search(key)
        return key if found is None else key[: found.start()]

    return key_filter


@hookimpl
def mcpframe_key_filters() -> Iterable[KeyFilter]:
    return [KeyFilter(NAME, build, DESCRIPTION)]
{% elif cookiecutter.kind == "logger" -%}
"""{{ cookiecutter.description }}: the logger ``{{ cookiecutter.name }}``.

mcpframe finds this module through the entry point in ``pyproject.toml`` and calls its hook
when it starts. The operator then chooses it with::

    mcpframe serve --logger {{ cookiecutter.name }}:/var/log/mcpframe.jsonl,sample=0.1

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

NAME = "{{ cookiecutter.name }}"
DESCRIPTION = {{ cookiecutter.description | jsonify }}


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
    """Called once at start-up with what follows ``{{ cookiecutter.name }}:`` in ``--logger``.

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
{% elif cookiecutter.kind == "route" -%}
"""{{ cookiecutter.description }}: the route handler ``route_{{ cookiecutter.name }}``.

mcpframe finds this module through the entry point in ``pyproject.toml``; its route library
loads the handler's Lua source, ``route_{{ cookiecutter.name }}.lua`` beside this file, in every Lua
VM. A route-library config (``mcpframe serve --routelib FILE``) then uses::

    routes{ default = route_{{ cookiecutter.name }}{ children = { "main", "backup" } } }

The handler is all in the Lua file; ``tests/`` runs mcpframe's contract checks on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mcpframe.hookspecs import hookimpl
from mcpframe.types import RouteHandler

NAME = "{{ cookiecutter.name }}"
DESCRIPTION = {{ cookiecutter.description | jsonify }}
SOURCE = Path(__file__).with_name(f"route_{NAME}.lua")


@hookimpl
def mcpframe_route_handlers() -> Iterable[RouteHandler]:
    return [RouteHandler.from_file(NAME, SOURCE, DESCRIPTION)]
{% endif -%}
