"""The parsed client request, as every layer sees it.

A request keeps the client's raw bytes (``line`` and ``value``) so the proxy can forward
them untouched; the other fields are what routing needs, computed once by the parser.
"""

from __future__ import annotations

from mcpframe.protocol.tokens import MAX_TOKENS, tokenize


class Request:
    """One parsed client request.

    Attributes:
        cmd: the ``CMD_*`` code (``mcpframe.protocol.commands``).
        line: the request line exactly as received, terminator (``\\r\\n`` or ``\\n``) included.
        key: the key bytes (the first key of a multiget); ``b""`` for keyless commands.
        value: the data block *including* its trailing ``\\r\\n`` for storage commands
            (set/add/replace/append/prepend/cas/ms); ``None`` for every other command, and
            also for a storage command whose value was larger than the reader's
            ``max_value`` (the reader swallowed those bytes; answer
            ``SERVER_ERROR object too large for cache``).
        noreply: classic ``noreply`` (storage, incr/decr, touch, delete) or meta ``q`` flag.
        multiget: a get/gets/gat/gats line with more than one key.
    """

    __slots__ = ("cmd", "key", "line", "multiget", "noreply", "value")

    def __init__(
        self,
        cmd: int,
        line: bytes,
        key: bytes = b"",
        value: bytes | None = None,
        noreply: bool = False,
        multiget: bool = False,
    ) -> None:
        self.cmd = cmd
        self.line = line
        self.key = key
        self.value = value
        self.noreply = noreply
        self.multiget = multiget

    def tokens(self) -> list[bytes]:
        """The line's tokens as memcached's tokeniser sees them, command word first: at most
        23, split at spaces only, the line cut at a NUL (``mcpframe.protocol.tokens``)."""
        return tokenize(self.line, MAX_TOKENS)

    def __repr__(self) -> str:
        extra = f", value={len(self.value)}B" if self.value is not None else ""
        return f"Request({self.line!r}{extra})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (
            self.cmd == other.cmd
            and self.line == other.line
            and self.key == other.key
            and self.value == other.value
            and self.noreply == other.noreply
            and self.multiget == other.multiget
        )

    __hash__ = None  # type: ignore[assignment]


class ErrorReply:
    """A reply the parser produced in place of a request (bad line, bad data chunk...).

    ``close`` asks the server to close the connection after writing ``reply`` (``reply``
    may be empty: memcached closes some connections without a word).
    """

    __slots__ = ("close", "reply")

    def __init__(self, reply: bytes, close: bool = False) -> None:
        self.reply = reply
        self.close = close

    def __repr__(self) -> str:
        return f"ErrorReply({self.reply!r}, close={self.close})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ErrorReply):
            return NotImplemented
        return self.reply == other.reply and self.close == other.close

    __hash__ = None  # type: ignore[assignment]
