"""The plugin packages in plugins/: shaped as mcpframe plugins, installable, and their tests pass.

Each package is built and installed (with the others) into a temporary site, and its own test
suite runs against that installed copy in a subprocess, so mcpframe's suite runs every
plugin's tests, including mcpframe-twemproxy's comparison with a real nutcracker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from tests.plugin_install.site import ROOT, Site, plugin_dirs, run_pytest, site_env

PACKAGES = plugin_dirs()


def test_there_are_at_least_three() -> None:
    assert {p.name for p in PACKAGES} >= {
        "mcpframe-twemproxy",
        "mcpframe-rendezvous",
        "mcpframe-jsonlog",
    }


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_package_follows_the_conventions(package: Path) -> None:
    pyproject = tomllib.loads((package / "pyproject.toml").read_text())
    project = pyproject["project"]
    module = package.name.replace("-", "_")
    assert package.name.startswith("mcpframe-")
    assert project["name"] == package.name
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    assert project["entry-points"]["mcpframe"] == {package.name.removeprefix("mcpframe-"): module}
    assert (package / module / "__init__.py").is_file()
    assert (package / module / "py.typed").is_file()
    assert list((package / "tests").glob("test_*.py"))
    readme = (package / "README.md").read_text()
    assert readme.startswith(f"# {package.name}\n") and "## Install" in readme


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_installed_metadata_has_the_classifier_and_entry_point(site: Site, package: Path) -> None:
    (dist,) = [d for d in metadata.distributions(path=[str(site.path)]) if d.name == package.name]
    assert "Framework :: mcpframe" in (dist.metadata.get_all("Classifier") or [])
    module = package.name.replace("-", "_")
    assert [(ep.name, ep.value) for ep in dist.entry_points.select(group="mcpframe")] == [
        (package.name.removeprefix("mcpframe-"), module)
    ]


def test_plugins_list_shows_every_package_loaded(site: Site) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "mcpframe", "plugins", "list", "--json"],
        env=site_env(site.path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [row for row in rows if row["status"] != "ok"] == []
    packages = {row["package"] for row in rows}
    assert {p.name for p in PACKAGES} <= packages


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_own_test_suite_passes_against_the_installed_package(site: Site, package: Path) -> None:
    done = run_pytest(package, site.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout, done.stdout
    # No skips: the servers they need (memcached, nutcracker) are required here.
    assert "SKIPPED" not in done.stdout and " skipped" not in done.stdout, done.stdout


def test_the_wire_test_example_in_plugins_md_passes(site: Site, tmp_path: Path) -> None:
    # docs/plugins.md's example of mcpframe.testing's server fixtures, run as a plugin author
    # runs it: pytest, with route_shadow's package installed, against real memcached servers.
    page = (ROOT / "docs" / "plugins.md").read_text()
    section = page.split("### Wire tests against real servers", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    suite = tmp_path / "tests"
    suite.mkdir()
    (suite / "test_example.py").write_text(example)
    done = run_pytest(tmp_path, site.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout and "skipped" not in done.stdout, done.stdout
