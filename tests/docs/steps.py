"""Reading the examples out of the docs, and running the ones marked as steps.

A page marks a fenced block with an HTML comment on the line before it (invisible in the
built site):

``<!-- file: PATH -->``
    the block is the content of ``PATH``, relative to the step's work directory;
``<!-- run -->`` or ``<!-- run: exit N -->``
    the block is shell, run with bash in the work directory (``$WORK``), with mcpframe's
    virtualenv first on ``PATH``; it must exit with 0 (or N);
``<!-- output -->`` or ``<!-- output: stderr -->``
    the block is what the previous ``run`` printed on stdout (or stderr), exactly;
``<!-- sketch -->``
    the block shows a shape, not a working config: it is only compiled.

Blocks without a marker are illustrations; the Lua ones are still loaded or compiled by
``test_examples.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
VENV_BIN = Path(sys.executable).parent

_BLOCK = re.compile(
    r"(?:<!--\s*(?P<marker>[a-z]+)(?::\s*(?P<arg>[^>]*?))?\s*-->\n)?"
    r"^(?P<fence>```+)(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Block:
    """One fenced block of a page, with the marker before it (if any)."""

    page: str
    line: int
    lang: str
    body: str
    marker: str | None = None
    arg: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for m in _BLOCK.finditer(text):
        start = m.start("fence")
        found.append(
            Block(
                page=page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else str(page),
                line=text.count("\n", 0, start) + 1,
                lang=m["lang"],
                body=m["body"],
                marker=m["marker"],
                arg=(m["arg"] or "").strip() or None,
            )
        )
    return found


@dataclass
class Ran:
    block: Block
    returncode: int
    stdout: str
    stderr: str


def run_steps(
    page: Path,
    work: Path,
    env: dict[str, str],
    rewrite: Callable[[str], str] = lambda script: script,
) -> list[Ran]:
    """Run the marked steps of ``page`` in order, in ``work``; assert on exits and outputs.

    ``rewrite`` may adapt a shell step before it runs (the tutorial test installs into a
    temporary directory instead of the virtualenv); every other step runs as written.
    """
    work.mkdir(parents=True, exist_ok=True)
    env = {**env, "WORK": str(work), "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"}
    ran: list[Ran] = []
    for block in blocks(page):
        if block.marker == "file":
            assert block.arg, f"{block.where}: file marker without a path"
            target = work / block.arg
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.body)
        elif block.marker == "run":
            expected = 0
            if block.arg:
                m = re.fullmatch(r"exit (\d+)", block.arg)
                assert m, f"{block.where}: bad run marker {block.arg!r}"
                expected = int(m[1])
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", rewrite(block.body)],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == expected, (
                f"{block.where}: exit {done.returncode}, expected {expected}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
            ran.append(Ran(block, done.returncode, done.stdout, done.stderr))
        elif block.marker == "output":
            assert ran, f"{block.where}: output marker before any run step"
            stream = block.arg or "stdout"
            assert stream in ("stdout", "stderr"), f"{block.where}: bad output marker"
            got = ran[-1].stdout if stream == "stdout" else ran[-1].stderr
            assert got == block.body, (
                f"{block.where}: the documented {stream} differs from what "
                f"{ran[-1].block.where} printed:\n{got}"
            )
        elif block.marker not in (None, "sketch"):
            raise AssertionError(f"{block.where}: unknown marker {block.marker!r}")
    return ran
