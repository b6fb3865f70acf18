"""Sandboxed Lua 5.4 runtimes, and the `mcp` constants both VMs share."""

from __future__ import annotations

from importlib import resources
from typing import Any

from lupa import lua54

from mcpframe.protocol import commands as c

#: Integer constants exported as ``mcp.<NAME>`` in both VMs (spec section 2.2).
CONSTANTS: dict[str, int] = {
    **{name: value for name, value in vars(c).items() if name.startswith("CMD_")},
    **{name: value for name, value in vars(c).items() if name.startswith("MCMC_")},
    "P_OK": 0,
    "AWAIT_GOOD": 0,
    "AWAIT_ANY": 1,
    "AWAIT_OK": 2,
    "AWAIT_FIRST": 3,
    "AWAIT_FASTGOOD": 4,
    "AWAIT_BACKGROUND": 5,
    # API v2 (spec v2 3.14), beside v1's as in 1.6.23-1.6.29; mcp.WAIT_RESUME (the boolean
    # true) is set by the route VM.
    "WAIT_ANY": 1,
    "WAIT_OK": 2,
    "WAIT_GOOD": 3,
    "WAIT_FASTGOOD": 4,
    "RES_GOOD": 8,
    "RES_OK": 16,
    "RES_ANY": 32,
}
#: The route VM's API v2 chunks, run in this order after ``mcp_routes.lua`` (API v1 and the
#: request and response objects): function generators, rctx and their driver; routers;
#: inspectors; mutators.
V2_CHUNKS: tuple[str, ...] = (
    "mcp_funcgen.lua",
    "mcp_router.lua",
    "mcp_inspect.lua",
    "mcp_mutate.lua",
)

# Internal markers that memcached does not export.
CONSTANTS.pop("CMD_END_STORAGE", None)

LuaRuntime = Any  # lupa's runtime class has no type information


def _deny(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("mcpframe: Lua may not access attributes of Python objects")


def new_runtime() -> LuaRuntime:
    """A Lua 5.4 state with the standard libraries and no way back into Python.

    lupa's ``python`` module (eval, builtins) is removed and every attribute access on a
    Python object is refused: the config is trusted operator code, but the runtime still
    hands Lua nothing of the Python world beyond calling the ``mcp`` functions. The filter
    costs nothing on the request path, where Lua only touches Lua tables.
    """
    lua = lua54.LuaRuntime(
        encoding=None,
        unpack_returned_tuples=True,
        register_eval=False,
        register_builtins=False,
        attribute_filter=_deny,
    )
    g = lua.globals()
    g.python = None
    g.package.loaded.python = None
    return lua


def chunk_name(name: str) -> str:
    """How Lua names one of our own files in error messages and tracebacks
    (``mcpframe/lua/mcp_config.lua:20:``), so a message never points at an anonymous chunk."""
    return f"@mcpframe/lua/{name}"


def lua_source(name: str) -> bytes:
    """The text of one of the Lua files shipped in this package."""
    return (resources.files("mcpframe.lua") / name).read_bytes()


def first_line(message: object) -> str:
    """A Lua error message without lupa's appended stack traceback."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return text.split("\nstack traceback:", 1)[0]
