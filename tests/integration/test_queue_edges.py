"""Edges of the queue contract that the mutation check showed no hand-written test pinned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from reference.jobqueue import JobStatus, JobType, QueueClient

STRATEGY, DRAFTING = JobType.ENFORCEMENT_STRATEGY, JobType.ENFORCEMENT_DRAFTING


def test_a_job_due_this_very_instant_is_claimed(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    instant = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    queue.conn.execute("SELECT set_config('dragonfly.clock_frozen_at', %s, false)", (str(instant),))
    job_id = queue.queue_job(JobType.INGEST_CSV, run_at=instant)

    assert [job.id for job in queue.claim_pending_job([JobType.INGEST_CSV], "w")] == [job_id]


def test_across_types_equal_priorities_are_claimed_oldest_run_at_first(
    queue: QueueClient,
) -> None:
    base = datetime.now(UTC) - timedelta(hours=1)
    # Interleaved run_at across the two types, so each claim compares both types' heads.
    expected = [
        queue.queue_job(STRATEGY if n % 2 else DRAFTING, run_at=base + timedelta(minutes=n))
        for n in range(10)
    ]

    claimed = [queue.claim_pending_job([STRATEGY, DRAFTING], "w")[0].id for _ in expected]

    assert claimed == expected


def test_a_batch_across_types_never_exceeds_batch_size(queue: QueueClient) -> None:
    for _ in range(3):
        queue.queue_job(STRATEGY)
        queue.queue_job(DRAFTING)

    claimed = queue.claim_pending_job([STRATEGY, DRAFTING], "w", batch_size=2)

    assert len(claimed) == 2


def test_a_repeated_key_returns_the_job_of_its_own_type(queue: QueueClient) -> None:
    other_type = queue.queue_job(STRATEGY, idempotency_key="same-key")
    first = queue.queue_job(DRAFTING, idempotency_key="same-key")

    again = queue.queue_job(DRAFTING, idempotency_key="same-key")

    assert again == first
    assert again != other_type


def test_a_batch_completion_leaves_jobs_another_worker_holds(queue: QueueClient) -> None:
    mine, theirs = queue.queue_job(STRATEGY), queue.queue_job(DRAFTING)
    queue.claim_pending_job([STRATEGY], "me")
    queue.claim_pending_job([DRAFTING], "them")

    completed = queue.complete_jobs([mine, theirs], "me")

    assert completed == {mine}
    held = queue.get_job(theirs)
    assert held is not None
    assert (held.status, held.locked_by) == (JobStatus.PROCESSING, "them")
