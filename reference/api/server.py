"""How uvicorn serves the API: a fresh context per request, and a deadline for each request head.

Fresh context: uvicorn pauses reading a connection once it holds 64 KiB of a body and resumes it
from inside the request's receive(); asyncio's reader callback keeps the context it was
registered in, which holds the server span OpenTelemetry attached for that request, and the next
request on the connection got its task from that callback. Every later request then became a
child of the first upload's trace, its own traceparent ignored. uvicorn's reset_contextvars
starts each request's task in an empty context, so nothing a request attached reaches another.

Head deadline: uvicorn times out an idle kept-alive connection only; a client that sends its
request head a byte at a time (or never ends it) held a connection forever. The head of every
request must now arrive within `head_timeout` seconds of the connection opening or of the
previous response, or the server answers 408 and closes (h11's own limit bounds its size).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from reference.config import Settings

_TIMED_OUT = b"the request head did not arrive in time; send it whole, then the body"
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: " + str(len(_TIMED_OUT)).encode() + b"\r\n\r\n"
) + _TIMED_OUT


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head takes too long."""

    head_timeout = 10.0  # seconds; a subclass per server sets the configured value

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._awaiting_after: Any = None  # the cycle before the awaited head (None: the first)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self.cycle is not self._awaiting_after:
            self._cancel_head_timer()  # the head arrived: a new request cycle started

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._arm_head_timer()  # no pipelined request started: the next head is awaited

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._awaiting_after = self.cycle
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is self._awaiting_after and not self.transport.is_closing():
            self.transport.write(_REQUEST_TIMEOUT)
            self.transport.close()


def protocol_for(settings: Settings) -> type[HeadDeadlineProtocol]:
    """The protocol class with this server's head timeout."""
    return type(
        "HeadDeadlineProtocol",
        (HeadDeadlineProtocol,),
        {"head_timeout": settings.api_header_timeout},
    )


def serve(app: Any, settings: Settings) -> None:
    """Run uvicorn until a signal stops it."""
    # log_config=None: uvicorn's error and access logs go through the root logger that
    # configure_telemetry set up, so their records carry trace ids.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        http=protocol_for(settings),
        reset_contextvars=True,
    )
