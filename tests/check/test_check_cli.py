"""`mcpframe check CONFIG [--key K ...]`, through the CLI in a subprocess, as operators run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, Client, Mcpframe, Memcached
from tests.plugin_install.site import Site, site_env

CONFIG = """\
function mcp_config_pools()
    local b1 = mcp.backend("b1", "127.0.0.1", 11511)
    local b2 = mcp.backend("b2", "127.0.0.1", 11512)
    local b3 = mcp.backend("b3", "127.0.0.1", 11513)
    return {
        main = mcp.pool({ b1, b2, b3 }),
        z = {
            mcp.pool({ b1, b2, b3 }, { seed = "z1" }),
            mcp.pool({ b1, b2, b3 }, { filter = "stop", filter_conf = "|#|" }),
        },
        tagged = mcp.pool({ b1, b2, b3 }, { filter = "tags", filter_conf = "{}" }),
        ring = mcp.pool({ b1, b2 }, { dist = mcp.dist_ring_hash, omode = "ketama",
                                      hash = mcp.dist_ring_hash.hash }),
    }
end

function mcp_config_routes(pools)
    mcp.attach(mcp.CMD_ANY_STORAGE, function(r)
        return pools.main(r)
    end)
    mcp.attach(mcp.CMD_MG, function(r) return pools.z[1](r) end, "seeded")
    mcp.attach(mcp.CMD_GET, function(r) return pools.tagged(r) end, "seeded")
    mcp.attach(mcp.CMD_ANY, function(r) return "SERVER_ERROR read only\\r\\n" end, "ro")
end
"""


def run_check(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MCPFRAME_")}
    return subprocess.run(
        [sys.executable, "-m", "mcpframe", "check", *args],
        env=env or environ,
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(tmp_path: Path, text: str, name: str = "routes.lua") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def check_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = run_check("--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_describes_pools_routes_and_placements(tmp_path: Path) -> None:
    config = write(tmp_path, CONFIG)
    done = run_check(str(config), "--key", "/test/0", "--key", "foo:bar|#|restofkey")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"config {config}: loaded\n")
    # Lua shortens long chunk names in its messages; routes show the path as given.
    assert "pool main  (" in out and "pool z.1  (" in out and "pool ring  (" in out
    assert "  dist      ring_hash\n  hash      md5\n" in out
    assert "  seed      'z1' (7273408066088704005)\n" in out
    assert "  filter    stop '|#|'\n" in out
    assert "  options   omode=ketama\n" in out
    assert "      2  b3  127.0.0.1:11513\n" in out
    # Routes that only pass requests to a pool are said to run without Lua.
    passthrough = "(pass-through: pool {})"
    assert (
        f"  untagged: CMD_ANY_STORAGE (19 commands) -> {config}:18 {passthrough.format('main')}\n"
        in out
    )
    assert "  tag ro: CMD_ANY (" in out and f" commands) -> {config}:23\n" in out
    assert f"  tag seeded: mg -> {config}:21\n" in out  # pools.z[1]: not a pass-through shape
    assert f"  tag seeded: get -> {config}:22 {passthrough.format('tagged')}\n" in out
    assert "  /test/0\n    main: 1  b2  127.0.0.1:11512\n" in out


def test_placements_are_memcacheds(tmp_path: Path) -> None:
    # The expected indexes are the test vectors of memcached 1.6.20 (spec section 5.6).
    config = write(tmp_path, CONFIG)
    keys = ["/test/0", "/test/3", "/test/6", "/test/11", "foo", "foo:bar|#|restofkey"]
    keys += ["user{1234}:profile"]
    report = check_json(str(config), *[arg for key in keys for arg in ("--key", key)])
    index = {p["key"]: {pool: w["index"] for pool, w in p["pools"].items()} for p in report["keys"]}
    assert [index[k]["main"] for k in ("/test/0", "/test/3", "/test/6", "/test/11")] == [1, 2, 0, 0]
    assert index["/test/0"]["z.1"] == 2 and index["foo"]["z.1"] == 0  # seed "z1"
    assert index["foo:bar|#|restofkey"]["z.2"] == 2  # "stop" hashes foo:bar
    assert index["foo:bar|#|restofkey"]["main"] == 0
    assert index["user{1234}:profile"]["tagged"] == 2  # "tags" hashes 1234


def test_json_report(tmp_path: Path) -> None:
    report = check_json(str(write(tmp_path, CONFIG)), "--key", "foo")
    assert [p["name"] for p in report["pools"]] == ["main", "ring", "tagged", "z.1", "z.2"]
    z1 = next(p for p in report["pools"] if p["name"] == "z.1")
    assert z1["seed"] == {"string": "z1", "value": 7273408066088704005}
    assert z1["backends"][0] == {"index": 0, "label": "b1", "host": "127.0.0.1", "port": "11511"}
    assert {(r["tag"], r["group"], r["passthrough"]) for r in report["routes"]} == {
        (None, "CMD_ANY_STORAGE", "main"),
        ("ro", "CMD_ANY", None),
        ("seeded", None, None),
        ("seeded", None, "tagged"),
    }
    assert report["keys"][0]["pools"]["main"]["label"] == "b3"  # foo, 3 backends: index 2
    assert report["failed_plugins"] == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("function mcp_config_pools(\n", "routes.lua:2:"),
        (
            "function mcp_config_pools()\n  return { p = mcp.pool({ mcp.backend('a') }) }\nend\n",
            "routes.lua:2: bad argument #2 to 'backend'",
        ),
        (
            "function mcp_config_pools()\n  return {}\nend\n"
            "function mcp_config_routes(p)\n  mcp.attach(mcp.CMD_GET, 5)\nend\n",
            "Failed to execute mcp_config_routes: routes.lua:5: Must pass a function",
        ),
        (
            "function mcp_config_pools()\n  local b = { mcp.backend('a', 'h', 1) }\n"
            "  return { p = mcp.pool(b, { dist = mcp.dist_nope }) }\nend\n",
            "routes.lua:3: mcp.dist_nope: unknown key distribution 'nope'",
        ),
        ("function mcp_config_routes(p) end\n", "Configuration file missing 'mcp_config_pools'"),
    ],
    ids=["syntax", "pools-error", "routes-error", "unknown-dist", "no-pools"],
)
def test_config_errors_exit_1_with_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, text)
    done = run_check("routes.lua", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("mcpframe check: ")
    assert message in done.stderr


def test_missing_file(tmp_path: Path) -> None:
    done = run_check(str(tmp_path / "nope.lua"))
    assert done.returncode == 1
    assert done.stderr == f"mcpframe check: {tmp_path / 'nope.lua'}: config file not found\n"


def test_unplaceable_and_invalid_keys_exit_1(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
        function mcp_config_pools()
            return { empty = mcp.pool({}) }
        end
        function mcp_config_routes(pools) end
        """,
    )
    done = run_check(str(config), "--key", "foo", "--key", "has space", "--key", "x" * 251)
    assert done.returncode == 1
    assert "  foo\n    empty: error: " in done.stdout  # the report is printed anyway
    assert "key dist hasher tried to use out of bounds index" in done.stderr
    assert "key 'has space': not a memcached key" in done.stderr
    assert "(got 251 bytes)" in done.stderr
    assert "(none attached: every command is answered by the internal cache)" in done.stdout


def test_sees_installed_plugins(tmp_path: Path, site: Site) -> None:
    config = write(
        tmp_path,
        """
        function mcp_config_pools()
            local b = { mcp.backend("a@2", "10.0.0.1", 11211), mcp.backend("b", "10.0.0.2", 11211) }
            return { hrw = mcp.pool(b, { dist = mcp.dist_rendezvous }),
                     tw = mcp.pool(b, { dist = mcp.dist_tw_ketama, hash = mcp.hash_tw_md5 }) }
        end
        function mcp_config_routes(pools) end
        """,
    )
    report = check_json(str(config), "--key", "foo", env=site_env(site.path))
    assert {(p["name"], p["dist"], p["hash"]) for p in report["pools"]} == {
        ("hrw", "rendezvous", "xxhash"),
        ("tw", "tw_ketama", "tw_md5"),
    }
    without = run_check(str(config))
    assert without.returncode == 1
    assert "mcp.dist_rendezvous: unknown key distribution 'rendezvous'" in without.stderr


def test_serve_puts_keys_where_check_says(
    tmp_path: Path,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    backends = [memcached_factory() for _ in range(3)]
    text = CONFIG
    for doc_port, backend in zip((11511, 11512, 11513), backends, strict=True):
        text = text.replace(str(doc_port), str(backend.port))
    config = write(tmp_path, text)
    keys = [f"k{i}" for i in range(60)]
    report = check_json(str(config), *[arg for key in keys for arg in ("--key", key)])
    expected = {p["key"]: p["pools"]["main"]["index"] for p in report["keys"]}
    assert set(expected.values()) == {0, 1, 2}

    proxy = mcpframe_factory("--config", str(config))
    held: list[set[str]] = []
    try:
        client = Client(proxy.addr)
        try:
            client.send(b"".join(b"set %s 0 0 1\r\nv\r\n" % k.encode() for k in keys))
            assert [client.readline() for _ in keys] == [b"STORED\r\n"] * len(keys)
        finally:
            client.close()
        for backend in backends:
            direct = Client(backend.addr)
            try:
                direct.send(b"".join(b"mg %s\r\n" % k.encode() for k in keys))
                held.append({k for k in keys if direct.readline() == b"HD\r\n"})
            finally:
                direct.close()
    finally:
        for process in (proxy, *backends):  # let them all exit together
            process.proc.terminate()
    assert held == [{k for k, i in expected.items() if i == index} for index in range(3)]
