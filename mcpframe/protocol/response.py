"""A parsed backend (or internal cache) response, as the proxy forwards it."""

from __future__ import annotations

from typing import Final

from mcpframe.protocol.commands import STATUS_FAILED, STATUS_OK

BACKEND_FAILURE: Final = b"SERVER_ERROR backend failure\r\n"


class Response:
    """One complete response.

    Attributes:
        type: the response type number (``RES_*`` in ``commands``; 0 when nothing parsed).
        code: the ``MCMC_CODE_*`` value (``res:code()``).
        status: ``STATUS_OK`` (0) or ``STATUS_FAILED`` (-1) (``res:ok()``).
        raw: the bytes a client receives for it: the line, plus the data block and, for a
            classic get hit, the ``END\\r\\n``. For a backend failure or an unknown meta code
            it is ``SERVER_ERROR backend failure\\r\\n``; error lines are kept verbatim.
        vlen: the value length without its CRLF (0 when there is no value).
    """

    __slots__ = ("code", "raw", "status", "type", "vlen")

    def __init__(self, type: int, code: int, status: int, raw: bytes, vlen: int = 0) -> None:
        self.type = type
        self.code = code
        self.status = status
        self.raw = raw
        self.vlen = vlen

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    def __repr__(self) -> str:
        return (
            f"Response(type={self.type}, code={self.code}, status={self.status}, raw={self.raw!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return (self.type, self.code, self.status, self.raw, self.vlen) == (
            other.type,
            other.code,
            other.status,
            other.raw,
            other.vlen,
        )

    __hash__ = None  # type: ignore[assignment]


class MultiGetResponse(Response):
    """A ``RES_MULTI_GET`` response: several VALUE blocks and the END. ``ends`` holds where
    each block ends in ``raw`` (the next one, or the END, starts there)."""

    __slots__ = ("ends",)

    def __init__(self, type: int, code: int, status: int, raw: bytes, vlen: int, ends: list[int]):
        super().__init__(type, code, status, raw, vlen)
        self.ends = ends


def failure_response(code: int = 23) -> Response:
    """The response a request gets when its backend fails (timeout, reset, bad backend)."""
    return Response(0, code, STATUS_FAILED, BACKEND_FAILURE)
