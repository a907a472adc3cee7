"""Removing the canary's rows: this run's however its check ended, and what dead runs left.

The rows are found by the names the canary gives them (case number `SMOKE-<run id>`, file
`smoke-<run id>.csv`, idempotency key `smoke-<run id>`), never by anything a real row could
carry. The cleanup has a budget of its own: a fresh connection (its connect timeout) and
`CLEANUP_TIMEOUT` per statement, not what is left of the check's time.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from smoke.context import SmokeContext, first_line
from smoke.database import SmokeDatabase
from smoke.runner import CheckFailedError

LEFTOVER_AGE = 5 * 60  # seconds: canary rows older than this belong to a run that died
CLEANUP_TIMEOUT = 10.0  # seconds for each cleanup statement
LOCK_WAIT = 30.0  # seconds the cleanup waits for a canary write in flight (an upload's timeout)
RUN_ID = "[0-9a-f]{12}"  # what smoke.cli's run ids look like
ANY_RUN = {
    "case_pattern": f"^SMOKE-{RUN_ID}$",
    "file_pattern": rf"^smoke-{RUN_ID}\.csv$",
    "key_pattern": "",  # every smoke_canary job: the type exists only for the canary
}


def run_patterns(run_id: str) -> dict[str, str]:
    """The patterns of exactly one run's rows."""
    return {
        "case_pattern": f"^SMOKE-{run_id}$",
        "file_pattern": rf"^smoke-{run_id}\.csv$",
        "key_pattern": f"^smoke-{run_id}$",
    }


@dataclass(frozen=True)
class CanaryRows:
    canary_jobs: int = 0
    judgments: int = 0
    batches: int = 0
    ingest_jobs: int = 0

    @property
    def total(self) -> int:
        return self.canary_jobs + self.judgments + self.batches + self.ingest_jobs

    def __str__(self) -> str:
        parts = [
            (self.canary_jobs, "smoke_canary job"),
            (self.judgments, "SMOKE- judgment"),
            (self.batches, "smoke- batch"),
            (self.ingest_jobs, "ingest_csv job"),
        ]
        return ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in parts if n)


def count(db: SmokeDatabase, patterns: dict[str, str], min_age: float) -> CanaryRows:
    """How many canary rows older than `min_age` seconds match (read-only)."""
    row = db.rows("count_canary_rows", **patterns, min_age=min_age)[0]
    return CanaryRows(*(int(n) for n in row))


def remove(db: SmokeDatabase, patterns: dict[str, str], min_age: float) -> CanaryRows:
    """Delete the matching canary rows in one short read-write transaction; what went."""
    params = {**patterns, "min_age": min_age}
    with db.transaction(write=True) as conn:
        judgments = conn.execute(db.statement("delete_canary_judgments"), params).fetchall()
        batches = conn.execute(db.statement("delete_canary_batches"), params).fetchall()
        job_ids = [job_id for (job_id,) in batches if job_id is not None]
        jobs = conn.execute(
            db.statement("delete_canary_jobs"), {**params, "ingest_job_ids": job_ids}
        ).fetchall()
    kinds = [job_type for (job_type,) in jobs]
    return CanaryRows(
        kinds.count("smoke_canary"), len(judgments), len(batches), kinds.count("ingest_csv")
    )


def teardown_canary(ctx: SmokeContext) -> str | None:
    """The runner calls this after the canary's check, however it ended: stop its writes, then
    remove every row of this run. None when the canary wrote nothing."""
    got_lock = ctx.canary_lock.acquire(timeout=LOCK_WAIT)  # a write in flight finishes first
    ctx.canary_stopped = True
    if got_lock:
        ctx.canary_lock.release()
    if not ctx.canary_wrote or ctx.db_url is None:
        return None
    try:
        with SmokeDatabase.connect(ctx.db_url, CLEANUP_TIMEOUT) as db:
            removed = remove(db, run_patterns(ctx.run_id), min_age=0)
    except psycopg.Error as error:
        raise CheckFailedError(
            f"cleanup failed ({first_line(error)}): remove this run's rows (run id "
            f"{ctx.run_id}) with --allow-writes --canary once {LEFTOVER_AGE // 60} min have passed"
        ) from None
    return f"removed {removed}" if removed.total else "nothing left to remove"
