"""Binary requests as text requests, and text replies as the binary replies a client expects.

Used by the embedded cache and the proxy to serve binary-protocol clients through the text
(meta and classic) machinery: ``to_text(req)`` gives the request bytes to execute or route,
``to_binary(req, reply)`` turns that request's complete text reply into the response packets
(``b""`` when the binary client must get nothing).

Rules (the text replies are memcached 1.6.18's; the binary bytes are what memcached's own
binary path sends for the same case, frozen in tests/protocol/test_binmeta.py):

Requests (``TABLE``: opcode -> (request builder, reply translator))
  * get getq getk getkq -> ``mg <key> v f c``. The key of getk replies is taken from the
    request, not asked for with ``k``.
  * gat gatq gatk gatkq -> ``mg <key> T<exptime> v f c``; touch -> ``mg <key> T<exptime> f c``
    (no value: memcached answers ``HD f.. c..``, and binary touch replies carry the flags and
    the CAS too).
  * set -> ``ms <key> <len> F<flags> T<exptime> c``; add ``ME``, replace ``MR``; with a CAS,
    ``MS C<cas>`` whatever the opcode (memcached's binary add/replace with a CAS are a CAS
    set). append prepend -> ``ms <key> <len> MA|MP`` (+ ``C<cas>``). F and T are left out when
    0, M when it is set.
  * delete -> ``md <key>`` (+ ``C<cas>``).
  * increment decrement -> ``ma <key> [MD] D<delta> [N<exptime> J<initial>] v c`` (+
    ``C<cas>``); an exptime of 0xffffffff means "do not create": no N, no J.
  * flush -> ``flush_all [<exptime>]``; noop -> ``mn``; version -> ``version``; stat ->
    ``stats [<sub-command>]``.
  * quit quitq -> no text request (``b""``): the binary side answers alone, and the caller
    closes the connection after writing the answer (``CLOSING``).
  * Keys with a byte the text protocol cannot carry (space, control bytes, DEL) go base64
    with meta's ``b`` flag. The encoded key must fit the text limit of 250 bytes, so such keys
    longer than 186 bytes cannot be translated: ``to_text`` returns ``b""`` and
    ``to_binary(req, b"")`` answers ``Invalid arguments`` (memcached would serve them; a known
    difference). Stat sub-commands with such bytes answer ``Not found``.
  * Exptimes are unsigned in the binary protocol but read as signed 32-bit numbers in text
    (``T4294967295`` is ``T-1``: expired); values above 2**31 - 1 (absolute times after
    2038) are sent as 2**31 - 1.

Replies
  * Hits: status 0, CAS from ``c``, flags (4 bytes of extras) from ``f`` for get, gat and
    touch, the key for the K forms, the value without its CRLF; increment/decrement: the new
    value as 8 bytes big-endian, CAS from ``c``. set/append...: CAS from ``c``; delete, flush,
    noop: CAS 0. stat: one packet per ``STAT name value`` line (key = name, value = value),
    then an empty packet; ``stats detail dump``: one packet ``detailed`` holding the dump text.
  * Misses and failures, with memcached's bodies (``ERROR_BODIES``): ``EN``/``NF`` -> Not
    found (getk/gatk: the body is the key, no text); ``EX`` -> Data exists for key.; ``NS`` ->
    add: Data exists, replace: Not found, otherwise Not stored.; ``CLIENT_ERROR cannot
    increment or decrement non-numeric value`` -> Non-numeric...; ``SERVER_ERROR object too
    large for cache`` -> Too large.; ``SERVER_ERROR out of memory...`` -> Out of memory;
    ``CLIENT_ERROR flush_all not allowed`` -> Auth failure. (as binary memcached says it);
    stats ``ERROR``/``CLIENT_ERROR`` -> Not found. Other ``ERROR`` -> Unknown command, other
    ``CLIENT_ERROR`` -> Invalid arguments, other ``SERVER_ERROR <text>`` (a proxy's backend
    failure, which memcached itself never has) -> status 0x86 (temporary failure), body
    ``<text>``. A reply that cannot be read as the answer to the request (a Lua route may
    return anything) gets the same status with the body ``backend failure``; ``to_binary``
    never raises.
  * Quiet forms: getq getkq gatq gatkq drop misses (Not found); setq addq replaceq appendq
    prependq deleteq incrementq decrementq flushq drop successes; errors are always answered;
    quitq closes without a word. A batch of quiet requests ends with a noop, whose reply
    (``mn`` -> ``MN``) follows every reply before it because replies keep request order: the
    caller needs no state of its own.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable
from typing import Final

from mcpframe.protocol.binary import (
    ERROR_BODIES,
    OP_ADD,
    OP_ADDQ,
    OP_APPEND,
    OP_APPENDQ,
    OP_DECREMENT,
    OP_DECREMENTQ,
    OP_DELETE,
    OP_DELETEQ,
    OP_FLUSH,
    OP_FLUSHQ,
    OP_GAT,
    OP_GATK,
    OP_GATKQ,
    OP_GATQ,
    OP_GET,
    OP_GETK,
    OP_GETKQ,
    OP_GETQ,
    OP_INCREMENT,
    OP_INCREMENTQ,
    OP_NOOP,
    OP_PREPEND,
    OP_PREPENDQ,
    OP_QUIT,
    OP_QUITQ,
    OP_REPLACE,
    OP_REPLACEQ,
    OP_SET,
    OP_SETQ,
    OP_STAT,
    OP_TOUCH,
    OP_VERSION,
    QUIET,
    STATUS_AUTH_ERROR,
    STATUS_DELTA_BADVAL,
    STATUS_E2BIG,
    STATUS_EINVAL,
    STATUS_ENOMEM,
    STATUS_KEY_EEXISTS,
    STATUS_KEY_ENOENT,
    STATUS_NOT_STORED,
    STATUS_SUCCESS,
    STATUS_TEMPORARY_FAILURE,
    STATUS_UNKNOWN_COMMAND,
    WITH_KEY,
    BinaryRequest,
    encode_response,
)

__all__ = ["TABLE", "key_token", "to_binary", "to_text"]

KEY_MAX_LENGTH: Final = 250
EXPTIME_MAX: Final = (1 << 31) - 1
NO_CREATE: Final = 0xFFFFFFFF
CRLF: Final = b"\r\n"
BACKEND_FAILURE: Final = b"backend failure"

#: Quiet reads: their misses are dropped (the other quiet opcodes drop successes).
QUIET_READS: Final = frozenset({OP_GETQ, OP_GETKQ, OP_GATQ, OP_GATKQ})


def _b64encode(data: bytes) -> bytes:
    """Standard base64 with padding (meta's ``b`` flag). ``binascii`` is C: every key of a
    client that puts binary bytes in its keys (memcaslap ``-B`` does) comes through here."""
    return binascii.b2a_base64(data, newline=False)


def key_token(key: bytes) -> tuple[bytes, bytes]:
    """(token, flag): the key as a meta request carries it, and ``b" b"`` when the token is
    its base64 form (else ``b""``); ``(b"", b"")`` when no text request can carry it."""
    if _plain(key):
        return key, b""
    token = _b64encode(key)
    return (token, b" b") if len(token) <= KEY_MAX_LENGTH else (b"", b"")


def _plain(key: bytes) -> bool:
    """Whether a text request can carry ``key`` as it is (no space, control byte or DEL)."""
    for i in range(len(key)):
        c = key[i]
        if c <= 0x20 or c == 0x7F:
            return False
    return True


def _exptime(exptime: int) -> bytes:
    return b"%d" % (exptime if exptime <= EXPTIME_MAX else EXPTIME_MAX)


# -- text requests ------------------------------------------------------------------------------


def _r_get(req: BinaryRequest) -> bytes:
    key = req.key
    if _plain(key):  # (the usual case, built in one go)
        return b"".join((b"mg ", key, b" v f c\r\n"))
    key, b = key_token(key)
    return b"mg " + key + b" v f c" + b + CRLF if key else b""


def _r_gat(req: BinaryRequest) -> bytes:
    key, b = key_token(req.key)
    return b"mg " + key + b" T" + _exptime(req.exptime) + b" v f c" + b + CRLF if key else b""


def _r_touch(req: BinaryRequest) -> bytes:
    key, b = key_token(req.key)
    return b"mg " + key + b" T" + _exptime(req.exptime) + b" f c" + b + CRLF if key else b""


_MODES: Final[dict[int, bytes]] = {
    OP_SET: b"",
    OP_ADD: b" ME",
    OP_REPLACE: b" MR",
    OP_APPEND: b" MA",
    OP_PREPEND: b" MP",
}


def _r_store(req: BinaryRequest) -> bytes:
    key, b = key_token(req.key)
    if not key:
        return b""
    op = req.command
    line = b"ms " + key + b" %d" % len(req.value)
    if op in (OP_APPEND, OP_PREPEND):
        line += _MODES[op]
    else:
        if req.flags:
            line += b" F%d" % req.flags
        if req.exptime:
            line += b" T" + _exptime(req.exptime)
        if not req.cas:
            line += _MODES[op]
    if req.cas:
        line += b" C%d" % req.cas
    return b"".join((line, b" c", b, CRLF, req.value, CRLF))  # (one copy of the value)


def _r_delete(req: BinaryRequest) -> bytes:
    key, b = key_token(req.key)
    if not key:
        return b""
    return b"md " + key + (b" C%d" % req.cas if req.cas else b"") + b + CRLF


def _r_arith(req: BinaryRequest) -> bytes:
    key, b = key_token(req.key)
    if not key:
        return b""
    line = b"ma " + key + (b" MD" if req.command == OP_DECREMENT else b"") + b" D%d" % req.delta
    if req.exptime != NO_CREATE:
        line += b" N" + _exptime(req.exptime)
        if req.initial:
            line += b" J%d" % req.initial
    if req.cas:
        line += b" C%d" % req.cas
    return line + b" v c" + b + CRLF


def _r_flush(req: BinaryRequest) -> bytes:
    return b"flush_all " + _exptime(req.exptime) + CRLF if req.exptime else b"flush_all\r\n"


def _r_noop(req: BinaryRequest) -> bytes:
    return b"mn\r\n"


def _r_version(req: BinaryRequest) -> bytes:
    return b"version\r\n"


def _r_stat(req: BinaryRequest) -> bytes:
    key = req.key
    if not key:
        return b"stats\r\n"
    for c in key:
        if c < 0x20 or c == 0x7F:
            return b""
    return b"stats " + key + CRLF


def _r_local(req: BinaryRequest) -> bytes:
    return b""


# -- binary replies -----------------------------------------------------------------------------


def _first_line(reply: bytes) -> tuple[bytes, int]:
    """The first line of ``reply`` without its terminator, and where the next line starts."""
    nl = reply.find(b"\n")
    if nl < 0:
        return reply, len(reply)
    return (reply[: nl - 1] if nl and reply[nl - 1] == 13 else reply[:nl]), nl + 1


def _answer(
    req: BinaryRequest, status: int, cas: int = 0, extras: bytes = b"", value: bytes = b""
) -> bytes:
    """A reply packet, or nothing when the quiet form drops it."""
    op = req.opcode
    if op in QUIET:
        if op in QUIET_READS:
            if status == STATUS_KEY_ENOENT:
                return b""
        elif status == STATUS_SUCCESS:
            return b""
    key = req.key if op in WITH_KEY and status in (STATUS_SUCCESS, STATUS_KEY_ENOENT) else b""
    return encode_response(op, status, req.opaque, cas, extras, key, value)


def _fail(req: BinaryRequest, status: int) -> bytes:
    """An error reply: memcached's text for the status (a K-form miss: the key alone)."""
    if status == STATUS_KEY_ENOENT and req.opcode in WITH_KEY:
        return _answer(req, status)
    return _answer(req, status, 0, b"", ERROR_BODIES[status])


def _error(req: BinaryRequest, line: bytes) -> bytes:
    """The binary reply to an error line (``ERROR``, ``CLIENT_ERROR``, ``SERVER_ERROR``)."""
    if line.startswith(b"SERVER_ERROR"):
        text = line[13:]
        if text.startswith(b"object too large"):
            return _fail(req, STATUS_E2BIG)
        if text.lower().startswith(b"out of memory"):
            return _fail(req, STATUS_ENOMEM)
        return _answer(req, STATUS_TEMPORARY_FAILURE, 0, b"", text)
    if line.startswith(b"CLIENT_ERROR"):
        if line.startswith(b"CLIENT_ERROR cannot increment or decrement"):
            return _fail(req, STATUS_DELTA_BADVAL)
        if line.startswith(b"CLIENT_ERROR flush_all not allowed"):
            return _fail(req, STATUS_AUTH_ERROR)
        return _fail(req, STATUS_EINVAL)
    if not line:  # no text request could be made (see key_token)
        return _fail(req, STATUS_EINVAL)
    return _fail(req, STATUS_UNKNOWN_COMMAND)


#: Meta status word -> binary status, for the codes every command shares.
_META_FAILURES: Final[dict[bytes, int]] = {
    b"EN": STATUS_KEY_ENOENT,
    b"NF": STATUS_KEY_ENOENT,
    b"EX": STATUS_KEY_EEXISTS,
    b"NS": STATUS_NOT_STORED,
}


def _meta_flags(tokens: list[bytes], first: int) -> tuple[int, int]:
    """(flags, cas) from the ``f`` and ``c`` return flags of a meta reply line."""
    flags = cas = 0
    for i in range(first, len(tokens)):
        t = tokens[i]
        if not t:
            continue
        c = t[0]
        if c == 102:  # f
            flags = int(t[1:])
        elif c == 99:  # c
            cas = int(t[1:])
            if not 0 <= cas < 1 << 64:
                raise ValueError("CAS out of range")
    return flags, cas


#: A get hit's header and flags, packed at once (see ``_va_hit``).
_HIT: Final = struct.Struct(">BBHBBHIIQI")


def _va_hit(req: BinaryRequest, reply: bytes) -> bytes:
    """The reply to a hit answered ``VA <size> [f<flags>] [c<cas>]`` (what ``to_text``
    asks for, in that order), read byte by byte; ``b""`` for any other reply (the general
    reader in ``_b_get`` then takes it). The common case of every get, kept cheap."""
    n = len(reply)
    if n < 5 or reply[0] != 86 or reply[1] != 65 or reply[2] != 32:  # "VA "
        return b""
    i = 3
    size = 0
    while i < n and 48 <= reply[i] <= 57:
        size = size * 10 + reply[i] - 48
        i += 1
    if i == 3:
        return b""
    flags = cas = 0
    while i < n and reply[i] == 32:
        if i + 2 >= n:
            return b""
        which = reply[i + 1]
        i += 2
        first = i
        v = 0
        while i < n and 48 <= reply[i] <= 57:
            v = v * 10 + reply[i] - 48
            i += 1
        if i == first:
            return b""
        if which == 102:  # f
            flags = v
        elif which == 99:  # c
            cas = v
        else:
            return b""
    if i + 2 + size + 2 > n or reply[i] != 13 or reply[i + 1] != 10:
        return b""
    if flags >= 1 << 32 or cas >= 1 << 64:
        return b""
    op = req.opcode
    key = req.key if op in WITH_KEY else b""
    start = i + 2
    header = _HIT.pack(0x81, op, len(key), 4, 0, 0, 4 + len(key) + size, req.opaque, cas, flags)
    return b"".join((header, key, reply[start : start + size]))


def _b_get(req: BinaryRequest, reply: bytes) -> bytes:
    hit = _va_hit(req, reply)
    if hit:
        return hit
    line, start = _first_line(reply)
    tokens = line.split(b" ")
    word = tokens[0]
    if word == b"VA":
        size = int(tokens[1])
        flags, cas = _meta_flags(tokens, 2)
        value = reply[start : start + size]
        return _answer(req, STATUS_SUCCESS, cas, flags.to_bytes(4, "big"), value)
    if word == b"HD":  # touch
        flags, cas = _meta_flags(tokens, 1)
        return _answer(req, STATUS_SUCCESS, cas, flags.to_bytes(4, "big"))
    status = _META_FAILURES.get(word)
    return _error(req, line) if status is None else _fail(req, status)


def _hd_cas(reply: bytes) -> int:
    """The CAS of a reply that is exactly ``HD c<cas>\\r\\n`` (what ``to_text`` asks a store
    for), read byte by byte; -1 for any other reply (``_b_store`` reads those in full)."""
    n = len(reply)
    if n < 7 or reply[0] != 72 or reply[1] != 68 or reply[2] != 32 or reply[3] != 99:
        return -1
    i = 4
    cas = 0
    while i < n and 48 <= reply[i] <= 57:
        cas = cas * 10 + reply[i] - 48
        i += 1
    if i == 4 or i + 2 != n or reply[i] != 13 or reply[i + 1] != 10 or cas >= 1 << 64:
        return -1
    return cas


def _b_store(req: BinaryRequest, reply: bytes) -> bytes:
    cas = _hd_cas(reply)
    if cas >= 0:
        return _answer(req, STATUS_SUCCESS, cas)
    line, _ = _first_line(reply)
    tokens = line.split(b" ")
    word = tokens[0]
    if word == b"HD":
        return _answer(req, STATUS_SUCCESS, _meta_flags(tokens, 1)[1])
    status = _META_FAILURES.get(word)
    if status is None:
        return _error(req, line)
    if status == STATUS_NOT_STORED and not req.cas:
        # memcached's binary add/replace report a refusal as the reason for it.
        op = req.command
        if op == OP_ADD:
            status = STATUS_KEY_EEXISTS
        elif op == OP_REPLACE:
            status = STATUS_KEY_ENOENT
    return _fail(req, status)


def _b_arith(req: BinaryRequest, reply: bytes) -> bytes:
    line, start = _first_line(reply)
    tokens = line.split(b" ")
    if tokens[0] == b"VA":
        value = int(reply[start : start + int(tokens[1])])
        cas = _meta_flags(tokens, 2)[1]
        return _answer(req, STATUS_SUCCESS, cas, b"", value.to_bytes(8, "big"))
    status = _META_FAILURES.get(tokens[0])
    return _error(req, line) if status is None else _fail(req, status)


def _b_done(req: BinaryRequest, reply: bytes) -> bytes:
    """Replies that are a bare success word (md ``HD``, flush_all ``OK``, mn ``MN``)."""
    line, _ = _first_line(reply)
    if line in (b"HD", b"OK", b"MN"):
        return _answer(req, STATUS_SUCCESS)
    status = _META_FAILURES.get(line[:2]) if len(line) == 2 else None
    return _error(req, line) if status is None else _fail(req, status)


def _b_version(req: BinaryRequest, reply: bytes) -> bytes:
    line, _ = _first_line(reply)
    if line.startswith(b"VERSION "):
        return _answer(req, STATUS_SUCCESS, 0, b"", line[8:])
    return _error(req, line)


def _b_stat(req: BinaryRequest, reply: bytes) -> bytes:
    op, opaque = req.opcode, req.opaque
    end = encode_response(op, STATUS_SUCCESS, opaque)
    if req.key.startswith(b"detail dump") and reply.endswith(b"END\r\n"):
        return encode_response(op, STATUS_SUCCESS, opaque, 0, b"", b"detailed", reply) + end
    out = bytearray()
    for line in reply.split(CRLF):
        if line.startswith(b"STAT "):
            sp = line.find(b" ", 5)
            name, value = (line[5:], b"") if sp < 0 else (line[5:sp], line[sp + 1 :])
            out += encode_response(op, STATUS_SUCCESS, opaque, 0, b"", name, value)
        elif line in (b"END", b"RESET", b"OK"):
            return bytes(out) + end
        elif line:
            break
    return _fail(req, STATUS_KEY_ENOENT)


def _b_quit(req: BinaryRequest, reply: bytes) -> bytes:
    return _answer(req, STATUS_SUCCESS)


Translate = tuple[Callable[[BinaryRequest], bytes], Callable[[BinaryRequest, bytes], bytes]]

#: opcode -> (text request builder, reply translator), for every opcode the binary reader
#: emits (the ones memcached serves).
TABLE: Final[dict[int, Translate]] = {
    OP_GET: (_r_get, _b_get),
    OP_GETQ: (_r_get, _b_get),
    OP_GETK: (_r_get, _b_get),
    OP_GETKQ: (_r_get, _b_get),
    OP_GAT: (_r_gat, _b_get),
    OP_GATQ: (_r_gat, _b_get),
    OP_GATK: (_r_gat, _b_get),
    OP_GATKQ: (_r_gat, _b_get),
    OP_TOUCH: (_r_touch, _b_get),
    OP_SET: (_r_store, _b_store),
    OP_SETQ: (_r_store, _b_store),
    OP_ADD: (_r_store, _b_store),
    OP_ADDQ: (_r_store, _b_store),
    OP_REPLACE: (_r_store, _b_store),
    OP_REPLACEQ: (_r_store, _b_store),
    OP_APPEND: (_r_store, _b_store),
    OP_APPENDQ: (_r_store, _b_store),
    OP_PREPEND: (_r_store, _b_store),
    OP_PREPENDQ: (_r_store, _b_store),
    OP_DELETE: (_r_delete, _b_done),
    OP_DELETEQ: (_r_delete, _b_done),
    OP_INCREMENT: (_r_arith, _b_arith),
    OP_INCREMENTQ: (_r_arith, _b_arith),
    OP_DECREMENT: (_r_arith, _b_arith),
    OP_DECREMENTQ: (_r_arith, _b_arith),
    OP_FLUSH: (_r_flush, _b_done),
    OP_FLUSHQ: (_r_flush, _b_done),
    OP_NOOP: (_r_noop, _b_done),
    OP_VERSION: (_r_version, _b_version),
    OP_STAT: (_r_stat, _b_stat),
    OP_QUIT: (_r_local, _b_quit),
    OP_QUITQ: (_r_local, _b_quit),
}


def to_text(req: BinaryRequest) -> bytes:
    """The text request (meta, or classic where meta has none) equivalent to ``req``, data
    block included; ``b""`` when there is none to make: answer with ``to_binary(req, b"")``
    at once (then, for ``CLOSING`` opcodes, close the connection)."""
    op = req.opcode
    # The opcodes of nearly every request, called directly (a table entry is a generic call).
    if op in (OP_GET, OP_GETK, OP_GETQ, OP_GETKQ):
        return _r_get(req)
    if op in (OP_SET, OP_SETQ):
        return _r_store(req)
    return TABLE[op][0](req)


def to_binary(req: BinaryRequest, reply: bytes) -> bytes:
    """The binary reply to ``req`` given the complete text reply to ``to_text(req)``: zero,
    one or (stat) several packets."""
    op = req.opcode
    if not reply and op not in (OP_QUIT, OP_QUITQ, OP_STAT):
        return _error(req, b"")
    try:
        if op in (OP_GET, OP_GETK, OP_GETQ, OP_GETKQ):
            return _b_get(req, reply)  # (called directly, as in to_text)
        if op in (OP_SET, OP_SETQ):
            return _b_store(req, reply)
        return TABLE[op][1](req, reply)
    except (ValueError, IndexError, OverflowError, struct.error):
        # A reply that is not what the request asks for (a Lua route may return any string):
        # answered like the text proxy's own "SERVER_ERROR backend failure".
        return _answer(req, STATUS_TEMPORARY_FAILURE, 0, b"", BACKEND_FAILURE)
