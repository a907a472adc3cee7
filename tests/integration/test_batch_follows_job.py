"""An ingest batch follows its ingest_csv job's terminal changes, whoever makes them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg

from harness.inputs.uploads import store_upload_bytes
from reference.jobqueue import FailOutcome, JobType, QueueClient

CSV = b"Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date\nCV-1,A,B,$1.00,2024-01-02\n"
WORKER = "worker-a"


def _claimed_batch(conn: psycopg.Connection[Any], max_attempts: int) -> tuple[UUID, UUID]:
    """A stored upload whose job is claimed and whose handler marked the batch processing."""
    batch_id, job_id = store_upload_bytes(conn, "upload.csv", CSV)
    conn.execute("UPDATE ops.job_queue SET max_attempts = %s WHERE id = %s", (max_attempts, job_id))
    [job] = QueueClient(conn).claim_pending_job([JobType.INGEST_CSV], WORKER)
    assert job.id == job_id
    conn.execute("UPDATE ops.ingest_batches SET status = 'processing' WHERE id = %s", (batch_id,))
    return batch_id, job_id


def _batch(conn: psycopg.Connection[Any], batch_id: UUID) -> tuple[str, str | None, bool]:
    row = conn.execute(
        "SELECT status::text, error, finished_at IS NOT NULL FROM ops.ingest_batches WHERE id = %s",
        (batch_id,),
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_a_job_dead_lettered_by_the_reaper_fails_its_batch_with_the_jobs_error(
    db_conn: psycopg.Connection[Any], queue: QueueClient
) -> None:
    batch_id, job_id = _claimed_batch(db_conn, max_attempts=1)
    db_conn.execute(
        "UPDATE ops.job_queue SET locked_at = now() - interval '31 minutes',"
        " lease_expires_at = now() - interval '1 minute' WHERE id = %s",
        (job_id,),
    )

    [reaped] = queue.reap_stuck_jobs()

    assert reaped.status == "failed"
    status, error, finished = _batch(db_conn, batch_id)
    assert (status, finished) == ("failed", True)
    assert error is not None
    assert "dead-lettered" in error
    assert "lease expired" in error


def test_fail_job_moves_the_batch_to_waiting_for_retry_then_to_failed(
    db_conn: psycopg.Connection[Any], queue: QueueClient
) -> None:
    batch_id, job_id = _claimed_batch(db_conn, max_attempts=2)

    assert queue.fail_job(job_id, WORKER, "OSError: disk on fire") is FailOutcome.RETRY_SCHEDULED
    status, error, finished = _batch(db_conn, batch_id)
    assert (status, finished) == ("queued", False)
    assert error is not None
    assert error.startswith("waiting to retry: attempt 1 of 2 failed (OSError: disk on fire)")

    db_conn.execute("UPDATE ops.job_queue SET run_at = now() WHERE id = %s", (job_id,))
    [again] = queue.claim_pending_job([JobType.INGEST_CSV], WORKER)
    assert queue.fail_job(again.id, WORKER, "OSError: still on fire") is FailOutcome.DEAD_LETTERED
    status, error, finished = _batch(db_conn, batch_id)
    assert (status, finished) == ("failed", True)
    assert error is not None
    assert "OSError: still on fire" in error


def test_a_completed_batch_is_left_alone_when_its_job_fails_afterwards(
    db_conn: psycopg.Connection[Any], queue: QueueClient
) -> None:
    batch_id, job_id = _claimed_batch(db_conn, max_attempts=1)
    db_conn.execute("UPDATE ops.ingest_batches SET status = 'completed' WHERE id = %s", (batch_id,))

    queue.fail_job(job_id, WORKER, "RuntimeError: after the commit")

    assert _batch(db_conn, batch_id)[:2] == ("completed", None)


def test_fail_job_can_dead_letter_at_once_when_no_retry_can_help(
    db_conn: psycopg.Connection[Any], queue: QueueClient
) -> None:
    batch_id, job_id = _claimed_batch(db_conn, max_attempts=5)

    outcome = queue.fail_job(job_id, WORKER, "BatchNotFoundError: gone", permanent=True)

    assert outcome is FailOutcome.DEAD_LETTERED
    job = queue.get_job(job_id)
    assert job is not None
    assert (job.status, job.attempts) == ("failed", 1)
    assert _batch(db_conn, batch_id)[0] == "failed"
