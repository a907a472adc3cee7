"""Request dependencies: settings, a pooled connection, and the API key for writes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from reference.api.errors import ApiError, database_unavailable
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


def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    given: Annotated[str | None, Depends(api_key_header)],
) -> None:
    """Let the request through only with the right X-DRAGONFLY-API-KEY."""
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


Connection = Annotated[psycopg.Connection[Any], Depends(connection)]
ApiKey = Depends(require_api_key)
