"""The one tokeniser of memcached request lines: the reader, the cache and ``Request`` use it.

memcached's rules (``tokenize_command`` in proto_text.c; each one replayed against a real
memcached 1.6 in tests/protocol/test_tokens.py):

* A line ends at its ``\\n``; one ``\\r`` right before it belongs to the terminator (a bare
  ``\\n`` is accepted, as plain memcached does).
* The content stops at the first NUL: memcached reads the line as a C string, so
  ``stats\\0junk`` is ``stats`` and ``get k\\0 x`` asks for ``k`` alone.
* Tokens are separated by runs of the space byte (0x20) only. A tab, like any other byte,
  belongs to its token: ``stats\\tsettings`` is one (unknown) word, ``get k\\t1`` asks for the
  key ``k\\t1``. Leading and trailing spaces are ignored; a line of spaces has no token.
* memcached's token table has :data:`MAX_TOKENS` entries, the last one an empty terminal
  token: it splits off at most 23 tokens and leaves the rest of the line unread. Only a
  command that looks at every token notices (``watch`` checks 22 stream names and ignores
  any after them). ``get``/``gets``/``gat``/``gats`` read the rest as more keys, and every
  other command refuses a line with that many tokens (meta commands from 20 on, classic ones
  from 8 on), so the reader and the cache split without the cap (``max_tokens=0``).
"""

from __future__ import annotations

from typing import Final

#: memcached's token table (``MAX_TOKENS`` in proto_text.h), its terminal token included.
MAX_TOKENS: Final = 24


def content(line: bytes) -> bytes:
    """A request line without its terminator (``\\r\\n`` or ``\\n``), cut at its first NUL."""
    if line[-1:] == b"\n":
        line = line[:-2] if line[-2:-1] == b"\r" else line[:-1]
    if 0 in line:  # b"\0" (an int test is a plain memchr)
        line = line[: line.index(b"\0")]
    return line


def split(text: bytes, max_tokens: int = 0) -> list[bytes]:
    """The tokens of a line's content (terminator already removed), command word first.

    The text is cut at its first NUL. With ``max_tokens`` (memcached's table size, the
    terminal token included) at most ``max_tokens - 1`` tokens are returned.
    """
    if 0 in text:
        text = text[: text.index(b"\0")]
    tokens = text.split(b" ")
    if b"" in tokens:  # leading, trailing or repeated spaces
        tokens = [t for t in tokens if t]
    if max_tokens and len(tokens) >= max_tokens:
        del tokens[max_tokens - 1 :]
    return tokens


def tokenize(line: bytes, max_tokens: int = 0) -> list[bytes]:
    """The tokens of a request line (terminator included), command word first."""
    return split(content(line), max_tokens)
