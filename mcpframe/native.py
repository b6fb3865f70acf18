"""Which modules are compiled with mypyc, and whether the compiled ones can be trusted.

``hatch_build.py`` compiles :data:`NATIVE_MODULES` when the package is installed. In an
editable install the extensions sit next to their sources and Python imports them instead of
the ``.py`` files, so an edited source with an old extension beside it would run the old code:
:func:`check_in_place` (run by ``mcpframe/__init__.py`` before anything else is imported)
refuses that with a message saying how to rebuild.

This module imports nothing from mcpframe: the build hook loads it by path.
"""

from __future__ import annotations

import hashlib
import sysconfig
from pathlib import Path
from types import ModuleType

#: Package-relative paths of the modules compiled with mypyc (the per-request hot path). The
#: internal cache's items are records in ``bytearray`` logs (``cache/arena.py``), laid out the
#: same compiled or not, so its store and commands are compiled too.
NATIVE_MODULES = (
    "protocol/commands.py",
    "protocol/numbers.py",
    "protocol/replies.py",
    "protocol/tokens.py",
    "protocol/request.py",
    "protocol/response.py",
    "protocol/reader.py",
    "protocol/backend.py",
    "protocol/binary.py",
    "protocol/binmeta.py",
    "proxy/turn.py",
    "proxy/latency.py",
    "proxy/clock.py",
    "placement.py",
    "proxy/task.py",
    "proxy/limits.py",
    "proxy/hooks.py",
    "proxy/multiget.py",
    "proxy/awaits.py",
    "proxy/internal.py",
    "proxy/funcgens.py",
    "proxy/router.py",
    "proxy/client.py",
    "proxy/backend.py",
    "cache/item.py",
    "cache/arena.py",
    "cache/records.py",
    "cache/store.py",
    "cache/classic.py",
    "cache/meta.py",
    "cache/engine.py",
)
#: Written by an in-place (editable) build next to this file.
STAMP_NAME = ".native-stamp"


class StaleNativeModules(ImportError):
    pass


def sources_digest(package_dir: Path) -> str:
    h = hashlib.sha256()
    for rel in NATIVE_MODULES:
        h.update(rel.encode() + b"\0")
        h.update((package_dir / rel).read_bytes())
    return h.hexdigest()


def check_in_place(package_dir: Path) -> None:
    """Raise :class:`StaleNativeModules` when in-place extensions were built from other
    sources than the ones beside them."""
    stamp = package_dir / STAMP_NAME
    if not stamp.exists():
        return
    recorded = ""
    for line in stamp.read_text().splitlines():
        if line.startswith("sources "):
            recorded = line.split()[1]
    if recorded != sources_digest(package_dir):
        raise StaleNativeModules(
            f"mcpframe: the compiled modules in {package_dir} were built from other "
            "sources than the ones there now; rebuild them with `.venv/bin/pip install -e .` "
            "(./dev.sh does it), or remove them with `MCPFRAME_PURE=1 .venv/bin/pip install "
            "-e .`"
        )


def compiled(module: ModuleType) -> bool:
    """True when ``module`` (one of :data:`NATIVE_MODULES`, e.g. ``mcpframe.proxy.router``)
    was loaded from its compiled extension. The caller imports it: this module imports
    nothing from mcpframe, and the package root, which imports this one, no layer."""
    suffix = str(sysconfig.get_config_var("EXT_SUFFIX"))
    return str(getattr(module, "__file__", "")).endswith(suffix)
