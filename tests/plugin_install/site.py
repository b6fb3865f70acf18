"""Plugin packages installed for real, into a throwaway directory, once per test session.

The packages in ``plugins/`` and one rendering of the cookiecutter template per plugin kind
are copied to a temporary directory and installed together with one
``pip install --no-deps --no-build-isolation --target SITE`` (setuptools from the virtualenv,
no download, no change to the virtualenv). A test then makes them importable, entry points
included, by putting SITE on ``PYTHONPATH`` for a subprocess (``mcpframe plugins list``,
``mcpframe serve``, a plugin's own pytest run) or on ``sys.path`` in process.

Nothing is installed into the virtualenv: mcpframe's own tests keep seeing only the
built-in plugins there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
TEMPLATE = ROOT / "cookiecutter"
KINDS = ("dist", "hasher", "key_filter", "logger", "route")

# What never belongs to a package's sources (build and test leftovers).
IGNORED = shutil.ignore_patterns(
    "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"
)


def plugin_dirs() -> list[Path]:
    """Every plugin package kept in ``plugins/``."""
    return sorted(p for p in PLUGINS.iterdir() if (p / "pyproject.toml").is_file())


def render(output: Path, name: str, kind: str, **extra: str) -> Path:
    """Render the template without prompting; returns the package directory."""
    context = {"name": name, "kind": kind, **extra}
    made = cookiecutter(str(TEMPLATE), no_input=True, extra_context=context, output_dir=output)
    return Path(made)


def pip_install(target: Path, *packages: Path) -> None:
    """Build and install ``packages`` into ``target``; fails the test with pip's output."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-warn-script-location",
            "--disable-pip-version-check",
            "--target",
            str(target),
            *map(str, packages),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"pip install failed:\n{done.stdout}\n{done.stderr}")


def install_into(site: Path) -> Callable[[str], str]:
    """For a docs page's steps (tests.docs.steps.run_steps): the only change made to them is
    that `pip install -e X` installs into ``site``."""

    def rewrite(script: str) -> str:
        return re.sub(
            r"^pip install -e (\S+)$",
            rf'"{sys.executable}" -m pip install --quiet --no-deps --no-build-isolation '
            rf'--disable-pip-version-check --target "{site}" \1',
            script,
            flags=re.MULTILINE,
        )

    return rewrite


def listed_rows(env: dict[str, str], package: str) -> list[tuple[str, str, str, str]]:
    """(name, kind, lua_name, status) of each row ``mcpframe plugins list --json`` shows for
    ``package``, run in ``env`` (e.g. :func:`site_env`)."""
    listed = subprocess.run(
        [sys.executable, "-m", "mcpframe", "plugins", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [
        (row["name"], row["kind"], row["lua_name"], row["status"])
        for row in json.loads(listed.stdout)
        if row["package"] == package
    ]


def site_env(site: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess that sees the packages of ``site`` (and no switches)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPFRAME_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")])),
        PYTHONDONTWRITEBYTECODE="1",
        **extra,
    )
    return env


def run_pytest(package: Path, site: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run a package's own test suite against its installed copy in ``site``.

    ``-P`` keeps the package's source directory off ``sys.path``, so the tests import what
    was installed. ``MCPFRAME_REQUIRE_SERVERS=1`` turns "memcached/nutcracker missing" skips
    into failures: in this suite the servers are installed by ``./dev.sh test``.
    """
    return subprocess.run(
        [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests"],
        cwd=package,
        env=site_env(site, MCPFRAME_REQUIRE_SERVERS="1"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Site:
    """The installed packages: ``path`` goes on PYTHONPATH; where each package's sources are."""

    path: Path
    plugins: dict[str, Path] = field(default_factory=dict)  # plugins/<dir name> -> the original
    rendered: dict[str, Path] = field(default_factory=dict)  # kind -> rendered package


_SITES: dict[Path, Site] = {}


def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The session's site, built on first use (the conftests' ``plugin_site`` fixtures)."""
    base = tmp_path_factory.getbasetemp()
    if base not in _SITES:
        root = tmp_path_factory.mktemp("plugin-site")
        site = Site(root / "site")
        sources = []
        for package in plugin_dirs():
            copy = root / "src" / package.name
            shutil.copytree(package, copy, ignore=IGNORED)
            site.plugins[package.name] = package
            sources.append(copy)
        for kind in KINDS:
            rendered = render(root / "rendered", f"tmpl_{kind}", kind)
            site.rendered[kind] = rendered
            sources.append(rendered)
        pip_install(site.path, *sources)
        _SITES[base] = site
    return _SITES[base]
