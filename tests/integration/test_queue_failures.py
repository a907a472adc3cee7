"""fail_job backoff and dead-lettering, reap_stuck_jobs, lease extension, and fencing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from reference.jobqueue import FailOutcome, Job, JobStatus, JobType, QueueClient

INGEST = [JobType.INGEST_CSV]


def _claim_one(queue: QueueClient, worker_id: str) -> Job:
    [job] = queue.claim_pending_job(INGEST, worker_id)
    return job


def _make_due(conn: psycopg.Connection[Any], job_id: UUID) -> None:
    conn.execute("UPDATE ops.job_queue SET run_at = now() WHERE id = %s", (job_id,))


def _expire_lease(conn: psycopg.Connection[Any], job_id: UUID, age: str = "31 minutes") -> None:
    """Date the job's lease (taken with the default 30-minute timeout) `age` ago."""
    conn.execute(
        "UPDATE ops.job_queue SET locked_at = now() - %s::interval,"
        " lease_expires_at = now() - %s::interval + ops.default_lock_timeout() WHERE id = %s",
        (age, age, job_id),
    )


def _backoff_seconds(conn: psycopg.Connection[Any], job_id: UUID) -> float:
    # fail_job and the reaper set run_at = now() + backoff and updated_at = now() in one
    # statement, so the difference is the backoff exactly.
    row = conn.execute(
        "SELECT extract(epoch FROM run_at - updated_at) FROM ops.job_queue WHERE id = %s",
        (job_id,),
    ).fetchone()
    assert row is not None
    return float(row[0])


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(0, 30), (1, 60), (2, 120), (3, 240), (5, 960), (6, 1920), (7, 3600), (40, 3600)],
)
def test_retry_backoff_is_30s_times_2_to_the_attempts_capped_at_an_hour(
    db_conn: psycopg.Connection[Any], attempts: int, seconds: int
) -> None:
    row = db_conn.execute(
        "SELECT extract(epoch FROM ops.retry_backoff(%s))", (attempts,)
    ).fetchone()
    assert row is not None
    assert float(row[0]) == seconds


def test_fail_job_schedules_retries_with_backoff_then_dead_letters(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    job_id = queue.queue_job(JobType.INGEST_CSV, max_attempts=3)

    for attempt in (1, 2):
        job = _claim_one(queue, "w")
        assert job.attempts == attempt
        assert queue.fail_job(job_id, "w", f"boom {attempt}") is FailOutcome.RETRY_SCHEDULED
        assert _backoff_seconds(db_conn, job_id) == 30 * 2**attempt
        retried = queue.get_job(job_id)
        assert retried is not None
        assert retried.status is JobStatus.PENDING
        assert retried.locked_by is None
        assert retried.locked_at is None
        assert retried.last_error == f"boom {attempt}"
        assert queue.claim_pending_job(INGEST, "w") == []  # not before the backoff
        _make_due(db_conn, job_id)

    _claim_one(queue, "w")
    assert queue.fail_job(job_id, "w", "boom 3") is FailOutcome.DEAD_LETTERED

    dead = queue.get_job(job_id)
    assert dead is not None
    assert dead.status is JobStatus.FAILED
    assert dead.dead_lettered_at is not None
    assert dead.attempts == 3
    assert dead.last_error == "boom 3"
    _make_due(db_conn, job_id)
    assert queue.claim_pending_job(INGEST, "w") == []


def test_complete_job_records_completion(queue: QueueClient) -> None:
    job_id = queue.queue_job(JobType.INGEST_CSV)
    _claim_one(queue, "w")

    assert queue.complete_job(job_id, "w") is True

    done = queue.get_job(job_id)
    assert done is not None
    assert done.status is JobStatus.COMPLETED
    assert done.completed_at is not None
    assert done.locked_by == "w"  # kept as the record of who finished it
    assert queue.complete_job(job_id, "w") is False  # not twice


def test_reap_returns_only_expired_leases_to_pending_with_backoff(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    stuck_id = queue.queue_job(JobType.INGEST_CSV, priority=2)
    fresh_id = queue.queue_job(JobType.INGEST_CSV, priority=1)
    _claim_one(queue, "w-stuck")
    _claim_one(queue, "w-fresh")
    _expire_lease(db_conn, stuck_id)
    _expire_lease(db_conn, fresh_id, "29 minutes")

    reaped = queue.reap_stuck_jobs()

    assert [job.id for job in reaped] == [stuck_id]
    [job] = reaped
    assert job.status is JobStatus.PENDING
    assert job.reap_count == 1
    assert job.locked_by is None
    assert job.last_error is not None
    assert "lease expired: w-stuck held the job" in job.last_error
    assert _backoff_seconds(db_conn, stuck_id) == 60  # attempts = 1
    still_running = queue.get_job(fresh_id)
    assert still_running is not None
    assert still_running.status is JobStatus.PROCESSING
    assert queue.reap_stuck_jobs() == []


def test_reap_honours_a_custom_lock_timeout(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    job_id = queue.queue_job(JobType.INGEST_CSV)
    _claim_one(queue, "w")
    _expire_lease(db_conn, job_id, "3 minutes")
    # A lease without an expiry (claimed before migration 0011): dated by the reaper's timeout.
    db_conn.execute("UPDATE ops.job_queue SET lease_expires_at = NULL WHERE id = %s", (job_id,))

    assert queue.reap_stuck_jobs(timedelta(minutes=5)) == []
    assert [job.id for job in queue.reap_stuck_jobs(timedelta(minutes=2))] == [job_id]


def test_reap_dead_letters_a_job_whose_attempts_are_used_up(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    job_id = queue.queue_job(JobType.INGEST_CSV, max_attempts=1)
    _claim_one(queue, "w")
    _expire_lease(db_conn, job_id)

    [job] = queue.reap_stuck_jobs()

    assert job.status is JobStatus.FAILED
    assert job.dead_lettered_at is not None
    assert job.reap_count == 1


def test_extend_lock_keeps_a_long_job_from_being_reaped(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    job_id = queue.queue_job(JobType.INGEST_CSV)
    _claim_one(queue, "w")
    _expire_lease(db_conn, job_id)

    assert queue.extend_lock(job_id, "w") is True
    assert queue.extend_lock(job_id, "someone-else") is False

    assert queue.reap_stuck_jobs() == []
    assert queue.complete_job(job_id, "w") is True


def test_a_reaped_worker_cannot_complete_fail_or_extend_the_new_owners_job(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    job_id = queue.queue_job(JobType.INGEST_CSV)
    _claim_one(queue, "worker-a")
    _expire_lease(db_conn, job_id)
    queue.reap_stuck_jobs()
    _make_due(db_conn, job_id)
    reclaimed = _claim_one(queue, "worker-b")
    assert reclaimed.id == job_id
    assert reclaimed.attempts == 2

    assert queue.complete_job(job_id, "worker-a") is False
    assert queue.fail_job(job_id, "worker-a", "late failure") is FailOutcome.LEASE_LOST
    assert queue.extend_lock(job_id, "worker-a") is False

    owned = queue.get_job(job_id)
    assert owned is not None
    assert owned.status is JobStatus.PROCESSING
    assert owned.locked_by == "worker-b"
    assert owned.last_error is not None
    assert "late failure" not in owned.last_error
    assert queue.complete_job(job_id, "worker-b") is True


def test_fencing_holds_while_the_job_is_back_in_pending(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    job_id = queue.queue_job(JobType.INGEST_CSV)
    _claim_one(queue, "worker-a")
    _expire_lease(db_conn, job_id)
    queue.reap_stuck_jobs()

    assert queue.complete_job(job_id, "worker-a") is False
    assert queue.fail_job(job_id, "worker-a", "late") is FailOutcome.LEASE_LOST
    pending = queue.get_job(job_id)
    assert pending is not None
    assert pending.status is JobStatus.PENDING


def test_heartbeats_upsert_and_show_in_worker_status(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    queue.register_heartbeat("ingest-1", "ingest_processor", "host-a", "starting")
    queue.register_heartbeat("ingest-1", "ingest_processor", "host-a", "busy")

    rows = db_conn.execute(
        "SELECT worker_id, worker_type, hostname, status, is_stale FROM ops.v_worker_status"
    ).fetchall()
    assert rows == [("ingest-1", "ingest_processor", "host-a", "busy", False)]


def test_held_jobs_lists_only_the_workers_processing_jobs(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    mine = queue.queue_job(JobType.INGEST_CSV, priority=2)
    theirs = queue.queue_job(JobType.INGEST_CSV, priority=1)
    done = queue.queue_job(JobType.INGEST_CSV, priority=0)
    _claim_one(queue, "worker-a")
    _claim_one(queue, "worker-b")
    _claim_one(queue, "worker-a")
    queue.complete_job(done, "worker-a")

    assert [job.id for job in queue.held_jobs("worker-a")] == [mine]
    assert [job.id for job in queue.held_jobs("worker-b")] == [theirs]
