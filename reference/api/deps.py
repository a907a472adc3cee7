"""Request dependencies: settings, a pooled connection, and the API key for writes."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from reference.api.errors import ApiError, database_unavailable, error_response
from reference.config import Settings

CONNECT_TIMEOUT = 2.0  # seconds a request waits for a pooled connection before a 503
API_KEY_HEADER = "X-DRAGONFLY-API-KEY"

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="The server's DRAGONFLY_API_KEY; required by every write endpoint.",
)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> ConnectionPool[Any]:
    """The app's pool, or a 503 when the lifespan has not opened it."""
    pool: ConnectionPool[Any] | None = getattr(request.app.state, "pool", None)
    if pool is None:
        raise database_unavailable("the API's connection pool is not open")
    return pool


@contextmanager
def checkout(pool: ConnectionPool[Any]) -> Iterator[psycopg.Connection[Any]]:
    """A pooled autocommit connection; a 503 when none comes within CONNECT_TIMEOUT."""
    try:
        conn = pool.getconn(timeout=CONNECT_TIMEOUT)
    except (PoolTimeout, PoolClosed):
        raise database_unavailable() from None
    try:
        yield conn
    finally:
        pool.putconn(conn)


def connection(
    pool: Annotated[ConnectionPool[Any], Depends(get_pool)],
) -> Iterator[psycopg.Connection[Any]]:
    """The dependency form of checkout()."""
    with checkout(pool) as conn:
        yield conn


def check_api_key(settings: Settings, given: str | None) -> None:
    """Raise the 401 ApiError unless `given` is this server's key (compared in constant time)."""
    if settings.dragonfly_api_key is None:
        raise ApiError(
            401,
            "writes_disabled",
            "writes are disabled: this server has no DRAGONFLY_API_KEY; set it in the "
            "service's environment and restart to enable write endpoints",
        )
    if not given:
        raise ApiError(
            401,
            "invalid_api_key",
            f"missing {API_KEY_HEADER} header: send the API key in it",
        )
    expected = settings.dragonfly_api_key.get_secret_value().encode()
    if not secrets.compare_digest(given.encode(), expected):
        raise ApiError(
            401,
            "invalid_api_key",
            f"the {API_KEY_HEADER} header does not match this server's API key",
        )


def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    given: Annotated[str | None, Depends(api_key_header)],
) -> None:
    """Let the request through only with the right X-DRAGONFLY-API-KEY (documents the header)."""
    check_api_key(settings, given)


def _secured_operations(spec: Mapping[str, Any]) -> list[tuple[str, re.Pattern[str]]]:
    """(METHOD, path pattern) of every operation the OpenAPI document marks as needing a key."""
    secured = []
    for path, operations in spec.get("paths", {}).items():
        pattern = re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$")
        for method, operation in operations.items():
            if operation.get("security"):
                secured.append((method.upper(), pattern))
    return secured


class ApiKeyFirst:
    """Pure ASGI middleware: a write route's key is checked before any byte of its body is read.

    FastAPI reads and parses a body before it runs dependencies, so without this a malformed or
    oversized body from a client without the key got a 400 or 413 instead of the 401. The write
    routes are those whose OpenAPI operation has `security` (require_api_key puts it there).
    """

    def __init__(
        self, app: ASGIApp, settings: Settings, openapi: Callable[[], Mapping[str, Any]]
    ) -> None:
        self.app = app
        self.settings = settings
        self.openapi = openapi
        self._secured: list[tuple[str, re.Pattern[str]]] | None = None

    def _is_write(self, scope: Scope) -> bool:
        if self._secured is None:
            self._secured = _secured_operations(self.openapi())
        method, path = scope["method"], scope["path"]
        return any(method == want and pattern.match(path) for want, pattern in self._secured)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._is_write(scope):
            try:
                check_api_key(self.settings, Headers(scope=scope).get(API_KEY_HEADER))
            except ApiError as refused:
                await error_response(refused)(scope, receive, send)
                return
        await self.app(scope, receive, send)


Connection = Annotated[psycopg.Connection[Any], Depends(connection)]
ApiKey = Depends(require_api_key)
