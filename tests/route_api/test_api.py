"""The rest of the route API (spec 2.8-2.12, 3, 4.3, 6.2, 6.9 and the extra tests of 10.6),
with tests/configs/route_api/api.lua in front of one real memcached.

Three listeners: untagged, ``tag[anytag]:`` (CMD_ANY hooked: stats, version, watch and quit
reach Lua) and ``:other`` (only get hooked; the rest falls back to the untagged hooks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import Client, Memcached, free_port
from tests.route_api.conftest import Proxy, StartProxy


class Api:
    def __init__(self, proxy: Proxy, anytag: int, other: int, backend: Memcached) -> None:
        self.proxy = proxy
        self.anytag = anytag
        self.other = other
        self.backend = backend

    def tagged(self, port: int) -> Client:
        c = Client(("127.0.0.1", port))
        self.proxy.extra.append(c)
        return c

    def direct(self) -> Client:
        c = Client(self.backend.addr)
        self.proxy.extra.append(c)
        return c


@pytest.fixture
def api(module_memcached: Memcached, start_proxy: StartProxy) -> Iterator[Api]:
    memcached_server = module_memcached
    anytag, other = free_port(), free_port()
    proxy = start_proxy(
        "api.lua",
        "--listen", f"tag[anytag]:127.0.0.1:{anytag}",
        "--listen", f"127.0.0.1:{other}:other",
        env={"MCP_M1": str(memcached_server.port)},
    )  # fmt: skip
    yield Api(proxy, anytag, other, memcached_server)


def ask(p: Proxy, data: bytes) -> bytes:
    p.send(data)
    return p.readline()


# -- commands that reach routes, or never do ---------------------------------------------------


def test_unhooked_commands_are_answered_locally(api: Api) -> None:
    p = api.proxy
    assert ask(p, b"version\r\n") == b"VERSION 1.6.45\r\n"
    assert ask(p, b"mn\r\n") == b"MN\r\n"
    assert ask(p, b"verbosity 1\r\n") == b"OK\r\n"
    # A hook attached to flush_all is never used, and the internal cache alone does not
    # answer it (tests/e2e/test_flush_all.py).
    assert ask(p, b"flush_all\r\n") == b"SERVER_ERROR flush_all is not forwarded by this proxy\r\n"
    assert p.stats()["proxy_conn_requests"] == "0"
    p.send(b"quit\r\n")
    assert p.client.is_closed()


def test_cmd_any_routes_stats_version_watch_and_quit(api: Api) -> None:
    c = api.tagged(api.anytag)
    c.send(b"stats\r\nstats a b\r\nversion\r\nwatch proxyevents\r\n")
    assert c.read_until(b"END\r\n") == b"STAT routed 1\r\nEND\r\n"
    assert c.read_until(b"END\r\n") == b"STAT routed 3\r\nEND\r\n"
    assert c.readline() == b"VERSION anytag\r\n"
    assert c.readline() == b"SERVER_ERROR routed watch []\r\n"
    # A keyless command cannot be sent to a pool. (The route tail-calls the pool, so the
    # error has no line of the route to name.)
    w = api.proxy.watch("proxyevents")
    c.send(b"stats pool\r\n")
    assert c.readline() == b"SERVER_ERROR lua failure\r\n"
    w.expect(r"^ts=\S+ gid=\d+ type=proxy_error msg=cannot route commands without key\n$")
    # mn is never routed; quit is (so the connection stays open).
    c.send(b"mn\r\nquit\r\nmn\r\n")
    assert c.readline() == b"MN\r\n"
    assert c.readline() == b"SERVER_ERROR routed quit []\r\n"
    assert c.readline() == b"MN\r\n"
    # Storage commands on this listener use the tagged CMD_ANY hook too.
    c.send(b"get /pool/a\r\n")
    assert c.readline() == b"SERVER_ERROR anytag 7\r\n"


def test_tagged_hooks_fall_back_to_untagged_ones(api: Api) -> None:
    c = api.tagged(api.other)
    c.send(b"get /pool/a\r\n")
    assert c.readline() == b"SERVER_ERROR other\r\n"
    c.send(b"set /pool/a 0 0 1\r\nx\r\n")  # no "other" hook for set: the untagged one
    assert c.readline() == b"STORED\r\n"
    c.send(b"version\r\n")  # no hook anywhere: local
    assert c.readline() == b"VERSION 1.6.45\r\n"
    # The untagged listener never sees tagged hooks.
    assert ask(api.proxy, b"stats\r\n").startswith(b"STAT pid ")


def test_cmd_counts_in_stats_proxy(api: Api) -> None:
    p = api.proxy
    p.send(b"set /pool/c 0 0 1\r\nx\r\nget /pool/c /pool/d /pool/e\r\nmn\r\n")
    p.read_until(b"MN\r\n")
    lines = p.stat_lines("proxy")
    assert lines[:3] == [
        "STAT active_req_limit 0", "STAT buffer_memory_limit 0", "STAT buffer_memory_used 0",
    ]  # fmt: skip
    names = [line.split()[1] for line in lines[3:]]
    assert names == [
        "cmd_mg", "cmd_ms", "cmd_md", "cmd_mn", "cmd_ma", "cmd_me", "cmd_get", "cmd_gat",
        "cmd_set", "cmd_add", "cmd_cas", "cmd_gets", "cmd_gats", "cmd_incr", "cmd_decr",
        "cmd_touch", "cmd_append", "cmd_prepend", "cmd_delete", "cmd_replace",
    ]  # fmt: skip
    counts = {line.split()[1]: int(line.split()[2]) for line in lines[3:]}
    assert counts["cmd_get"] == 3 and counts["cmd_set"] == 1 and counts["cmd_mn"] == 0
    assert p.stats()["proxy_conn_requests"] == "4"


def test_stats_reset_restarts_the_proxy_counters_memcached_resets(api: Api) -> None:
    """As memcached 1.6.20 (checked on its binary): ``proxy_conn_requests``,
    ``proxy_conn_errors`` and ``total_connections`` restart; ``stats proxy`` (``cmd_*``,
    user stats) and the config and backend counters do not."""
    p = api.proxy
    p.send(b"set /pool/r 0 0 1\r\nx\r\nget /pool/r\r\nbogus\r\nmn\r\n")
    p.read_until(b"MN\r\n")
    before, proxy_before = p.stats(), p.stats("proxy")
    assert (before["proxy_conn_requests"], before["proxy_conn_errors"]) == ("2", "1")
    assert ask(p, b"stats reset\r\n") == b"RESET\r\n"
    after = p.stats()
    assert after["proxy_conn_requests"] == after["proxy_conn_errors"] == "0"
    assert after["total_connections"] == "0" and after["get_hits"] == "0"
    kept = ("proxy_config_reloads", "proxy_backend_total", "curr_connections", "curr_items")
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    assert p.stats("proxy") == proxy_before


def test_general_stats_carry_the_proxy_lines_in_memcached_order(api: Api) -> None:
    names = [line.split()[1] for line in api.proxy.stat_lines()]
    conn = names.index("proxy_conn_requests")
    assert names[conn : conn + 5] == [
        "proxy_conn_requests", "proxy_conn_errors", "proxy_conn_oom", "proxy_req_active",
        "proxy_await_active",
    ]  # fmt: skip
    assert names.index("total_connections") < conn < names.index("cmd_get")
    reloads = names.index("proxy_config_reloads")
    assert names[reloads : reloads + 7] == [
        "proxy_config_reloads", "proxy_config_reload_fails", "proxy_config_cron_runs",
        "proxy_config_cron_fails", "proxy_backend_total", "proxy_backend_marked_bad",
        "proxy_backend_failed",
    ]  # fmt: skip
    assert names.index("log_watchers") < reloads < names.index("curr_items")
    assert api.proxy.stats()["proxy_config_reloads"] == "1"


def test_parse_errors_count_in_proxy_conn_errors(api: Api) -> None:
    p = api.proxy
    assert ask(p, b"bogus\r\n") == b"ERROR\r\n"
    assert ask(p, b"set k abc 0 1\r\n") == b"CLIENT_ERROR bad command line format\r\n"
    assert p.stats()["proxy_conn_errors"] == "2"


# -- what a route returns (spec 4.3) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reply"),
    [
        ("str", b"SERVER_ERROR a string\r\n"),
        ("nil", b"SERVER_ERROR bad response\r\n"),
        ("none", b"SERVER_ERROR bad response\r\n"),
        ("number", b"SERVER_ERROR bad response\r\n"),
        ("boolean", b"SERVER_ERROR bad response\r\n"),
        ("table", b"SERVER_ERROR bad response\r\n"),
        ("function", b"SERVER_ERROR bad response\r\n"),
        ("request", b"SERVER_ERROR bad response\r\n"),  # [R] 1.6.20 crashes
        ("error", b"SERVER_ERROR lua failure\r\n"),
        ("errtable", b"SERVER_ERROR lua failure\r\n"),
        ("yield", b"SERVER_ERROR lua failure\r\n"),  # [R] 1.6.20 aborts
    ],
)
def test_route_return_values(api: Api, kind: str, reply: bytes) -> None:
    assert ask(api.proxy, b"get /ret/" + kind.encode() + b"\r\n") == reply
    api.proxy.check_version()


def test_a_long_string_is_sent_whole(api: Api) -> None:
    api.proxy.send(b"get /ret/long\r\n")
    got = api.proxy.read_until(b"END\r\n")
    assert got == b"VALUE /ret/long 0 2000\r\n" + b"x" * 2000 + b"\r\nEND\r\n"  # [R] no cut


def test_a_string_is_never_suppressed(api: Api) -> None:
    assert ask(api.proxy, b"set /ret/noreply_str 0 0 1 noreply\r\nx\r\n") == b"STORED\r\n"


def test_first_return_value_decides_and_responses_travel(api: Api) -> None:
    d = api.direct()
    d.send(b"set /ret/twice 0 0 1\r\n2\r\nset /ret/other 0 0 1\r\no\r\n")
    assert d.readline() == b"STORED\r\n" and d.readline() == b"STORED\r\n"
    api.proxy.send(b"get /ret/twice\r\nget /ret/other /ret/other\r\n")
    assert api.proxy.read_until(b"END\r\n") == b"VALUE /ret/twice 0 1\r\n2\r\nEND\r\n"
    # A multiget piece answered with another request's response: filtered all the same.
    assert api.proxy.read_until(b"END\r\n") == (
        b"VALUE /ret/other 0 1\r\no\r\nVALUE /ret/other 0 1\r\no\r\nEND\r\n"
    )


def test_route_errors_are_logged_as_proxy_error(api: Api) -> None:
    w = api.proxy.watch("proxyevents")
    assert ask(api.proxy, b"get /ret/error\r\n") == b"SERVER_ERROR lua failure\r\n"
    w.expect(
        r"^ts=\d+\.\d+ gid=\d+ type=proxy_error msg=\S+api\.lua:\d+: "
        r"route failed on purpose\n$"
    )
    assert ask(api.proxy, b"get /ret/yield\r\n") == b"SERVER_ERROR lua failure\r\n"
    w.expect(r"type=proxy_error msg=route yielded outside of a pool call")


# -- the request object (spec 3) ----------------------------------------------------------------


def report(p: Proxy, data: bytes) -> bytes:
    p.send(data)
    got = p.read_until(b"END\r\n")
    return got.split(b"\r\n")[1]


@pytest.mark.parametrize(
    ("line", "seen"),
    [
        (b"get /req/tokens", b"nil,get,/req/tokens,nil|nil"),
        (b"mg /req/tokens  s   v", b"nil,mg,/req/tokens,s,v,nil|nil"),
        (b"touch /req/tokens 10", b"nil,touch,/req/tokens,10,nil|nil"),
        (b"gat 10 /req/tokens", b"nil,gat,10,/req/tokens,nil|nil"),
    ],
)
def test_tokens(api: Api, line: bytes, seen: bytes) -> None:
    assert report(api.proxy, line + b"\r\n") == seen


def test_vlen_and_command(api: Api) -> None:
    p = api.proxy
    assert report(p, b"set /req/vlen 0 0 5\r\nhello\r\n") == b"5"
    assert report(p, b"ms /req/vlen 3\r\nabc\r\n") == b"3"
    assert report(p, b"get /req/vlen\r\n") == b"0"
    assert report(p, b"gats 1 /req/command\r\n") == b"13"


def test_edits_re_parse(api: Api) -> None:
    p = api.proxy
    assert ask(p, b"set /req/retoken 1 1 2\r\nhi\r\n") == b"STORED\r\n"
    d = api.direct()
    d.send(b"mg /req/retoken f t v\r\n")
    assert d.read_until(b"hi\r\n") == b"VA 2 f7 t-1\r\nhi\r\n"
    assert ask(p, b"set /req/rekey 0 0 2\r\nhi\r\n") == b"STORED\r\n"
    d.send(b"get /req/rekeyed\r\n")
    assert d.read_until(b"END\r\n") == b"VALUE /req/rekeyed 0 2\r\nhi\r\nEND\r\n"


def test_edit_limits(api: Api) -> None:
    p = api.proxy
    assert report(p, b"get /req/toolong\r\n") == (
        b"false token(): request malformed after edit /req/toolong"
    )
    assert report(p, b"set /req/malformed 0 0 1\r\nx\r\n") == (
        b"false token(): request malformed after edit set /req/malformed 1"
    )


def test_24_tokens(api: Api) -> None:
    # (A client's meta line this long is refused before routing, as memcached refuses it;
    # mcp.request builds one.)
    assert report(api.proxy, b"get /req/many\r\n") == b"24 O21 nil true true / 24 k false O21"


def test_trims(api: Api) -> None:
    assert report(api.proxy, b"get /req/trims\r\n") == (
        b"trims|tri|ltrimkey cannot zero out key|rtrimkey cannot zero out key"
    )


def test_quiet_rewrite_shows_in_the_request(api: Api) -> None:
    assert report(api.proxy, b"mg /req/quietrewrite v q\r\n") == b"true[ ]17"


def test_requests_built_in_lua(api: Api) -> None:
    p = api.proxy
    p.send(b"get /req/new\r\n")
    assert p.read_until(b"END\r\n") == b"VALUE /req/made 0 2\r\nab\r\nEND\r\n"
    p.send(b"set /req/fromreq 0 0 3\r\nxyz\r\n")
    assert p.read_until(b"END\r\n") == b"VALUE /req/copied 0 3\r\nxyz\r\nEND\r\n"
    assert report(p, b"get /req/meta\r\n") == b"1 /req/made 5 true xy"
    p.send(b"get /req/noreplymade\r\n")
    p.nothing()
    d = api.direct()
    d.send(b"get /req/nr\r\n")
    assert d.read_until(b"END\r\n") == b"VALUE /req/nr 0 1\r\nn\r\nEND\r\n"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("nocrlf", "failed to parse request"),
        ("toolong", "failed to parse request"),
        ("unknown", "failed to parse request"),
        ("short", "failed to parse request"),
        ("msnolen", "failed to parse request"),
        ("msbadlen", "failed to parse request"),
        ("badflag", "failed to parse request"),
        ("setshort", "failed to parse request"),
        ("twolines", "failed to parse request"),
        ("value", "value passed to mcp.request must end with \\r\\n"),
        ("hasflag", "has_flag(): meta flag must be a single character"),
        ("hasflag2", "has_flag(): invalid flag, must be A-Z,a-z"),
        ("flagtoken", "has_flag(): meta flag must be a single character"),
        ("tokentype", "bad argument #1 to 'token' (number expected, got string)"),
        ("tokenval", "bad argument #2 to 'token' (string expected, got table)"),
        ("pool", "bad argument #1 to 'pool' (mcp.request expected, got string)"),
        ("keyless", "cannot route commands without key"),
        ("await_nopool", "mcp.await arguments must have at least one pool"),
        ("await_notpool", "bad argument #2 to 'await' (mcp.pool_proxy expected, got number)"),
        ("await_mode", "invalid type argument tp mcp.await"),
        ("await_req", "bad argument #1 to 'await' (mcp.request expected, got string)"),
        ("internal", "bad argument #1 to 'internal' (mcp.request expected, got no value)"),
        ("log", "bad argument #1 to 'log' (string expected, got table)"),
        ("stat", "no stats counters initialized"),
        ("attach", "Must pass a function to mcp.attach"),
        ("attachtag", "mcp.attach: tag must be 1 to 8 characters"),
        ("attachcmd", "mcp.attach: invalid command type"),
    ],
)
def test_argument_errors(api: Api, case: str, message: str) -> None:
    assert ask(api.proxy, b"get /bad/" + case.encode() + b"\r\n") == (
        b"SERVER_ERROR " + message.encode() + b"\r\n"
    )


# -- client protocol (spec 6) -------------------------------------------------------------------


def test_routed_line_of_500_bytes_closes_the_connection(api: Api) -> None:
    p = api.proxy
    p.send(b"mn\r\nget /pool/k" + b" " * 486 + b"\r\n")  # 499 bytes: fine
    assert p.readline() == b"MN\r\n"
    p.send(b"mn\r\nmg /pool/k" + b" " * 488 + b"\r\n")  # 500 bytes
    # [R] mcpframe writes the earlier replies and the error line before closing.
    assert p.readline() == b"END\r\n"
    assert p.readline() == b"MN\r\n"
    assert p.readline() == b"CLIENT_ERROR request too long\r\n"
    assert p.client.is_closed()


def test_bad_data_chunk(api: Api) -> None:
    p = api.proxy
    p.send(b"set /pool/chunk 0 0 2\r\nhello\r\n")
    assert p.readline() == b"CLIENT_ERROR bad data chunk\r\n"
    assert p.readline() == b"ERROR\r\n"  # "llo" is read as a command, as memcached does
    assert p.stats()["proxy_req_active"] == "0"


def test_logger_plugins_get_the_same_events(
    module_memcached: Memcached, start_proxy: StartProxy, tmp_path: object
) -> None:
    memcached_server = module_memcached
    import json
    from pathlib import Path

    log = Path(str(tmp_path)) / "events.jsonl"
    p = start_proxy(
        "api.lua", "--logger", f"jsonfile:{log}", env={"MCP_M1": str(memcached_server.port)}
    )
    assert ask(p, b"get /ret/error\r\n") == b"SERVER_ERROR lua failure\r\n"
    p.check_version()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["status"] for e in events if e["type"] == "proxy_conf"] == ["start", "done"]
    (err,) = [e for e in events if e["type"] == "proxy_error"]
    assert err["msg"].endswith("route failed on purpose")
    assert "stack traceback" in err["traceback"]
