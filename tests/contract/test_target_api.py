"""The HTTP contract, for any target: the in-process reference by default, or a deployment.

    pytest tests/contract/test_target_api.py --api-url URL [--db-url DSN] [--api-key K]

Every response is checked against the committed OpenAPI document (tests/contract/openapi.json).
Tests marked `writes` upload or enqueue; against a named target they need --allow-writes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.targets import Target
from harness.targets.contract import TargetApi
from harness.waiting import wait_until
from reference.config import load_settings
from reference.jobqueue import JobType, QueueClient
from reference.pooling import connect_kwargs
from reference.workers.context import JobContext
from reference.workers.ingest_processor import handle_ingest_csv

MISSING = "00000000-0000-4000-8000-000000000000"
HEADER_ROW = "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\r\n"
INGEST_TIMEOUT = 60.0  # seconds a named target's worker gets to finish a three-row batch
INTAKE = "/api/v1/intake"
SPEC = json.loads(Path(__file__).with_name("openapi.json").read_text())


def assert_error(response: Any, status: int, codes: set[str], fragment: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] in codes, error
    assert fragment in error["message"], error


# --- read-only: any target ------------------------------------------------------------------


def test_the_served_openapi_is_the_committed_one(
    contract_api: TargetApi, openapi_snapshot: dict[str, Any]
) -> None:
    served = contract_api.client.get("/openapi.json").json()

    # On a failure pytest prints the differing keys; tests/contract/test_openapi_snapshot.py
    # prints the whole diff and says how to accept a reviewed change.
    assert served == openapi_snapshot


@pytest.mark.parametrize("path", ["/", "/health"])
def test_health_answers_and_reveals_no_secret_or_internal_address(
    contract_api: TargetApi, target: Target, path: str
) -> None:
    response = contract_api.client.get(path)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "service", "environment"}
    assert body["status"] == "ok"
    for leak in ("postgres", "@", ":5432", "password", "key", *target.secrets()):
        assert leak not in response.text.lower(), leak
    assert not [
        name for name in response.headers if name.lower().startswith("x-") and "key" in name
    ]


def test_readyz_reports_the_database(contract_api: TargetApi) -> None:
    response = contract_api.client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "database": "ok"}
    assert "@" not in response.text


def test_unknown_routes_and_methods_get_the_error_body(contract_api: TargetApi) -> None:
    client = contract_api.client
    assert_error(client.get("/api/v1/nothing"), 404, {"not_found"})
    assert_error(client.delete("/health"), 405, {"method_not_allowed"})


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"{INTAKE}/batches/{MISSING}", "batch_not_found"),
        (f"{INTAKE}/batches/{MISSING}/errors", "batch_not_found"),
        (f"/api/v1/jobs/{MISSING}", "job_not_found"),
    ],
)
def test_unknown_ids_are_404_naming_the_id(contract_api: TargetApi, path: str, code: str) -> None:
    assert_error(contract_api.client.get(path), 404, {code}, MISSING)


@pytest.mark.parametrize(
    "path",
    [f"{INTAKE}/batches/12", f"{INTAKE}/batches/x/errors", "/api/v1/jobs/'%20OR%201=1--"],
)
def test_malformed_ids_are_422(contract_api: TargetApi, path: str) -> None:
    assert_error(contract_api.client.get(path), 422, {"invalid_request"}, "path parameter")


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "offset=-1", "offset=9223372036854775808", "limit=1;DROP TABLE x"],
)
def test_error_paging_out_of_range_is_422(contract_api: TargetApi, query: str) -> None:
    response = contract_api.client.get(f"{INTAKE}/batches/{MISSING}/errors?{query}")

    assert_error(response, 422, {"invalid_request"}, "query parameter")


def integer_query_parameters(spec: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(path, name, maximum) of every integer query parameter of a GET in the document."""
    return [
        (path, parameter["name"], parameter["schema"]["maximum"])
        for path, operations in spec["paths"].items()
        for parameter in operations.get("get", {}).get("parameters", [])
        if parameter["in"] == "query" and parameter["schema"].get("type") == "integer"
    ]


@pytest.mark.parametrize("beyond", [1, 2**63 - 1, 2**64], ids=["max+1", "past-int64", "2^64"])
def test_every_integer_query_parameter_past_its_maximum_is_422(
    contract_api: TargetApi, beyond: int
) -> None:
    parameters = integer_query_parameters(SPEC)
    assert parameters  # the errors endpoint's limit and offset at least

    for path, name, maximum in parameters:
        url = path.replace("{batch_id}", MISSING)
        response = contract_api.client.get(url, params={name: maximum + beyond})
        assert_error(response, 422, {"invalid_request"}, f"query parameter '{name}'")


def test_queue_health_lists_every_job_type_and_status_lists_workers(
    contract_api: TargetApi,
) -> None:
    queues = contract_api.client.get("/api/v1/ops/queue")
    status = contract_api.client.get("/api/v1/system/status")

    assert queues.status_code == 200, queues.text
    assert {row["job_type"] for row in queues.json()["queues"]} == {t.value for t in JobType}
    assert status.status_code == 200, status.text
    assert isinstance(status.json()["workers"], list)


def secured_operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    ]


WRITE_OPERATIONS = secured_operations(SPEC)
HOSTILE_BODIES = {
    "malformed-json": (b'{"judgment_id": ', "application/json"),
    "not-utf8": (b"\xff\xfe{}", "application/json"),
    "sql": (b'{"judgment_id": "\'; DROP TABLE ops.job_queue; --"}', "application/json"),
    "form": (b"--x\r\nContent-Disposition: form-data; name=file\r\n\r\n", "multipart/form-data"),
}


def test_every_write_in_the_schema_needs_the_key() -> None:
    assert {path for _, path in WRITE_OPERATIONS} == {
        f"{INTAKE}/upload",
        "/api/v1/enforcement/strategy",
        "/api/v1/enforcement/drafting",
    }


@pytest.mark.parametrize(("method", "path"), WRITE_OPERATIONS)
@pytest.mark.parametrize("body", list(HOSTILE_BODIES), ids=list(HOSTILE_BODIES))
@pytest.mark.parametrize("key", [None, "wrong-key", "' OR '1'='1"], ids=["none", "wrong", "sql"])
def test_every_write_refuses_a_request_without_the_key_whatever_its_body(  # noqa: PLR0917
    contract_api: TargetApi,
    contract_db: Any,
    target: Target,
    method: str,
    path: str,
    body: str,
    key: str | None,
) -> None:
    content, content_type = HOSTILE_BODIES[body]
    headers = {"Content-Type": content_type, **({"X-DRAGONFLY-API-KEY": key} if key else {})}

    response = contract_api.client.request(method, path, content=content, headers=headers)

    assert_error(response, 401, {"invalid_api_key", "writes_disabled"}, "API")
    if target.is_local:  # a live deployment's queue moves on its own
        assert contract_db.execute("SELECT count(*) FROM ops.job_queue").fetchone() == (0,)


# --- writes: local, or a named target with --allow-writes ------------------------------------


def unique_csv() -> tuple[bytes, list[str]]:
    """Two valid rows and one bad one, with case numbers no other run uses."""
    run = uuid.uuid4().hex[:12].upper()
    cases = [f"CT-{run}-1", f"CT-{run}-2"]
    rows = [
        f'{cases[0]},Acme Funding LLC,John Doe,"$1,234.56",01/15/2024,Kings\r\n',
        f"{cases[1]},Acme Funding LLC,Jane Roe,250.00,2024-02-29,Queens\r\n",
        f"CT-{run}-3,Acme Funding LLC,,12.00,2024-02-30,Kings\r\n",
    ]
    return (HEADER_ROW + "".join(rows)).encode(), cases


def run_ingest_locally(database_url: str) -> None:
    """The Ingest Processor's handler on the pending job (a named target has its own worker)."""
    with psycopg.connect(database_url, autocommit=True, **connect_kwargs(database_url)) as conn:
        queue = QueueClient(conn)
        [job] = queue.claim_pending_job([JobType.INGEST_CSV], "contract-test")
        settings = load_settings({"DATABASE_URL": database_url})
        handle_ingest_csv(job, JobContext(conn, queue, "contract-test", settings))
        assert queue.complete_job(job.id, "contract-test")


@pytest.mark.writes
def test_an_upload_is_ingested_and_its_judgment_can_be_enforced(
    contract_api: TargetApi, contract_db: Any, target: Target, request: pytest.FixtureRequest
) -> None:
    if contract_api.api_key is None:
        pytest.skip("writes need the target's key: pass --api-key (or set DRAGONFLY_API_KEY)")
    client, headers = contract_api.client, contract_api.key_headers()
    content, cases = unique_csv()

    accepted = client.post(
        f"{INTAKE}/upload", files={"file": ("contract.csv", content, "text/csv")}, headers=headers
    )
    again = client.post(
        f"{INTAKE}/upload", files={"file": ("again.csv", content, "text/csv")}, headers=headers
    )
    assert accepted.status_code == 202, accepted.text
    batch_id = accepted.json()["batch_id"]
    assert_error(again, 409, {"duplicate_file"}, batch_id)
    if target.is_local:
        run_ingest_locally(request.getfixturevalue("database_url"))

    def completed() -> dict[str, Any] | None:
        batch: dict[str, Any] = client.get(f"{INTAKE}/batches/{batch_id}").json()
        return batch if batch["status"] in {"completed", "failed"} else None

    batch = wait_until(f"batch {batch_id} to finish", completed, INGEST_TIMEOUT, poll=0.5)
    assert (batch["status"], batch["total_rows"]) == ("completed", 3), batch
    assert (batch["valid_rows"], batch["invalid_rows"]) == (2, 1), batch
    errors = client.get(f"{INTAKE}/batches/{batch_id}/errors").json()
    assert {(e["row_number"], e["error_code"]) for e in errors["errors"]} >= {
        (4, "missing_defendant")
    }
    [(judgment_id,)] = contract_db.execute(
        "SELECT id::text FROM public.judgments WHERE case_number = %s", (cases[0],)
    ).fetchall()
    queued = client.post(
        "/api/v1/enforcement/strategy", json={"judgment_id": judgment_id}, headers=headers
    )
    assert queued.status_code == 202, queued.text
    job = client.get(f"/api/v1/jobs/{queued.json()['job_id']}").json()
    assert job["job_type"] == "enforcement_strategy"
