"""The opt-in canary: a smoke_canary job a worker must complete, and optionally a one-row CSV.

It writes only rows it creates (identified by this run's id) and removes them afterwards,
whether the check passed or not.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import httpx
import psycopg

from harness.waiting import WaitTimeoutError, wait_until
from reference.jobqueue import JobType, QueueClient
from smoke.context import SmokeContext
from smoke.http_checks import HTTP_TIMEOUT, describe_body, json_object
from smoke.runner import CheckFailedError, CheckSkippedError
from smoke.sql import query

POLL = 0.2  # seconds between looks at the canary
CSV_HEADER = "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County"


def _completed_job(conn: psycopg.Connection[Any], job_id: UUID, budget: float) -> tuple[str, str]:
    def state() -> tuple[str, str] | None:
        row = conn.execute(query("job_state"), {"job_id": job_id}).fetchone()
        return (row[0], row[1] or "") if row and row[0] == "completed" else None

    try:
        return wait_until("the canary", state, budget, POLL)
    except WaitTimeoutError:
        row = conn.execute(query("job_state"), {"job_id": job_id}).fetchone()
        status, holder = (row[0], row[1]) if row else ("gone", None)
        held = f", held by {holder}" if holder else ""
        raise CheckFailedError(
            f"smoke_canary job {job_id} was not picked up within {budget:.0f}s (still {status}"
            f"{held}): no worker is claiming jobs; check the workers' logs and heartbeats"
        ) from None


def _job_canary(ctx: SmokeContext, conn: psycopg.Connection[Any]) -> str:
    started = time.monotonic()
    job_id = QueueClient(conn).queue_job(
        JobType.SMOKE_CANARY,
        {"smoke": True, "run_id": ctx.run_id},
        priority=100,
        idempotency_key=f"smoke-{ctx.run_id}",
        max_attempts=1,
    )
    try:
        _, worker = _completed_job(conn, job_id, ctx.thresholds.canary_timeout)
    finally:
        conn.execute(query("delete_canary_job"), {"job_id": job_id})
    return f"smoke_canary completed by {worker} in {time.monotonic() - started:.1f}s"


def _upload(ctx: SmokeContext, client: httpx.Client, filename: str, case_number: str) -> Any:
    body = f"{CSV_HEADER}\n{case_number},Smoke Plaintiff,Smoke Defendant,$1.00,2024-01-01,Smoke\n"
    response = client.post(
        "/api/v1/intake/upload", files={"file": (filename, body.encode(), "text/csv")}
    )
    if response.status_code != 202:
        raise CheckFailedError(
            f"CSV upload answered {response.status_code} ({describe_body(response)})"
        )
    return json_object(response) or {}


def _csv_canary(ctx: SmokeContext, conn: psycopg.Connection[Any]) -> str:
    """Upload one tagged row through the Intake Station, follow it, remove what it created."""
    if ctx.api_url is None or not ctx.api_key:
        raise CheckFailedError(
            "cannot run the CSV canary: it needs the API URL and DRAGONFLY_API_KEY"
        )
    case_number, filename = f"SMOKE-{ctx.run_id}", f"smoke-{ctx.run_id}.csv"
    headers = {"X-DRAGONFLY-API-KEY": ctx.api_key}
    with httpx.Client(
        base_url=ctx.api_url, headers=headers, timeout=HTTP_TIMEOUT, trust_env=False
    ) as client:
        accepted = _upload(ctx, client, filename, case_number)
        batch_id, job_id = accepted.get("batch_id"), accepted.get("job_id")
        try:

            def finished() -> dict[str, Any] | None:
                batch = json_object(client.get(f"/api/v1/intake/batches/{batch_id}")) or {}
                return batch if batch.get("status") in ("completed", "failed") else None

            try:
                batch = wait_until("the CSV canary", finished, ctx.thresholds.canary_timeout, POLL)
            except WaitTimeoutError:
                raise CheckFailedError(
                    f"the CSV canary's batch {batch_id} did not finish within "
                    f"{ctx.thresholds.canary_timeout:.0f}s: is the Ingest Processor running?"
                ) from None
            if batch.get("status") != "completed" or batch.get("valid_rows") != 1:
                raise CheckFailedError(f"the CSV canary's batch {batch_id} ended {batch}")
        finally:
            params = {"case_number": case_number, "batch_id": batch_id, "filename": filename}
            conn.execute(query("delete_smoke_judgment"), params)
            conn.execute(query("delete_smoke_batch"), params)
            conn.execute(query("delete_smoke_ingest_job"), {"job_id": job_id})
    return f"CSV row {case_number} ingested and removed"


def check_canary(ctx: SmokeContext) -> str:
    if not ctx.canary:
        raise CheckSkippedError(
            "opt-in: pass --canary to have a worker complete a smoke_canary job"
        )
    with ctx.connect(writable=True) as conn:
        details = [_job_canary(ctx, conn)]
        if ctx.canary_csv:
            details.append(_csv_canary(ctx, conn))
    return "; ".join(details)
