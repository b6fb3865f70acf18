"""The classic text commands (get, set, incr, delete, flush_all...) on top of the ``Store``.

Each ``cmd_<word>(store, request, tokens, now)`` returns the exact bytes memcached 1.6 would
send (``b""`` when ``noreply`` hides them). Rules worth knowing (all checked against a real
memcached):

* Tokens come from ``mcpframe.protocol.tokens`` (spaces only, the line cut at a NUL).
* Wrong token counts answer plain ``ERROR``, before anything else is looked at. ``noreply``
  is the *last* token spelled exactly ``noreply``, and once seen it silences every reply of a
  classic command, errors included (``set k abc 0 1 noreply`` answers nothing). The
  commands read it from the tokens (the reader's rule), so ``Request.noreply`` is not
  consulted; requests the reader already refused (bad numbers, long keys, wrong counts) are
  still answered here exactly as memcached would.
* Numbers are read like C ``strto*`` (``mcpframe.protocol.numbers``): ``+5`` and ``-0``
  are fine, ``5x`` is not, and 32-bit fields wrap instead of failing.
* A too-large value answers ``SERVER_ERROR object too large for cache``; for ``set`` the
  old item under that key is dropped too, so a failed update never leaves stale data behind.

Deliberate differences from memcached (tests/cache/test_cache.py pins each one):
* An incr/decr result that fits is always written in place, space padded (the documented
  rule). memcached does that only while no unsent reply still references the item; after a
  pipelined get of the same key it builds a new item of exact length instead.
* A multiget that fails on an over-long key drops its own hits only; memcached also discards
  the unsent replies of commands pipelined before it.
"""

from __future__ import annotations

from mcpframe.cache.item import (
    CAS_SHIFT,
    FLAGS_BYTES,
    ITEM_OVERHEAD,
    Item,
)
from mcpframe.cache.store import (
    ADD,
    APPEND,
    CAS,
    DELTA_NOT_FOUND,
    DELTA_OK,
    EXISTS,
    NOT_FOUND,
    NOT_STORED,
    PREPEND,
    REPLACE,
    SET,
    STORED,
    Store,
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
    NON_NUMERIC,
    TOO_LARGE,
    VALUE_LENGTH_MAX,
)
from mcpframe.protocol.request import Request

#: The version this cache reports; the same string as ``mcpframe.MEMCACHED_VERSION``
#: (not imported: ``cache`` depends on nothing but ``protocol``; a test keeps them equal).
VERSION = b"1.6.45"

_STORE_REPLIES = {
    STORED: b"STORED\r\n",
    EXISTS: b"EXISTS\r\n",
    NOT_FOUND: b"NOT_FOUND\r\n",
    NOT_STORED: b"NOT_STORED\r\n",
}
_NOREPLY = b"noreply"


def _retrieve(store: Store, toks: list[bytes], now: int, with_cas: bool, touch: bool) -> bytes:
    if len(toks) < 2:
        return ERROR
    exptime = 0
    first = 1
    if touch:
        exp = strtol32(toks[1])
        if exp is None:
            return BAD_EXPTIME
        exptime = store.realtime(exp, now)
        first = 2
    out: list[bytes] = []
    if not touch:
        exptime = -1  # (fetch's "leave it")
    for i in range(first, len(toks)):
        key = toks[i]
        if len(key) > KEY_MAX_LENGTH:
            # memcached abandons the whole reply, hits already collected included.
            return BAD_FORMAT
        # (A method call, not a bound method kept in a local: compiled, that is a direct C
        # call where the bound method went through Python's calling convention.)
        value = store.fetch(key, now, exptime)  # (with its CRLF)
        if value is None:
            if touch:
                store.touch_cmds += 1
                store.touch_misses += 1
            else:
                store.get_cmds += 1
                store.get_misses += 1
            continue
        if touch:
            store.touch_cmds += 1
            store.touch_hits += 1
        else:
            store.get_cmds += 1
            store.get_hits += 1
        if with_cas:
            out.append(
                b"VALUE %b %d %d %d\r\n"
                % (key, store.hit_flags, len(value) - 2, store.hit_cas_bits >> CAS_SHIFT)
            )
        else:
            out.append(b"VALUE %b %d %d\r\n" % (key, store.hit_flags, len(value) - 2))
        out.append(value)
    out.append(END)
    return b"".join(out)


def cmd_get(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _retrieve(store, toks, now, False, False)


def cmd_gets(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _retrieve(store, toks, now, True, False)


def cmd_gat(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _retrieve(store, toks, now, False, True)


def cmd_gats(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _retrieve(store, toks, now, True, True)


def _update(store: Store, req: Request, toks: list[bytes], now: int, comm: int) -> bytes:
    ntok = len(toks)
    if comm == CAS:
        if ntok != 6 and ntok != 7:
            return ERROR
    elif ntok != 5 and ntok != 6:
        return ERROR
    noreply = toks[-1] == _NOREPLY
    reply = _update_reply(store, req, toks, now, comm)
    return b"" if noreply else reply


def _update_reply(store: Store, req: Request, toks: list[bytes], now: int, comm: int) -> bytes:
    key = toks[1]
    if len(key) > KEY_MAX_LENGTH:
        return BAD_FORMAT
    tok = toks[2]
    flags = 0 if tok == b"0" else strtoul32(tok)  # "0" is by far the commonest
    tok = toks[3]
    exp = 0 if tok == b"0" else strtol32(tok)
    vlen = strtol32(toks[4])
    if flags is None or exp is None or vlen is None:
        return BAD_FORMAT
    cas_in = 0
    if comm == CAS:
        c = strtoull(toks[5])
        if c is None:
            return BAD_FORMAT
        cas_in = c
    if vlen < 0 or vlen > VALUE_LENGTH_MAX:
        return BAD_FORMAT
    value = req.value
    # Only `set` drops the old item when the new one cannot be allocated.
    if value is None:  # the reader swallowed a value larger than it accepts
        store.store_too_large += 1
        if comm == SET:
            old = store.lookup(key, now)
            if old is not None:
                store.unlink(old)
        return TOO_LARGE
    size = ITEM_OVERHEAD + len(key) + vlen + 2 + (FLAGS_BYTES if flags else 0)
    if size > store.item_size_max or size > store.memory_limit:
        err = store.alloc_error(key, vlen + 2, flags, now, comm == SET)
        if err is not None:
            return err
    store.set_cmds += 1
    if len(value) != vlen + 2 or not value.endswith(b"\r\n"):
        return BAD_DATA_CHUNK
    exptime = store.realtime(exp, now)
    if comm == SET:
        store.set_blob(key, value, flags, exptime, now)
        return b"STORED\r\n"
    it = Item(key, value, flags, exptime)
    return _STORE_REPLIES[store.store_item(comm, it, cas_in, now)]


def cmd_set(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _update(store, req, toks, now, SET)


def cmd_add(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _update(store, req, toks, now, ADD)


def cmd_replace(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _update(store, req, toks, now, REPLACE)


def cmd_append(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _update(store, req, toks, now, APPEND)


def cmd_prepend(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _update(store, req, toks, now, PREPEND)


def cmd_cas(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _update(store, req, toks, now, CAS)


def _arith(store: Store, toks: list[bytes], now: int, incr: bool) -> bytes:
    if len(toks) != 3 and len(toks) != 4:
        return ERROR
    noreply = toks[-1] == _NOREPLY
    key = toks[1]
    if len(key) > KEY_MAX_LENGTH:
        reply = BAD_FORMAT
    else:
        delta = strtoull(toks[2])
        if delta is None:
            reply = BAD_DELTA
        else:
            status, _, digits = store.add_delta(key, incr, delta, now)
            if status == DELTA_OK:
                reply = digits + b"\r\n"
            elif status == DELTA_NOT_FOUND:
                if incr:
                    store.incr_misses += 1
                else:
                    store.decr_misses += 1
                reply = b"NOT_FOUND\r\n"
            else:
                reply = NON_NUMERIC
    return b"" if noreply else reply


def cmd_incr(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _arith(store, toks, now, True)


def cmd_decr(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return _arith(store, toks, now, False)


def cmd_touch(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    if len(toks) != 3 and len(toks) != 4:
        return ERROR
    noreply = toks[-1] == _NOREPLY
    key = toks[1]
    exp = strtol32(toks[2])
    if len(key) > KEY_MAX_LENGTH:
        reply = BAD_FORMAT
    elif exp is None:
        reply = BAD_EXPTIME
    else:
        store.touch_cmds += 1
        it = store.lookup(key, now)
        if it is None:
            store.touch_misses += 1
            reply = b"NOT_FOUND\r\n"
        else:
            it.exptime = store.realtime(exp, now)
            store.bump(it, now)
            store.touch_hits += 1
            reply = b"TOUCHED\r\n"
    return b"" if noreply else reply


def cmd_delete(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    ntok = len(toks)
    if ntok < 2 or ntok > 4:
        return ERROR
    noreply = False
    if ntok > 2:
        # Only the historical "delete <key> 0" hold time and "noreply" may follow the key.
        hold_is_zero = toks[2] == b"0"
        noreply = toks[-1] == _NOREPLY
        if not (
            (ntok == 3 and (hold_is_zero or noreply)) or (ntok == 4 and hold_is_zero and noreply)
        ):
            return b"" if noreply else DELETE_USAGE
    key = toks[1]
    if len(key) > KEY_MAX_LENGTH:
        reply = BAD_FORMAT
    else:
        it = store.lookup(key, now)
        if it is None:
            store.delete_misses += 1
            reply = b"NOT_FOUND\r\n"
        else:
            store.unlink(it)
            store.delete_hits += 1
            reply = b"DELETED\r\n"
    return b"" if noreply else reply


def cmd_flush_all(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    ntok = len(toks)
    if ntok < 1 or ntok > 3:
        return ERROR
    noreply = toks[-1] == _NOREPLY
    store.flush_cmds += 1
    exptime = 0
    if ntok != (2 if noreply else 1):
        exp = strtol32(toks[1])
        if exp is None:
            return b"" if noreply else BAD_EXPTIME
        exptime = exp
    store.flush(exptime, now)
    return b"" if noreply else b"OK\r\n"


def cmd_verbosity(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    if len(toks) != 2 and len(toks) != 3:
        return ERROR
    noreply = toks[-1] == _NOREPLY
    reply = b"OK\r\n" if strtoul32(toks[1]) is not None else BAD_FORMAT
    return b"" if noreply else reply


def cmd_version(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return b"VERSION " + VERSION + b"\r\n"


def cmd_mn(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    return b"MN\r\n"
