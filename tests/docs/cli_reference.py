"""docs/cli.md, generated from the CLI's own ``--help``.

``.venv/bin/python -m tests.docs.cli_reference`` rewrites docs/cli.md; ``test_cli_reference``
fails when the file is not what this renders, so the page cannot fall behind the commands.
Every command is found by walking the ``Commands:`` sections, starting at ``mcpframe --help``,
so a new command or sub-app appears without editing this script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "cli.md"
REGENERATE = "python -m tests.docs.cli_reference"

HEADER = f"""\
# CLI reference

Everything `mcpframe` accepts, as its `--help` prints it. This page is generated from the
commands themselves: after changing one, run `{REGENERATE}` (the test
suite fails while the page is out of date).

Start with `mcpframe serve` to run the proxy, `mcpframe check` to try a config without
serving it, and `mcpframe plugins list` to see what is installed. The
[configuration guide](configuration.md) explains what the options are for.
"""


def help_text(command: tuple[str, ...]) -> str:
    """``mcpframe COMMAND --help``, in click's plain format at a fixed width."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPFRAME_")}
    env.update(TYPER_USE_RICH="0", COLUMNS="100", TERM="dumb", NO_COLOR="1")
    done = subprocess.run(
        [sys.executable, "-m", "mcpframe", *command, "--help"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.replace("python -m mcpframe", "mcpframe").rstrip() + "\n"


def subcommands(text: str) -> list[str]:
    """The names listed in the ``Commands:`` section of a help text, in order."""
    names: list[str] = []
    lines = text.splitlines()
    if "Commands:" not in lines:
        return names
    for line in lines[lines.index("Commands:") + 1 :]:
        if not line.startswith("  "):
            break
        if not line.startswith("   "):  # continuation lines are indented further
            names.append(line.split()[0])
    return names


def collect() -> list[tuple[tuple[str, ...], str]]:
    """Every command path with its help, depth first in the order the CLI lists them."""
    found: list[tuple[tuple[str, ...], str]] = []
    with ThreadPoolExecutor(max_workers=4) as pool:

        def walk(command: tuple[str, ...], text: str) -> None:
            found.append((command, text))
            children = [(*command, name) for name in subcommands(text)]
            for child, child_text in zip(children, pool.map(help_text, children), strict=True):
                walk(child, child_text)

        walk((), help_text(()))
    return found


def render() -> str:
    sections = [HEADER]
    for command, text in collect():
        title = " ".join(("mcpframe", *command))
        sections.append(f"## `{title}`\n\n```text\n{text}```\n")
    return "\n".join(sections)


if __name__ == "__main__":
    PAGE.write_text(render())
    print(f"wrote {PAGE.relative_to(ROOT)}")
