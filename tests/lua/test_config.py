"""Loading configs: the mcp API of the config VM, what crosses to the route VM, errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mcpframe.config import LoadedConfig
from mcpframe.errors import ConfigError

Load = Callable[[str], LoadedConfig]

ROUTES = "function mcp_config_routes(p) end\n"


def pools_of(load: Load, body: str) -> LoadedConfig:
    return load("function mcp_config_pools()\n" + body + "\nend\n" + ROUTES)


def test_backend_forms_and_tunables(mcpframe_load_config: Load) -> None:
    loaded = pools_of(
        mcpframe_load_config,
        """
        mcp.backend_connect_timeout(2.5)
        mcp.backend_read_timeout(0.25)
        mcp.backend_failure_limit(0)
        local a = mcp.backend("a", "127.0.0.1", 11211)
        mcp.backend_read_timeout(1)
        local b = mcp.backend({ label = "b", host = "127.0.0.2", port = "11212",
                                retrytimeout = 7, failurelimit = 2, tcpkeepalive = true })
        return { main = mcp.pool({ a, b }) }
        """,
    )
    a, b = loaded.named_pools()["main"].backends
    assert (a.label, a.host, a.port) == ("a", "127.0.0.1", "11211")
    assert (a.connecttimeout, a.readtimeout, a.failurelimit) == (2.5, 0.25, 0)
    assert (b.host, b.port, b.readtimeout, b.retrytimeout, b.failurelimit) == (
        "127.0.0.2", "11212", 1.0, 7.0, 2,
    )  # fmt: skip
    assert b.tcpkeepalive is True
    assert loaded.tunables["readtimeout"] == 1.0


def test_nested_config_tables_and_shared_pools(mcpframe_load_config: Load) -> None:
    loaded = pools_of(
        mcpframe_load_config,
        """
        local p = mcp.pool({ mcp.backend("a", "127.0.0.1", 1) })
        return { zones = { z1 = p, z2 = mcp.pool({ mcp.backend("b", "127.0.0.1", 2) }) },
                 same = p, list = { p }, n = 3, s = "x" }
        """,
    )
    names = loaded.named_pools()
    assert set(names) == {"zones.z1", "zones.z2", "same", "list.1"}
    assert len(loaded.pools) == 2  # one pool object, referenced three times


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('mcp.backend({ host = "h", port = 1 })', "backend must have a label argument"),
        ('mcp.backend({ label = "l", port = 1 })', "backend must have a host argument"),
        ('mcp.backend({ label = "l", host = "h" })', "backend must have a port argument"),
        ('mcp.backend(string.rep("l", 512), "h", 1)', "backend label too long"),
        ('mcp.backend("l", string.rep("h", 255), 1)', "backend name too long"),
        ('mcp.backend("l", "h", "123456")', "backend port too long"),
        ('mcp.backend({ label = "l", host = "h", port = 1, failurelimit = -1 })',
         "failure_limit must be >= 0"),
        ("mcp.backend_failure_limit(-1)", "backend_failure_limit must be >= 0"),
        ("mcp.add_stat(0, 'x')", "stat index must be 1 or higher"),
        ("mcp.add_stat(1025, 'x')", "stat index must be 1024 or less"),
        ("mcp.add_stat(1, 'a b')", "stat cannot contain spaces or newlines"),
        ("mcp.pool({}, { dist = {} })", "key distribution object missing 'new' function"),
        ("mcp.pool({}, { filter = 'stop' })", "hash filter requires 'filter_conf' string"),
        ("mcp.pool({}, { filter = 'stop', filter_conf = 'x' })",
         "hash filter conf must be between 2 and 5 characters"),
        ("mcp.tcp_keepalive(1)", "bad argument #1 to 'tcp_keepalive' (boolean expected"),
    ],
)  # fmt: skip
def test_config_function_errors_name_the_line(
    mcpframe_load_config: Load, body: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        pools_of(mcpframe_load_config, "\n" + body + "\nreturn {}")
    text = str(err.value)
    assert text.startswith("Failed to execute mcp_config_pools: ")
    assert message in text
    assert ".lua:3:" in text  # line 3 of the file: the offending call


def test_unknown_filter_lists_available(mcpframe_load_config: Load) -> None:
    with pytest.raises(ConfigError) as err:
        pools_of(
            mcpframe_load_config,
            "return { p = mcp.pool({ mcp.backend('a', 'h', 1) }, "
            "{ filter = 'nope', filter_conf = '::' }) }",
        )
    text = str(err.value)
    assert "nope" in text and "stop" in text and "tags" in text
    assert ".lua:2:" in text


def test_ring_options_are_checked_at_load(mcpframe_load_config: Load) -> None:
    with pytest.raises(ConfigError, match="ring_hash: bad omode argument"):
        pools_of(
            mcpframe_load_config,
            "return { p = mcp.pool({ mcp.backend('a', 'h', 1) }, "
            "{ dist = mcp.dist_ring_hash, omode = 'bogus' }) }",
        )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mcp.backend('a', 'h', 1)", "unhandled userdata type in configuration table"),
        ("print", "unhandled data type in configuration table"),
        ("{ [true] = 1 }", "configuration table keys must be strings or numbers"),
    ],
)
def test_uncopyable_config_values_fail_the_load(
    mcpframe_load_config: Load, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        pools_of(mcpframe_load_config, f"return {{ x = {value} }}")


def test_route_vm_gets_a_copy_and_attaches(mcpframe_load_config: Load) -> None:
    loaded = mcpframe_load_config(
        """
        function mcp_config_pools()
            return { main = mcp.pool({ mcp.backend("a", "127.0.0.1", 1) }), n = 7 }
        end
        function mcp_config_routes(c)
            assert(c.n == 7)
            assert(math.type(c.n) == "integer")
            mcp.attach(mcp.CMD_GET, function(r) return c.main(r) end)
            mcp.attach(mcp.CMD_ANY_STORAGE, function(r) return "x" end, "tagA")
            mcp.attach(mcp.CMD_MN, function(r) return "never" end)
        end
        """
    )
    hooks = loaded.routes.hooks
    assert set(hooks[""]) == {7}
    assert 4 not in hooks["tagA"]  # mn is never routed
    assert set(hooks["tagA"]) == set(range(1, 21)) - {4}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("mcp.attach(mcp.CMD_GET, 5)", "Must pass a function to mcp.attach"),
        ("mcp.attach(mcp.CMD_GET, print, 'waytoolongtag')", "tag must be 1 to 8 characters"),
        ("mcp.attach(999, function() end)", "invalid command"),
        ("mcp.backend('a', 'b', 1)", "attempt to call a nil value"),
    ],
)
def test_route_vm_errors(mcpframe_load_config: Load, call: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        mcpframe_load_config(
            "function mcp_config_pools() return {} end\n"
            f"function mcp_config_routes(c)\n  {call}\nend\n"
        )
    assert str(err.value).startswith("Failed to execute mcp_config_routes: ")
    assert message in str(err.value)
    assert ".lua:3:" in str(err.value)


@pytest.mark.parametrize(
    ("pools", "routes", "where", "message"),
    [
        ("mcp.backend('l', 'h', '123456')", "", "mcp_config_pools", "backend port too long"),
        ("", "mcp.attach(mcp.CMD_GET, 5)", "mcp_config_routes", "Must pass a function"),
        ("", "mcp.funcgen_new():new_handle(5)", "mcp_config_routes", "invalid argument"),
        ("", "mcp.router_new({ map = 5 })", "mcp_config_routes", ""),
    ],
)
def test_a_config_may_define_its_own_global_debug(
    mcpframe_load_config: Load, pools: str, routes: str, where: str, message: str
) -> None:
    # memcached's route library defines `function debug(opt)`: our errors still name the line.
    with pytest.raises(ConfigError) as err:
        mcpframe_load_config(
            "function debug(opt) end\n"
            f"function mcp_config_pools()\n  {pools}\n  return {{}}\nend\n"
            f"function mcp_config_routes(c)\n  {routes}\nend\n"
        )
    text = str(err.value)
    assert text.startswith(f"Failed to execute {where}: "), text
    assert message in text and "attempt to" not in text, text
    assert (".lua:3:" if where == "mcp_config_pools" else ".lua:7:") in text, text


def test_sandbox_hands_lua_no_python(mcpframe_load_config: Load) -> None:
    loaded = mcpframe_load_config(
        """
        assert(python == nil)
        assert(package.loaded.python == nil)
        function mcp_config_pools() return {} end
        function mcp_config_routes(c) end
        """
    )
    assert loaded.pools == []


# spec 5.6, ring lookups for backends 127.0.0.1:11211, 127.0.0.2:11211, 127.0.0.3:11212
RING_KEYS = ["foo", "bar", "baz", "/test/a", "/test/b", "/test/c", "/foo/bar", "hello", "a", ""]
RING = {
    "ketama": ([2, 1, 2, 0, 0, 1, 0, 2, 1, 1], [0, 0, 1, 0, 1, 1, 0, 2, 0, 0]),
    "twemproxy": ([0, 0, 2, 0, 2, 1, 2, 2, 0, 2], [0, 1, 1, 1, 2, 2, 0, 2, 2, 1]),
    "evcache": ([1, 2, 2, 0, 0, 0, 2, 2, 0, 0], [0, 0, 1, 2, 2, 1, 1, 0, 1, 0]),
}


@pytest.mark.parametrize("omode", sorted(RING))
def test_ring_hash_pools_place_keys_like_memcached(mcpframe_load_config: Load, omode: str) -> None:
    loaded = pools_of(
        mcpframe_load_config,
        f"""
        local list = {{ mcp.backend("b1", "127.0.0.1", 11211),
                        mcp.backend("b2", "127.0.0.2", 11211),
                        mcp.backend("b3", "127.0.0.3", 11212) }}
        return {{
            md5 = mcp.pool(list, {{ dist = mcp.dist_ring_hash, omode = "{omode}",
                                    hash = mcp.dist_ring_hash.hash }}),
            xx = mcp.pool(list, {{ dist = mcp.dist_ring_hash, omode = "{omode}" }}),
        }}
        """,
    )
    pools = loaded.named_pools()
    md5, xx = RING[omode]
    assert [pools["md5"].select(k.encode()) for k in RING_KEYS] == md5
    assert [pools["xx"].select(k.encode()) for k in RING_KEYS] == xx


def test_default_seeded_and_filtered_pools(mcpframe_load_config: Load) -> None:
    loaded = pools_of(
        mcpframe_load_config,
        """
        local list = { mcp.backend("a", "h", 1), mcp.backend("b", "h", 2),
                       mcp.backend("c", "h", 3) }
        return {
            plain = mcp.pool(list),
            seeded = mcp.pool(list, { seed = "z1" }),
            stop = mcp.pool(list, { filter = "stop", filter_conf = "|#|" }),
            tags = mcp.pool(list, { filter = "tags", filter_conf = "{}" }),
            empty = mcp.pool({}),
        }
        """,
    )
    pools = loaded.named_pools()
    spec = [1, 1, 1, 2, 1, 2, 0, 2, 1, 2, 1, 0, 1, 1, 2, 0, 1, 2, 1, 0, 1]
    assert [pools["plain"].select(b"/test/%d" % i) for i in range(21)] == spec
    assert [pools["seeded"].select(k) for k in (b"/test/0", b"/test/1", b"/test/3", b"foo")] == [
        2, 0, 1, 0,
    ]  # fmt: skip
    assert pools["plain"].select(b"foo:bar|#|restofkey") == 0
    assert pools["stop"].select(b"foo:bar|#|restofkey") == 2
    assert pools["tags"].select(b"user{1234}:profile") == 2
    with pytest.raises(IndexError, match="key dist hasher tried to use out of bounds index"):
        pools["empty"].select(b"foo")


def test_missing_plugin_names_raise_instead_of_nil(mcpframe_load_config: Load) -> None:
    with pytest.raises(ConfigError) as err:
        pools_of(
            mcpframe_load_config,
            "return { p = mcp.pool({ mcp.backend('a', 'h', 1) }, { dist = mcp.dist_nope }) }",
        )
    text = str(err.value)
    assert "mcp.dist_nope" in text and "jump_hash" in text and "ring_hash" in text
    assert ".lua:2:" in text
