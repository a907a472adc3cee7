"""Contract of the reference API: health, API key, enforcement, jobs, operators, OpenAPI."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import psycopg
import pytest

from harness.stack.asgi import InProcessApi, assert_error, serve_in_process
from harness.stack.processes import ReferenceStack
from reference.api import create_app
from reference.api.queue_depth import OPEN_STATUSES, observe_queue_depth
from reference.config import load_settings
from reference.jobqueue import JobType, QueueClient
from reference.workers.context import JobContext
from reference.workers.enforcement_engine import handle_strategy

API_KEY = "test-key-3b9e61d0c4f7a2"
HEADERS = {"X-DRAGONFLY-API-KEY": API_KEY}
DB_PASSWORD = "hunter2-db-secret"
DOWN_URL = f"postgresql://dragonfly:{DB_PASSWORD}@127.0.0.1:1/dragonfly"  # nothing listens
MISSING = "00000000-0000-4000-8000-000000000000"
pytestmark = pytest.mark.anyio


@asynccontextmanager
async def running(database_url: str, api_key: str | None = API_KEY) -> AsyncIterator[InProcessApi]:
    """The app in-process (see harness.stack.asgi), with the API key unless it is None."""
    env = {"DATABASE_URL": database_url, "MAX_UPLOAD_BYTES": "2048"}
    settings = load_settings({**env, **({"DRAGONFLY_API_KEY": api_key} if api_key else {})})
    async with serve_in_process(settings, secrets=[API_KEY, DB_PASSWORD]) as served:
        yield served


@pytest.fixture
async def served(api_database_url: str) -> AsyncIterator[InProcessApi]:
    async with running(api_database_url) as served:
        yield served


@pytest.fixture
def client(served: InProcessApi) -> httpx.AsyncClient:
    return served.client


def new_judgment(conn: psycopg.Connection[Any], case_number: str = "2024-CV-0001") -> str:
    row = conn.execute(
        "INSERT INTO public.judgments (case_number, plaintiff, defendant) "
        "VALUES (%s, 'Acme Funding LLC', 'John Doe') RETURNING id::text",
        (case_number,),
    ).fetchone()
    assert row is not None
    return str(row[0])


# --- health and readiness -------------------------------------------------------------------


async def test_health_answers_without_the_database_and_readyz_does_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(DOWN_URL) as (app, client):
        root, health = await client.get("/"), await client.get("/health")
        # The pool gives up after CONNECT_TIMEOUT (2 s), not after psycopg_pool's default 30 s.
        with anyio.fail_after(15):
            ready = await client.get("/readyz")
        status = await client.get("/api/v1/system/status")
        assert observe_queue_depth(app.state.pool) == []

    for response in (root, health):
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok", "service": "dragonfly-api", "environment": "dev"}
    assert_error(ready, 503, "database_unavailable", "retry in a few seconds")
    assert ready.headers["Retry-After"] == "5"
    assert_error(status, 503, "database_unavailable", "/readyz")
    assert DB_PASSWORD not in caplog.text


async def test_readyz_answers_200_when_the_database_does(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "database": "ok"}


async def test_an_unknown_route_gets_the_error_body(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/nothing"), 404, "not_found", "Not Found")
    assert_error(await client.delete("/health"), 405, "method_not_allowed", "Method Not Allowed")


async def test_a_database_error_is_a_500_that_shows_no_details(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    db_conn.execute("DROP VIEW ops.v_worker_status")

    response = await client.get("/api/v1/system/status")

    assert_error(response, 500, "internal_error", "the server log has the details")
    assert "v_worker_status" not in response.text


def test_python_m_reference_api_serves_and_exits_0_on_sigterm(
    reference_stack: ReferenceStack,
) -> None:
    api = reference_stack.start_api()  # waits for GET /health -> 200
    with reference_stack.client() as client:
        assert client.get("/readyz").status_code == 200
        assert client.post("/api/v1/enforcement/strategy", json={}).status_code == 422

    assert reference_stack.stop() == {"api": 0}
    logs = api.stdout() + api.stderr()
    assert re.search(r"trace_id=[0-9a-f]{32} .*\"POST /api/v1/enforcement/strategy", logs), logs
    assert reference_stack.api_key not in logs


# --- the API key ----------------------------------------------------------------------------

WRITES = [
    ("/api/v1/intake/upload", {"files": {"file": ("j.csv", b"Case Number\r\n", "text/csv")}}),
    ("/api/v1/enforcement/strategy", {"json": {"judgment_id": MISSING}}),
    ("/api/v1/enforcement/drafting", {"json": {"judgment_id": MISSING}}),
]


@pytest.mark.parametrize("write", WRITES, ids=["upload", "strategy", "drafting"])
@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "missing X-DRAGONFLY-API-KEY header"),
        ({"X-DRAGONFLY-API-KEY": "wrong-key"}, "does not match"),
        ({"X-DRAGONFLY-API-KEY": API_KEY[:-1]}, "does not match"),
    ],
    ids=["missing", "wrong", "prefix"],
)
async def test_writes_without_the_right_key_are_401(
    client: httpx.AsyncClient,
    db_conn: psycopg.Connection[Any],
    write: tuple[str, dict[str, Any]],
    headers: dict[str, str],
    fragment: str,
) -> None:
    path, body = write
    response = await client.post(path, headers=headers, **body)

    assert_error(response, 401, "invalid_api_key", fragment)
    assert db_conn.execute("SELECT count(*) FROM ops.job_queue").fetchone() == (0,)


@pytest.mark.parametrize(("path", "body"), WRITES, ids=["upload", "strategy", "drafting"])
async def test_writes_are_disabled_while_no_key_is_configured(
    database_url: str, path: str, body: dict[str, Any]
) -> None:
    async with running(database_url, api_key=None) as (_, client):
        response = await client.post(path, headers=HEADERS, **body)

    assert_error(response, 401, "writes_disabled", "set it")
    assert "DRAGONFLY_API_KEY" in response.json()["error"]["message"]


async def test_the_api_key_never_reaches_a_log_or_a_response(
    database_url: str, db_conn: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    judgment_id = new_judgment(db_conn)
    async with running(database_url) as (_, client):
        for headers in (HEADERS, {"X-DRAGONFLY-API-KEY": f"{API_KEY}-wrong"}, {}):
            await client.post(
                "/api/v1/enforcement/strategy", json={"judgment_id": judgment_id}, headers=headers
            )
            await client.post("/api/v1/enforcement/strategy", content=b"{not json", headers=headers)
        accepted = await client.post(
            "/api/v1/enforcement/strategy", json={"judgment_id": judgment_id}, headers=HEADERS
        )

    assert accepted.status_code == 202  # the key was really used
    assert API_KEY not in caplog.text
    assert API_KEY not in str(
        db_conn.execute("SELECT array_agg(j) FROM ops.job_queue j").fetchone()
    )


# --- enforcement ----------------------------------------------------------------------------


async def test_strategy_is_queued_once_per_judgment_state(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    judgment_id = new_judgment(db_conn)
    request: dict[str, Any] = {"json": {"judgment_id": judgment_id}, "headers": HEADERS}

    first = await client.post("/api/v1/enforcement/strategy", **request)
    again = await client.post("/api/v1/enforcement/strategy", **request)
    db_conn.execute(
        "INSERT INTO public.debtor_profiles (judgment_id, employer_name) VALUES (%s, 'Initech')",
        (judgment_id,),
    )
    changed = await client.post("/api/v1/enforcement/strategy", **request)
    db_conn.execute(  # updated_at is the database's to keep: this moves it, and so the key
        "UPDATE public.debtor_profiles SET employer_name = 'Globex' WHERE judgment_id = %s",
        (judgment_id,),
    )
    changed_again = await client.post("/api/v1/enforcement/strategy", **request)

    assert first.status_code == 202, first.text
    assert first.json() == {
        "job_id": first.json()["job_id"],
        "judgment_id": judgment_id,
        "job_type": "enforcement_strategy",
    }
    assert again.json()["job_id"] == first.json()["job_id"]
    assert changed.status_code == 202
    assert changed.json()["job_id"] != first.json()["job_id"]
    assert changed_again.json()["job_id"] not in {first.json()["job_id"], changed.json()["job_id"]}
    job = QueueClient(db_conn).get_job(first.json()["job_id"])
    assert job is not None
    assert (job.job_type, job.payload) == ("enforcement_strategy", {"judgment_id": judgment_id})
    assert job.idempotency_key is not None
    assert job.idempotency_key.startswith(f"strategy:{judgment_id}:")


async def test_drafting_from_the_api_and_from_the_strategy_job_is_one_job(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any], database_url: str
) -> None:
    judgment_id = new_judgment(db_conn)
    queue = QueueClient(db_conn)
    queue.queue_job(JobType.ENFORCEMENT_STRATEGY, {"judgment_id": judgment_id})
    [strategy_job] = queue.claim_pending_job([JobType.ENFORCEMENT_STRATEGY], "worker-a")
    settings = load_settings({"DATABASE_URL": database_url})
    handle_strategy(strategy_job, JobContext(db_conn, queue, "worker-a", settings))

    asked = await client.post(
        "/api/v1/enforcement/drafting", json={"judgment_id": judgment_id}, headers=HEADERS
    )

    assert asked.status_code == 202, asked.text
    drafting = db_conn.execute(
        "SELECT id::text FROM ops.job_queue WHERE job_type = 'enforcement_drafting'"
    ).fetchall()
    assert drafting == [(asked.json()["job_id"],)]


async def test_drafting_needs_a_plan_and_is_queued_once_per_plan(
    client: httpx.AsyncClient, db_conn: psycopg.Connection[Any]
) -> None:
    judgment_id = new_judgment(db_conn)
    request: dict[str, Any] = {"json": {"judgment_id": judgment_id}, "headers": HEADERS}

    without_plan = await client.post("/api/v1/enforcement/drafting", **request)
    db_conn.execute(
        "INSERT INTO enforcement.plans (judgment_id, strategy, reason) "
        "VALUES (%s, 'surveillance', 'nothing known about the debtor')",
        (judgment_id,),
    )
    first = await client.post("/api/v1/enforcement/drafting", **request)
    again = await client.post("/api/v1/enforcement/drafting", **request)

    assert_error(without_plan, 409, "plan_not_found", "/api/v1/enforcement/strategy first")
    assert first.status_code == 202, first.text
    assert first.json()["job_type"] == "enforcement_drafting"
    assert again.json()["job_id"] == first.json()["job_id"]
    job = QueueClient(db_conn).get_job(first.json()["job_id"])
    assert job is not None
    assert (job.job_type, job.payload) == ("enforcement_drafting", {"judgment_id": judgment_id})


@pytest.mark.parametrize("kind", ["strategy", "drafting"])
async def test_an_unknown_judgment_is_404(client: httpx.AsyncClient, kind: str) -> None:
    response = await client.post(
        f"/api/v1/enforcement/{kind}", json={"judgment_id": MISSING}, headers=HEADERS
    )

    assert_error(response, 404, "judgment_not_found", MISSING)


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        (b'{"judgment_id": ', 400, "malformed_json", "not valid JSON"),
        (b"{}", 422, "invalid_request", "body field 'judgment_id': Field required"),
        (b'{"judgment_id": "nope"}', 422, "invalid_request", "body field 'judgment_id'"),
        (b"", 422, "invalid_request", "request body: Field required"),
    ],
    ids=["malformed", "missing-field", "bad-uuid", "no-body"],
)
async def test_a_bad_enforcement_body_names_the_problem(
    client: httpx.AsyncClient, body: bytes, status: int, code: str, fragment: str
) -> None:
    response = await client.post(
        "/api/v1/enforcement/strategy",
        content=body,
        headers={**HEADERS, "Content-Type": "application/json"},
    )

    assert_error(response, status, code, fragment)


async def test_an_oversized_enforcement_body_is_413(client: httpx.AsyncClient) -> None:
    body = {"judgment_id": MISSING, "padding": "x" * 64 * 1024}
    pulled = [0]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1000):
            pulled[0] += 1
            yield b" " * 1024

    declared = await client.post("/api/v1/enforcement/strategy", json=body, headers=HEADERS)
    streamed = await client.post(
        "/api/v1/enforcement/strategy",
        content=chunks(),
        headers={**HEADERS, "Content-Type": "application/json"},
    )

    assert_error(declared, 413, "too_large", "larger than 65536 bytes")
    assert_error(streamed, 413, "too_large", "larger than 65536 bytes")
    assert pulled[0] <= 65


# --- jobs and operators ----------------------------------------------------------------------


async def test_a_job_is_shown_without_its_payload_or_trace_context(
    client: httpx.AsyncClient, queue: QueueClient
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    job_id = queue.queue_job(
        JobType.LOAD_PROBE, {"n": 1}, trace_context={"traceparent": traceparent}
    )

    response = await client.get(f"/api/v1/jobs/{job_id}")

    assert response.status_code == 200, response.text
    job = response.json()
    assert set(job) == {
        "id", "job_type", "status", "attempts", "max_attempts", "run_at", "last_error",
        "created_at", "completed_at", "dead_lettered_at",
    }  # fmt: skip
    assert (job["id"], job["job_type"], job["status"]) == (str(job_id), "load_probe", "pending")
    assert (job["attempts"], job["max_attempts"], job["last_error"]) == (0, 5, None)
    assert traceparent not in response.text


async def test_an_unknown_or_malformed_job_id_is_an_error(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"/api/v1/jobs/{MISSING}"), 404, "job_not_found", MISSING)
    assert_error(
        await client.get("/api/v1/jobs/12"), 422, "invalid_request", "path parameter 'job_id'"
    )


async def test_queue_health_and_the_depth_gauge_count_jobs(
    served: InProcessApi, queue: QueueClient
) -> None:
    app, client = served
    for _ in range(3):
        queue.queue_job(JobType.INGEST_CSV)
    claimed = queue.claim_pending_job([JobType.INGEST_CSV], "worker-1", batch_size=2)
    assert queue.complete_job(claimed[0].id, "worker-1")

    response = await client.get("/api/v1/ops/queue")
    depth = {
        (o.attributes["job_type"], o.attributes["status"]): o.value
        for o in observe_queue_depth(app.state.pool)
        if o.attributes is not None
    }

    assert response.status_code == 200, response.text
    rows = {row["job_type"]: row for row in response.json()["queues"]}
    assert set(rows) == {job_type.value for job_type in JobType}
    ingest = rows["ingest_csv"]
    assert (ingest["pending"], ingest["ready"], ingest["processing"], ingest["stuck"]) == (
        1,
        1,
        1,
        0,
    )
    assert ingest["oldest_pending_age_seconds"] >= 0
    assert rows["load_probe"]["oldest_pending_age_seconds"] is None
    # Every type and open status has a point; zeros are reported, not left out.
    assert {key: value for key, value in depth.items() if value} == {
        ("ingest_csv", "pending"): 1,
        ("ingest_csv", "processing"): 1,
    }
    assert set(depth) == {
        (job_type.value, status) for job_type in JobType for status in OPEN_STATUSES
    }
    assert observe_queue_depth(None) == []


async def test_system_status_lists_workers(client: httpx.AsyncClient, queue: QueueClient) -> None:
    queue.register_heartbeat("ingest-host-1", "ingest_processor", "host-1", "idle")

    response = await client.get("/api/v1/system/status")

    assert response.status_code == 200, response.text
    [worker] = response.json()["workers"]
    assert (worker["worker_id"], worker["worker_type"], worker["status"]) == (
        "ingest-host-1",
        "ingest_processor",
        "idle",
    )
    assert worker["is_stale"] is False
    assert 0 <= worker["seconds_since_last_seen"] < 60


# --- the OpenAPI document ---------------------------------------------------------------------

# The statuses the tests of both files observe per route (the response hook checks each one).
EXPECTED_STATUSES = {
    ("get", "/"): {"200"},
    ("get", "/health"): {"200"},
    ("get", "/readyz"): {"200", "503"},
    ("post", "/api/v1/intake/upload"): {"202", "400", "401", "409", "413", "415", "422", "503"},
    ("get", "/api/v1/intake/batches/{batch_id}"): {"200", "404", "422", "503"},
    ("get", "/api/v1/intake/batches/{batch_id}/errors"): {"200", "404", "422", "503"},
    ("post", "/api/v1/enforcement/strategy"): {"202", "400", "401", "404", "413", "422", "503"},
    ("post", "/api/v1/enforcement/drafting"): {"202", "401", "404", "409", "422", "503"},
    ("get", "/api/v1/jobs/{job_id}"): {"200", "404", "422", "503"},
    ("get", "/api/v1/ops/queue"): {"200", "503"},
    ("get", "/api/v1/system/status"): {"200", "503"},
}


def test_every_route_documents_its_responses() -> None:
    spec = create_app(load_settings({"DATABASE_URL": DOWN_URL})).openapi()
    operations = {
        (method, path): operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }

    assert set(operations) == set(EXPECTED_STATUSES)
    for key, operation in operations.items():
        responses = operation["responses"]
        assert EXPECTED_STATUSES[key] <= set(responses), key
        for status, response in responses.items():
            schema = response["content"]["application/json"]["schema"]
            if int(status) >= 400:
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (key, status)
            else:
                assert schema["$ref"].startswith("#/components/schemas/"), (key, status)
        if key[0] == "post":
            assert operation["security"] == [{"APIKeyHeader": []}], key
            assert "401" in responses, key
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-DRAGONFLY-API-KEY"
