"""The app factory: routers, the one error handler, the pool's lifespan, telemetry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from psycopg_pool import ConnectionPool

from reference.api import enforcement, health, intake, jobs, ops
from reference.api.deps import ApiKeyFirst
from reference.api.errors import HANDLED, handle_error
from reference.api.intake import UPLOAD_PATH
from reference.api.limits import BodyLimit
from reference.api.queue_depth import register_queue_depth_gauge
from reference.config import Settings
from reference.telemetry import instrument_app

POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10


def open_pool(settings: Settings) -> ConnectionPool[Any]:
    """A pool that opens without waiting, so the API starts while the database is down."""
    pool: ConnectionPool[Any] = ConnectionPool(
        settings.database_url,
        min_size=POOL_MIN_SIZE,
        max_size=POOL_MAX_SIZE,
        open=False,
        kwargs={"autocommit": True, **settings.database_connect_kwargs},
        check=ConnectionPool.check_connection,
        name="dragonfly-api",
    )
    pool.open(wait=False)
    return pool


def create_app(settings: Settings) -> FastAPI:
    """Build the API; nothing connects until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = open_pool(settings)
        app.state.pool = pool
        try:
            yield
        finally:
            app.state.pool = None
            await anyio.to_thread.run_sync(pool.close)

    app = FastAPI(
        title="Dragonfly API",
        version="1.0.0",
        summary="Intake Station, enforcement jobs and queue status of the Dragonfly backend",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pool = None
    for module in (health, intake, enforcement, jobs, ops):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, exempt=frozenset({UPLOAD_PATH}))
    # Added last, so outermost: a write without the key is a 401 before its body is read.
    app.add_middleware(ApiKeyFirst, settings=settings, openapi=app.openapi)
    for exception_type in HANDLED:
        app.add_exception_handler(exception_type, handle_error)
    register_queue_depth_gauge(lambda: app.state.pool)
    instrument_app(app)
    return app
