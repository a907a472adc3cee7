"""ops.queue_job and ops.claim_pending_job: ordering, scheduling, batches, attempts, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from reference.jobqueue import (
    InvalidArgumentError,
    JobStatus,
    JobType,
    QueueClient,
    UnknownJobTypeError,
)

INGEST = [JobType.INGEST_CSV]


def test_claim_marks_the_job_processing_with_lease_and_attempt(queue: QueueClient) -> None:
    job_id = queue.queue_job(JobType.INGEST_CSV, {"batch_id": "b1"})

    [job] = queue.claim_pending_job(INGEST, "worker-a")

    assert job.id == job_id
    assert job.status is JobStatus.PROCESSING
    assert job.locked_by == "worker-a"
    assert job.locked_at is not None
    assert job.attempts == 1
    assert job.payload == {"batch_id": "b1"}
    assert queue.claim_pending_job(INGEST, "worker-b") == []


def test_claims_come_in_priority_then_run_at_then_id_order(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    base = datetime.now(UTC) - timedelta(minutes=10)
    low_old = queue.queue_job(JobType.INGEST_CSV, priority=0, run_at=base)
    high_new = queue.queue_job(JobType.INGEST_CSV, priority=5, run_at=base + timedelta(minutes=5))
    high_old = queue.queue_job(JobType.INGEST_CSV, priority=5, run_at=base)
    low_new = queue.queue_job(JobType.INGEST_CSV, priority=0, run_at=base + timedelta(minutes=1))
    # Two jobs with the same priority and run_at are ordered by id.
    tie_a = queue.queue_job(JobType.INGEST_CSV, priority=1, run_at=base)
    tie_b = queue.queue_job(JobType.INGEST_CSV, priority=1, run_at=base)
    tie_first, tie_second = sorted([tie_a, tie_b])

    claimed = [queue.claim_pending_job(INGEST, "w")[0].id for _ in range(6)]

    assert claimed == [high_old, high_new, tie_first, tie_second, low_old, low_new]


def test_a_job_whose_run_at_is_in_the_future_is_not_claimable(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    later = queue.queue_job(JobType.INGEST_CSV, run_at=datetime.now(UTC) + timedelta(minutes=5))

    assert queue.claim_pending_job(INGEST, "w") == []

    db_conn.execute("UPDATE ops.job_queue SET run_at = now() - interval '1 second'")
    assert [job.id for job in queue.claim_pending_job(INGEST, "w")] == [later]


def test_batch_claim_returns_up_to_batch_size_jobs_in_order(queue: QueueClient) -> None:
    ids = [queue.queue_job(JobType.INGEST_CSV, {"n": n}, priority=n) for n in range(7)]

    first = queue.claim_pending_job(INGEST, "w", batch_size=5)
    rest = queue.claim_pending_job(INGEST, "w", batch_size=5)

    assert [job.id for job in first] == list(reversed(ids))[:5]
    assert [job.id for job in rest] == list(reversed(ids))[5:]
    assert all(job.locked_by == "w" and job.attempts == 1 for job in first + rest)
    assert queue.claim_pending_job(INGEST, "w", batch_size=5) == []


def test_claim_takes_only_the_requested_types_across_several(queue: QueueClient) -> None:
    ingest = queue.queue_job(JobType.INGEST_CSV, priority=1)
    strategy = queue.queue_job(JobType.ENFORCEMENT_STRATEGY, priority=3)
    drafting = queue.queue_job(JobType.ENFORCEMENT_DRAFTING, priority=2)

    claimed = queue.claim_pending_job(
        [JobType.ENFORCEMENT_STRATEGY, JobType.ENFORCEMENT_DRAFTING], "enforcer", batch_size=10
    )

    assert [job.id for job in claimed] == [strategy, drafting]
    assert [job.id for job in queue.claim_pending_job(INGEST, "ingester")] == [ingest]


def test_attempts_count_every_claim(queue: QueueClient, db_conn: psycopg.Connection[Any]) -> None:
    job_id = queue.queue_job(JobType.INGEST_CSV)
    for expected in (1, 2, 3):
        [job] = queue.claim_pending_job(INGEST, "w")
        assert job.attempts == expected
        queue.fail_job(job_id, "w", f"failure {expected}")
        db_conn.execute("UPDATE ops.job_queue SET run_at = now() WHERE id = %s", (job_id,))


def test_same_idempotency_key_returns_the_existing_job(queue: QueueClient) -> None:
    first = queue.queue_job(JobType.INGEST_CSV, {"v": 1}, idempotency_key="sha-1")
    again = queue.queue_job(JobType.INGEST_CSV, {"v": 2}, idempotency_key="sha-1")
    other_type = queue.queue_job(JobType.ENFORCEMENT_STRATEGY, idempotency_key="sha-1")
    other_key = queue.queue_job(JobType.INGEST_CSV, idempotency_key="sha-2")

    assert again == first
    assert len({first, other_type, other_key}) == 3
    job = queue.get_job(first)
    assert job is not None
    assert job.payload == {"v": 1}


def test_trace_context_is_stored_with_the_job(queue: QueueClient) -> None:
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    job_id = queue.queue_job(JobType.INGEST_CSV, trace_context=carrier)

    job = queue.get_job(job_id)
    assert job is not None
    assert job.trace_context == carrier


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda q: q.queue_job("ingest_pdf"), "unknown job type 'ingest_pdf': expected one of"),
        (lambda q: q.claim_pending_job(["nope"], "w"), "unknown job type 'nope'"),
    ],
)
def test_unknown_job_types_are_rejected_by_the_client(
    queue: QueueClient, call: Any, message: str
) -> None:
    with pytest.raises(UnknownJobTypeError, match=message):
        call(queue)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("SELECT ops.queue_job('ingest_pdf')", "unknown job type 'ingest_pdf'"),
        (
            "SELECT * FROM ops.claim_pending_job(ARRAY['ingest_csv', 'x'], 'w')",
            "unknown job type 'x'",
        ),
        ("SELECT * FROM ops.claim_pending_job(ARRAY[]::text[], 'w')", "at least one job type"),
        ("SELECT * FROM ops.claim_pending_job(ARRAY['ingest_csv'], ' ')", "worker_id must be"),
        ("SELECT * FROM ops.claim_pending_job(ARRAY['ingest_csv'], 'w', 0)", "batch_size must be"),
        ("SELECT ops.queue_job('ingest_csv', '[1]')", "payload must be a JSON object"),
        ("SELECT ops.queue_job('ingest_csv', idempotency_key => '')", "idempotency_key must be"),
        ("SELECT ops.queue_job('ingest_csv', max_attempts => 0)", "max_attempts at least 1"),
        ("SELECT * FROM ops.reap_stuck_jobs(interval '-1 minute')", "lock_timeout must be"),
        ("SELECT ops.register_heartbeat('w', 'ingest', 'h', 'dancing')", "unknown worker status"),
    ],
)
def test_the_sql_functions_reject_bad_arguments_with_a_clear_message(
    db_conn: psycopg.Connection[Any], statement: str, message: str
) -> None:
    with pytest.raises(psycopg.Error, match=message) as raised:
        db_conn.execute(statement.encode())
    assert raised.value.sqlstate in {"DFQ01", "DFQ02"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda q: q.claim_pending_job([], "w"), "at least one job type"),
        (lambda q: q.claim_pending_job(INGEST, ""), "worker_id must be a non-empty string"),
        (lambda q: q.claim_pending_job(INGEST, "w", batch_size=1001), "between 1 and 1000"),
        (lambda q: q.queue_job(JobType.INGEST_CSV, run_at=datetime(2030, 1, 1)), "timezone-aware"),
        (lambda q: q.queue_job(JobType.INGEST_CSV, idempotency_key=""), "idempotency_key"),
        (lambda q: q.reap_stuck_jobs(timedelta(0)), "lock_timeout must be positive"),
        (lambda q: q.register_heartbeat("w", "ingest", "h", "dancing"), "unknown worker status"),
    ],
)
def test_the_client_rejects_bad_arguments_with_a_clear_message(
    queue: QueueClient, call: Any, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        call(queue)


def test_the_client_requires_an_autocommit_connection(database_url: str) -> None:
    with (
        psycopg.connect(database_url) as conn,
        pytest.raises(InvalidArgumentError, match="autocommit"),
    ):
        QueueClient(conn)


def test_get_job_of_an_unknown_id_is_none(queue: QueueClient) -> None:
    assert queue.get_job(UUID(int=1)) is None
