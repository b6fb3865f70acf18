"""Every example in the docs runs.

* A Lua block defining ``mcp_config_pools`` is a whole config: it is loaded the way
  ``mcpframe serve`` loads it, with the plugin packages of ``plugins/`` installed (some
  examples use them). Any other Lua block, and a config marked ``<!-- sketch -->``, must at
  least compile. (A config written to a file by a page's steps is checked by those steps.)
* Python blocks of more than one line must compile (one-liners are signatures).
* Marked steps (``<!-- file -->``, ``<!-- run -->``, ``<!-- output -->``, see ``steps.py``)
  run in a scratch directory, and their documented output must be what they print. The
  tutorial's steps run in ``tests/plugin_install/test_tutorial.py``, which also routes real
  traffic through what they build.

The pages written by other parts of the project (the Lua API reference, operations and
performance) are left to their own tests; README.md and the plugin READMEs are included.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpframe.config import ConfigSource
from mcpframe.lua.config import ConfigLoader
from mcpframe.lua.runtime import new_runtime
from mcpframe.plugins import create_plugin_manager
from mcpframe.registry import Registry, build_registry
from tests.docs.steps import DOCS, ROOT, Block, blocks, run_steps
from tests.plugin_install.site import PLUGINS, Site, site_env

OTHERS = {"lua-api.md", "operations.md", "performance.md"}
PAGES = sorted(p for p in DOCS.glob("*.md") if p.name not in OTHERS)
READMES = [ROOT / "README.md", *sorted(PLUGINS.glob("*/README.md"))]


def all_blocks(lang: str) -> list[Block]:
    return [b for page in [*PAGES, *READMES] for b in blocks(page) if b.lang == lang]


@pytest.fixture(scope="module")
def registry_with_plugins(site: Site) -> Registry:
    """The registry ``serve`` would build with the plugins of ``plugins/`` installed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site.path))
        return build_registry(create_plugin_manager(environ={}))


LUA = all_blocks("lua")
CONFIGS = [b for b in LUA if "function mcp_config_pools" in b.body and b.marker is None]
FRAGMENTS = [b for b in LUA if b.marker != "file" and b not in CONFIGS]
#: route library configs (docs/routelib.md): loaded as ``serve --routelib`` loads them.
ROUTELIB = [b for b in LUA if "routes{" in b.body and b.marker is None and b not in CONFIGS]


def test_the_docs_have_examples() -> None:
    assert len(CONFIGS) >= 5 and FRAGMENTS


@pytest.mark.parametrize("block", CONFIGS, ids=lambda b: b.where)
def test_lua_config_loads(block: Block, registry_with_plugins: Registry, tmp_path: Path) -> None:
    path = tmp_path / "example.lua"
    path.write_text(block.body)
    loaded = ConfigLoader(registry_with_plugins).load(str(path))
    assert loaded.named_pools(), f"{block.where}: the config defines no pool"


@pytest.mark.parametrize("block", ROUTELIB, ids=lambda b: b.where)
def test_routelib_config_loads(
    block: Block, registry_with_plugins: Registry, tmp_path: Path
) -> None:
    path = tmp_path / "example.lua"
    path.write_text(block.body)
    loaded = ConfigLoader(registry_with_plugins).load(ConfigSource(("routelib",), str(path)))
    assert loaded.routes.hooks[""], f"{block.where}: nothing attached"


@pytest.mark.parametrize("block", FRAGMENTS, ids=lambda b: b.where)
def test_lua_fragment_compiles(block: Block) -> None:
    lua = new_runtime()
    compile_chunk = lua.execute(b"return function(src) local f, err = load(src) return err end")
    error = compile_chunk(block.body.encode())
    assert error is None, f"{block.where}: {error!r}"


@pytest.mark.parametrize(
    "block", [b for b in all_blocks("python") if b.body.count("\n") > 1], ids=lambda b: b.where
)
def test_python_block_compiles(block: Block) -> None:
    compile(block.body, block.where, "exec")


# The tutorials' steps run in tests/plugin_install (test_tutorial.py, test_route_tutorial.py).
TUTORIALS = {"tutorial.md", "route-handler-plugins.md"}
STEP_PAGES = [p for p in PAGES if p.name not in TUTORIALS and "<!-- run" in p.read_text()]


@pytest.mark.parametrize("page", STEP_PAGES, ids=lambda p: p.name)
def test_marked_steps_run(page: Path, site: Site, tmp_path: Path) -> None:
    assert run_steps(page, tmp_path / "work", site_env(site.path))
