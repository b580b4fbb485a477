"""The request body limit: refused with a JSON 413 before, or while, the body is read.

A declared Content-Length over the limit is answered at once, without reading a byte of the
body. A body without one (chunked), or one longer than it said, is counted as it arrives and
refused at the first chunk past the limit, so no request ever makes the server hold more than
the limit, in memory or in spooled upload files.
"""

from __future__ import annotations

from fastapi import HTTPException, status
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(HTTPException):
    """The request body passed the limit while it was being read.

    An `HTTPException`, because FastAPI turns any other error raised while it reads a body into
    "400 There was an error parsing the body".
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, too_large_message(max_bytes))


def too_large_message(max_bytes: int) -> str:
    """The detail of a 413 answer."""
    return f"request body is more than the limit of {max_bytes} bytes"


class BodySizeLimitMiddleware:
    """ASGI middleware that keeps every HTTP request body within `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        await self._call_counting(scope, receive, send)

    async def _call_counting(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a `receive` that raises `BodyTooLargeError` past the limit."""
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLargeError:
            # Normally the app's exception handlers answer it; this covers a body read outside
            # them. Once a response has started, the connection can only be dropped.
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": too_large_message(self.max_bytes)},
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
            # The rest of the body is never read, so the connection cannot be reused.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when absent (the server refuses malformed ones)."""
    value = Headers(scope=scope).get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)
