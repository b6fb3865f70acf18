"""Client side of the memcached text protocol: bytes in, :class:`Request` objects out.

Rules (each one checked against a real memcached 1.6.18; tests/protocol/test_reader_memcached.py
replays them against the binary):

Lines
  * A request line ends at the first ``\\n``. One ``\\r`` right before it is part of the
    terminator; a bare ``\\n`` terminator is accepted like plain memcached does (we take the
    1.6.22 behaviour, not 1.6.20's proxy, which always cut two bytes). ``Request.line`` keeps
    the exact bytes, terminator included, so the proxy forwards what the client sent.
  * Tokens as :mod:`mcpframe.protocol.tokens` splits them: the content stops at the first
    NUL (``get k\\0junk`` asks for ``k``), only spaces separate tokens (a tab is part of
    one), leading spaces are ignored. Command words are case-sensitive.
  * Unknown command words, and lines with no token (empty line, only spaces) -> ``ERROR``.
    Nothing is swallowed: the next line is parsed as a command.

Line length
  * memcached closes the connection, without a word, when more than 2048 bytes are buffered
    and none of them is ``\\n``; unless, after at most 100 leading spaces, they start with
    ``get `` or ``gets `` (huge multigets may grow). We apply the same rule per line, whatever
    the chunking: content (terminator excluded) longer than ``max_line`` ->
    ``ErrorReply(b"", close=True)``; a ``get``/``gets`` line may grow to
    ``max_multiget_line``, then is closed the same way. A partial line ending in ``\\r``
    is given the benefit of the doubt for that byte. (memcached itself still accepts a longer
    line when it arrives complete in one read, and forgets the replies it had not written yet
    when it closes; we close on the line whatever the reads, and return the requests before
    it, so that the outcome never depends on how TCP split the bytes.)
  * After a close, the reader ignores everything; the requests parsed before it are returned.

Token counts and key lengths (memcached's own checks, so that nothing a backend would reject
with ``CLIENT_ERROR``/``ERROR`` - which makes the proxy reset that backend connection - ever
leaves the reader)
  * ``get``/``gets``/``gat``/``gats`` need a key token (``gat``: an exptime token), else
    ``ERROR``; ``gat <exptime>`` without keys answers ``END``; a bad exptime answers
    ``CLIENT_ERROR invalid exptime argument``; a single key longer than 250 bytes answers
    ``CLIENT_ERROR bad command line format``. Several keys make a multiget; its key lengths
    are checked where it is executed (:func:`split_multiget` for routed ones).
  * ``set add replace append prepend``: exactly 5 or 6 tokens, ``cas`` 6 or 7, ``incr decr
    touch`` 3 or 4, ``delete`` 2 to 4; otherwise ``ERROR``, and a data block is NOT swallowed.
  * Malformed storage fields (flags, exptime, bytes, cas unique; see ``numbers.py`` for how C
    parses them), bytes < 0 or > 2**31 - 3, key > 250 -> ``CLIENT_ERROR bad command line
    format``, data block NOT swallowed (memcached reads it as the next command).
  * ``incr``/``decr``: key > 250 -> ``CLIENT_ERROR bad command line format``, bad delta ->
    ``CLIENT_ERROR invalid numeric delta argument``. ``touch``: key, then ``CLIENT_ERROR
    invalid exptime argument``. ``delete k <x>``: only ``0`` and ``noreply`` may follow the
    key -> ``CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]``.
  * Classic ``noreply``: the last token is exactly ``noreply`` (set, add, replace, append,
    prepend, cas, incr, decr, touch, flush_all, verbosity; delete only with 3+ tokens). It also
    silences these CLIENT_ERROR lines (and ``bad data chunk``): the reader then emits
    ``ErrorReply(b"")``. ``ERROR`` for a wrong token count is never silenced.
  * Meta: ``mg md ma ms`` without a key -> ``ERROR``, ``me`` -> ``CLIENT_ERROR bad command line
    format``; key > 250 -> ``CLIENT_ERROR bad command line format``; 20 tokens or more ->
    ``CLIENT_ERROR options flags are too long`` (mg) / ``... flags too long`` (md ma ms).
    ``ms`` needs a datalen token (else ``CLIENT_ERROR bad command line format``) that parses
    like the classic byte count. None of these swallow the data block. Meta errors are never
    silenced by ``q``. A ``q`` flag (token 3 on, token 4 on for ``ms``) sets ``noreply``. The
    flags themselves are checked by whoever executes the request (their rules and error texts
    differ per command).
  * ``mn`` and the local commands (version, stats, flush_all, verbosity, quit, watch, ...) are
    emitted as they are: their arguments are checked by whoever executes them.

Data blocks (set add replace append prepend cas ms)
  * Exactly ``bytes + 2`` bytes follow the line. ``Request.value`` holds them, CRLF included,
    and the request is emitted only once all of them arrived.
  * If the last two are not ``\\r\\n`` -> ``CLIENT_ERROR bad data chunk`` (silenced by classic
    noreply, never by ``q``) and parsing resumes right after those ``bytes + 2`` bytes.
  * ``bytes > max_value`` -> the ``bytes + 2`` bytes are discarded as they stream in (never
    buffered, CRLF not checked) and then the Request is emitted with ``value=None``; the caller
    answers ``SERVER_ERROR object too large for cache`` (:data:`TOO_LARGE`) as memcached does
    once it has swallowed the value: silenced by classic ``noreply``, not by ``q``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from mypy_extensions import i64

from mcpframe.protocol.commands import (
    CMD_ADD,
    CMD_APPEND,
    CMD_CAS,
    CMD_DECR,
    CMD_DELETE,
    CMD_FLUSH_ALL,
    CMD_GAT,
    CMD_GATS,
    CMD_GET,
    CMD_GETS,
    CMD_INCR,
    CMD_MA,
    CMD_MD,
    CMD_ME,
    CMD_MG,
    CMD_MN,
    CMD_MS,
    CMD_PREPEND,
    CMD_REPLACE,
    CMD_SET,
    CMD_TOUCH,
    CMD_VERBOSITY,
    COMMANDS,
)
from mcpframe.protocol.numbers import strtol32, strtoul32, strtoull
from mcpframe.protocol.replies import (
    BAD_DATA_CHUNK,
    BAD_DELTA,
    BAD_EXPTIME,
    BAD_FORMAT,
    DELETE_USAGE,
    END,
    ERROR,
    KEY_MAX_LENGTH,
    KEY_TOO_LONG,
    LINE_MAX,
    META_TOKENS_MAX,
    META_TOO_LONG,
    MG_TOO_LONG,
    VALUE_LENGTH_MAX,
)
from mcpframe.protocol.request import ErrorReply, Request
from mcpframe.protocol.tokens import content, split

__all__ = [
    "RequestReader",
    "multiget_keys",
    "parse_request_line",
    "split_multiget",
]

#: Bytes of a request line read by hand looking for its end; a longer line is searched with
#: ``bytes.find``.
SCAN: Final = 96

#: What a per-command parser returns: a complete request, a reply in its place, or a request
#: whose data block (of the given length, CRLF excluded) must be read next.
Parsed = Request | ErrorReply | tuple[Request, int]
#: A per-command parser: (command code, raw line, tokens of the content) -> Parsed.
Parser = Callable[[int, bytes, list[bytes]], Parsed]


def _error(reply: bytes, noreply: bool = False) -> ErrorReply:
    """A protocol error, silenced (empty reply, connection kept) under classic noreply."""
    return ErrorReply(b"" if noreply else reply)


# -- per-command parsers ----------------------------------------------------------------------
# Each gets the tokens of the line content (command word first, no empty tokens) and mirrors
# the checks memcached's proto_text.c makes before touching its storage, in the same order.


def _p_get(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    n = len(tokens)
    if n == 2:
        key = tokens[1]
        if len(key) > KEY_MAX_LENGTH:
            return ErrorReply(BAD_FORMAT)
        return Request(cmd, line, key)
    if n < 2:
        return ErrorReply(ERROR)
    return Request(cmd, line, tokens[1], None, False, True)


def _p_gat(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    n = len(tokens)
    if n < 2:
        return ErrorReply(ERROR)
    if strtol32(tokens[1]) is None:
        return ErrorReply(BAD_EXPTIME)
    if n == 2:
        return ErrorReply(END)  # no key at all: an empty get
    if n == 3:
        if len(tokens[2]) > KEY_MAX_LENGTH:
            return ErrorReply(BAD_FORMAT)
        return Request(cmd, line, tokens[2])
    return Request(cmd, line, tokens[2], None, False, True)


def _p_store(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    """set/add/replace/append/prepend <key> <flags> <exptime> <bytes> [noreply]"""
    n = len(tokens)
    if n != 5 and n != 6:
        return ErrorReply(ERROR)
    noreply = tokens[-1] == b"noreply"
    key = tokens[1]
    if len(key) > KEY_MAX_LENGTH:
        return _error(BAD_FORMAT, noreply)
    size = tokens[4]
    flags, exptime = tokens[2], tokens[3]
    if (
        size.isdigit()
        and flags.isdigit()
        and exptime.isdigit()
        and len(size) < 10
        and len(flags) + len(exptime) < 19
    ):
        # Plain short digits (the usual case): nothing can overflow, every check passes.
        return Request(cmd, line, key, None, noreply), int(size)
    if strtoul32(flags) is None or strtol32(exptime) is None:
        return _error(BAD_FORMAT, noreply)
    vlen = strtol32(size)
    if vlen is None or vlen < 0 or vlen > VALUE_LENGTH_MAX:
        return _error(BAD_FORMAT, noreply)
    return Request(cmd, line, key, None, noreply), vlen


def _p_cas(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    """cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]"""
    n = len(tokens)
    if n != 6 and n != 7:
        return ErrorReply(ERROR)
    noreply = tokens[-1] == b"noreply"
    key = tokens[1]
    if len(key) > KEY_MAX_LENGTH:
        return _error(BAD_FORMAT, noreply)
    if strtoul32(tokens[2]) is None or strtol32(tokens[3]) is None:
        return _error(BAD_FORMAT, noreply)
    vlen = strtol32(tokens[4])
    if vlen is None or strtoull(tokens[5]) is None:
        return _error(BAD_FORMAT, noreply)
    if vlen < 0 or vlen > VALUE_LENGTH_MAX:
        return _error(BAD_FORMAT, noreply)
    return Request(cmd, line, key, None, noreply), vlen


def _p_arith(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    """incr/decr <key> <delta> [noreply]"""
    n = len(tokens)
    if n != 3 and n != 4:
        return ErrorReply(ERROR)
    noreply = tokens[-1] == b"noreply"
    key = tokens[1]
    if len(key) > KEY_MAX_LENGTH:
        return _error(BAD_FORMAT, noreply)
    if strtoull(tokens[2]) is None:
        return _error(BAD_DELTA, noreply)
    return Request(cmd, line, key, None, noreply)


def _p_touch(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    """touch <key> <exptime> [noreply]"""
    n = len(tokens)
    if n != 3 and n != 4:
        return ErrorReply(ERROR)
    noreply = tokens[-1] == b"noreply"
    key = tokens[1]
    if len(key) > KEY_MAX_LENGTH:
        return _error(BAD_FORMAT, noreply)
    if strtol32(tokens[2]) is None:
        return _error(BAD_EXPTIME, noreply)
    return Request(cmd, line, key, None, noreply)


def _p_delete(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    """delete <key> [0] [noreply] (the legacy hold time must be 0)"""
    n = len(tokens)
    if n == 2:
        if len(tokens[1]) > KEY_MAX_LENGTH:
            return ErrorReply(BAD_FORMAT)
        return Request(cmd, line, tokens[1])
    if n < 2 or n > 4:
        return ErrorReply(ERROR)
    # Only here does memcached look for noreply: "delete noreply" deletes the key "noreply".
    noreply = tokens[-1] == b"noreply"
    hold_is_zero = tokens[2] == b"0"
    if not ((n == 3 and (hold_is_zero or noreply)) or (n == 4 and hold_is_zero and noreply)):
        return _error(DELETE_USAGE, noreply)
    if len(tokens[1]) > KEY_MAX_LENGTH:
        return _error(BAD_FORMAT, noreply)
    return Request(cmd, line, tokens[1], None, noreply)


def _quiet(tokens: list[bytes], first: int) -> bool:
    """A meta flag token starting with ``q`` from index ``first`` on. (Callers first look for
    ``b" q"`` in the line, which is cheaper and rules most requests out.)"""
    return any(t[0] == 0x71 for t in tokens[first:])  # 0x71 == ord("q")


def _p_meta(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    """mg/md/ma <key> <flags>*"""
    n = len(tokens)
    if n < 2:
        return ErrorReply(ERROR)
    key = tokens[1]
    if len(key) > KEY_MAX_LENGTH:
        return ErrorReply(BAD_FORMAT)
    if n >= META_TOKENS_MAX:
        return ErrorReply(MG_TOO_LONG if cmd == CMD_MG else META_TOO_LONG)
    return Request(cmd, line, key, None, n > 2 and line.find(b" q") >= 0 and _quiet(tokens, 2))


def _p_me(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    """me <key> (debug info; memcached ignores anything after the key)"""
    if len(tokens) < 2 or len(tokens[1]) > KEY_MAX_LENGTH:
        return ErrorReply(BAD_FORMAT)
    return Request(cmd, line, tokens[1], None, len(tokens) > 2 and _quiet(tokens, 2))


def _p_ms(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    """ms <key> <datalen> <flags>*"""
    n = len(tokens)
    if n < 2:
        return ErrorReply(ERROR)
    key = tokens[1]
    if len(key) > KEY_MAX_LENGTH or n == 2:
        return ErrorReply(BAD_FORMAT)
    if n >= META_TOKENS_MAX:
        return ErrorReply(META_TOO_LONG)
    vlen = strtol32(tokens[2])
    if vlen is None or vlen < 0 or vlen > VALUE_LENGTH_MAX:
        return ErrorReply(BAD_FORMAT)
    return Request(
        cmd, line, key, None, n > 3 and line.find(b" q") >= 0 and _quiet(tokens, 3)
    ), vlen


def _p_noreply_local(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    """flush_all/verbosity: executed locally, but memcached honours a trailing noreply."""
    return Request(cmd, line, b"", None, len(tokens) > 1 and tokens[-1] == b"noreply")


def _p_local(cmd: int, line: bytes, tokens: list[bytes]) -> Parsed:
    """Keyless commands; their arguments are validated by whoever executes them."""
    return Request(cmd, line)


_SPECIAL: Final[dict[int, Parser]] = {
    CMD_GET: _p_get,
    CMD_GETS: _p_get,
    CMD_GAT: _p_gat,
    CMD_GATS: _p_gat,
    CMD_SET: _p_store,
    CMD_ADD: _p_store,
    CMD_REPLACE: _p_store,
    CMD_APPEND: _p_store,
    CMD_PREPEND: _p_store,
    CMD_CAS: _p_cas,
    CMD_INCR: _p_arith,
    CMD_DECR: _p_arith,
    CMD_TOUCH: _p_touch,
    CMD_DELETE: _p_delete,
    CMD_MG: _p_meta,
    CMD_MD: _p_meta,
    CMD_MA: _p_meta,
    CMD_ME: _p_me,
    CMD_MS: _p_ms,
    CMD_MN: _p_local,
    CMD_FLUSH_ALL: _p_noreply_local,
    CMD_VERBOSITY: _p_noreply_local,
}

#: Command word -> (command code, parser). Every word of ``COMMANDS`` is here.
TABLE: Final[dict[bytes, tuple[int, Parser]]] = {
    word: (code, _SPECIAL.get(code, _p_local)) for word, code in COMMANDS.items()
}


def _parse_line(line: bytes) -> Parsed:
    """Parse one complete request line (terminator included)."""
    tokens = split(content(line))
    if not tokens:
        return ErrorReply(ERROR)
    entry = TABLE.get(tokens[0])
    if entry is None:
        return ErrorReply(ERROR)
    return entry[1](entry[0], line, tokens)


def _may_grow(head: bytes) -> bool:
    """memcached's exception for long lines: a get/gets multiget, after at most 100 leading
    spaces. ``head`` is the start of the line (106 bytes or all of it). A head too short to
    tell yet (only spaces, or a prefix of ``get ``) may still grow."""
    rest = head.lstrip(b" ")
    if len(head) - len(rest) > 100:
        return False
    if len(rest) < 5:
        return b"get ".startswith(rest) or b"gets ".startswith(rest)
    return rest.startswith((b"get ", b"gets "))


def _over(size: int, last: int, limit: int) -> bool:
    """Whether a line start of ``size`` bytes, ending with byte ``last``, already has more
    than ``limit`` bytes of content. A final ``\\r`` may be the start of the terminator."""
    return size > limit + 1 or (size == limit + 1 and last != 13)


class RequestReader:
    """Incremental, sans-I/O parser of one client connection's byte stream.

    >>> reader = RequestReader()
    >>> reader.feed(b"get foo\\r\\nset bar 0 0 2\\r\\nh")
    [Request(b'get foo\\r\\n')]
    >>> reader.feed(b"i\\r\\n")
    [Request(b'set bar 0 0 2\\r\\n', value=4B)]

    ``feed`` returns every request completed by the new bytes, in order, with an
    :class:`ErrorReply` in place of each bad one (see the module docstring for the rules).
    After an ``ErrorReply`` with ``close=True`` the reader is :attr:`closed` and ignores input.
    """

    __slots__ = (
        "_buf",
        "_discard",
        "_discarded",
        "_need",
        "closed",
        "max_line",
        "max_multiget_line",
        "max_value",
    )

    def __init__(
        self,
        max_value: int = 1024 * 1024,
        max_line: int = LINE_MAX,
        *,
        max_multiget_line: int = 1024 * 1024,
    ) -> None:
        #: Data blocks longer than this (CRLF excluded) are discarded (``value=None``).
        self.max_value = max_value
        #: Longest request line content (terminator excluded); longer closes the connection.
        self.max_line = max_line
        #: The same, for ``get``/``gets`` lines (memcached has no bound there).
        self.max_multiget_line = max_multiget_line
        #: True once the reader asked for the connection to be closed.
        self.closed = False
        # Unparsed bytes carried over to the next feed: a partial line (``_need == 0``, and then
        # no b"\n" in it), or a storage line with part of its data block (``_need`` = how many
        # bytes must be buffered before it can complete; the line is parsed again then).
        self._buf = bytearray()
        self._need = 0
        # Bytes of an oversized data block still to drop, and the request to emit after.
        self._discard = 0
        self._discarded: Request | None = None

    def buffered(self) -> int:
        """Number of bytes held for an incomplete request."""
        return len(self._buf)

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Request | ErrorReply]:
        """Add bytes from the client; return the requests (or error replies) now complete."""
        out: list[Request | ErrorReply] = []
        if self.closed or not chunk:
            return out
        data: bytes = chunk if type(chunk) is bytes else bytes(chunk)
        if self._discard:
            if len(data) < self._discard:
                self._discard -= len(data)
                return out
            data = data[self._discard :]
            self._discard = 0
            assert self._discarded is not None
            out.append(self._discarded)
            self._discarded = None
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need:
                return out
            if not self._need and 10 not in data:
                self._check_partial(out)
                return out
            data = bytes(buf)
            buf.clear()
        self._parse(data, out)
        return out

    def _close(self, out: list[Request | ErrorReply]) -> None:
        self.closed = True
        self._buf.clear()
        self._need = 0
        out.append(ErrorReply(b"", close=True))

    def _check_partial(self, out: list[Request | ErrorReply]) -> None:
        """Enforce the line limits on a line still waiting for its ``\\n``."""
        buf = self._buf
        size = len(buf)
        if _over(size, buf[-1], self.max_line) and (
            _over(size, buf[-1], self.max_multiget_line) or not _may_grow(bytes(buf[:106]))
        ):
            self._close(out)

    def _parse(self, data: bytes, out: list[Request | ErrorReply]) -> None:
        """Parse ``data`` (which starts at a request boundary) and buffer what is left."""
        self._need = 0
        append = out.append
        find = data.find
        table = TABLE
        max_line = self.max_line
        end = len(data)
        pos = 0
        while pos < end:
            nl = _newline(data, pos, end)
            if nl == -2:
                nl = find(b"\n", pos)
            if nl < 0:
                break
            start = pos
            pos = nl + 1
            # Inline _parse_line: this is the hot path.
            cend = nl - 1 if nl > start and data[nl - 1] == 13 else nl  # b"\r"
            if cend - start > max_line and (
                cend - start > self.max_multiget_line or not _may_grow(data[start : start + 106])
            ):
                self._close(out)
                return
            line = data[start:pos]
            # The two usual lines, "get <key>" and "set <key> <flags> <exptime> <bytes>"
            # (one space apart, plain digits), are read here byte by byte: what the general
            # path below makes of them, without its token list, table lookup and call.
            got = _fast_get(data, start, cend, line) if data[start] == 103 else None
            if got is not None:
                append(got)
                continue
            vlen: int = _fast_set(data, start, cend) if data[start] == 115 else -1
            if vlen >= 0:
                req = Request(CMD_SET, line, data[start + 4 : _key_end(data, start + 4, cend)])
            else:
                tokens = split(data[start:cend])
                if not tokens:
                    append(ErrorReply(ERROR))
                    continue
                entry = table.get(tokens[0])
                if entry is None:
                    append(ErrorReply(ERROR))
                    continue
                res = entry[1](entry[0], line, tokens)
                if not isinstance(res, tuple):
                    append(res)
                    continue
                # A storage command: its data block follows the line.
                req, vlen = res
            stop = pos + vlen + 2
            if vlen > self.max_value:
                if stop > end:
                    self._discard = stop - end
                    self._discarded = req
                    return
                append(req)
                pos = stop
                continue
            if stop > end:
                # Keep the line with the partial block; parse the line again once complete.
                self._need = stop - start
                pos = start
                break
            if data[stop - 2] == 13 and data[stop - 1] == 10:  # (no method call)
                req.value = data[pos:stop]
                append(req)
            else:
                append(_error(BAD_DATA_CHUNK, req.noreply and req.cmd != CMD_MS))
            pos = stop
        if pos < end:
            self._buf += memoryview(data)[pos:]
            if not self._need:
                self._check_partial(out)


def _newline(data: bytes, i: i64, end: i64) -> i64:
    """The index of the first ``\n`` in ``data[i:end]``, looked for among its first
    :data:`SCAN` bytes (compiled, cheaper than a call of ``bytes.find`` for a usual request
    line); -1 when ``data[i:end]`` has none, -2 when it is longer and has none there."""
    stop = i + SCAN
    if stop > end:
        stop = end
    while i < stop:
        if data[i] == 10:
            return i
        i += 1
    return -1 if stop == end else -2


def _key_end(data: bytes, i: i64, end: i64) -> i64:
    """Where the token starting at ``data[i]`` ends: its first space or NUL, else ``end``."""
    while i < end:
        c = data[i]
        if c == 32 or c == 0:
            return i
        i += 1
    return end


def _fast_get(data: bytes, start: i64, cend: i64, line: bytes) -> Request | None:
    """The request of ``get <key>`` at ``data[start:cend]`` (the line's content; ``line`` the
    whole line), or None for any other line: one key of at most 250 bytes after one space,
    no NUL (what ``_p_get`` answers for its two tokens)."""
    first = start + 4
    if (
        cend - first < 1
        or cend - first > KEY_MAX_LENGTH
        or data[start + 1] != 101
        or data[start + 2] != 116
        or data[start + 3] != 32
        or _key_end(data, first, cend) != cend
    ):
        return None
    return Request(CMD_GET, line, data[first:cend])


def _digits_end(data: bytes, i: i64, end: i64) -> i64:
    """Where the run of ASCII digits starting at ``data[i]`` ends (``i`` when none)."""
    while i < end:
        c = data[i]
        if c < 48 or c > 57:
            return i
        i += 1
    return end


def _fast_set(data: bytes, start: i64, cend: i64) -> int:
    """The byte count of ``set <key> <flags> <exptime> <bytes>`` at ``data[start:cend]``
    (tokens one space apart, a key of at most 250 bytes, plain digits as ``_p_store``'s
    short path takes them, no noreply), or -1 for any other line."""
    first = start + 4
    if (
        cend - first < 7
        or data[start + 1] != 101
        or data[start + 2] != 116
        or data[start + 3] != 32
    ):
        return -1
    k = _key_end(data, first, cend)
    if k == first or k - first > KEY_MAX_LENGTH or k >= cend or data[k] != 32:
        return -1
    f = _digits_end(data, k + 1, cend)
    if f == k + 1 or f >= cend or data[f] != 32:
        return -1
    e = _digits_end(data, f + 1, cend)
    if e == f + 1 or e >= cend or data[e] != 32 or (f - k - 1) + (e - f - 1) >= 19:
        return -1
    b = _digits_end(data, e + 1, cend)
    if b != cend or b == e + 1 or b - e - 1 >= 10:
        return -1
    size = 0
    i = e + 1
    while i < b:
        size = size * 10 + data[i] - 48
        i += 1
    return size


def parse_request_line(line: bytes, *, max_line: int = LINE_MAX) -> Request:
    """Parse one complete request line, as ``mcp.request(line)`` does.

    The line must end with ``\\n`` (``\\r\\n`` normally), hold no other ``\\n``, and have
    at most ``max_line`` bytes before its terminator. Anything the client-side reader would
    answer with an error reply in place of a request is refused too. Storage commands get
    ``value=None``: the caller attaches the data block.

    Raises:
        ValueError: "failed to parse request".
    """
    size = len(line) - (2 if line.endswith(b"\r\n") else 1)
    if not line.endswith(b"\n") or line.find(b"\n") != len(line) - 1 or size > max_line:
        raise ValueError("failed to parse request")
    res = _parse_line(line)
    if isinstance(res, tuple):
        return res[0]
    if isinstance(res, Request):
        return res
    raise ValueError("failed to parse request")


def split_multiget(req: Request) -> list[Request | bytes]:
    """Split a get/gets/gat/gats request into one sub-request per key (spec 6.4).

    Each sub-request has the line ``prefix + key + b"\\r\\n"``, where ``prefix`` is the
    original bytes up to the first key (``b"get "``, ``b"gat 10 "``, repeated spaces kept),
    the same command and ``multiget=False``. A key longer than 250 bytes becomes the reply
    ``b"CLIENT_ERROR key too long\\r\\n"`` at its position. The caller appends the final
    ``END``. A request that is not a multiget is returned unchanged, alone.
    """
    if not req.multiget:
        return [req]
    prefix, keys = multiget_keys(req)
    cmd = req.cmd
    out: list[Request | bytes] = []
    for key in keys:
        if len(key) > KEY_MAX_LENGTH:
            out.append(KEY_TOO_LONG)
        else:
            out.append(Request(cmd, prefix + key + b"\r\n", key))
    return out


def multiget_keys(req: Request) -> tuple[bytes, list[bytes]]:
    """(prefix, keys) of a multiget: the bytes up to its first key (see ``split_multiget``),
    and its keys in order, over-long ones included."""
    text = content(req.line)
    # Find where the first key starts: skip the command word (and gat's exptime) with the
    # spaces around them.
    pos = len(text) - len(text.lstrip(b" "))
    for _ in range(2 if req.cmd in (CMD_GAT, CMD_GATS) else 1):
        pos = text.index(b" ", pos)
        while text[pos] == 0x20:
            pos += 1
    return text[:pos], split(text[pos:])
