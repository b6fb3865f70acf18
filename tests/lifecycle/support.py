"""What the lifecycle tests share: mcpframe started as an operator starts it, stopped with
SIGTERM, and the ``/version`` probe their configs answer."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import ROOT, Client


@contextmanager
def short_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under /tmp, removed afterwards. A unix socket path is at most 107
    bytes, and pytest's tmp_path can be longer."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def serve(*args: str) -> subprocess.Popen[bytes]:
    """``mcpframe serve ARGS...`` with its output piped (read it with :func:`stop`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "mcpframe", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


def stop(proc: subprocess.Popen[bytes]) -> bytes:
    """SIGTERM (unless it has exited), wait, and return what it wrote on stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def version(addr: tuple[str, int] | str) -> bytes:
    """The value of ``/version``, which the configs of these tests answer themselves."""
    c = Client(addr)
    try:
        c.send(b"get /version\r\n")
        return c.read_until(b"END\r\n").split(b"\r\n")[1]
    finally:
        c.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")
