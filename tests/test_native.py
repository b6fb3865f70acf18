"""The compiled hot path: built by the install, and never run stale (mcpframe/native.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mcpframe
import mcpframe.proxy.router
from mcpframe import native

PACKAGE = Path(mcpframe.__file__).resolve().parent


@pytest.mark.skipif(bool(os.environ.get("MCPFRAME_PURE")), reason="plain Python asked for")
def test_the_install_compiled_the_hot_path() -> None:
    # ./dev.sh installs with mypyc; a silent fallback to plain Python would lose the speed
    # docs/performance.md reports.
    assert native.compiled(mcpframe.proxy.router)
    suffix = next(p.name[p.name.index(".") :] for p in PACKAGE.rglob("router.*.so"))
    for rel in native.NATIVE_MODULES:
        assert (PACKAGE / rel).with_suffix(suffix).exists(), rel


def _tree(tmp_path: Path) -> Path:
    pkg = tmp_path / "mcpframe"
    for rel in native.NATIVE_MODULES:
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGE / rel, pkg / rel)
    return pkg


def test_no_stamp_means_nothing_to_check(tmp_path: Path) -> None:
    native.check_in_place(_tree(tmp_path))


def test_matching_stamp_passes(tmp_path: Path) -> None:
    pkg = _tree(tmp_path)
    (pkg / native.STAMP_NAME).write_text(f"sources {native.sources_digest(pkg)}\npython x\n")
    native.check_in_place(pkg)


def test_an_edited_source_is_refused_with_the_way_out(tmp_path: Path) -> None:
    pkg = _tree(tmp_path)
    (pkg / native.STAMP_NAME).write_text(f"sources {native.sources_digest(pkg)}\n")
    with (pkg / "proxy/router.py").open("a") as f:
        f.write("\n# edited after the build\n")
    with pytest.raises(native.StaleNativeModules) as e:
        native.check_in_place(pkg)
    assert "pip install -e ." in str(e.value) and "MCPFRAME_PURE=1" in str(e.value)


def test_stale_extensions_stop_the_cli_with_that_message(tmp_path: Path) -> None:
    # A copy of the package with a stamp that no longer matches: `mcpframe --version` run
    # from it says what to do instead of running old compiled code.
    pkg = tmp_path / "mcpframe"
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    (pkg / native.STAMP_NAME).write_text("sources 0000\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    p = subprocess.run(
        [sys.executable, "-m", "mcpframe", "--version"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert p.returncode != 0
    assert "built from other sources" in p.stderr
