"""memcached's binary protocol, sans-I/O: request packets in, response packets out.

Packets are a 24-byte header (magic, opcode, key length, extras length, data type, vbucket or
status, body length, opaque, CAS; big-endian) then a body: extras, key, value.

Rules of the request reader (each checked against memcached 1.6.18; the replies are frozen as
bytes in tests/protocol/test_binary.py, which replays them against the binary when present):

Framing
  * A packet is handled once its header is complete. A magic byte other than 0x80 closes the
    connection without a word (memcached ``conn_closing``); choosing binary or text for a
    connection from its first byte is the caller's job, as in memcached.
  * ``extlen + keylen > bodylen`` -> ``Unknown command`` (0x81) and close.
  * ``keylen > 250`` -> ``Invalid arguments`` (0x04) and close.
  * memcached makes these checks (and the per-opcode ones below) once the extras and the key
    have arrived; we make them on the header alone, so a header that promises more than the
    client sends is answered instead of waited for.
  * The data type and vbucket fields are ignored.

Per opcode (a table, ``RULES``): the lengths each opcode requires, else ``Invalid
arguments`` and close (memcached's ``handle_binary_protocol_error``):
  * get getq getk getkq delete deleteq: no extras, a key, no value.
  * set add replace (+q): 8 bytes of extras (flags, exptime), a key, any value.
  * append prepend (+q): no extras, a key, any value.
  * increment decrement (+q): 20 bytes of extras (delta, initial, exptime), a key, no value.
  * touch gat gatq gatk gatkq: 4 bytes of extras (exptime), a key, no value (*).
  * flush flushq: no key, no value, 0 or 4 bytes of extras (exptime).
  * noop version quit quitq: nothing at all.
  * stat: no extras; the key, possibly empty, is the sub-command (``settings``, ``items``,
    ``detail dump``...); no value (*).
  * (*) memcached does not check the value length there and parses the rest of the body as
    the next packet (so a stray value desynchronises the stream); we answer ``Invalid
    arguments`` and close instead, as memcached does for every other length mismatch.

Opcodes memcached does not serve
  * Every opcode not in ``RULES`` -> ``Unknown command`` (0x81), the body swallowed, the
    connection kept. That includes verbosity (0x1b): memcached 1.6 does not implement it in
    the binary protocol (the text ``verbosity`` works), nor multiply, nor the range and
    vbucket opcodes. memcached swallows ``bodylen`` bytes *after* the extras and key it has
    already consumed, eating the start of the next packet when there are any; we swallow
    exactly the rest of the body.
  * SASL (list mechs 0x20, auth 0x21, step 0x22): memcached without SASL answers ``Unknown
    command`` after the same length checks as with SASL (list mechs: nothing at all; auth and
    step: no extras, a key); so do we.

Values and the item limit
  * A value longer than ``max_value`` (set add replace append prepend, quiet or not; 1 MiB
    by default, as in the text reader) is swallowed as it streams in, never buffered, then
    answered ``Too large.`` (E2BIG, 0x03), as memcached does. memcached's limit is the item
    size, header and key included: with its default ``-I 1m`` a value of exactly 1 MiB is
    already too large; whoever stores the item has the last word. The connection is kept.
    Quiet forms do not silence it: errors are always answered.

Replies the reader produces itself are :class:`~mcpframe.protocol.request.ErrorReply` objects
holding the complete response packet (opcode and opaque echoed, CAS 0) and ``close`` when the
connection must be closed after writing it; everything after a close is ignored.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from mcpframe.protocol.request import ErrorReply

__all__ = [
    "ERROR_BODIES",
    "BinaryRequest",
    "BinaryRequestReader",
    "BinaryResponse",
    "BinaryResponseReader",
    "encode_request",
    "encode_response",
    "error_response",
]

MAGIC_REQUEST: Final = 0x80
MAGIC_RESPONSE: Final = 0x81
HEADER_SIZE: Final = 24
KEY_MAX_LENGTH: Final = 250

# -- opcodes (protocol_binary.h; the ones memcached 1.6 serves are in RULES) -------------------
OP_GET: Final = 0x00
OP_SET: Final = 0x01
OP_ADD: Final = 0x02
OP_REPLACE: Final = 0x03
OP_DELETE: Final = 0x04
OP_INCREMENT: Final = 0x05
OP_DECREMENT: Final = 0x06
OP_QUIT: Final = 0x07
OP_FLUSH: Final = 0x08
OP_GETQ: Final = 0x09
OP_NOOP: Final = 0x0A
OP_VERSION: Final = 0x0B
OP_GETK: Final = 0x0C
OP_GETKQ: Final = 0x0D
OP_APPEND: Final = 0x0E
OP_PREPEND: Final = 0x0F
OP_STAT: Final = 0x10
OP_SETQ: Final = 0x11
OP_ADDQ: Final = 0x12
OP_REPLACEQ: Final = 0x13
OP_DELETEQ: Final = 0x14
OP_INCREMENTQ: Final = 0x15
OP_DECREMENTQ: Final = 0x16
OP_QUITQ: Final = 0x17
OP_FLUSHQ: Final = 0x18
OP_APPENDQ: Final = 0x19
OP_PREPENDQ: Final = 0x1A
OP_VERBOSITY: Final = 0x1B  # not served by memcached 1.6: Unknown command
OP_TOUCH: Final = 0x1C
OP_GAT: Final = 0x1D
OP_GATQ: Final = 0x1E
OP_SASL_LIST_MECHS: Final = 0x20
OP_SASL_AUTH: Final = 0x21
OP_SASL_STEP: Final = 0x22
OP_GATK: Final = 0x23
OP_GATKQ: Final = 0x24

# -- response status codes ----------------------------------------------------------------------
STATUS_SUCCESS: Final = 0x00
STATUS_KEY_ENOENT: Final = 0x01
STATUS_KEY_EEXISTS: Final = 0x02
STATUS_E2BIG: Final = 0x03
STATUS_EINVAL: Final = 0x04
STATUS_NOT_STORED: Final = 0x05
STATUS_DELTA_BADVAL: Final = 0x06
STATUS_AUTH_ERROR: Final = 0x20
STATUS_AUTH_CONTINUE: Final = 0x21
STATUS_UNKNOWN_COMMAND: Final = 0x81
STATUS_ENOMEM: Final = 0x82
#: Not sent by memcached; mcpframe's proxy answers it for a backend failure (its
#: ``SERVER_ERROR`` lines), whose text then is the body.
STATUS_TEMPORARY_FAILURE: Final = 0x86

#: The body memcached sends with each error status (``write_bin_error``). A getk/gatk miss is
#: the exception: its body is the key (see ``binmeta``).
ERROR_BODIES: Final[dict[int, bytes]] = {
    STATUS_KEY_ENOENT: b"Not found",
    STATUS_KEY_EEXISTS: b"Data exists for key.",
    STATUS_E2BIG: b"Too large.",
    STATUS_EINVAL: b"Invalid arguments",
    STATUS_NOT_STORED: b"Not stored.",
    STATUS_DELTA_BADVAL: b"Non-numeric server-side value for incr or decr",
    STATUS_AUTH_ERROR: b"Auth failure.",
    STATUS_UNKNOWN_COMMAND: b"Unknown command",
    STATUS_ENOMEM: b"Out of memory",
}

#: Quiet opcode -> its ordinary form. getq getkq gatq gatkq drop misses; the others drop
#: successes; errors are always answered.
QUIET: Final[dict[int, int]] = {
    OP_GETQ: OP_GET,
    OP_GETKQ: OP_GETK,
    OP_GATQ: OP_GAT,
    OP_GATKQ: OP_GATK,
    OP_SETQ: OP_SET,
    OP_ADDQ: OP_ADD,
    OP_REPLACEQ: OP_REPLACE,
    OP_DELETEQ: OP_DELETE,
    OP_INCREMENTQ: OP_INCREMENT,
    OP_DECREMENTQ: OP_DECREMENT,
    OP_QUITQ: OP_QUIT,
    OP_FLUSHQ: OP_FLUSH,
    OP_APPENDQ: OP_APPEND,
    OP_PREPENDQ: OP_PREPEND,
}
#: Opcodes whose replies carry the key (hits and misses).
WITH_KEY: Final = frozenset({OP_GETK, OP_GETKQ, OP_GATK, OP_GATKQ})
#: Opcodes after whose reply (none for quitq) the connection is closed.
CLOSING: Final = frozenset({OP_QUIT, OP_QUITQ})

#: exptime of an increment/decrement that must not create a missing item.
NO_CREATE: Final = 0xFFFFFFFF


class BinaryRequest:
    """One request packet, decoded.

    Attributes:
        opcode: the opcode as sent (quiet and K forms included: ``OP_GETKQ``...).
        key: the key bytes (any bytes, up to 250); the stat sub-command for ``OP_STAT``.
        value: the value of set/add/replace/append/prepend, ``b""`` otherwise.
        opaque: echoed in the reply.
        cas: compare-and-swap value (0: none).
        flags: client flags (set/add/replace).
        exptime: set/add/replace, touch/gat, flush, and the creation exptime of
            increment/decrement (``NO_CREATE``: do not create).
        delta, initial: increment/decrement.
    """

    __slots__ = ("cas", "delta", "exptime", "flags", "initial", "key", "opaque", "opcode", "value")

    def __init__(
        self,
        opcode: int,
        key: bytes = b"",
        value: bytes = b"",
        opaque: int = 0,
        cas: int = 0,
        flags: int = 0,
        exptime: int = 0,
        delta: int = 0,
        initial: int = 0,
    ) -> None:
        self.opcode = opcode
        self.key = key
        self.value = value
        self.opaque = opaque
        self.cas = cas
        self.flags = flags
        self.exptime = exptime
        self.delta = delta
        self.initial = initial

    @property
    def quiet(self) -> bool:
        return self.opcode in QUIET

    @property
    def with_key(self) -> bool:
        return self.opcode in WITH_KEY

    @property
    def command(self) -> int:
        """The ordinary (not quiet) form of the opcode."""
        return QUIET.get(self.opcode, self.opcode)

    def __repr__(self) -> str:
        fields = [f"0x{self.opcode:02x}", repr(self.key)]
        for name in ("value", "opaque", "cas", "flags", "exptime", "delta", "initial"):
            v = getattr(self, name)
            if v:
                fields.append(f"{name}={v!r}")
        return f"BinaryRequest({', '.join(fields)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BinaryRequest):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _REQUEST_FIELDS)

    __hash__ = None  # type: ignore[assignment]


# (compiled classes have no ``__slots__`` attribute to compare by)
_REQUEST_FIELDS: Final = (
    "cas", "delta", "exptime", "flags", "initial", "key", "opaque", "opcode", "value"
)  # fmt: skip


# -- the per-opcode table -----------------------------------------------------------------------
# check(extlen, keylen, bodylen) says whether the lengths are the ones memcached requires;
# decode(opcode, extras, key, value, opaque, cas) builds the record. An entry without decode
# (SASL) is answered "Unknown command" once its lengths are checked.

Check = Callable[[int, int, int], bool]
Decode = Callable[[int, bytes, bytes, bytes, int, int], BinaryRequest]


def _u32(b: bytes, i: int) -> int:
    return (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]


def _u64(b: bytes, i: int) -> int:
    return (_u32(b, i) << 32) | _u32(b, i + 4)


def _c_nothing(ext: int, key: int, body: int) -> bool:
    return ext == 0 and key == 0 and body == 0


def _c_key(ext: int, key: int, body: int) -> bool:
    return ext == 0 and key > 0 and body == key


def _c_store(ext: int, key: int, body: int) -> bool:
    return ext == 8 and key > 0


def _c_concat(ext: int, key: int, body: int) -> bool:
    return ext == 0 and key > 0


def _c_arith(ext: int, key: int, body: int) -> bool:
    return ext == 20 and key > 0 and body == key + 20


def _c_touch(ext: int, key: int, body: int) -> bool:
    return ext == 4 and key > 0 and body == key + 4


def _c_flush(ext: int, key: int, body: int) -> bool:
    return key == 0 and body == ext and (ext == 0 or ext == 4)


def _c_stat(ext: int, key: int, body: int) -> bool:
    return ext == 0 and body == key


def _d_plain(op: int, ext: bytes, key: bytes, value: bytes, opaque: int, cas: int) -> BinaryRequest:
    return BinaryRequest(op, key, value, opaque, cas)


def _d_store(op: int, ext: bytes, key: bytes, value: bytes, opaque: int, cas: int) -> BinaryRequest:
    return BinaryRequest(op, key, value, opaque, cas, _u32(ext, 0), _u32(ext, 4))


def _d_arith(op: int, ext: bytes, key: bytes, value: bytes, opaque: int, cas: int) -> BinaryRequest:
    return BinaryRequest(op, key, b"", opaque, cas, 0, _u32(ext, 16), _u64(ext, 0), _u64(ext, 8))


def _d_exptime(
    op: int, ext: bytes, key: bytes, value: bytes, opaque: int, cas: int
) -> BinaryRequest:
    return BinaryRequest(op, key, b"", opaque, cas, 0, _u32(ext, 0) if ext else 0)


#: opcode -> (length check, decoder or None for "Unknown command", carries a value)
RULES: Final[dict[int, tuple[Check, Decode | None, bool]]] = {
    OP_GET: (_c_key, _d_plain, False),
    OP_GETQ: (_c_key, _d_plain, False),
    OP_GETK: (_c_key, _d_plain, False),
    OP_GETKQ: (_c_key, _d_plain, False),
    OP_DELETE: (_c_key, _d_plain, False),
    OP_DELETEQ: (_c_key, _d_plain, False),
    OP_SET: (_c_store, _d_store, True),
    OP_SETQ: (_c_store, _d_store, True),
    OP_ADD: (_c_store, _d_store, True),
    OP_ADDQ: (_c_store, _d_store, True),
    OP_REPLACE: (_c_store, _d_store, True),
    OP_REPLACEQ: (_c_store, _d_store, True),
    OP_APPEND: (_c_concat, _d_plain, True),
    OP_APPENDQ: (_c_concat, _d_plain, True),
    OP_PREPEND: (_c_concat, _d_plain, True),
    OP_PREPENDQ: (_c_concat, _d_plain, True),
    OP_INCREMENT: (_c_arith, _d_arith, False),
    OP_INCREMENTQ: (_c_arith, _d_arith, False),
    OP_DECREMENT: (_c_arith, _d_arith, False),
    OP_DECREMENTQ: (_c_arith, _d_arith, False),
    OP_TOUCH: (_c_touch, _d_exptime, False),
    OP_GAT: (_c_touch, _d_exptime, False),
    OP_GATQ: (_c_touch, _d_exptime, False),
    OP_GATK: (_c_touch, _d_exptime, False),
    OP_GATKQ: (_c_touch, _d_exptime, False),
    OP_FLUSH: (_c_flush, _d_exptime, False),
    OP_FLUSHQ: (_c_flush, _d_exptime, False),
    OP_NOOP: (_c_nothing, _d_plain, False),
    OP_VERSION: (_c_nothing, _d_plain, False),
    OP_QUIT: (_c_nothing, _d_plain, False),
    OP_QUITQ: (_c_nothing, _d_plain, False),
    OP_STAT: (_c_stat, _d_plain, False),
    OP_SASL_LIST_MECHS: (_c_nothing, None, False),
    OP_SASL_AUTH: (_c_concat, None, False),
    OP_SASL_STEP: (_c_concat, None, False),
}


# -- encoding -----------------------------------------------------------------------------------


#: magic, opcode, key length, extras length, data type, status (vbucket), body length, opaque,
#: CAS. (struct packs a header several times faster than shifting a 192-bit int.)
_HEADER: Final = struct.Struct(">BBHBBHIIQ")


def _header(
    magic: int, opcode: int, keylen: int, extlen: int, status: int, body: int, opaque: int, cas: int
) -> bytes:
    return _HEADER.pack(magic, opcode, keylen, extlen, 0, status, body, opaque, cas)


def encode_response(
    opcode: int,
    status: int = STATUS_SUCCESS,
    opaque: int = 0,
    cas: int = 0,
    extras: bytes = b"",
    key: bytes = b"",
    value: bytes = b"",
) -> bytes:
    """One response packet: header, then extras (flags for get replies), key, value."""
    body = len(extras) + len(key) + len(value)
    header = _HEADER.pack(
        MAGIC_RESPONSE, opcode, len(key), len(extras), 0, status, body, opaque, cas
    )
    # (one copy, and none for a bare header: most replies to stores, deletes and noops)
    return b"".join((header, extras, key, value)) if body else header


def error_response(opcode: int, status: int, opaque: int = 0) -> bytes:
    """The error packet memcached sends for ``status`` (its text as the body, CAS 0)."""
    return encode_response(opcode, status, opaque, 0, b"", b"", ERROR_BODIES[status])


def request_extras(req: BinaryRequest) -> bytes:
    """The extras a request with this opcode carries (the inverse of the decoders)."""
    op = req.command
    if op in (OP_SET, OP_ADD, OP_REPLACE):
        return ((req.flags << 32) | req.exptime).to_bytes(8, "big")
    if op in (OP_INCREMENT, OP_DECREMENT):
        return ((req.delta << 96) | (req.initial << 32) | req.exptime).to_bytes(20, "big")
    if op in (OP_TOUCH, OP_GAT, OP_GATK):
        return req.exptime.to_bytes(4, "big")
    if op == OP_FLUSH and req.exptime:
        return req.exptime.to_bytes(4, "big")
    return b""


def encode_request(req: BinaryRequest) -> bytes:
    """The request packet a client sends for ``req`` (tests, and clients of a binary server)."""
    extras = request_extras(req)
    key = req.key
    body = len(extras) + len(key) + len(req.value)
    return (
        _header(MAGIC_REQUEST, req.opcode, len(key), len(extras), 0, body, req.opaque, req.cas)
        + extras
        + key
        + req.value
    )


# -- the request reader -------------------------------------------------------------------------


class BinaryRequestReader:
    """Incremental, sans-I/O parser of a binary-protocol client's byte stream.

    ``feed`` returns every request completed by the new bytes, in order, with an
    :class:`ErrorReply` (a complete response packet) in place of each one memcached answers
    with an error itself; see the module docstring for the rules. After an ``ErrorReply`` with
    ``close=True`` the reader is :attr:`closed` and ignores input.
    """

    __slots__ = ("_buf", "_discard", "_discarded", "_need", "closed", "max_value")

    def __init__(self, max_value: int = 1024 * 1024) -> None:
        #: Longest value accepted; longer ones are swallowed and answered "Too large."
        self.max_value = max_value
        #: True once the reader asked for the connection to be closed.
        self.closed = False
        # Bytes of an incomplete packet, and how many must be buffered before it completes.
        self._buf = bytearray()
        self._need = 0
        # Bytes of a refused body still to drop, and the reply to emit once they are.
        self._discard = 0
        self._discarded: ErrorReply | None = None

    def buffered(self) -> int:
        """Number of bytes held for an incomplete request."""
        return len(self._buf)

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[BinaryRequest | ErrorReply]:
        """Add bytes from the client; return the requests (or error replies) now complete."""
        out: list[BinaryRequest | ErrorReply] = []
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
            data = bytes(buf)
            buf.clear()
        self._parse(data, out)
        return out

    def _close(self, out: list[BinaryRequest | ErrorReply], reply: bytes) -> None:
        self.closed = True
        self._buf.clear()
        self._need = 0
        out.append(ErrorReply(reply, close=True))

    def _parse(self, data: bytes, out: list[BinaryRequest | ErrorReply]) -> None:
        """Parse ``data`` (which starts at a packet boundary) and buffer what is left."""
        end = len(data)
        pos = 0
        rules = RULES
        while end - pos >= HEADER_SIZE:
            if data[pos] != MAGIC_REQUEST:
                self._close(out, b"")
                return
            opcode = data[pos + 1]
            keylen = (data[pos + 2] << 8) | data[pos + 3]
            extlen = data[pos + 4]
            bodylen = _u32(data, pos + 8)
            opaque = _u32(data, pos + 12)
            if keylen + extlen > bodylen:
                self._close(out, error_response(opcode, STATUS_UNKNOWN_COMMAND, opaque))
                return
            if keylen > KEY_MAX_LENGTH:
                self._close(out, error_response(opcode, STATUS_EINVAL, opaque))
                return
            stop = pos + HEADER_SIZE + bodylen
            if opcode == OP_GET and extlen == 0 and keylen > 0 and bodylen == keylen:
                # The most common request, read without the table's generic calls.
                if stop > end:
                    break
                kstart = pos + HEADER_SIZE
                out.append(
                    BinaryRequest(OP_GET, data[kstart:stop], b"", opaque, 0)
                    if _u32(data, pos + 16) == 0 and _u32(data, pos + 20) == 0
                    else BinaryRequest(OP_GET, data[kstart:stop], b"", opaque, _u64(data, pos + 16))
                )
                pos = stop
                continue
            rule = rules.get(opcode)
            if rule is not None and not rule[0](extlen, keylen, bodylen):
                self._close(out, error_response(opcode, STATUS_EINVAL, opaque))
                return
            decode = None if rule is None else rule[1]
            refused = b""
            if decode is None:
                refused = error_response(opcode, STATUS_UNKNOWN_COMMAND, opaque)
            elif rule is not None and rule[2] and bodylen - extlen - keylen > self.max_value:
                refused = error_response(opcode, STATUS_E2BIG, opaque)
            if refused:
                # Swallow the body as it streams in, then answer.
                if stop > end:
                    self._discard = stop - end
                    self._discarded = ErrorReply(refused)
                    return
                out.append(ErrorReply(refused))
                pos = stop
                continue
            if stop > end or decode is None:
                break
            body = pos + HEADER_SIZE
            kstart = body + extlen
            vstart = kstart + keylen
            out.append(
                decode(
                    opcode,
                    data[body:kstart],
                    data[kstart:vstart],
                    data[vstart:stop],
                    opaque,
                    _u64(data, pos + 16),
                )
            )
            pos = stop
        if pos < end:
            rest = end - pos
            self._need = HEADER_SIZE if rest < HEADER_SIZE else HEADER_SIZE + _u32(data, pos + 8)
            self._buf += memoryview(data)[pos:]


# -- responses (for clients and tests) ----------------------------------------------------------


class BinaryResponse:
    """One response packet, decoded."""

    __slots__ = ("cas", "extras", "key", "opaque", "opcode", "status", "value")

    def __init__(
        self,
        opcode: int,
        status: int = STATUS_SUCCESS,
        opaque: int = 0,
        cas: int = 0,
        extras: bytes = b"",
        key: bytes = b"",
        value: bytes = b"",
    ) -> None:
        self.opcode = opcode
        self.status = status
        self.opaque = opaque
        self.cas = cas
        self.extras = extras
        self.key = key
        self.value = value

    def encode(self) -> bytes:
        return encode_response(
            self.opcode, self.status, self.opaque, self.cas, self.extras, self.key, self.value
        )

    def __repr__(self) -> str:
        return (
            f"BinaryResponse(0x{self.opcode:02x}, status=0x{self.status:02x}, "
            f"opaque={self.opaque}, cas={self.cas}, extras={self.extras!r}, key={self.key!r}, "
            f"value={self.value!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BinaryResponse):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _RESPONSE_FIELDS)

    __hash__ = None  # type: ignore[assignment]


_RESPONSE_FIELDS: Final = ("cas", "extras", "key", "opaque", "opcode", "status", "value")


class BinaryResponseReader:
    """Incremental parser of response packets (a binary client's side).

    Raises:
        ValueError: on a magic byte other than 0x81.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[BinaryResponse]:
        buf = self._buf
        buf += chunk
        out: list[BinaryResponse] = []
        pos = 0
        end = len(buf)
        data = bytes(buf)
        while end - pos >= HEADER_SIZE:
            if data[pos] != MAGIC_RESPONSE:
                raise ValueError(f"bad magic 0x{data[pos]:02x} in a binary response")
            stop = pos + HEADER_SIZE + _u32(data, pos + 8)
            if stop > end:
                break
            keylen = (data[pos + 2] << 8) | data[pos + 3]
            kstart = pos + HEADER_SIZE + data[pos + 4]
            vstart = kstart + keylen
            out.append(
                BinaryResponse(
                    data[pos + 1],
                    (data[pos + 6] << 8) | data[pos + 7],
                    _u32(data, pos + 12),
                    _u64(data, pos + 16),
                    data[pos + HEADER_SIZE : kstart],
                    data[kstart:vstart],
                    data[vstart:stop],
                )
            )
            pos = stop
        del buf[:pos]
        return out
