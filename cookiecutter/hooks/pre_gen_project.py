"""Refuse answers that would make a broken plugin, before any file is rendered."""

import re
import sys

NAME = {{ cookiecutter.name | jsonify }}
KIND = {{ cookiecutter.kind | jsonify }}
DESCRIPTION = {{ cookiecutter.description | jsonify }}
KINDS = ("dist", "hasher", "key_filter", "logger", "route")
# The names mcpframe's own plugins use, by kind: a plugin reusing one conflicts with the
# built-in and mcpframe refuses to start. mcpframe's test suite keeps this list current.
BUILTIN_NAMES = {"dist": ["jump_hash", "ring_hash"], "hasher": ["md5", "murmur3", "xxhash"], "key_filter": ["stop", "tags"], "logger": ["jsonfile", "stderr"], "route": ["allfastest", "allsync", "direct", "failover", "null", "random", "ratelim", "split", "ttl", "zfailover"]}


def fail(message):
    sys.stderr.write(f"ERROR: {message}\n")
    sys.exit(1)


if not re.fullmatch(r"[a-z][a-z0-9_]*", NAME):
    fail(
        f"name {NAME!r} is not valid: it becomes part of a Lua identifier (mcp.dist_<name>, "
        "mcp.hash_<name>, route_<name>) and of the module mcpframe_<name>, so it must be a lowercase "
        "letter followed by lowercase letters, digits or _"
    )
if KIND not in KINDS:
    fail(f"kind {KIND!r} is not one of {', '.join(KINDS)}")
if any(c in DESCRIPTION for c in '"\\\n') or not DESCRIPTION.strip():
    fail("description must be one non-empty line without double quotes or backslashes")
if NAME in BUILTIN_NAMES[KIND]:
    fail(f"{NAME!r} is the name of a built-in mcpframe {KIND}; choose another name")
