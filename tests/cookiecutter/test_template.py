"""The plugin template in cookiecutter/, tested as its users use it.

Render every kind and check the exact files; refuse bad answers before writing anything;
keep the renderings lint-clean; install each rendering against this checkout and run the
tests it generated; and keep plugins/mcpframe-jsonlog identical to a rendering.
"""

from __future__ import annotations

import ast
import difflib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException

from mcpframe.plugins import create_plugin_manager, discover_entry_points
from mcpframe.registry import build_registry
from mcpframe.types import PluginKind
from tests.plugin_install.site import (
    IGNORED,
    KINDS,
    PLUGINS,
    TEMPLATE,
    Site,
    render,
    run_pytest,
)

FILES = {
    ".cookiecutter.json",
    "README.md",
    "classifiers.txt",
    "pyproject.toml",
    "mcpframe_{name}/__init__.py",
    "mcpframe_{name}/py.typed",
    "tests/test_{name}.py",
}
EXTRA_FILES = {"route": {"mcpframe_{name}/route_{name}.lua"}}
LUA_NAMES = {
    "dist": "mcp.dist_{name}",
    "hasher": "mcp.hash_{name}",
    "key_filter": 'filter = "{name}"',
    "logger": "--logger {name}",
    "route": "route_{name}{{",
}
RUFF = Path(sys.executable).parent / "ruff"


def files_of(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` by relative path, leaving out build and cache leftovers."""
    out = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if path.is_file() and not any(IGNORED("", [part]) for part in relative.parts):
            out[relative.as_posix()] = path.read_bytes()
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_renders_exactly_the_package_files(tmp_path: Path, kind: str) -> None:
    package = render(tmp_path, "my_plugin", kind)
    assert package.name == "mcpframe-my-plugin"
    files = files_of(package)
    expected = FILES | EXTRA_FILES.get(kind, set())
    assert set(files) == {f.format(name="my_plugin") for f in expected}
    assert not [name for name, text in files.items() if b"{{" in text or b"{%" in text]

    pyproject = tomllib.loads(files["pyproject.toml"].decode())
    project = pyproject["project"]
    assert project["name"] == "mcpframe-my-plugin"
    assert project["entry-points"]["mcpframe"] == {"my_plugin": "mcpframe_my_plugin"}
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    assert "Framework :: mcpframe" in files["classifiers.txt"].decode().splitlines()
    assert json.loads(files[".cookiecutter.json"]) == {
        "name": "my_plugin",
        "kind": kind,
        "description": project["description"],
        "version": "0.1.0",
    }
    assert LUA_NAMES[kind].format(name="my_plugin") in files["README.md"].decode()


@pytest.mark.parametrize("kind", KINDS)
def test_renderings_are_ruff_clean(tmp_path: Path, kind: str) -> None:
    package = render(tmp_path, "lint_me", kind, description="Bob's odd & fancy plugin, über")
    for command in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run(
            [str(RUFF), *command], cwd=package, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "name", ["", "My", "1st", "has-dash", "has space", "ünï", "a/b", "../up", "_private", "x.y"]
)
def test_refuses_a_bad_name_and_writes_nothing(tmp_path: Path, name: str) -> None:
    with pytest.raises(FailedHookException):
        render(tmp_path, name, "dist")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("description", ["", 'say "hi"', "back\\slash", "two\nlines"])
def test_refuses_a_bad_description(tmp_path: Path, description: str) -> None:
    with pytest.raises(FailedHookException):
        render(tmp_path, "fine", "hasher", description=description)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_builtin_name_of_the_same_kind(tmp_path: Path) -> None:
    with pytest.raises(FailedHookException):
        render(tmp_path, "jump_hash", "dist")
    assert list(tmp_path.iterdir()) == []
    assert render(tmp_path, "jump_hash", "hasher").name == "mcpframe-jump-hash"  # other kind


def test_refuses_an_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="choices are"):
        render(tmp_path, "fine", "router")
    assert list(tmp_path.iterdir()) == []


def test_the_hook_knows_every_builtin_name() -> None:
    hook = (TEMPLATE / "hooks" / "pre_gen_project.py").read_text()
    (line,) = [line for line in hook.splitlines() if line.startswith("BUILTIN_NAMES = ")]
    listed = ast.literal_eval(line.removeprefix("BUILTIN_NAMES = "))
    builtins = [s for s in discover_entry_points() if s.builtin]
    registry = build_registry(create_plugin_manager(builtins, environ={}))
    kinds = {
        "dist": PluginKind.DISTRIBUTION,
        "hasher": PluginKind.HASHER,
        "key_filter": PluginKind.KEY_FILTER,
        "logger": PluginKind.LOGGER,
        "route": PluginKind.ROUTE_HANDLER,
    }
    assert listed == {kind: sorted(registry.table(k)) for kind, k in kinds.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_generated_tests_pass_against_the_installed_rendering(site: Site, kind: str) -> None:
    done = run_pytest(site.rendered[kind], site.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and " skipped" not in done.stdout, done.stdout


@pytest.mark.parametrize(
    "plugin",
    sorted(p for p in PLUGINS.iterdir() if (p / ".cookiecutter.json").is_file()),
    ids=lambda p: p.name,
)
def test_plugin_made_from_the_template_has_not_drifted(tmp_path: Path, plugin: Path) -> None:
    answers = json.loads((plugin / ".cookiecutter.json").read_text())
    rendered = files_of(render(tmp_path, **answers))
    kept = files_of(plugin)
    assert set(kept) == set(rendered), "the file sets differ"
    for name, text in rendered.items():
        if kept[name] != text:
            diff = difflib.unified_diff(
                text.decode().splitlines(),
                kept[name].decode().splitlines(),
                f"template/{name}",
                f"{plugin.name}/{name}",
                lineterm="",
            )
            pytest.fail(f"{plugin.name}/{name} differs from the template:\n" + "\n".join(diff))


def test_one_plugin_is_kept_as_a_rendering() -> None:
    assert (PLUGINS / "mcpframe-jsonlog" / ".cookiecutter.json").is_file()
