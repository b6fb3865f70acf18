"""Build hook: compile the per-request modules with mypyc.

The proxy's hot path (parsers, router, client and backend connections, the internal cache) is
ordinary typed Python; mypyc turns those modules (``mcpframe/native.py`` lists them) into C
extensions that run the same code faster (docs/performance.md has the figures). Everything
else stays Python.

- ``pip install .`` (a wheel): the extensions go into the wheel, which becomes
  platform-specific.
- ``pip install -e .`` (an editable install, what ``./dev.sh`` does): the extensions are
  built next to their sources, where the import system prefers them to the ``.py`` files. A
  stamp (the sources' digest, the interpreter and compiler versions) skips the build when
  nothing changed; ``mcpframe.native`` refuses stale extensions at import time.
- ``MCPFRAME_PURE=1`` skips compiling (and, for an editable install, removes extensions
  built before): the package then runs as plain Python, slower, with the same behaviour.
- When compiling fails (no C compiler, say) the build goes on pure, with a warning.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

GROUP = "mcpframe._native"
# setuptools + mypyc, run in a copy of the package: build the extensions in place there.
_SETUP = f"""
import sys
from setuptools import setup
from mypyc.build import mypycify
files = sys.argv[1:]
sys.argv[1:] = ["build_ext", "--inplace"]
setup(
    name="mcpframe-native",
    packages=[],
    ext_modules=mypycify(
        ["--ignore-missing-imports", "--python-version", "3.11", *files],
        opt_level="3",
        group_name="{GROUP}",
    ),
)
"""


def _native(root: Path) -> ModuleType:
    """mcpframe/native.py, loaded on its own (the package's dependencies are not installed
    in the build environment)."""
    spec = importlib.util.spec_from_file_location("_mcpframe_native", root / "mcpframe/native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def built_files(tree: Path) -> list[Path]:
    """The extension files under ``tree``/mcpframe, relative to ``tree``."""
    suffix = str(sysconfig.get_config_var("EXT_SUFFIX"))
    return sorted(p.relative_to(tree) for p in (tree / "mcpframe").rglob(f"*{suffix}"))


def remove_in_place(root: Path, stamp: Path) -> None:
    for rel in built_files(root):
        (root / rel).unlink()
    stamp.unlink(missing_ok=True)


class NativeBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        native = _native(root)
        stamp = root / "mcpframe" / native.STAMP_NAME
        editable = version == "editable"
        if os.environ.get("MCPFRAME_PURE"):
            if editable:
                remove_in_place(root, stamp)
            return
        import mypy.version

        stamp_text = (
            f"sources {native.sources_digest(root / 'mcpframe')}\n"
            f"python {sys.version.split()[0]}\nmypyc {mypy.version.__version__}\n"
        )
        fresh = stamp.exists() and stamp.read_text() == stamp_text and built_files(root)
        if editable and fresh:
            return
        self._tmp = tmp = Path(tempfile.mkdtemp(prefix="mcpframe-native-"))
        shutil.copytree(
            root / "mcpframe",
            tmp / "mcpframe",
            ignore=shutil.ignore_patterns("*.so", "__pycache__", native.STAMP_NAME),
        )
        files = [f"mcpframe/{rel}" for rel in native.NATIVE_MODULES]
        try:
            subprocess.run(
                [sys.executable, "-c", _SETUP, *files],
                cwd=tmp,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        except (OSError, subprocess.CalledProcessError) as e:
            sys.stderr.write(
                f"mcpframe: compiling the hot path with mypyc failed ({e}); installing the "
                "pure-Python package, which is slower (MCPFRAME_PURE=1 skips the attempt)\n"
            )
            if editable:
                remove_in_place(root, stamp)
            return
        built = built_files(tmp)
        if editable:
            remove_in_place(root, stamp)
            for rel in built:
                shutil.copy2(tmp / rel, root / rel)
            stamp.write_text(stamp_text)
            return
        force = build_data.setdefault("force_include", {})
        for rel in built:
            force[str(tmp / rel)] = str(rel)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
