"""The opt-in canary: a smoke_canary job a worker must complete, and optionally a one-row CSV.

It writes only rows it creates (named after this run's id). The runner removes them after the
check however it ended (`canary_cleanup.teardown_canary`), and each canary run first removes
what runs that died left behind; a read-only run reports those leftovers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx

from harness.waiting import WaitTimeoutError, wait_until
from reference.jobqueue import JobType, QueueClient
from smoke import canary_cleanup
from smoke.context import SmokeContext
from smoke.database import SmokeDatabase
from smoke.http_checks import HTTP_TIMEOUT, describe_body, json_object
from smoke.runner import CheckFailedError, CheckSkippedError

POLL = 0.2  # seconds between looks at the canary
CSV_HEADER = "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County"


@contextmanager
def _writing(ctx: SmokeContext) -> Iterator[None]:
    """One canary write; none once the cleanup has begun (the runner gave up on the check)."""
    with ctx.canary_lock:
        if ctx.canary_stopped:
            raise CheckFailedError("stopped: the canary's cleanup has begun")
        ctx.canary_wrote = True
        yield


def _completed_job(db: SmokeDatabase, job_id: UUID, budget: float) -> tuple[str, str]:
    def state() -> tuple[str, str] | None:
        rows = db.rows("job_state", job_id=job_id)
        return (rows[0][0], rows[0][1] or "") if rows and rows[0][0] == "completed" else None

    try:
        return wait_until("the canary", state, budget, POLL)
    except WaitTimeoutError:
        rows = db.rows("job_state", job_id=job_id)
        status, holder = rows[0] if rows else ("gone", None)
        held = f", held by {holder}" if holder else ""
        raise CheckFailedError(
            f"smoke_canary job {job_id} was not picked up within {budget:.0f}s (still {status}"
            f"{held}): no worker is claiming jobs; check the workers' logs and heartbeats"
        ) from None


def _job_canary(ctx: SmokeContext, db: SmokeDatabase) -> str:
    started = time.monotonic()
    with _writing(ctx), db.transaction(write=True) as conn:
        job_id = QueueClient(conn).queue_job(
            JobType.SMOKE_CANARY,
            {"smoke": True, "run_id": ctx.run_id},
            priority=100,
            idempotency_key=f"smoke-{ctx.run_id}",
            max_attempts=1,
        )
    _, worker = _completed_job(db, job_id, ctx.thresholds.canary_timeout)
    return f"smoke_canary completed by {worker} in {time.monotonic() - started:.1f}s"


def _upload(ctx: SmokeContext, client: httpx.Client, filename: str, case_number: str) -> Any:
    body = f"{CSV_HEADER}\n{case_number},Smoke Plaintiff,Smoke Defendant,$1.00,2024-01-01,Smoke\n"
    with _writing(ctx):
        response = client.post(
            "/api/v1/intake/upload", files={"file": (filename, body.encode(), "text/csv")}
        )
    if response.status_code != 202:
        raise CheckFailedError(
            f"CSV upload answered {response.status_code} ({describe_body(response)})"
        )
    return json_object(response) or {}


def _csv_canary(ctx: SmokeContext) -> str:
    """Upload one tagged row through the Intake Station and follow it to completion."""
    if ctx.api_url is None or not ctx.api_key:
        raise CheckFailedError(
            "cannot run the CSV canary: it needs the API URL and DRAGONFLY_API_KEY"
        )
    case_number, filename = f"SMOKE-{ctx.run_id}", f"smoke-{ctx.run_id}.csv"
    headers = {"X-DRAGONFLY-API-KEY": ctx.api_key}
    with httpx.Client(
        base_url=ctx.api_url, headers=headers, timeout=HTTP_TIMEOUT, trust_env=False
    ) as client:
        batch_id = _upload(ctx, client, filename, case_number).get("batch_id")

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
    return f"CSV row {case_number} ingested"


def _leftovers(ctx: SmokeContext, db: SmokeDatabase) -> str | None:
    """Canary rows of runs that died: removed when this run may write, else reported."""
    age = max(canary_cleanup.LEFTOVER_AGE, 2 * ctx.thresholds.canary_timeout)
    patterns = canary_cleanup.ANY_RUN
    if not ctx.canary:
        left = canary_cleanup.count(db, patterns, age)
        if left.total:
            raise CheckFailedError(
                f"{left} left by earlier runs (older than {age / 60:.0f} min, e.g. a killed "
                "canary): remove them with --allow-writes --canary"
            )
        return None
    with _writing(ctx):
        removed = canary_cleanup.remove(db, patterns, age)
    return f"removed canary leftovers of earlier runs: {removed}" if removed.total else None


def check_canary(ctx: SmokeContext) -> str:
    if not ctx.canary and (ctx.db_url is None or ctx.db_error is not None):
        raise CheckSkippedError(
            "opt-in: pass --canary to have a worker complete a smoke_canary job"
        )
    with ctx.connect() as db:
        details = [note] if (note := _leftovers(ctx, db)) else []
        if not ctx.canary:
            raise CheckSkippedError(
                "opt-in: pass --canary to have a worker complete a smoke_canary job "
                "(no canary leftovers found)"
            )
        details.append(_job_canary(ctx, db))
    if ctx.canary_csv:
        details.append(_csv_canary(ctx))
    return "; ".join(details)
