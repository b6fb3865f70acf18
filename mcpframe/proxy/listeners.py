"""What ``--listen`` names and how its sockets are made: TCP addresses and unix sockets.

Spellings (``parse_listen``):

- ``HOST:PORT[:TAG]``, ``[V6]:PORT[:TAG]`` and memcached's ``tag[NAME]:HOST:PORT`` (or its
  shell-safe ``tag_NAME_:HOST:PORT``, spec v2 1.10);
- either of them after ``tls:`` (``tls:127.0.0.1:11212``, ``tls:unix:/run/mc.sock``): the
  listener speaks TLS only, with the ``--tls-*`` settings (``proxy/tls.py``); memcached's
  ``notls:`` prefix is accepted and means a plain listener (the default);
- ``unix:PATH[:MODE][:TAG]``: a unix domain socket at ``PATH`` (no ``:`` in it), its
  permissions ``MODE`` in octal as memcached's ``-a`` (default ``0700``, memcached's default),
  e.g. ``unix:/run/mcpframe/mc.sock:0660:app``. ``unix:PATH::TAG`` keeps the default mode.

A unix socket file is ours from ``bind`` to exit: it is made with its permissions already
applied (the umask is narrowed around ``bind``, then ``chmod`` makes the mode exact whatever
the umask allowed), and removed on exit, unless another file has taken its place meanwhile.
A file already at the path is replaced only if it is a socket nobody answers on (a stale
socket left by a crash); a live server there, or a file that is not a socket, is refused.

With ``--workers N`` (``proxy/workers.py``), TCP addresses are bound by every worker with
SO_REUSEPORT; a unix socket cannot be shared that way (a second ``bind`` to a path fails), so
the supervisor binds it once and the workers inherit the listening descriptor: its number is
passed in ``MCPFRAME_UNIX_FDS`` (JSON: path -> descriptor). The supervisor owns the file and removes
it on exit; a worker restarted after a crash inherits the same descriptor, so the socket never
goes away while the group runs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
from dataclasses import dataclass

from mcpframe.errors import ServeError

#: Environment a worker finds its inherited unix listeners in: a JSON object path -> fd.
ENV_UNIX_FDS = "MCPFRAME_UNIX_FDS"
#: memcached's ``-a`` default.
DEFAULT_UNIX_MODE = 0o700
#: ``sun_path`` holds 108 bytes with the terminating NUL.
MAX_UNIX_PATH = 107


@dataclass
class Listen:
    """One listener: a TCP ``host``/``port``, or a unix socket ``path`` with its ``mode``."""

    host: str
    port: int
    tag: str | None = None
    path: str | None = None
    mode: int = DEFAULT_UNIX_MODE
    #: TLS only (``tls:`` in front), with the ``--tls-*`` settings.
    tls: bool = False

    @property
    def is_unix(self) -> bool:
        return self.path is not None

    def __str__(self) -> str:
        if self.path is not None:
            base = f"unix:{self.path}:{self.mode:04o}"
        else:
            host = f"[{self.host}]" if ":" in self.host else self.host
            base = f"{host}:{self.port}"
        if self.tls:
            base = f"tls:{base}"
        return f"{base}:{self.tag}" if self.tag else base


def _check_tag(text: str, tag: str | None) -> None:
    if tag is not None and not 1 <= len(tag) <= 8:
        raise ServeError(f"invalid listen address {text!r}: a tag must be 1 to 8 characters")


def unix_listen(path: str, mode: int = DEFAULT_UNIX_MODE, tag: str | None = None) -> Listen:
    """A unix socket listener at ``path`` with permissions ``mode`` (memcached's ``-s PATH
    -a MODE``); raises ServeError for a path too long for a socket or a bad mode/tag."""
    shown = f"unix:{path}"
    if not path:
        raise ServeError(f"invalid listen address {shown!r}: the socket path is empty")
    if len(os.fsencode(path)) > MAX_UNIX_PATH:
        raise ServeError(
            f"invalid listen address {shown!r}: a unix socket path is at most {MAX_UNIX_PATH} bytes"
        )
    if not 0 <= mode <= 0o777:
        raise ServeError(f"invalid listen address {shown!r}: mode {mode:o} is not in 0..0777")
    _check_tag(shown, tag)
    return Listen("", 0, tag, path=path, mode=mode)


def parse_listen(text: str) -> Listen:
    """``HOST:PORT[:TAG]``, memcached's ``tag[NAME]:HOST:PORT``, or ``unix:PATH[:MODE][:TAG]``,
    each optionally after ``tls:`` (see the module docstring); raises ServeError naming the bad
    value."""
    tag: str | None = None
    rest = text
    tls = False
    for _ in range(2):  # the prefixes in either order: tls:tag[x]:... or tag[x]:tls:...
        if rest.startswith("tls:"):
            tls, rest = True, rest[4:]
        elif rest.startswith("notls:"):  # memcached's spelling of a plain listener
            rest = rest[6:]
        elif rest.startswith("tag[") and "]:" in rest:
            tag, rest = rest[4:].split("]:", 1)
        elif rest.startswith("tag_") and "_:" in rest[4:]:  # its shell-safe spelling
            tag, rest = rest[4:].split("_:", 1)
    listen = _parse_plain(text, rest, tag)
    listen.tls = tls
    return listen


def _parse_plain(text: str, rest: str, tag: str | None) -> Listen:
    if rest.startswith("unix:"):
        path, *fields = rest[5:].split(":")
        if len(fields) > 2:
            raise ServeError(
                f"invalid listen address {text!r} (expected unix:PATH[:MODE][:TAG]; "
                "a socket path cannot hold ':')"
            )
        mode = DEFAULT_UNIX_MODE
        if fields and (fields[0] == "" or _is_octal(fields[0])):
            first = fields.pop(0)
            if first:
                mode = int(first, 8)
        if fields:
            tag = fields.pop(0)
        return unix_listen(path, mode, tag)
    if rest.startswith("["):  # [v6]:port
        host, _, after = rest[1:].partition("]:")
        port_s, _, tail = after.partition(":")
    else:
        host, _, after = rest.partition(":")
        port_s, _, tail = after.partition(":")
    if tail:
        tag = tail
    if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ServeError(
            f"invalid listen address {text!r} (expected [tls:]HOST:PORT[:TAG] or "
            "[tls:]unix:PATH[:MODE][:TAG])"
        )
    _check_tag(text, tag)
    return Listen(host, int(port_s), tag)


def _is_octal(text: str) -> bool:
    return 1 <= len(text) <= 4 and all(ch in "01234567" for ch in text)


# -- unix sockets -------------------------------------------------------------------------


def _someone_answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError as e:
            # EAGAIN: a live server whose backlog is full; anything else: do not guess.
            return e.errno not in (errno.ECONNREFUSED, errno.ENOENT)
        return True


def _clear_stale(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ServeError(f"cannot listen on unix:{path}: the file exists and is not a socket")
    if _someone_answers(path):
        raise ServeError(f"cannot listen on unix:{path}: a server is listening on it")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class UnixSocketFile:
    """A bound, listening unix socket and the file it made; :meth:`remove` deletes the file
    if it is still the one we made."""

    def __init__(self, listen: Listen, backlog: int = 1024) -> None:
        assert listen.path is not None
        self.path = listen.path
        _clear_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o777 & ~listen.mode)
        try:
            sock.bind(self.path)
        except OSError as e:
            sock.close()
            reason = os.strerror(e.errno) if e.errno else str(e)
            raise ServeError(f"cannot listen on unix:{self.path}: {reason.lower()}") from None
        finally:
            os.umask(old_umask)
        try:
            os.chmod(self.path, listen.mode)
            st = os.stat(self.path)
            sock.listen(backlog)
        except OSError as e:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            raise ServeError(f"cannot listen on unix:{self.path}: {e}") from None
        self.identity = (st.st_dev, st.st_ino)
        self.sock = sock

    def remove(self) -> None:
        """Delete the socket file, unless something else has replaced it since."""
        with contextlib.suppress(OSError):
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self.identity:
                os.unlink(self.path)


def inherited_unix_fds() -> dict[str, int]:
    """In a worker: the unix listeners its supervisor bound, by path."""
    value = os.environ.get(ENV_UNIX_FDS)
    if not value:
        return {}
    data = json.loads(value)
    return {str(path): int(fd) for path, fd in data.items()}


def encode_unix_fds(fds: dict[str, int]) -> str:
    return json.dumps(fds)
