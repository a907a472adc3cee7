"""The contract suite's view of a target: an HTTP client whose every response is checked.

    with target_client(target, database_url, spec) as api:
        api.client.get("/health")

A named target (--api-url) is reached over HTTP; with none named the reference app runs
in-process (lifespan included, served through an anyio portal) on the test's database, with
a key made for the test. Either way each response is checked against the committed OpenAPI document
`spec`: its status is one the operation documents, an error body is {"error": {"code",
"message"}}, and no body holds a secret.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from anyio.from_thread import BlockingPortal, start_blocking_portal
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from harness.targets import Target
from reference.api import create_app
from reference.config import load_settings
from reference.pooling import PREPARED_STATEMENTS_ENV, connect_kwargs

LOCAL_BASE_URL = "http://test"
TIMEOUT = 15.0  # seconds for one request to a named target
DB_CONNECT_TIMEOUT = 10  # seconds to reach a named target's database


@dataclass(frozen=True)
class TargetApi:
    """A checked client for the target's API, and the key its writes need (None: none given)."""

    client: httpx.Client
    api_key: str | None

    def key_headers(self) -> dict[str, str]:
        return {"X-DRAGONFLY-API-KEY": self.api_key} if self.api_key else {}


def _template_pattern(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")


def documented_statuses(spec: Mapping[str, Any], method: str, path: str) -> set[str] | None:
    """The statuses `spec` documents for `method path`; None when no operation serves it."""
    candidates = sorted(spec["paths"], key=lambda template: template.count("{"))
    for template in candidates:  # static paths before templated ones, as routers match
        operation = spec["paths"][template].get(method.lower())
        if operation is not None and _template_pattern(template).match(path):
            return set(operation["responses"])
    return None


def response_checks(
    spec: Mapping[str, Any], forbidden: Sequence[str]
) -> Callable[[httpx.Response], None]:
    """An httpx response hook asserting the API contract of `spec` on every response."""
    secrets_in_bodies = tuple(secret for secret in forbidden if secret)

    def check(response: httpx.Response) -> None:
        response.read()
        for secret in secrets_in_bodies:
            assert secret not in response.text, "a response body holds a secret"
        request = response.request
        documented = documented_statuses(spec, request.method, request.url.path)
        if documented is not None:
            assert str(response.status_code) in documented, (
                f"{request.method} {request.url.path} answered {response.status_code}, which "
                f"the OpenAPI document does not list ({sorted(documented)})"
            )
        if response.status_code >= 400:
            body = json.loads(response.text)
            assert set(body) == {"error"}, response.text
            assert set(body["error"]) == {"code", "message"}, response.text

    return check


class PortalTransport(httpx.BaseTransport):
    """A sync httpx transport that serves requests with the ASGI app on an anyio portal."""

    def __init__(self, portal: BlockingPortal, app: FastAPI) -> None:
        self.portal = portal
        self.asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        buffered = httpx.Request(
            request.method, request.url, headers=request.headers, content=request.read()
        )

        async def send() -> tuple[int, httpx.Headers, bytes]:
            response = await self.asgi.handle_async_request(buffered)
            return response.status_code, response.headers, await response.aread()

        status, headers, content = self.portal.call(send)
        return httpx.Response(
            status, headers=headers, stream=httpx.ByteStream(content), request=request
        )


async def _lifespan_of(app: FastAPI) -> LifespanManager:
    return LifespanManager(app)  # made inside the portal's loop, which it detects


@contextmanager
def target_client(
    target: Target, database_url: str | None, spec: Mapping[str, Any]
) -> Iterator[TargetApi]:
    """A checked client for the target's API (in-process on `database_url` when local)."""
    if target.api_url is not None:
        api_key = target.api_key_value()
        hooks = {"response": [response_checks(spec, target.secrets())]}
        with httpx.Client(base_url=target.api_url, timeout=TIMEOUT, event_hooks=hooks) as client:
            yield TargetApi(client, api_key)
        return
    if database_url is None:
        raise ValueError("a local target needs the test's database_url")
    api_key = secrets.token_urlsafe(18)
    environ = {"DATABASE_URL": database_url, "DRAGONFLY_API_KEY": api_key}
    if prepared := os.environ.get(PREPARED_STATEMENTS_ENV):  # e.g. off behind the pooler source
        environ[PREPARED_STATEMENTS_ENV] = prepared
    settings = load_settings(environ)
    app = create_app(settings)
    transport_checks = {"response": [response_checks(spec, [api_key])]}
    with start_blocking_portal("asyncio") as portal:
        lifespan = portal.call(_lifespan_of, app)
        transport = PortalTransport(portal, app)
        with (
            portal.wrap_async_context_manager(lifespan),
            httpx.Client(
                transport=transport, base_url=LOCAL_BASE_URL, event_hooks=transport_checks
            ) as client,
        ):
            yield TargetApi(client, api_key)


class ReadOnlyConnection(psycopg.Connection[Any]):
    """Autocommit, yet every execute() runs in a transaction of its own, begun BEGIN READ ONLY.

    No session state (startup `options`, `SET default_transaction_read_only`): a transaction
    pooler refuses startup options (or, told to ignore them, drops them silently), and a session
    SET stays on whichever server connection ran it, for the next client. A transaction's own
    characteristic goes wherever the transaction goes.
    """

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        with self.transaction():  # BEGIN READ ONLY ... COMMIT (results stay client-side)
            return super().execute(*args, **kwargs)


def target_db_connection(url: str, *, may_write: bool) -> psycopg.Connection[Any]:
    """An autocommit connection to a named target's database; read-only unless `may_write`."""
    connection_class = psycopg.Connection if may_write else ReadOnlyConnection
    conn = connection_class.connect(
        url, autocommit=True, connect_timeout=DB_CONNECT_TIMEOUT, **connect_kwargs(url)
    )
    if not may_write:
        conn.read_only = True  # psycopg then begins each transaction with BEGIN READ ONLY
    return conn
