"""The meta commands (mg, ms, md, ma, me) on top of the ``Store`` (``mcpframe.cache.store``).

Behaviour follows memcached 1.6's text protocol handler, checked against a real server:

* Flags are single bytes, each allowed once (``CLIENT_ERROR duplicate flag``; bytes >= 127
  count as duplicates). An unknown flag stops parsing at once (``CLIENT_ERROR invalid flag``);
  a bad number only marks the request failed and parsing goes on, so a later unknown or
  duplicate flag wins, otherwise the *last* numeric error text is sent. A bad ``F`` number
  keeps whatever text was already chosen (``bad command line format`` by default). md and ma
  replace every flag error with ``CLIENT_ERROR invalid or duplicate flag``.
* Returned flags follow the request's flag order; ``T`` is applied where it stands, so
  ``mg k t T60`` reports the old TTL and ``mg k T60 t`` the new one.
* ``q`` hides the nominal reply only: mg's ``EN``, and ``HD`` of ms/md/ma (mg's own hits, and
  NS/EX/NF everywhere, are still sent; an ma that vivified shows ``HD`` even with ``q``).
  Errors are never hidden.
* ``b`` decodes the key from base64 (memcached's lenient decoder, see ``keycodec``). An item
  stored that way remembers it: ``k`` echoes its key re-encoded and followed by `` b``.
* Win tokens (stampede protection): ``N`` vivifies a miss as an empty item and wins; ``R``
  wins when the TTL left is below its argument; a stale item (``md k I``) makes the first
  reader win. The winner gets ``W``, later readers ``Z`` (and ``X`` while stale).

Deliberate differences from 1.6.18/1.6.20, all choosing the intended behaviour:
* an over-long opaque (``O`` token over 32 bytes) is refused before anything changes (memcached
  checks it while writing the reply, after ma already counted or mg already touched);
* ``ms`` echoes ``s<size>`` and, with ``N``, lets append/prepend create the missing item
  (1.6.20's documented behaviour, absent from 1.6.18);
* ``T`` on an ma whose result no longer fits in place updates the new item (memcached updates
  the replaced one, so the TTL was lost);
* ``me`` reports ``exp=`` as the seconds left (1.6.20 prints it negated);
* an item rebuilt by append/prepend or by an incr that outgrew it keeps its base64-key mark
  (memcached's rebuilt item forgets it, so ``k`` would then echo the raw key).
"""

from __future__ import annotations

from mcpframe.cache.item import BINARY, BITS, CAS_SHIFT, FETCHED, STALE, WIN, Item
from mcpframe.cache.keycodec import b64decode_key, b64encode_key
from mcpframe.cache.store import (
    ADD,
    APPEND,
    APPEND_VIVIFY,
    CAS,
    DELTA_CAS_MISMATCH,
    DELTA_NOT_FOUND,
    DELTA_OK,
    EXISTS,
    NOT_FOUND,
    PREPEND,
    PREPEND_VIVIFY,
    REPLACE,
    SET,
    STORED,
    Store,
)
from mcpframe.protocol.numbers import strtol32, strtoul32, strtoull
from mcpframe.protocol.replies import (
    BAD_DATA_CHUNK,
    BAD_DELTA_VALUE,
    BAD_FORMAT,
    BAD_INITIAL_VALUE,
    BAD_M_TOKEN,
    BAD_TOKEN,
    DECODE_ERROR,
    DUPLICATE_FLAG,
    ERROR,
    INVALID_FLAG,
    INVALID_OR_DUPLICATE,
    KEY_MAX_LENGTH,
    MA_BAD_MODE,
    META_TOKENS_MAX,
    META_TOO_LONG,
    MG_TOO_LONG,
    MS_BAD_MODE,
    NON_NUMERIC,
    OPAQUE_MAX_LENGTH,
    OPAQUE_TOO_LONG,
    TOO_LARGE,
    VALUE_LENGTH_MAX,
)
from mcpframe.protocol.request import Request

_b, _c, _f, _h, _k, _l, _q, _s, _t, _u, _v = b"bcfhklqstuv"
_C, _D, _F, _I, _J, _L, _M, _N, _O, _P, _R, _T = b"CDFIJLMNOPRT"

_CODES = {STORED: b"HD", EXISTS: b"EX", NOT_FOUND: b"NF"}


class MetaFlags:
    """What a meta request's flags ask for (memcached's ``_meta_flags``)."""

    __slots__ = (
        "autoviv_exptime",
        "client_flags",
        "delta",
        "exptime",
        "has_cas",
        "initial",
        "key",
        "key_binary",
        "mode",
        "new_ttl",
        "no_reply",
        "no_update",
        "recache_time",
        "req_cas_id",
        "set_stale",
        "value",
        "vivify",
    )

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.key_binary = False
        self.value = False
        self.no_update = False
        self.no_reply = False
        self.vivify = False
        self.set_stale = False
        self.has_cas = False
        self.new_ttl = False
        self.mode = 0
        self.exptime = 0
        self.autoviv_exptime = 0
        self.recache_time = 0
        self.client_flags = 0
        self.req_cas_id = 0
        self.delta = 1
        self.initial = 0


def parse_flags(
    store: Store, toks: list[bytes], start: int, now: int
) -> tuple[MetaFlags, bytes | None]:
    """Read the flags from ``toks[start:]``; return them and the error line, if any."""
    f = MetaFlags(toks[1])
    err = BAD_FORMAT
    failed = False
    seen = 0
    for i in range(start, len(toks)):
        tok = toks[i]
        o = tok[0]
        bit = 1 << o
        if o >= 127 or seen & bit:
            return f, DUPLICATE_FLAG
        seen |= bit
        if o == _v:
            f.value = True
        elif o in (_k, _c, _t, _f, _s, _O, _l, _h, _P, _L):
            pass  # output-only flags (l and h are read before the LRU bump)
        elif o == _q:
            f.no_reply = True
        elif o in (_T, _N, _R):
            n = strtol32(tok[1:])
            if n is None:
                err = BAD_TOKEN
                failed = True
            elif o == _T:
                f.exptime = store.realtime(n, now)
                f.new_ttl = True
            elif o == _N:
                f.vivify = True
                f.autoviv_exptime = store.realtime(n, now)
            else:
                f.recache_time = store.realtime(n, now)
        elif o == _b:
            key = b64decode_key(f.key)
            f.key_binary = True
            if key is None:
                err = DECODE_ERROR
                failed = True
            else:
                f.key = key
        elif o == _u:
            f.no_update = True
        elif o == _F:
            flags = strtoul32(tok[1:])
            if flags is None:
                failed = True  # memcached sets no text of its own for a bad F
            else:
                f.client_flags = flags
        elif o == _C:
            cas = strtoull(tok[1:])
            if cas is None:
                err = BAD_TOKEN
                failed = True
            else:
                f.has_cas = True
                f.req_cas_id = cas
        elif o == _M:
            if len(tok) != 2:
                err = BAD_M_TOKEN
                failed = True
            else:
                f.mode = tok[1]
        elif o == _I:
            f.set_stale = True
        elif o == _D:
            delta = strtoull(tok[1:])
            if delta is None:
                err = BAD_DELTA_VALUE
                failed = True
            else:
                f.delta = delta
        elif o == _J:
            initial = strtoull(tok[1:])
            if initial is None:
                err = BAD_INITIAL_VALUE
                failed = True
            else:
                f.initial = initial
        else:
            return f, INVALID_FLAG
    return f, err if failed else None


def _opaque_too_long(toks: list[bytes], start: int) -> bool:
    for i in range(start, len(toks)):
        tok = toks[i]
        if tok[0] == _O and len(tok) > OPAQUE_MAX_LENGTH:
            return True
    return False


def _key_flag(key: bytes, binary: bool) -> bytes:
    if binary:
        return b" k" + b64encode_key(key) + b" b"
    return b" k" + key


def _ttl_flag(exptime: int, now: int) -> bytes:
    if exptime == 0:
        return b" t-1"
    return b" t%d" % ((exptime - now) & 0xFFFFFFFF)


def _echo(out: list[bytes], toks: list[bytes], start: int, key: bytes, binary: bool) -> bytes:
    """Finish a reply line that only echoes the opaque and the key."""
    for i in range(start, len(toks)):
        tok = toks[i]
        o = tok[0]
        if o == _O:
            out.append(b" " + tok)
        elif o == _k:
            out.append(_key_flag(key, binary))
    out.append(b"\r\n")
    return b"".join(out)


def mg(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    """Meta get: ``mg <key> <flags>*``."""
    if len(toks) < 2:
        return ERROR
    if len(toks[1]) > KEY_MAX_LENGTH:
        return BAD_FORMAT
    if len(toks) + 1 > META_TOKENS_MAX:
        return MG_TOO_LONG
    f, err = parse_flags(store, toks, 2, now)
    if err is not None:
        return err
    key = f.key
    if _opaque_too_long(toks, 2):
        # memcached notices this while writing the reply, after counting a miss (but before
        # counting a hit); keep the counters in step without changing anything else.
        if store.peek(key) is None:
            store.get_cmds += 1
            store.get_misses += 1
        return OPAQUE_TOO_LONG
    it = store.lookup(key, now)
    created = False
    if it is None and f.vivify:
        # An empty placeholder: this client wins the right to fill it, later ones see Z.
        it = Item(key, b"\r\n", 0, 0)
        store.link_item(it, now)
        created = True
    if it is None:
        store.get_cmds += 1
        store.get_misses += 1
        if f.no_reply:
            return b""
        return _echo([b"EN"], toks, 2, key, f.key_binary)

    won = False
    ttl_set = False
    out = [b"VA %d" % (len(it.value) - 2) if f.value else b"HD"]
    for i in range(2, len(toks)):
        tok = toks[i]
        o = tok[0]
        if o in (_v, _q, _u, _b, _P, _L):
            continue
        if o == _k:
            out.append(_key_flag(it.key, bool(it.cas_bits & BINARY)))
        elif o == _c:
            out.append(b" c%d" % it.cas)
        elif o == _f:
            out.append(b" f%d" % it.flags)
        elif o == _t:
            out.append(_ttl_flag(it.exptime, now))
        elif o == _s:
            out.append(b" s%d" % (len(it.value) - 2))
        elif o == _O:
            out.append(b" " + tok)
        elif o == _T:
            it.exptime = f.exptime
            ttl_set = True
        elif o == _N:
            if created:
                it.exptime = f.autoviv_exptime
                won = True
        elif o == _R:
            # Recache: the first reader to see the TTL drop below R gets to refresh it.
            if (
                not it.cas_bits & WIN
                and not created
                and it.exptime != 0
                and it.exptime < f.recache_time
            ):
                won = True
        elif o == _l:
            out.append(b" l%d" % ((now - it.time) & 0xFFFFFFFF))
        elif o == _h:
            out.append(b" h1" if it.cas_bits & FETCHED else b" h0")
    # Z before W so a client never sees both (memcached's order).
    bits = it.cas_bits
    if bits & WIN:
        out.append(b" Z")
    if bits & STALE:
        out.append(b" X")
        if not bits & WIN:
            won = True
    if won:
        out.append(b" W")
        it.cas_bits |= WIN
    out.append(b"\r\n")
    if f.value:
        out.append(it.value)
    if not f.no_update:
        store.bump(it, now)  # (which writes back the TTL and win token set above)
    elif ttl_set or won or created:
        store.save(it)
    if ttl_set:
        store.touch_cmds += 1
        store.touch_hits += 1
    else:
        store.get_cmds += 1
        store.get_hits += 1
    return b"".join(out)


_MS_MODES = {
    0: SET,
    ord("S"): SET,
    ord("E"): ADD,
    ord("A"): APPEND,
    ord("P"): PREPEND,
    ord("R"): REPLACE,
}


def ms(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    """Meta set: ``ms <key> <datalen> <flags>*`` and a data block."""
    if len(toks) < 2:
        return ERROR
    key = toks[1]
    if len(key) > KEY_MAX_LENGTH or len(toks) == 2:
        return BAD_FORMAT
    if len(toks) + 1 > META_TOKENS_MAX:
        return META_TOO_LONG
    vlen = strtol32(toks[2])
    if vlen is None or vlen < 0 or vlen > VALUE_LENGTH_MAX:
        return BAD_FORMAT
    f, err = parse_flags(store, toks, 3, now)
    if err is not None:
        return err
    if _opaque_too_long(toks, 3):
        return OPAQUE_TOO_LONG
    comm = _MS_MODES.get(f.mode)
    if comm is None:
        return MS_BAD_MODE
    exptime = f.exptime
    if f.vivify and (comm in (APPEND, PREPEND)):
        comm = APPEND_VIVIFY if comm == APPEND else PREPEND_VIVIFY
        exptime = f.autoviv_exptime
    # A CAS turns set and replace into compare-and-swap (replace + CAS is just CAS).
    if f.has_cas and (comm in (SET, REPLACE)):
        comm = CAS
    key = f.key
    value = req.value
    # Errors of ms are never hidden by q, and a failed store drops the old item in every mode.
    if value is None:
        store.store_too_large += 1
        old = store.lookup(key, now)
        if old is not None:
            store.unlink(old)
        return TOO_LARGE
    alloc_err = store.alloc_error(key, vlen + 2, f.client_flags, now, True)
    if alloc_err is not None:
        return alloc_err
    store.set_cmds += 1
    if len(value) != vlen + 2 or not value.endswith(b"\r\n"):
        return BAD_DATA_CHUNK
    flags = f.client_flags
    it = Item(key, value, flags, exptime, BINARY if f.key_binary else 0)
    status = store.store_item(comm, it, f.req_cas_id, now, f.set_stale and comm == CAS)
    if status == STORED:
        if f.no_reply:
            return b""
        stored = store.peek(key)
        cas = stored.cas if stored is not None else 0
        size = len(stored.value) - 2 if stored is not None else vlen
    else:
        cas = 0
        size = vlen
    out = [_CODES.get(status, b"NS")]
    for i in range(3, len(toks)):
        tok = toks[i]
        o = tok[0]
        if o == _O:
            out.append(b" " + tok)
        elif o == _k:
            out.append(_key_flag(key, f.key_binary))
        elif o == _c:
            out.append(b" c%d" % cas)
        elif o == _s:
            out.append(b" s%d" % size)
    out.append(b"\r\n")
    return b"".join(out)


def md(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    """Meta delete: ``md <key> <flags>*``; with ``I`` the item is marked stale instead."""
    if len(toks) < 2:
        return ERROR
    if len(toks[1]) > KEY_MAX_LENGTH:
        return BAD_FORMAT
    if len(toks) + 1 > META_TOKENS_MAX:
        return META_TOO_LONG
    f, err = parse_flags(store, toks, 2, now)
    if err is not None:
        return INVALID_OR_DUPLICATE
    if _opaque_too_long(toks, 2):
        return OPAQUE_TOO_LONG
    key = f.key
    it = store.lookup(key, now)
    if it is None:
        store.delete_misses += 1
        code = b"NF"
    elif f.has_cas and it.cas != f.req_cas_id:
        store.delete_misses += 1
        code = b"EX"
    else:
        if f.set_stale:
            # Invalidate: keep serving the old value, flagged stale, and let the next
            # reader win the right to recompute it.
            if f.new_ttl:
                it.exptime = f.exptime
            bits = (it.cas_bits | STALE) & (BITS ^ WIN)
            it.cas_bits = store.next_cas() << CAS_SHIFT | bits
            store.save(it)
        else:
            store.unlink(it)
            store.delete_hits += 1
        if f.no_reply:
            return b""
        code = b"HD"
    return _echo([code], toks, 2, key, f.key_binary)


def ma(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    """Meta arithmetic: ``ma <key> <flags>*`` (incr by ``D``, default 1; ``MD`` decrements)."""
    if len(toks) < 2:
        return ERROR
    if len(toks[1]) > KEY_MAX_LENGTH:
        return BAD_FORMAT
    if len(toks) + 1 > META_TOKENS_MAX:
        return META_TOO_LONG
    f, err = parse_flags(store, toks, 2, now)
    if err is not None:
        return INVALID_OR_DUPLICATE
    mode = f.mode
    if mode == 0 or mode == ord("I") or mode == ord("+"):
        incr = True
    elif mode == ord("D") or mode == ord("-"):
        incr = False
    else:
        return MA_BAD_MODE
    if _opaque_too_long(toks, 2):
        return OPAQUE_TOO_LONG
    key = f.key
    status, it, digits = store.add_delta(key, incr, f.delta, now, f.req_cas_id)
    created = False
    if status == DELTA_OK:
        if f.no_reply:
            return b""
    elif status == DELTA_NOT_FOUND:
        if f.vivify:
            digits = b"%d" % f.initial
            it = Item(key, digits + b"\r\n", 0, 0)
            store.store_item(ADD, it, 0, now)
            created = True
        else:
            if incr:
                store.incr_misses += 1
            else:
                store.decr_misses += 1
            return _echo([b"NF"], toks, 2, key, f.key_binary)
    elif status == DELTA_CAS_MISMATCH:
        return _echo([b"EX"], toks, 2, key, f.key_binary)
    else:
        return NON_NUMERIC
    assert it is not None
    exptime = it.exptime
    out = [b"VA %d" % len(digits) if f.value else b"HD"]
    for i in range(2, len(toks)):
        tok = toks[i]
        o = tok[0]
        if o == _c:
            out.append(b" c%d" % it.cas)
        elif o == _t:
            out.append(_ttl_flag(it.exptime, now))
        elif o == _T:
            it.exptime = f.exptime
        elif o == _N:
            if created:
                it.exptime = f.autoviv_exptime
        elif o == _O:
            out.append(b" " + tok)
        elif o == _k:
            out.append(_key_flag(key, f.key_binary))
    if it.exptime != exptime:
        store.save(it)
    if f.value:
        out.append(b"\r\n")
        out.append(digits)
    out.append(b"\r\n")
    return b"".join(out)


def me(store: Store, req: Request, toks: list[bytes], now: int) -> bytes:
    """Meta debug: ``me <key> [b]``, the item's internals as memcached prints them."""
    if len(toks) < 2 or len(toks[1]) > KEY_MAX_LENGTH:
        return BAD_FORMAT
    key = toks[1]
    if len(toks) >= 3 and toks[2] == b"b":
        decoded = b64decode_key(key)
        if decoded is None:
            return BAD_FORMAT
        key = decoded
    it = store.lookup(key, now)
    store.meta_cmds += 1
    if it is None:
        return b"EN\r\n"
    shown = b64encode_key(it.key) if it.cas_bits & BINARY else it.key
    return b"ME %b exp=%d la=%d cas=%d fetch=%b cls=%d size=%d\r\n" % (
        shown,
        -1 if it.exptime == 0 else it.exptime - now,
        now - it.time,
        it.cas,
        b"yes" if it.cas_bits & FETCHED else b"no",
        store.slab_class(it.size),
        it.size,
    )
