"""A job that outlives its lease while its worker still runs: taken back, done once.

The operator's reaper takes the lease of a long ingest while the worker is still in it. The
worker must notice (its complete is fenced), the job is claimed again and finished, and the
audit shows one completed job and every row ingested once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from harness.faults import FaultTally
from harness.faults.audit import FaultFigures
from harness.inputs.csvgen import write_simplicity_csv
from harness.inputs.uploads import store_upload
from harness.stack.processes import ReferenceStack
from harness.waiting import wait_until
from reference.jobqueue import QueueClient

ROWS = 60_000


def test_a_job_that_outlives_its_lease_is_finished_once(
    reference_stack: ReferenceStack,
    db_conn: psycopg.Connection[Any],
    tmp_path: Path,
    report_faults: Callable[[str], None],
) -> None:
    csv_path = write_simplicity_csv(tmp_path / "long.csv", ROWS)
    batch_id, job_id = store_upload(db_conn, csv_path)
    worker = reference_stack.start_worker("ingest")
    queue = QueueClient(db_conn)

    def in_hand() -> bool:
        job = queue.get_job(job_id)
        return job is not None and job.status == "processing"

    wait_until("the worker to claim the ingest", in_hand)

    def in_transaction() -> bool:  # the worker's session inside the ingest, having written
        row = db_conn.execute(
            "SELECT count(*) FROM ops.job_queue AS q JOIN pg_stat_activity AS a "
            "ON a.application_name = q.locked_by WHERE q.id = %s AND a.backend_xid IS NOT NULL "
            "AND a.query NOT LIKE %s",
            (job_id, "%start_batch%"),
        ).fetchone()
        return row == (1,)

    wait_until("the ingest's transaction to be under way", in_transaction, poll=0.01)
    with db_conn.transaction():  # the lease runs out and is taken back, with no extend between
        db_conn.execute(
            "UPDATE ops.job_queue SET lease_expires_at = now() - interval '1 second' WHERE id = %s",
            (job_id,),
        )
        reaped = queue.reap_stuck_jobs(timedelta(milliseconds=1))
    assert [job.id for job in reaped] == [job_id]
    # The operator retries it at once instead of after the 30 s backoff.
    db_conn.execute("UPDATE ops.job_queue SET run_at = now() WHERE id = %s", (job_id,))

    def finished() -> bool:
        job = queue.get_job(job_id)
        return job is not None and job.status == "completed"

    wait_until("the job to be finished after its lease was lost", finished, timeout=180)
    job = queue.get_job(job_id)
    assert job is not None
    assert (job.attempts, job.reap_count) == (2, 1)
    judgments = db_conn.execute("SELECT count(*) FROM public.judgments").fetchone()
    batch = db_conn.execute(
        "SELECT status::text, total_rows FROM ops.ingest_batches WHERE id = %s", (batch_id,)
    ).fetchone()
    assert batch == ("completed", ROWS)
    assert judgments == (ROWS,), "every row ingested exactly once"
    log = worker.stderr()  # it said it lost the job rather than completing it
    assert f"lease on {job_id} was lost" in log or f"lease lost: job {job_id}" in log, log[-2000:]
    # Landed: the first attempt was in its transaction and committed nothing; the second did.
    attempts = db_conn.execute(
        "SELECT array_agg(attempt ORDER BY attempt), count(DISTINCT effect_key) "
        "FROM ops.effect_log WHERE job_id = %s",
        (job_id,),
    ).fetchone()
    tally = FaultTally("lease_outlived", minimum=1)
    tally.count(attempts == ([2], 1))
    tally.require_landed()
    figures = FaultFigures(
        jobs=1,
        completed=1,
        lost=0,
        reexecuted=1,
        duplicated=0,
        applications=len(attempts[0] if attempts else []),
    )
    report_faults(tally.line(figures))
