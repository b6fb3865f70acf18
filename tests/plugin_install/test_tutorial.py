"""docs/tutorial.md, run: render the template, write the dist, install it, route real traffic.

This is also the proof that a throwaway plugin distribution, built in a temporary directory
and pip-installed, shows in ``mcpframe plugins list --json`` and works as ``mcp.dist_<name>``
in a config that routes real traffic to real memcached backends: every key is found on the
backend that the plugin's own distribution picks.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import xxhash

from mcpframe.types import BackendInfo
from tests.docs.steps import DOCS, ROOT, run_steps
from tests.helpers import Client, Mcpframe, Memcached
from tests.plugin_install.site import install_into, listed_rows, site_env

TUTORIAL = DOCS / "tutorial.md"
DOC_PORTS = (11311, 11312, 11313)
LABELS = ("b1", "b2", "b3")


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("tutorial_mcpframe_hrw", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documented_placement() -> dict[str, str]:
    """Key -> backend label, as the page's `mcpframe check` output shows it."""
    text = TUTORIAL.read_text()
    return dict(re.findall(r"^  (user:\d+)\n    main: \d+  (b\d)  ", text, re.MULTILINE))


def send_and_locate(
    proxy: Mcpframe, backends: list[Memcached], keys: list[bytes]
) -> dict[bytes, list[str]]:
    """Set ``keys`` through the proxy; then which backends (by label) hold each key."""
    client = Client(proxy.addr)
    try:
        client.send(b"".join(b"set %s 0 0 1\r\nv\r\n" % k for k in keys))
        for key in keys:
            assert client.readline() == b"STORED\r\n", key
    finally:
        client.close()
    found: dict[bytes, list[str]] = {k: [] for k in keys}
    for label, backend in zip(LABELS, backends, strict=True):
        direct = Client(backend.addr)
        try:
            direct.send(b"".join(b"mg %s\r\n" % k for k in keys))
            for key in keys:
                reply = direct.readline()
                assert reply in (b"HD\r\n", b"EN\r\n"), reply
                if reply == b"HD\r\n":
                    found[key].append(label)
        finally:
            direct.close()
    return found


def test_tutorial_steps_then_real_traffic(
    tmp_path: Path,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    site = tmp_path / "site"
    work = tmp_path / "work"
    env = site_env(site, MCPFRAME=str(ROOT), SITE=str(site))
    run_steps(TUTORIAL, work, env, rewrite=install_into(site))

    # The installed throwaway package is a plugin like any other.
    assert listed_rows(env, "mcpframe-hrw") == [("hrw", "distribution", "mcp.dist_hrw", "ok")]

    # Step 5 of the page, on free ports: the same config with real backends.
    backends = [memcached_factory() for _ in DOC_PORTS]
    config = (work / "hrw.lua").read_text()
    for doc_port, backend in zip(DOC_PORTS, backends, strict=True):
        config = config.replace(str(doc_port), str(backend.port))
    (work / "hrw-live.lua").write_text(config)
    proxy = mcpframe_factory("--config", str(work / "hrw-live.lua"), env={"PYTHONPATH": str(site)})

    keys = [f"user:{i}".encode() for i in range(1, 301)]
    try:
        found = send_and_locate(proxy, backends, keys)
    finally:
        # The fixtures stop these one by one; asking them all now lets them exit together.
        for process in (proxy, *backends):
            process.proc.terminate()

    # The distribution the page wrote, computed here from its source, picks each backend.
    module = load_module(work / "mcpframe-hrw" / "mcpframe_hrw" / "__init__.py")
    servers = [
        BackendInfo(i + 1, "127.0.0.1", str(b.port), label)
        for i, (b, label) in enumerate(zip(backends, LABELS, strict=True))
    ]
    select = module.build(servers, {})
    expected = {key: [LABELS[select(xxhash.xxh3_64_intdigest(key))]] for key in keys}
    assert found == expected
    assert {labels[0] for labels in found.values()} == set(LABELS)
    # And the placements the page shows (from `mcpframe check`) are the ones traffic took.
    for key, label in documented_placement().items():
        assert found[key.encode()] == [label], key
    assert len(documented_placement()) == 3
