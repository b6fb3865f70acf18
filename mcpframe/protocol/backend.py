"""Backend side of the memcached text protocol: bytes from a backend in, :class:`Response` out.

Rules (spec 4.1 and 7.5):

* A response line ends at ``\\n`` (normally ``\\r\\n``); its first word (up to the first space)
  classifies it. ``Response.raw`` is what the client receives, byte for byte.
* ``VA <n> [flags]``: the line, ``n`` bytes and a CRLF. ``VALUE <key> <flags> <n> [<cas>]``:
  the line, ``n`` bytes, a CRLF, and then exactly ``END\\r\\n``; ``raw`` holds all three
  parts. More ``VALUE`` blocks before the ``END`` make one response of type
  ``RES_MULTI_GET`` (the reply to a multi-key get; the backend connection refuses it as
  ``missingend`` for any other request). Anything else after the data -> failure
  ``missingend``. A data block not ending in CRLF -> failure ``parsing``.
* ``SERVER_ERROR ...`` -> a failed response (code 23) with the line verbatim; the connection
  stays usable. ``ERROR[ ...]``/``CLIENT_ERROR ...`` -> a failed response with the line
  verbatim, then failure ``invalidprotocol``: the backend may have lost track of our stream.
  Deliberate exception (memcached 1.6.20 resets on these too): the ``CLIENT_ERROR`` answers
  that a well-formed request earns from the data it finds (``IN_SYNC_CLIENT_ERRORS``, e.g.
  incr on a non-numeric value) keep the connection, so one client's bad incr does not fail
  every other request pipelined on that backend.
* An unknown two-byte word -> a failed response (code 1) whose raw is ``SERVER_ERROR backend
  failure``; the stream goes on. ``VERSION ...`` -> an OK response (type VERSION, code 12),
  which connection validation looks for. ``STAT`` -> failure ``unhandledres``. Anything else
  (garbage, one-byte word, ``VA``/``VALUE`` without a usable length, an over-long line) ->
  failure ``parsing``, with no response.
* After a failure the reader stops: it parses and keeps nothing more. ``failure`` names the
  reason (the ``error=`` of the proxy's log line), :meth:`rbuf` shows the unparsed bytes.
* Partial input, cut anywhere (inside a line, a data block or the ``END\\r\\n``), waits.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

from mcpframe.protocol.commands import (
    MCMC_CODE_CLIENT_ERROR,
    MCMC_CODE_DELETED,
    MCMC_CODE_END,
    MCMC_CODE_ERROR,
    MCMC_CODE_EXISTS,
    MCMC_CODE_NOP,
    MCMC_CODE_NOT_FOUND,
    MCMC_CODE_NOT_STORED,
    MCMC_CODE_OK,
    MCMC_CODE_SERVER_ERROR,
    MCMC_CODE_STORED,
    MCMC_CODE_TOUCHED,
    MCMC_CODE_VERSION,
    RES_END,
    RES_ERRMSG,
    RES_GENERIC,
    RES_GET,
    RES_META,
    RES_MULTI_GET,
    RES_NUMERIC,
    RES_VERSION,
    STATUS_FAILED,
    STATUS_OK,
)
from mcpframe.protocol.replies import (
    BAD_DELTA,
    BAD_EXPTIME,
    BAD_TOKEN,
    DUPLICATE_FLAG,
    END,
    INVALID_FLAG,
    INVALID_OR_DUPLICATE,
    NON_NUMERIC,
    OPAQUE_TOO_LONG,
)
from mcpframe.protocol.response import BACKEND_FAILURE, MultiGetResponse, Response

#: CLIENT_ERROR lines a memcached server sends in reply to one complete, well-formed
#: request, after which its stream is still in step with ours (no connection reset).
IN_SYNC_CLIENT_ERRORS: Final = frozenset(
    line[:-2]  # compared without the CRLF
    for line in (
        NON_NUMERIC,
        BAD_DELTA,
        BAD_TOKEN,
        OPAQUE_TOO_LONG,
        INVALID_FLAG,
        DUPLICATE_FLAG,
        INVALID_OR_DUPLICATE,
        BAD_EXPTIME,
    )
)

__all__ = ["MAX_RESPONSE_LINE", "SKIPPED", "ResponseReader"]

#: A backend line longer than this without ``\n`` is garbage (memcached's longest replies,
#: a ``VALUE`` line or a meta line with an opaque, are far shorter).
MAX_RESPONSE_LINE: Final = 8192
#: Unknown two-byte meta word.
_CODE_UNKNOWN_META: Final = 1

_VALUE: Final = b"VALUE "
#: A value length no read can complete; the parse indexes with machine integers (``i64``),
#: which a larger one would overflow, so such a reply just waits as it always did.
_HUGE: Final = 1 << 60

#: What :meth:`ResponseReader.next_reply` gives, in its place, for a reply it was told nobody
#: reads: one shared object, not a response made of the reply's bytes.
SKIPPED: Final = Response(RES_GET, MCMC_CODE_OK, STATUS_OK, b"")

# First word -> (type, code) of a complete one-line OK response.
_SIMPLE: Final[dict[bytes, tuple[int, int]]] = {
    b"HD": (RES_META, MCMC_CODE_OK),
    b"EN": (RES_META, MCMC_CODE_END),
    b"NF": (RES_META, MCMC_CODE_NOT_FOUND),
    b"NS": (RES_META, MCMC_CODE_NOT_STORED),
    b"EX": (RES_META, MCMC_CODE_EXISTS),
    b"MN": (RES_META, MCMC_CODE_NOP),
    b"ME": (RES_META, MCMC_CODE_OK),
    b"OK": (RES_GENERIC, MCMC_CODE_OK),
    b"END": (RES_END, MCMC_CODE_END),
    b"STORED": (RES_GENERIC, MCMC_CODE_STORED),
    b"EXISTS": (RES_GENERIC, MCMC_CODE_EXISTS),
    b"DELETED": (RES_GENERIC, MCMC_CODE_DELETED),
    b"TOUCHED": (RES_GENERIC, MCMC_CODE_TOUCHED),
    b"NOT_FOUND": (RES_GENERIC, MCMC_CODE_NOT_FOUND),
    b"NOT_STORED": (RES_GENERIC, MCMC_CODE_NOT_STORED),
    b"VERSION": (RES_VERSION, MCMC_CODE_VERSION),
}


class ResponseReader:
    """Incremental, sans-I/O parser of one backend connection's replies.

    >>> reader = ResponseReader()
    >>> reader.feed(b"HD\\r\\nVA 2\\r\\nhi")
    [Response(type=101, code=15, status=0, raw=b'HD\\r\\n')]
    >>> reader.feed(b"\\r\\n")[0].vlen
    2
    """

    __slots__ = ("_buf", "_data", "_need", "_pos", "failure")

    def __init__(self) -> None:
        #: Why the stream can no longer be trusted (``parsing``, ``missingend``,
        #: ``invalidprotocol``, ``unhandledres``), or None.
        self.failure: str | None = None
        self._buf = bytearray()  # unparsed bytes
        self._need = 0  # bytes needed in _buf before parsing can progress (0: a line end)
        #: The bytes :meth:`load` gave, read by :meth:`next_reply` from ``_pos`` (``_buf`` is
        #: empty meanwhile: what it held starts ``_data``).
        self._data = b""
        self._pos: i64 = 0

    def buffered(self) -> int:
        """Number of unparsed bytes held."""
        return len(self._buf) + len(self._data) - self._pos

    def unparsed(self) -> bytes:
        """A copy of every unparsed byte held (a partial reply, or what a failure left)."""
        return bytes(self._buf) + self._data[self._pos :]

    def rbuf(self) -> bytes:
        """Up to 100 unparsed bytes, for the failure log line (without copying the rest of a
        large read: one of ``_buf`` and ``_data[_pos:]`` is empty)."""
        pos = self._pos
        return bytes(self._buf[:100]) + self._data[pos : pos + 100]

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Response]:
        """Add bytes from the backend; return the responses now complete, in order."""
        out: list[Response] = []
        if self.load(chunk):
            res = self.next_reply(False)
            while res is not None:
                out.append(res)
                res = self.next_reply(False)
        return out

    def load(self, chunk: bytes | bytearray | memoryview) -> bool:
        """Add bytes from the backend, to be read reply by reply with :meth:`next_reply`:
        False when no reply can be complete yet (they were kept). Bytes a previous load left
        unread by :meth:`next_reply` are dropped."""
        self._data = b""
        self._pos = 0
        if self.failure is not None or not chunk:
            return False
        data: bytes = chunk if type(chunk) is bytes else bytes(chunk)
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need or (not self._need and 10 not in data):
                self._check_partial()
                return False
            data = bytes(buf)
            buf.clear()
        self._need = 0
        self._data = data
        return True

    def next_reply(self, skip: bool) -> Response | None:
        """The next complete reply of the bytes loaded, or None: none is complete (what is
        left, a partial reply, is kept for the next :meth:`load`), or the stream failed
        (``failure``). ``skip``: nobody reads this reply; when it is a single-value reply
        or a one-line OK reply it is consumed byte for byte as usual, but :data:`SKIPPED`
        stands for it (no copy of its bytes, no response object made). Other replies
        (errors, several values, meta replies) are made, and failures found, as usual."""
        data = self._data
        pos = self._pos
        end: i64 = len(data)
        if pos < end and self.failure is None:
            res, stop = self._one(data, pos, end, skip)
            if res is not None:
                self._pos = stop
                return res
        if pos < end:
            self._buf += memoryview(data)[pos:]
            self._check_partial()
        self._data = b""
        self._pos = 0
        return None

    def _check_partial(self) -> None:
        if self.failure is None and not self._need and len(self._buf) > MAX_RESPONSE_LINE:
            self.failure = "parsing"

    def _one(self, data: bytes, start: i64, end: i64, skip: bool) -> tuple[Response | None, i64]:
        """The reply at ``data[start:end]`` and the offset after it; (None, start) when it
        is not complete (``_need`` set) or the stream failed (``failure`` set). An error
        reply that leaves the stream out of step is returned with ``failure`` set."""
        # (machine integers: compiled, each index and comparison is then a plain C one)
        value = (
            data[start] == 86  # "VALUE ": the common reply, read without slicing the line
            and start + 6 < end
            and data[start + 1] == 65
            and data[start + 2] == 76
            and data[start + 3] == 85
            and data[start + 4] == 69
            and data[start + 5] == 32
        )
        # The line's end: a VALUE line of the usual shape is read to its end and its
        # byte count taken on the way; any other line is scanned for its "\n" (compiled,
        # a loop over a short line costs less than a call of bytes.find).
        nl: i64 = _value_line_end(data, start, end) if value else -1
        if nl > 0:
            vlen = _count_before(data, nl - 1)
        else:
            nl = _line_end(data, start, end)
            if nl < 0:
                if nl == -2:
                    self.failure = "parsing"
                return None, start
            vlen = _value_size(data, start, nl) if value else 0
        pos: i64 = nl + 1
        stop: i64
        full: i64
        if value:
            if vlen < 0:
                self.failure = "parsing"
                return None, start
            if vlen > _HUGE:
                self._need = vlen  # (never complete: the read timer fails it)
                return None, start
            stop = pos + vlen + 2
            if stop >= end:
                if stop == end and (data[stop - 2] != 13 or data[stop - 1] != 10):
                    self.failure = "parsing"
                    return None, start
                self._need = stop + 1 - start  # the data block and one byte after it
                return None, start
            if data[stop - 2] != 13 or data[stop - 1] != 10:
                self.failure = "parsing"
                return None, start
            full = stop + 5
            if full <= end and _is_end(data, stop):
                if skip:
                    return SKIPPED, full
                return Response(RES_GET, MCMC_CODE_OK, STATUS_OK, data[start:full], vlen), full
            ends = [stop - start]
            full = self._more_values(data, start, stop, ends)
            if full <= 0:
                return None, start
            raw = data[start:full]
            return MultiGetResponse(RES_MULTI_GET, MCMC_CODE_OK, STATUS_OK, raw, vlen, ends), full
        if data[start] == 86 and data[start + 1] == 65 and data[start + 2] == 32:
            # "VA <size> ...": a meta hit (every binary client's get), read as VALUE is.
            i = start + 3
            vlen = 0
            while i < nl and 48 <= data[i] <= 57:
                vlen = vlen * 10 + data[i] - 48
                i += 1
            if i > start + 3 and (data[i] == 32 or data[i] == 13 or data[i] == 10):
                return self._meta_value(data, start, pos, end, vlen)
        content = data[start : nl - 1] if nl > start and data[nl - 1] == 13 else data[start:nl]
        sp = content.find(b" ")
        word = content if sp < 0 else content[:sp]
        kind = _SIMPLE.get(word)
        if kind is not None:
            if skip:
                return SKIPPED, pos
            return Response(kind[0], kind[1], STATUS_OK, data[start:pos]), pos
        # (A VALUE line is "VALUE " and read above; a bare "VALUE" fails as "parsing".)
        if word == b"VA":
            tokens = content.split()
            size = tokens[1] if len(tokens) > 1 else b""
            if not size.isdigit():
                self.failure = "parsing"
                return None, start
            return self._meta_value(data, start, pos, end, int(size))
        if content[:1].isdigit():
            return Response(RES_NUMERIC, MCMC_CODE_OK, STATUS_OK, data[start:pos]), pos
        if word == b"SERVER_ERROR":
            raw = data[start:pos]
            return Response(RES_ERRMSG, MCMC_CODE_SERVER_ERROR, STATUS_FAILED, raw), pos
        if word == b"ERROR" or word == b"CLIENT_ERROR":
            code = MCMC_CODE_ERROR if word == b"ERROR" else MCMC_CODE_CLIENT_ERROR
            if content not in IN_SYNC_CLIENT_ERRORS:
                self.failure = "invalidprotocol"  # (the stream stops after this reply)
            return Response(RES_ERRMSG, code, STATUS_FAILED, data[start:pos]), pos
        if len(word) == 2:
            return Response(RES_META, _CODE_UNKNOWN_META, STATUS_FAILED, BACKEND_FAILURE), pos
        self.failure = "unhandledres" if word == b"STAT" else "parsing"
        return None, start

    def _meta_value(
        self, data: bytes, start: i64, pos: i64, end: i64, vlen: int
    ) -> tuple[Response | None, i64]:
        """The meta hit at ``data[start:end]`` whose ``VA`` line ends before ``pos`` and
        announces ``vlen`` bytes, and the offset after it; (None, start) as ``_one``."""
        if vlen > _HUGE:
            self._need = vlen
            return None, start
        stop: i64 = pos + vlen + 2
        if stop > end:
            self._need = stop - start
            return None, start
        if data[stop - 2] != 13 or data[stop - 1] != 10:
            self.failure = "parsing"
            return None, start
        return Response(RES_META, MCMC_CODE_OK, STATUS_OK, data[start:stop], vlen), stop

    def _more_values(self, data: bytes, start: int, pos: int, ends: list[int]) -> int:
        """After the first block of a ``VALUE`` reply (``data[start:pos]``): the end of the
        reply when more blocks and the ``END`` follow, each block's end (from ``start``)
        added to ``ends``; else 0 with ``_need`` set (cut short) or ``failure`` set (anything
        but a ``VALUE`` block or the ``END`` follows)."""
        end = len(data)
        while True:
            if pos + 5 <= end and _is_end(data, pos):
                return pos + 5  # (a first block followed by END is the caller's case)
            rest = data[pos : pos + 6]
            if rest == _VALUE:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    if end - pos > MAX_RESPONSE_LINE:
                        self.failure = "parsing"
                        return 0
                    self._need = end + 1 - start
                    return 0
                size = _value_size(data, pos, nl)
                if size < 0:
                    self.failure = "parsing"
                    return 0
                stop = nl + 1 + size + 2
                if stop > end:
                    self._need = stop + 1 - start
                    return 0
                if data[stop - 2 : stop] != b"\r\n":
                    self.failure = "parsing"
                    return 0
                pos = stop
                ends.append(stop - start)
                continue
            if len(rest) < 6 and (END.startswith(rest) or _VALUE.startswith(rest)):
                self._need = end + 1 - start  # cut short: wait for one more byte
                return 0
            break
        self.failure = "missingend"
        return 0


def _is_end(data: bytes, pos: i64) -> bool:
    """``data[pos:pos + 5] == b"END\\r\\n"`` (the caller checked the length), without a slice."""
    return (
        data[pos] == 69
        and data[pos + 1] == 78
        and data[pos + 2] == 68
        and data[pos + 3] == 13
        and data[pos + 4] == 10
    )


def _line_end(data: bytes, pos: i64, end: i64) -> i64:
    """The index of the ``\n`` ending the line at ``data[pos:end]``; -1 when the line is not
    complete yet, -2 when it is longer than ``MAX_RESPONSE_LINE``."""
    stop = pos + MAX_RESPONSE_LINE + 1
    if stop > end:
        stop = end
    i = pos
    while i < stop and data[i] != 10:
        i += 1
    if i < stop:
        return i
    return -2 if stop < end else -1


def _value_line_end(data: bytes, pos: i64, end: i64) -> i64:
    """The index of the ``\n`` ending ``VALUE <key> <flags> <bytes>\r\n`` at ``data[pos:end]``
    (memcached's usual reply line: tokens one space apart, no cas), found by reading the line
    forwards once; -1 for any other line, or one not complete in ``data[:end]``."""
    if end - pos > MAX_RESPONSE_LINE:
        end = pos + MAX_RESPONSE_LINE
    i = pos + 6
    while i < end and data[i] > 32:  # the key: no space or control byte
        i += 1
    if i == pos + 6 or i >= end or data[i] != 32:
        return -1
    i += 1
    first = i
    while i < end and 48 <= data[i] <= 57:  # the flags
        i += 1
    if i == first or i >= end or data[i] != 32:
        return -1
    i += 1
    first = i
    while i < end and 48 <= data[i] <= 57:  # the byte count
        i += 1
    if i == first or i + 1 >= end or data[i] != 13 or data[i + 1] != 10:
        return -1
    return i + 1


def _count_before(data: bytes, e: i64) -> int:
    """The number whose last digit is ``data[e - 1]`` (the caller checked it is digits).
    Up to 18 digits are summed in machine integers (compiled, plain C arithmetic); a longer
    number, which no memcached sends, is read again as a Python int."""
    value: i64 = 0
    scale: i64 = 1
    stop = e
    e -= 1
    while 48 <= data[e] <= 57:
        if e < stop - 18:
            return _count_long(data, stop)
        value += (data[e] - 48) * scale
        scale *= 10
        e -= 1
    return value


def _count_long(data: bytes, e: i64) -> int:
    """``_count_before`` for a number of any length."""
    value = 0
    scale = 1
    e -= 1
    while 48 <= data[e] <= 57:
        value += (data[e] - 48) * scale
        scale *= 10
        e -= 1
    return value


def _value_size(data: bytes, pos: i64, nl: i64) -> int:
    """The byte count of the ``VALUE <key> <flags> <bytes> [<cas>]`` line at ``data[pos:nl]``,
    or -1. memcached puts one space between the tokens: the line is then read forwards byte
    by byte, the count parsed as it goes (compiled, that costs less than any method call on
    the line, whose arguments are parsed at every call); anything else is split the slow
    way. ``data[nl]`` is the line's ``\n``, which ends every scan."""
    i = pos + 6
    c = data[i]
    while c > 32:  # the key: no space or control byte
        i += 1
        c = data[i]
    if c == 32 and i > pos + 6:
        i += 1
        first = i
        c = data[i]
        while 48 <= c <= 57:  # the flags
            i += 1
            c = data[i]
        if c == 32 and i > first:
            i += 1
            first = i
            value = 0
            c = data[i]
            while 48 <= c <= 57:
                value = value * 10 + c - 48
                i += 1
                c = data[i]
            if i > first and (c == 13 or c == 10 or c == 32):
                return value
    tokens = data[pos:nl].split()
    size = tokens[3] if len(tokens) > 3 else b""
    return int(size) if size.isdigit() else -1
