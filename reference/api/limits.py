"""A request-body limit for every route but the upload (which streams with its own limit)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reference.api.errors import ApiError, error_response

BODY_LIMIT = 64 * 1024  # bytes; the JSON bodies of this API are a few hundred bytes


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes: send only the documented fields"


class BodyLimit:
    """Pure ASGI middleware: 413 when a body declares or streams more than `limit` bytes."""

    def __init__(
        self, app: ASGIApp, limit: int = BODY_LIMIT, exempt: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            response = error_response(ApiError(413, "too_large", _too_large(self.limit)))
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                # An HTTPException: FastAPI re-raises it from body parsing, the handler shapes it.
                raise HTTPException(413, _too_large(self.limit))
            return message

        await self.app(scope, limited_receive, send)
