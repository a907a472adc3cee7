"""Checks over HTTP: the API's liveness and readiness, and the Supabase REST endpoint."""

from __future__ import annotations

import time
from typing import Any

import httpx

from smoke.context import SmokeContext, first_line
from smoke.runner import CheckFailedError, CheckSkippedError

SERVICE_NAME = "dragonfly-api"  # what GET / and /health of the reference API say they are
HTTP_TIMEOUT = 10.0  # seconds; the runner's per-check timeout bounds the whole check too
ENVIRONMENTS = ("dev", "staging", "prod")


def get(ctx: SmokeContext, url: str, **headers: str) -> tuple[httpx.Response, float]:
    """GET `url`; the response and its time in seconds. Transport errors fail the check."""
    started = time.monotonic()
    try:
        with ctx.http(HTTP_TIMEOUT) as client:
            response = client.get(url, headers=headers)
    except httpx.TimeoutException:
        raise CheckFailedError(f"GET {url}: no answer within {HTTP_TIMEOUT:.0f}s") from None
    except httpx.HTTPError as error:
        raise CheckFailedError(
            f"GET {url}: cannot connect ({first_line(error)}); is the service deployed and up?"
        ) from None
    return response, time.monotonic() - started


def describe_body(response: httpx.Response) -> str:
    """The API's error code and message, a redirect's target, else the start of the body."""
    if response.is_redirect:
        return f"a redirect to {response.headers.get('location')}"
    body = json_object(response)
    error = body.get("error") if body else None
    if isinstance(error, dict):
        return f"{error.get('code')}: {error.get('message')}"
    text = " ".join(response.text.split())
    kind = response.headers.get("content-type", "no content-type").split(";")[0]
    return f"{kind} body {text[:80]!r}" if text else f"empty {kind} body"


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _api_url(ctx: SmokeContext) -> str:
    if ctx.api_url is None:
        raise CheckFailedError("cannot run: no API URL (set DRAGONFLY_TARGET_API_URL or --api-url)")
    return ctx.api_url


def _liveness(ctx: SmokeContext, path: str) -> str:
    url = _api_url(ctx) + path
    response, seconds = get(ctx, url)
    if response.status_code != 200:
        raise CheckFailedError(
            f"GET {path} answered {response.status_code}: {describe_body(response)}"
        )
    body = json_object(response) or {}
    if body.get("status") != "ok" or body.get("service") != SERVICE_NAME:
        raise CheckFailedError(
            f"GET {path} answered 200 but not as the Dragonfly API (expected JSON with "
            f'"service": "{SERVICE_NAME}", got {describe_body(response)}): a proxy or error '
            "page answers at this URL; check the API URL and the deployment"
        )
    environment = body.get("environment")
    wrong = {"prod": ("dev",), "dev": ("prod",)}[ctx.mode.value]
    if environment in wrong or environment not in ENVIRONMENTS:
        raise CheckFailedError(
            f"the API runs with ENVIRONMENT={environment} but the target mode is "
            f"{ctx.mode.value}: this URL is another environment's API, or the service's "
            "ENVIRONMENT variable is wrong"
        )
    budget = ctx.thresholds.latency_budget
    if seconds > budget:
        raise CheckFailedError(
            f"GET {path} took {seconds:.2f}s, over the {budget:.2f}s budget (--latency-budget)"
        )
    return f"200 in {seconds * 1000:.0f} ms ({SERVICE_NAME}, env={environment})"


def check_api_root(ctx: SmokeContext) -> str:
    return _liveness(ctx, "/")


def check_api_health(ctx: SmokeContext) -> str:
    return _liveness(ctx, "/health")


def check_api_ready(ctx: SmokeContext) -> str:
    """/readyz says the database answers, and a read that queries it (queue health) works."""
    base = _api_url(ctx)
    response, _ = get(ctx, base + "/readyz")
    body = json_object(response) or {}
    if response.status_code != 200 or body.get("database") != "ok":
        raise CheckFailedError(
            f"GET /readyz answered {response.status_code} ({describe_body(response)}): the API "
            "cannot reach its database; check its SUPABASE_DB_URL / DATABASE_URL and the database"
        )
    response, seconds = get(ctx, base + "/api/v1/ops/queue")
    queues = (json_object(response) or {}).get("queues")
    if response.status_code != 200 or not isinstance(queues, list):
        raise CheckFailedError(
            f"GET /api/v1/ops/queue answered {response.status_code} ({describe_body(response)}):"
            " the database answers but the API's queries fail; see the API's logs"
        )
    return f"database ok; /api/v1/ops/queue 200 in {seconds * 1000:.0f} ms"


def check_supabase_rest(ctx: SmokeContext) -> str:
    """The REST endpoint answers the service-role key with its OpenAPI description."""
    key_var = f"SUPABASE_SERVICE_ROLE_KEY_{ctx.mode.value.upper()}"
    if ctx.supabase_url is None:
        where = "the local stack has none" if ctx.is_local else "none given"
        raise CheckSkippedError(
            f"no Supabase REST URL ({where}): set SUPABASE_URL_{ctx.mode.value.upper()} "
            "or --supabase-url"
        )
    if not ctx.supabase_key:
        raise CheckFailedError(f"cannot run: {key_var} is not set; set it to the service-role key")
    url = ctx.supabase_url + "/rest/v1/"
    key = ctx.supabase_key
    response, seconds = get(ctx, url, apikey=key, Authorization=f"Bearer {key}")
    if response.status_code in (401, 403):
        raise CheckFailedError(
            f"key rejected: {url} answered {response.status_code} to {key_var}; copy the "
            "service_role key of this project from the Supabase dashboard (Project Settings > "
            f"API) into {key_var} (Railway: all 3 services; Vercel; .env.local) and run again"
        )
    body = json_object(response)
    if response.status_code != 200 or body is None or not ("swagger" in body or "openapi" in body):
        raise CheckFailedError(
            f"GET {url} answered {response.status_code} ({describe_body(response)}), not the "
            "REST API's description: check SUPABASE_URL_<MODE>"
        )
    return f"200 in {seconds * 1000:.0f} ms, key accepted"
