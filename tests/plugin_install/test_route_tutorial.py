"""docs/route-handler-plugins.md, run: render the route template, write the handler, install
it, run its tests; then serve the page's config and check what the page says it does.

The steps run today; serving a route-library config needs ``mcpframe serve --routelib``
(the route library), without which the traffic test is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.docs.steps import DOCS, ROOT, run_steps
from tests.helpers import Client, Mcpframe, Memcached
from tests.plugin_install.site import install_into, listed_rows, site_env

PAGE = DOCS / "route-handler-plugins.md"
DOC_PORTS = (11411, 11412)
ROUTELIB_REASON = "needs the route library (branch routelib)"


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """The page's steps, run once: (work directory, site, environment)."""
    root = tmp_path_factory.mktemp("route-tutorial")
    site, work = root / "site", root / "work"
    env = site_env(site, MCPFRAME=str(ROOT), SITE=str(site))
    run_steps(PAGE, work, env, rewrite=install_into(site))
    return work, site, env


def test_route_tutorial_steps(walked: tuple[Path, Path, dict[str, str]]) -> None:
    work, _, env = walked
    assert listed_rows(env, "mcpframe-mirror") == [("mirror", "route", "route_mirror", "ok")]
    # The page's Lua file is what got installed.
    lua = (work / "mcpframe-mirror" / "mcpframe_mirror" / "route_mirror.lua").read_text()
    assert "function route_mirror_start(a, ctx, fgen)" in lua


def serve_help() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mcpframe", "serve", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
    )
    return done.stdout


def ask(addr: tuple[str, int], request: bytes, lines: int) -> list[bytes]:
    client = Client(addr)
    try:
        client.send(request)
        return [client.readline() for _ in range(lines)]
    finally:
        client.close()


def test_route_tutorial_real_traffic(
    walked: tuple[Path, Path, dict[str, str]],
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    if "--routelib" not in serve_help():
        pytest.skip(ROUTELIB_REASON)
    work, site, _ = walked
    a, b = (memcached_factory() for _ in DOC_PORTS)
    config = (work / "mirror-routes.lua").read_text()
    for doc_port, backend in zip(DOC_PORTS, (a, b), strict=True):
        config = config.replace(str(doc_port), str(backend.port))
    live = work / "mirror-live.lua"
    live.write_text(config)
    proxy = mcpframe_factory("--routelib", str(live), env={"PYTHONPATH": str(site)})

    # The page's commands, in its order: a write lands on both, a read survives losing one.
    assert ask(proxy.addr, b"set user:1 0 0 5\r\nalice\r\n", 1) == [b"STORED\r\n"]
    assert ask(b.addr, b"mg user:1 v\r\n", 2) == [b"VA 5\r\n", b"alice\r\n"]
    assert ask(a.addr, b"md user:1\r\n", 1) == [b"HD\r\n"]
    assert ask(proxy.addr, b"get user:1\r\n", 3) == [
        b"VALUE user:1 0 5\r\n",
        b"alice\r\n",
        b"END\r\n",
    ]

    # More of the same: every key written through the proxy is on both servers, and a read
    # finds it whichever one still has it.
    keys = [b"k%d" % i for i in range(100)]
    replies = ask(proxy.addr, b"".join(b"set %s 0 0 1\r\nv\r\n" % k for k in keys), len(keys))
    assert replies == [b"STORED\r\n"] * len(keys)
    for server in (a, b):
        assert ask(server.addr, b"".join(b"mg %s\r\n" % k for k in keys), len(keys)) == (
            [b"HD\r\n"] * len(keys)
        )
    drop_a, drop_b = keys[::2], keys[1::2]
    ask(a.addr, b"".join(b"md %s\r\n" % k for k in drop_a), len(drop_a))
    ask(b.addr, b"".join(b"md %s\r\n" % k for k in drop_b), len(drop_b))
    found = ask(proxy.addr, b"".join(b"mg %s v\r\n" % k for k in keys), 2 * len(keys))
    assert found == [b"VA 1\r\n", b"v\r\n"] * len(keys)
    # A key both lost is a miss, answered by the last child.
    ask(b.addr, b"md %s\r\n" % keys[0], 1)
    assert ask(proxy.addr, b"mg %s v\r\n" % keys[0], 1) == [b"EN\r\n"]
