"""The docs site: it builds with ``mkdocs build --strict``, its nav holds every page, and the
CLI reference is what the CLI prints today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.docs.cli_reference import PAGE, REGENERATE, render
from tests.docs.steps import DOCS, ROOT


def nav_pages(entries: object) -> list[str]:
    if isinstance(entries, str):
        return [entries]
    if isinstance(entries, list):
        return [page for entry in entries for page in nav_pages(entry)]
    if isinstance(entries, dict):
        return [page for value in entries.values() for page in nav_pages(value)]
    raise AssertionError(f"unexpected nav entry {entries!r}")


MISSING = (
    "docs/{page} is missing, and mkdocs.yml's nav links to it. It belongs to another part of "
    "the project (the Lua API reference comes with the route API work): write it, or take it "
    "out of the nav until it exists."
)


def test_pages_written_elsewhere_exist() -> None:
    for page in ("lua-api.md", "operations.md"):
        assert (DOCS / page).is_file(), MISSING.format(page=page)


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "tutorial" / "index.html").is_file()


def test_nav_holds_every_page_and_only_pages() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = nav_pages(config["nav"])
    assert len(listed) == len(set(listed)), "a page is listed twice"
    assert set(listed) == {p.name for p in DOCS.glob("*.md")}


def test_every_page_starts_with_its_title() -> None:
    for page in DOCS.glob("*.md"):
        assert page.read_text().startswith("# "), page.name


def test_cli_reference_is_current() -> None:
    assert PAGE.read_text() == render(), f"docs/cli.md is out of date: run {REGENERATE}"
