"""A batch's settlement and the next batch's claim in one statement (complete_jobs_and_claim).

The statement composes the contract's complete_jobs and claim_pending_job; what it must keep:
one commit for both, the completion fenced, and the completion before the claim. The last is
checked with a held job that was reaped and is pending again: completed first, it is not
completed (no longer ours) and is claimed again; claimed first, this worker would hold it again
and complete an attempt that never ran. The claim-first variant is kept to show the check fails.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from harness.faults import expire_leases
from reference.jobqueue import InvalidArgumentError, JobType, QueueClient
from reference.jobqueue.client import MAX_BATCH_SIZE
from reference.jobqueue.sql import query

PROBE = [JobType.LOAD_PROBE]
# The wrong order: the completion's ids wait on the claim, so the claim runs first.
CLAIM_FIRST = """
WITH claimed AS MATERIALIZED (
    SELECT * FROM ops.claim_pending_job(job_types => %(job_types)s, worker_id => %(worker_id)s,
        batch_size => %(batch_size)s, lock_timeout => ops.default_lock_timeout())
), completed AS MATERIALIZED (
    SELECT coalesce(array_agg(done.id), '{}') AS completed_ids
    FROM ops.complete_jobs(
        job_ids => CASE WHEN (SELECT count(*) FROM claimed) >= 0 THEN %(job_ids)s::uuid[] END,
        worker_id => %(worker_id)s) AS done (id)
)
SELECT completed.completed_ids, claimed.* FROM completed LEFT JOIN claimed ON true
"""


def statuses(conn: psycopg.Connection[Any], ids: list[UUID]) -> dict[UUID, tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT id, status::text, attempts, locked_by FROM ops.job_queue WHERE id = ANY(%s)",
        (ids,),
    ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_the_batch_is_completed_and_the_next_claimed_in_one_commit(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    ids = [queue.queue_job(JobType.LOAD_PROBE) for _ in range(6)]
    held = queue.claim_pending_job(PROBE, "w", 3)

    completed, claimed = queue.complete_jobs_and_claim([j.id for j in held], "w", PROBE, 3)

    assert completed == {j.id for j in held}
    assert {j.id for j in claimed} == set(ids) - completed
    assert all((j.status.value, j.attempts, j.locked_by) == ("processing", 1, "w") for j in claimed)
    assert set(statuses(db_conn, ids).values()) == {("completed", 1, "w"), ("processing", 1, "w")}
    writers = db_conn.execute(
        "SELECT count(DISTINCT xmin::text) FROM ops.job_queue WHERE id = ANY(%s)", (ids,)
    ).fetchone()
    assert writers == (1,), "the completion and the claim committed apart"


def test_a_job_given_away_is_not_completed_and_the_claim_still_happens(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    first, second = (queue.queue_job(JobType.LOAD_PROBE) for _ in range(2))
    queue.claim_pending_job(PROBE, "w", 2)
    db_conn.execute("UPDATE ops.job_queue SET locked_by = 'thief' WHERE id = %s", (second,))
    waiting = queue.queue_job(JobType.LOAD_PROBE)

    completed, claimed = queue.complete_jobs_and_claim([first, second], "w", PROBE, 5)

    assert completed == {first}
    assert [j.id for j in claimed] == [waiting]
    assert statuses(db_conn, [second])[second] == ("processing", 1, "thief")


def test_with_nothing_to_claim_the_completion_still_comes_back(
    queue: QueueClient, db_conn: psycopg.Connection[Any]
) -> None:
    job_id = queue.queue_job(JobType.LOAD_PROBE)
    queue.claim_pending_job(PROBE, "w")

    assert queue.complete_jobs_and_claim([job_id], "w", PROBE, 10) == ({job_id}, [])
    assert queue.complete_jobs_and_claim([], "w", PROBE, 10) == (set(), [])
    assert statuses(db_conn, [job_id])[job_id] == ("completed", 1, "w")


def reaped_job_settled_by(
    statement: bytes | str, queue: QueueClient, db_conn: psycopg.Connection[Any], url: str
) -> tuple[set[UUID], tuple[Any, ...]]:
    """A job held by w is reaped and due again; w then settles it with `statement`."""
    job_id = queue.queue_job(JobType.LOAD_PROBE)
    queue.claim_pending_job(PROBE, "w")
    assert expire_leases(url, timedelta(microseconds=1)) == 1  # reaped, due at once
    params = {"job_ids": [job_id], "worker_id": "w", "job_types": ["load_probe"],
              "batch_size": 1, "lock_timeout": None}  # fmt: skip
    with queue.conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(statement, params).fetchall()  # type: ignore[arg-type]
    return set(rows[0]["completed_ids"]), statuses(db_conn, [job_id])[job_id]


def test_a_reaped_job_due_again_is_claimed_again_not_completed(
    queue: QueueClient, db_conn: psycopg.Connection[Any], database_url: str
) -> None:
    statement = query("complete_jobs_and_claim")
    completed, state = reaped_job_settled_by(statement, queue, db_conn, database_url)

    assert completed == set(), "a job no longer held was completed"
    assert state == ("processing", 2, "w"), "the job due again was not claimed"


def test_the_reaped_job_check_catches_a_claim_before_the_completion(
    queue: QueueClient, db_conn: psycopg.Connection[Any], database_url: str
) -> None:
    completed, state = reaped_job_settled_by(CLAIM_FIRST, queue, db_conn, database_url)

    assert len(completed) == 1, "the claim-first variant should complete the job it re-claimed"
    assert state == ("completed", 2, "w")


def test_too_many_ids_are_refused_before_the_database() -> None:
    with pytest.raises(InvalidArgumentError, match="complete_jobs_and_claim takes at most"):
        QueueClient.complete_jobs_and_claim(
            None,  # type: ignore[arg-type]
            [UUID(int=i) for i in range(MAX_BATCH_SIZE + 1)],
            "w",
            PROBE,
        )
