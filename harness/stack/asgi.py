"""The reference API in-process for tests: lifespan, an httpx client, contract checks on responses.

    async with serve_in_process(load_settings(env), secrets=[password]) as api:
        response = await api.client.get("/health")

Every response the client receives is checked (see contract_checks); a failed check raises
AssertionError from the request call. Needs asgi-lifespan installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.routing import APIRoute

from harness.telemetry.tracecontext import send_trace_context_async
from reference.api import create_app
from reference.config import Settings

BASE_URL = "http://test"


class InProcessApi(NamedTuple):
    """The app being served and a client bound to it (unpacks as `app, client`)."""

    app: FastAPI
    client: httpx.AsyncClient


def documented_statuses(app: FastAPI, method: str, path: str) -> set[str] | None:
    """The statuses the OpenAPI documents for the route serving `method path` (None: no route)."""
    routes = [route for route in app.routes if isinstance(route, APIRoute)]
    for route in routes:
        if method in (route.methods or ()) and route.path_regex.match(path):
            return set(app.openapi()["paths"][route.path_format][method.lower()]["responses"])
    return None


def contract_checks(
    app: FastAPI, secrets: Sequence[str] = ()
) -> Callable[[httpx.Response], Awaitable[None]]:
    """An httpx response hook that asserts the API contract on every response.

    The status is one the OpenAPI documents for the route (when a route serves the request), an
    error body is exactly {"error": {"code", "message"}}, and no body contains any of `secrets`.
    """
    forbidden = tuple(secret for secret in secrets if secret)  # "" is in every body

    async def check(response: httpx.Response) -> None:
        await response.aread()
        for secret in forbidden:
            assert secret not in response.text
        request = response.request
        documented = documented_statuses(app, request.method, request.url.path)
        if documented is not None:
            assert str(response.status_code) in documented, (request, documented)
        if response.status_code >= 400:
            assert set(response.json()) == {"error"}, response.text
            assert set(response.json()["error"]) == {"code", "message"}, response.text

    return check


@asynccontextmanager
async def serve_in_process(
    settings: Settings, *, secrets: Sequence[str] = ()
) -> AsyncIterator[InProcessApi]:
    """The app of `settings` in-process, lifespan included, behind a contract-checking client.

    `secrets` are strings no response body may contain; the settings' API key is always one.
    Exceptions the app raises become 500 responses, as behind a server.
    """
    app = create_app(settings)
    api_key = settings.dragonfly_api_key
    forbidden = [*secrets, *([api_key.get_secret_value()] if api_key is not None else [])]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    hooks: dict[str, list[Callable[..., Any]]] = {
        "request": [send_trace_context_async],
        "response": [contract_checks(app, forbidden)],
    }
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=transport, base_url=BASE_URL, event_hooks=hooks) as client,
    ):
        yield InProcessApi(app, client)


def assert_error(response: httpx.Response, status: int, code: str, fragment: str) -> None:
    """The response is the API error `code` with `status`, its message containing `fragment`."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert fragment in error["message"], error
